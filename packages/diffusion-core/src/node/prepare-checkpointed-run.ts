/**
 * The start of a resumable run whose state is one checkpoint file (internal to
 * `@fad/diffusion-core/node`): the diffusion run and the autoencoder run decide here whether their
 * folder is reused, resumed or started, with their own file names, phrases and checkpoint reader.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { failParam as fail, isIntAtLeast as isInt } from './param-check';
import type { ParsedTrainingCheckpoint } from './read-training-checkpoint';
import { assertStateKey, type CompleteMarker, prepareResumableStep } from './resumable-step';
import { withRunFs } from './training-run-error';

/** What the public prepare functions take (`prepareDiffusionRun`, `prepareAutoencoderRun`). */
export interface PrepareCheckpointedRunParams {
  /** The run folder (created if missing). */
  dir: string;
  /** The run's step key (see `stepKey`). */
  key: string;
  /** Continue from the folder's checkpoint. Without it, a checkpoint is an error (unless `force`). */
  resume?: boolean;
  /** Start over: remove the checkpoint, the outputs and the completion marker first. */
  force?: boolean;
  /** The run's total steps (a checkpoint past them is refused). */
  steps: number;
  /** Files besides the run's metrics log and model that a finished run leaves (removed with `force`). */
  outputs?: readonly string[];
  /** How messages name `force` and `resume` (the CLI: `--force`, `--resume`). */
  flags?: { force?: string; resume?: string };
  /** How messages name the total steps (default "steps"). */
  totalKey?: string;
  /** The backend the run continues on (default `tf.getBackend()`): a checkpoint of another one gets a warning. */
  backend?: string;
  /** Gets the warning. */
  onLog?: (message: string) => void;
}

/** What a prepare function decided. */
export type PreparedCheckpointedRun<S> =
  | { action: 'reuse'; marker: CompleteMarker }
  | { action: 'start' }
  | { action: 'resume'; checkpointPath: string; checkpoint: ParsedTrainingCheckpoint<S> };

/** How one kind of run names its files and reads its checkpoint. */
export interface CheckpointedRunKind<S> {
  /** The public function's name, for param errors. */
  fn: string;
  files: { checkpoint: string; metrics: string; model: string };
  /** Phrases of the refusals ("a finished training run", "a checkpoint of an unfinished run"). */
  describe: { finished: string; unfinished: string };
  /** The checkpoint in messages ("the training checkpoint"). */
  checkpointWhat: string;
  read: (p: { bytes: Uint8Array; path: string; totalSteps: number; totalKey?: string; flags?: { force?: string } }) => ParsedTrainingCheckpoint<S>;
}

/**
 * Decides whether a run folder is reused, resumed or started (and reads and checks the checkpoint
 * to resume; a metrics log of an earlier start is removed).
 */
export function prepareCheckpointedRun<S extends { key: string; backend: string }>(kind: CheckpointedRunKind<S>, p: PrepareCheckpointedRunParams): PreparedCheckpointedRun<S> {
  const { fn, files } = kind;
  if (p === null || typeof p !== 'object') fail(fn, 'params', 'one params object', p, TypeError);
  if (typeof p.dir !== 'string' || p.dir.length === 0) fail(fn, 'dir', 'a non-empty string (the run folder)', p.dir, TypeError);
  if (typeof p.key !== 'string' || p.key.length === 0) fail(fn, 'key', 'a non-empty string (the run\'s step key)', p.key, TypeError);
  if (!isInt(p.steps, 1)) fail(fn, 'steps', 'an integer >= 1', p.steps);
  for (const k of ['resume', 'force'] as const) if (p[k] !== undefined && typeof p[k] !== 'boolean') fail(fn, k, 'a boolean', p[k], TypeError);
  const { dir, key } = p;
  const checkpointPath = join(dir, files.checkpoint);
  const metricsPath = join(dir, files.metrics);
  withRunFs(dir, 'create the output folder', () => mkdirSync(dir, { recursive: true }));
  const prepared = withRunFs(dir, 'prepare the output folder', () =>
    prepareResumableStep({
      dir, key, resume: p.resume ?? false, force: p.force ?? false, stateFile: files.checkpoint,
      outputs: [files.metrics, files.model, ...(p.outputs ?? [])], describe: kind.describe, flags: p.flags,
    }));
  if (prepared.action === 'reuse') return prepared;
  if (prepared.action === 'start') {
    if (existsSync(metricsPath)) withRunFs(metricsPath, 'remove the old metrics log', () => rmSync(metricsPath));
    return prepared;
  }
  const bytes = withRunFs(checkpointPath, `read ${kind.checkpointWhat}`, () => new Uint8Array(readFileSync(checkpointPath)));
  const checkpoint = kind.read({ bytes, path: checkpointPath, totalSteps: p.steps, totalKey: p.totalKey, flags: p.flags });
  assertStateKey({ where: `the checkpoint ${checkpointPath}`, stored: checkpoint.state.key, storedName: 'state.key', key, flags: p.flags });
  const backend = p.backend ?? tf.getBackend();
  if (checkpoint.state.backend !== backend) {
    p.onLog?.(`warning: the checkpoint was written on the "${checkpoint.state.backend}" backend, resuming on "${backend}": the result will not be bit-identical to an uninterrupted run`);
  }
  return { action: 'resume', checkpointPath, checkpoint };
}
