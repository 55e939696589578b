/**
 * The error of the utility study's file-based run (`runUtilityStudy`, `runUtilityStudyShard`,
 * `mergeUtilityShards`, `checkDiffersFromExpert`; Node only: part of `@fad/expert-models/node`): a
 * message for the user plus a `code` and the facts behind it (`details`), so that an application
 * can word it its own way (the `fad` CLI names its config keys and flags from the details). Bad
 * params are `TypeError`/`RangeError`s. The output-folder guards of `@fad/diffusion-core/node`
 * (`assertNotReplacingInputs`, `pathInside`) keep their own GenerationRunError (`holds-input`,
 * `outside-folder`).
 */

import { CodedError } from '@fad/diffusion-core';

/** What went wrong. */
export type UtilityRunErrorCode =
  /** No synthetic set was given. */
  | 'no-synthetic'
  /** `planProtocols` refused the settings (`details.problem`: its message without the function name, e.g. `fractions must not repeat a value, got [0.5,0.5]`). */
  | 'bad-settings'
  /** A synthetic set's folder has no readable manifest.json (`details.name`, `details.dir`, `details.path`). */
  | 'no-manifest'
  /** A synthetic set's manifest.json fails a check (`details.name`, `details.dir`, `details.path`). */
  | 'bad-manifest'
  /** An image of a synthetic set cannot be decoded or has the wrong size (`details.name`, `details.dir`, `details.path`). */
  | 'bad-image'
  /** A synthetic set's images are not the real data's size (`details.name`, `details.dir`, `details.setSize`, `details.setChannels`, `details.imageSize`, `details.channels`). */
  | 'size-mismatch'
  /** A synthetic set has no image of some class of the real data (`details.name`, `details.dir`, `details.missing`, `details.classes`). */
  | 'missing-class'
  /** The downstream classifier has the architecture of an expert that aligned or guided the generator (`details.what`, `details.path`). */
  | 'same-architecture'
  /** The split holds no held-out real image to test on. */
  | 'no-test-images'
  /** A fraction of the real training split leaves a class without images (`details.fraction`, `details.className`, `details.count`). */
  | 'fraction-empties-class'
  /** The shard's folder holds a finished shard of another run (`details.path`, `details.shard`). */
  | 'foreign-shard'
  /** `shouldStop` stopped the run; the finished classifiers are kept (`details.finished`, `details.total`, `details.runsDir`). */
  | 'interrupted'
  /** Merging: `details.dir` is not a folder. */
  | 'not-shards'
  /** Merging: no finished shard folder in `details.dir` (`details.killed`: temp folders of killed shards). */
  | 'no-shards'
  /** Merging: the shards are missing, unfinished, foreign, overlapping or incomplete (`details.dir`). */
  | 'bad-shards'
  /** Merging: a shard's run file is not the classifier the plan puts there (`details.path`, `details.shard`, `details.protocolId`, `details.seed`: the one expected, or null). */
  | 'bad-run-file'
  /** Merging: the output folder exists and `force` is off (`details.path`, `details.out` as given). */
  | 'exists'
  /** Merging: `force` would replace a folder that is not a utility run's (no utility.json) (`details.path`). */
  | 'not-replaceable'
  /** Merging: the output folder is inside the shards folder (`details.out`, `details.dir`). */
  | 'out-inside-shards'
  /** A file system call failed (`details.path`, `details.doing`; the Node error is `cause`, with its `code`). */
  | 'fs';

export class UtilityRunError extends CodedError<UtilityRunErrorCode> {
  override readonly name = 'UtilityRunError';
}

/**
 * Runs a file system call; its errno error becomes a UtilityRunError `fs` whose message is
 * `cannot <doing> <path>: <the Node message>`. Other errors pass unchanged.
 */
export function withUtilityFs<T>(path: string, doing: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (e instanceof UtilityRunError || typeof err?.code !== 'string') throw e;
    throw new UtilityRunError('fs', `cannot ${doing} ${path}: ${err.message}`, { path, doing }, e);
  }
}
