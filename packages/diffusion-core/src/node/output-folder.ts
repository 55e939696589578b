/**
 * Guards for what a run writes and replaces (Node only: part of `@fad/diffusion-core/node`):
 *
 * - `pathInside`: a path derived from untrusted names (class names of a model file, the file names
 *   of a manifest) is resolved, following the symlinks of the part that exists, and must stay
 *   inside its folder.
 * - `assertNotReplacingInputs`: replacing an output folder never deletes (or writes into) one of
 *   the run's own inputs.
 *
 * Both throw a GenerationRunError (`outside-folder`, `holds-input`).
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { GenerationRunError } from './generation-run-error';

/** The real path of `p`, following symlinks in the longest part of it that exists. */
export function realpathOfExistingPrefix(p: string): string {
  const abs = resolve(p);
  let head = abs;
  const tail: string[] = [];
  for (;;) {
    try {
      const real = realpathSync(head);
      return tail.length ? join(real, ...tail.reverse()) : real;
    } catch {
      const parent = dirname(head);
      if (parent === head) return abs;
      tail.push(basename(head));
      head = parent;
    }
  }
}

/** Whether `p` is `root` or inside it (lexically). */
export function isPathInside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** Parameters of {@link pathInside}. */
export interface PathInsideParams {
  /** The folder the path must stay in. */
  root: string;
  /** The path, absolute or relative to `root`. */
  path: string;
  /** Where `path` came from, in the message (e.g. `the class name "x" of the model /m.safetensors`). */
  what?: string;
  /** Whether the path is written (default) or read, in the message. */
  verb?: 'write' | 'read';
}

/**
 * `path` resolved against `root`; throws a GenerationRunError `outside-folder` unless it stays inside
 * `root`, both lexically and after following the symlinks of the parts that exist.
 */
export function pathInside(p: PathInsideParams): string {
  if (p === null || typeof p !== 'object') throw new TypeError(`pathInside: params must be an object, got ${String(p)}`);
  if (typeof p.root !== 'string' || p.root.length === 0) throw new TypeError(`pathInside: root must be a non-empty string, got ${JSON.stringify(p.root)}`);
  if (typeof p.path !== 'string') throw new TypeError(`pathInside: path must be a string, got ${JSON.stringify(p.path)}`);
  const verb = p.verb ?? 'write';
  const r = resolve(p.root);
  const abs = resolve(r, p.path);
  if (!isPathInside(r, abs) || !isPathInside(realpathOfExistingPrefix(r), realpathOfExistingPrefix(abs))) {
    throw new GenerationRunError('outside-folder', `refusing to ${verb} ${abs}: ${p.what ?? 'a path'} would put it outside the ${verb === 'write' ? 'output' : 'input'} folder ${r}`, { path: abs, root: r, verb });
  }
  return abs;
}

/** An input of a run, for {@link assertNotReplacingInputs}. */
export interface RunInputPath {
  /** What the input is, e.g. "the model". */
  what: string;
  path: string;
}

/** Parameters of {@link assertNotReplacingInputs}. */
export interface AssertNotReplacingInputsParams {
  /** The output about to be replaced. */
  target: string;
  inputs: ReadonlyArray<RunInputPath | null | undefined>;
  /**
   * `folder` (default): the whole target is deleted. `files`: only the run's own named files in it,
   * so an input directly in `target` also counts (its run's files would go), one deeper does not.
   */
  kind?: 'folder' | 'files';
}

/**
 * Throws a GenerationRunError `holds-input` if replacing `target` would delete (or write into) one
 * of the inputs: an input that is `target` or inside it, or a `target` inside an input folder.
 */
export function assertNotReplacingInputs(p: AssertNotReplacingInputsParams): void {
  if (p === null || typeof p !== 'object') throw new TypeError(`assertNotReplacingInputs: params must be an object, got ${String(p)}`);
  if (typeof p.target !== 'string' || p.target.length === 0) throw new TypeError(`assertNotReplacingInputs: target must be a non-empty string, got ${JSON.stringify(p.target)}`);
  if (!Array.isArray(p.inputs)) throw new TypeError('assertNotReplacingInputs: inputs must be an array of { what, path }');
  const target = realpathOfExistingPrefix(p.target);
  for (const input of p.inputs) {
    if (!input?.path) continue;
    const inp = realpathOfExistingPrefix(input.path);
    const clash = p.kind === 'files'
      ? inp === target || dirname(inp) === target || isPathInside(inp, target)
      : isPathInside(target, inp) || isPathInside(inp, target);
    if (clash) {
      const how = inp === target ? 'is' : isPathInside(target, inp) ? 'holds' : 'is inside';
      throw new GenerationRunError('holds-input', `refusing to replace ${p.target}: it ${how} ${input.what} ${input.path}, which this run reads; choose another output folder`, { target: p.target, how, what: input.what, path: input.path });
    }
  }
}
