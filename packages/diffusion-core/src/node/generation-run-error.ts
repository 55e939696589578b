/**
 * The error of the generation run (`prepareGeneratedSet`, `generateImageSet`,
 * `mergeGeneratedShards`, the output-folder guards; Node only: part of `@fad/diffusion-core/node`):
 * a message for the user plus a `code` and the facts behind it (`details`), so an application can
 * word it its own way (the `fad` CLI names its flags, `--out` and `--force`, from the details).
 * Bad params are `TypeError`/`RangeError`s.
 */
import { CodedError } from '@fad/diffusion-core';

/** What went wrong. */
export type GenerationRunErrorCode =
  /** The output folder exists and `force` is off (`details.path`, `details.out` as given). */
  | 'exists'
  /** The shard folder holds a finished shard of another model or settings (`details.path`, `details.shard`). */
  | 'foreign-shard'
  /** `force` would replace something that is not a generated set: a file, or a non-empty folder without manifest.json (`details.path`, `details.isFile`, `details.entries`). */
  | 'not-replaceable'
  /** Replacing the output would delete one of the run's inputs (`details.target`, `details.how`, `details.what`, `details.path`). */
  | 'holds-input'
  /** A path made from a name (a class name, a manifest entry) would leave its folder. */
  | 'outside-folder'
  /** A class asked for is not one of the model's. */
  | 'unknown-class'
  /** The model produced NaN or infinite pixels; nothing was written (`details.checkpoint`, `details.bad`, `details.total`, `details.seed`). */
  | 'non-finite'
  /** Merging: `details.dir` is not a folder. */
  | 'not-shards'
  /** Merging: no finished shard folder in `details.dir` (`details.killed`: temp folders of killed shards). */
  | 'no-shards'
  /** Merging: the shards are missing, unfinished, foreign or overlapping. */
  | 'bad-shards'
  /** Merging: the output folder is inside the shards folder (`details.out`, `details.dir`). */
  | 'out-inside-shards'
  /** Reading a generated set: the folder has no readable manifest.json (`details.dir`, `details.path`). */
  | 'not-generated-set'
  /** Reading a generated set: its manifest.json fails a check (`details.path`). */
  | 'bad-manifest'
  /** Reading a generated set: an image file cannot be decoded or has the wrong size (`details.path`). */
  | 'bad-image'
  /** A file system call failed (`details.path`, `details.doing`; the Node error is `cause`, with its `code`). */
  | 'fs';

export class GenerationRunError extends CodedError<GenerationRunErrorCode> {
  override readonly name = 'GenerationRunError';
}

/**
 * Runs a file system call; its errno error becomes a GenerationRunError `fs` whose message is
 * `cannot <doing> <path>: <the Node message>`.
 */
export function withGenerationFs<T>(path: string, doing: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw generationFsError(e, path, doing);
  }
}

/**
 * An error of a file system call (or of sharp, which reports errno codes only in its message) as a
 * GenerationRunError `fs`; other errors unchanged.
 */
export function generationFsError(e: unknown, path: string, doing: string): unknown {
  if (e instanceof GenerationRunError) return e;
  const err = e as NodeJS.ErrnoException;
  let cause: NodeJS.ErrnoException | null = typeof err?.code === 'string' ? err : null;
  if (!cause) {
    const m = /(ENOSPC|EACCES|EROFS|EDQUOT|EPERM|EIO)/.exec(String(err?.message));
    if (m) cause = Object.assign(new Error(err.message), { code: m[1] });
  }
  if (!cause) return e;
  return new GenerationRunError('fs', `cannot ${doing} ${path}: ${cause.message ?? String(e)}`, { path, doing }, cause);
}
