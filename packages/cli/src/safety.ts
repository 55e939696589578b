/**
 * Guards for what fad writes and deletes:
 *
 * - `safeName`: a name from a file's metadata (a class name) that becomes a folder or file name must
 *   be one plain path segment: non-empty, bounded length, no `/` or `\`, not `.` or `..`, no control
 *   characters.
 * - `pathInside`: every path derived from metadata is resolved (following the symlinks of the part
 *   that exists) and must stay inside the chosen output folder.
 * - `assertNotDeletingInputs`: `--force` never deletes a folder or file that holds (or is inside)
 *   the run's own inputs, e.g. `fad generate -m RUN -o RUN --force`.
 * - `removeStaleTemps`: temp files left by atomic writes that were interrupted (kill -9 during a
 *   checkpoint write) are removed at the next start.
 */
import { checkClassNames, classNameProblem, ModelFileError } from '@fad/diffusion-core';
import { assertNotReplacingInputs, GenerationRunError, pathInside as pathInsideCore } from '@fad/diffusion-core/node';
import { CliError, holdsInputMessage } from './errors';

/** Why `name` is not a safe single path segment, or null when it is (diffusion-core's `classNameProblem`). */
export function unsafeNameReason(name: unknown): string | null {
  return classNameProblem(name);
}

/**
 * Checks a list of names that become folder or file names: each a safe segment, all unique (also
 * case-insensitively, for case-insensitive file systems). `where` names the file and field, e.g.
 * `model /x/model.safetensors: metadata.classes`. (diffusion-core's `checkClassNames`, as a CliError.)
 */
export function assertSafeNames(names: unknown, where: string, expectedCount?: number): string[] {
  try {
    return checkClassNames({ names, where, ...(expectedCount !== undefined ? { expectedCount } : {}) });
  } catch (e) {
    if (e instanceof ModelFileError) throw new CliError(e.message);
    throw e;
  }
}

export { realpathOfExistingPrefix } from '@fad/diffusion-core/node';

/**
 * `p` (absolute, or relative to `root`) resolved; throws unless it stays inside `root`, both
 * lexically and after following the symlinks of the parts that exist. `what` names where `p`
 * came from (e.g. `class "x" of the model /m.safetensors`). (diffusion-core's `pathInside`, as a CliError.)
 */
export function pathInside(root: string, p: string, what = 'a path', verb: 'write' | 'read' = 'write'): string {
  try {
    return pathInsideCore({ root, path: p, what, verb });
  } catch (e) {
    if (e instanceof GenerationRunError) throw new CliError(e.message);
    throw e;
  }
}

export interface RunInput {
  /** What the input is, e.g. "the model (--model)". */
  what: string;
  path: string;
}

/**
 * Throws before `--force` deletes `target` if that would delete (or write into) one of the run's
 * own inputs: an input that is `target` or inside it, or a `target` inside an input folder.
 * `kind: 'files'` is for commands that delete only their own named files in `target` (train): then
 * an input directly in `target` also counts (its run's marker files would go) but an input deeper
 * inside does not. (diffusion-core's `assertNotReplacingInputs`, as a CliError naming `flag`.)
 */
export function assertNotDeletingInputs(p: { target: string; inputs: Array<RunInput | null | undefined>; kind?: 'folder' | 'files'; flag?: string }): void {
  try {
    assertNotReplacingInputs({ target: p.target, inputs: p.inputs, ...(p.kind ? { kind: p.kind } : {}) });
  } catch (e) {
    if (e instanceof GenerationRunError && e.code === 'holds-input') throw new CliError(holdsInputMessage(e.details, p.flag ?? '--force'));
    throw e;
  }
}

export { removeStaleTemps } from '@fad/diffusion-core/node';
