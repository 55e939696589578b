/**
 * The error of the evaluation run (`evaluateGeneratedSet`, `evaluateGeneratedSetShard`,
 * `mergeEvaluationShards`; Node only: part of `@fad/expert-models/node`): a message for the user
 * plus a `code` and the facts behind it (`details`), so an application can word it its own way (the
 * `fad` CLI names its flags and config keys from the details). Bad params are
 * `TypeError`/`RangeError`s. Reading the generated set (a missing or bad manifest.json, an image that
 * cannot be decoded) and refusing to replace an input throw @fad/diffusion-core's `GenerationRunError`.
 */

import { CodedError, withFsError } from '@fad/diffusion-core';

/** What went wrong. */
export type EvaluationRunErrorCode =
  /** `settings.classes` names a class the expert lacks (`details.class`, `details.classNames`). */
  | 'unknown-class'
  /** No class is left to count (`settings.classes` / `settings.excludeClasses`). */
  | 'no-classes'
  /** The generated set has a class the expert lacks (`details.class`, `details.classNames`). */
  | 'foreign-class'
  /** The generated and the real images differ in size or channels (`details.generated`, `details.real`: `{ imageSize, channels }`). */
  | 'size-mismatch'
  /** Fewer than 2 real images of the counted classes (`details.count`). */
  | 'too-few-real'
  /** Fewer than 2 generated images of the counted classes (`details.count`). */
  | 'too-few-generated'
  /** A shard: its folder holds a finished shard of another run (`details.path`, `details.shard`). */
  | 'foreign-shard'
  /** A shard: the shards folder is a file (`details.out` as given). */
  | 'out-is-file'
  /** Merging: `details.dir` is not a folder. */
  | 'not-shards'
  /** Merging: no finished shard folder in `details.dir` (`details.killed`: temp folders of killed shards). */
  | 'no-shards'
  /** Merging: the shards are missing, unfinished, foreign, or do not fit together (`details.dir`). */
  | 'bad-shards'
  /** Merging: the output file exists and `force` is off (`details.path`, `details.out` as given). */
  | 'exists'
  /** Merging: the output is a folder (`details.out` as given). */
  | 'out-is-folder'
  /** Merging: the output file is inside the shards folder (`details.out`, `details.dir`). */
  | 'out-inside-shards'
  /** Merging: the generated set's manifest changed since the shards ran (`details.generatedDir`). */
  | 'generated-changed'
  /** Merging: the real images differ from those the shards compared with (`details.config`: the shards' recorded config). */
  | 'real-changed'
  /** A file system call failed (`details.path`, `details.doing`; the Node error is `cause`, with its `code`). */
  | 'fs';

export class EvaluationRunError extends CodedError<EvaluationRunErrorCode> {
  override readonly name = 'EvaluationRunError';
}

/**
 * Runs a file system call; its errno error becomes an EvaluationRunError `fs` whose message is
 * `cannot <doing> <path>: <the Node message>`. Other errors pass unchanged.
 */
export function withEvaluationFs<T>(path: string, doing: string, fn: () => T): T {
  return withFsError({ path, doing, run: fn, error: (m, d, c) => new EvaluationRunError('fs', m, d, c) });
}
