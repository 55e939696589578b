/**
 * The error of the expert training run (`prepareExpertRun`, `trainExpertRun`,
 * `readTorchvisionResNetLayout`; Node only: part of `@fad/expert-models/node`): a message for the
 * user plus a `code` and the facts behind it (`details`). Bad params are `TypeError`/`RangeError`s.
 * Refusals of the run folder (a finished run of another key, ...) are diffusion-core's
 * `ResumableStepError`s.
 */
import { CodedError } from '@fad/diffusion-core';

/** What went wrong. */
export type ExpertRunErrorCode =
  /** The folder's training state cannot be read (`details.path`; the reason is `cause`). */
  | 'unreadable-state'
  /** The folder's training state was written with another key and `staleState` is `'error'` (`details.stored`, `details.key`). */
  | 'stale-state'
  /** The folder holds an unfinished run's state and `resume` is off (`details.dir`). */
  | 'unfinished-state'
  /** The pretrained torchvision file cannot be read or used (`details.path`; `details.reason`). */
  | 'pretrained'
  /** Training produced a non-finite loss, gradient or weight, or the pretrained weights are not finite (`details.dir` or `details.path`). */
  | 'non-finite'
  /** A file system call failed (`details.path`, `details.doing`; the Node error is `cause`, with its `code`). */
  | 'fs';

export class ExpertRunError extends CodedError<ExpertRunErrorCode> {
  override readonly name = 'ExpertRunError';
}
