/**
 * The error of the resumable training runs (`trainDiffusionRun`, `runTrainingLoop`, the checkpoint
 * readers; Node only: part of `@fad/diffusion-core/node`): a message for the user plus a `code` and
 * the facts behind it, so an application can map it to its own errors (the `fad` CLI turns
 * `non-finite` into its divergence error, `fs` into its file-system errors naming `path` and `doing`).
 * Bad params are `TypeError`/`RangeError`s; a refused run folder is a `ResumableStepError`.
 */
import { CodedError, withFsError } from '@fad/diffusion-core';

/** What went wrong. */
export type TrainingRunErrorCode =
  /** A checkpoint that cannot be resumed: not the format, damaged or edited state, tensors that do not fit. */
  | 'bad-checkpoint'
  /** Training diverged: a weight is NaN or infinite; nothing was written. */
  | 'non-finite'
  /**
   * The training images hold fewer images of a class than asked for (DreamBooth's instance images:
   * `details.className`, `details.requested`, `details.available`).
   */
  | 'too-few-images'
  /** A file system call failed (`details.path`, `details.doing`; the Node error is `cause`). */
  | 'fs';

export class TrainingRunError extends CodedError<TrainingRunErrorCode> {
  override readonly name = 'TrainingRunError';
}

/**
 * Runs a file system call; its errno error becomes a TrainingRunError `fs` whose message is
 * `cannot <doing> <path>: <the Node message>` (e.g. doing "write the training checkpoint").
 */
export function withRunFs<T>(path: string, doing: string, fn: () => T): T {
  return withFsError({ path, doing, run: fn, error: (m, d, c) => new TrainingRunError('fs', m, d, c) });
}
