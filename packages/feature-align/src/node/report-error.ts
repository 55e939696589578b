/**
 * The error of the experiment report (`writeExperimentReport`, `renderVegaLite`; Node only: part of
 * `@fad/feature-align/node`): a message for the user plus a `code` and the facts behind it
 * (`details`), so an application can word it its own way (the `fad` CLI names its commands). Bad
 * params are `TypeError`s; a generated set whose manifest.json fails its checks is diffusion-core's
 * `GenerationRunError`.
 */
import { CodedError } from '@fad/diffusion-core';

/** What went wrong. */
export type ReportErrorCode =
  /** The run directory does not exist (`details.runDir`). */
  | 'missing'
  /** The folder holds no variants/, expert/ or utility results (`details.runDir`). */
  | 'not-run-dir'
  /** vega, vega-lite or sharp, optional peer dependencies, cannot be loaded (`details.module`; the import error is `cause`). */
  | 'no-renderer'
  /** A generated image listed in a manifest cannot be decoded (`details.path`, `details.reason`: the decoder's message). */
  | 'bad-image'
  /** Writing a report file failed (`details.path`, `details.doing`; the Node error is `cause`). */
  | 'fs';

export class ReportError extends CodedError<ReportErrorCode> {
  override readonly name = 'ReportError';
}
