/**
 * The error of the experiment run (`runAlignmentExperiment`; Node only: part of
 * `@fad/feature-align/node`): a message for the user plus a `code` and the facts behind it
 * (`details`), so an application can word it its own way (the `fad` CLI names the path and what
 * it was doing, as for its other runs). Bad params and stage callbacks that resolve to the wrong
 * shape are `TypeError`/`RangeError`s; errors the stage callbacks throw pass unchanged.
 */
import { CodedError, withFsError } from '@fad/diffusion-core';

/** What went wrong. */
export type ExperimentRunErrorCode =
  /** Writing a file of the run folder failed (`details.path`, `details.doing`; the Node error is `cause`). */
  'fs';

export class ExperimentRunError extends CodedError<ExperimentRunErrorCode> {
  override readonly name = 'ExperimentRunError';
}

/**
 * Runs a file system call; its errno error becomes an ExperimentRunError `fs` whose message is
 * `cannot <doing> <path>: <the Node message>`.
 */
export function withExperimentFs<T>(path: string, doing: string, fn: () => T): T {
  return withFsError({ path, doing, run: fn, error: (m, d, c) => new ExperimentRunError('fs', m, d, c) });
}
