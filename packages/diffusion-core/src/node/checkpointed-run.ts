/**
 * A resumable training run whose state is one checkpoint file (internal to
 * `@fad/diffusion-core/node`): the diffusion run and the autoencoder run share its two halves, with
 * their own file names, phrases, checkpoint format, trainer and final model.
 *
 * - `prepareCheckpointedRun` decides whether the folder is reused, resumed or started;
 * - `runCheckpointedTraining` restores a checkpoint (weights, trainer, data order, metrics window),
 *   runs `runTrainingLoop` with a checkpoint every `checkpointEvery` steps, then writes the final
 *   model, the caller's files and `complete.json` last.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { DataOrder, type DataOrderState } from './data-order';
import type { MetricsWindow, ScalarSink, TrainingStepLog } from './metrics-log';
import { emptyMetricsWindow } from './metrics-log';
import { failParam as fail, isIntAtLeast as isInt } from './param-check';
import { loadCheckpointInto, type ParsedTrainingCheckpoint } from './read-training-checkpoint';
import { assertStateKey, COMPLETE_FILE, type CompleteMarker, prepareResumableStep, sha256, writeCompleteMarker } from './resumable-step';
import { truncateMetricsLog } from './training-checkpoint';
import { type AbortFlag, runTrainingLoop } from './training-loop';
import { withRunFs } from './training-run-error';
import { writeFileAtomicSync } from './write-file-atomic';

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

/** The options of a run folder that the training runs share (their params extend it). */
export interface RunFolderOptions {
  /** Random horizontal / vertical flips of the training images. */
  hflip?: boolean;
  vflip?: boolean;
  /** Seed of the data order and flips (default trainer seed + 1). */
  dataSeed?: number;
  /** The run folder. */
  dir: string;
  /**
   * The step key: what determines the result. A folder holding a finished run of this key is
   * reused; a checkpoint of another key is refused. Default: a hash of the settings, the model's
   * config and the training images.
   */
  key?: string;
  resume?: boolean;
  force?: boolean;
  /** Checkpoint every this many steps (default 100; always at the end). */
  checkpointEvery?: number;
  /** A metrics line every this many steps (default 10; always at the end). */
  logEvery?: number;
  /** Recorded in the checkpoint and the outputs (default `tf.getBackend()`). */
  backend?: string;
  /** Also gets the metrics lines' scalars (a TensorBoard writer of `@fad/metrics/node` fits). */
  sink?: ScalarSink | null;
  /** Checked between steps: when aborted, a checkpoint is written and the run returns `interrupted`. */
  signal?: AbortFlag | null;
  /** Return `interrupted` after this step (for tests of resuming). */
  stopAfterStep?: number;
  /** Messages: resuming, reusing, a backend warning. */
  onLog?: (message: string) => void;
  /** How messages name `force` and `resume`, and the total steps (the CLI: `--force`, `--resume`, `diffusion.steps`). */
  flags?: { force?: string; resume?: string };
  totalKey?: string;
  /** The step name in complete.json (default "train-diffusion", "train-autoencoder", ...). */
  stepName?: string;
}

/** What every checkpoint state holds besides its own fields. */
export interface CheckpointedRunState {
  key: string;
  step: number;
  data: DataOrderState;
  window: MetricsWindow;
  backend: string;
  elapsedSeconds: number;
  lastLoss: number;
}

/** A file written after the final model, e.g. the CLI's `align.safetensors`. */
export interface RunFinalFile {
  /** File name in the run folder. */
  name: string;
  /** What it is, for messages ("the alignment projection"). */
  what: string;
  bytes: () => Uint8Array;
}

/** Parameters of {@link runCheckpointedTraining}. */
export interface CheckpointedTrainingParams<S extends CheckpointedRunState, R extends TrainingStepLog> {
  kind: CheckpointedRunKind<S>;
  dir: string;
  key: string;
  steps: number;
  backend: string;
  /** A start, or the checkpoint to resume. */
  prepared: Exclude<PreparedCheckpointedRun<S>, { action: 'reuse' }>;
  /** The training rows and the seed of their order and flips. */
  indices: number[];
  dataSeed: number;
  /** Loads the checkpoint's weights and trainer state (the data order is restored after it). */
  restore: (checkpoint: ParsedTrainingCheckpoint<S>) => void;
  /** One optimizer step on a batch drawn from `order`. */
  trainStep: (order: DataOrder) => R;
  /** The checkpoint's bytes after `step` (checks the weights, naming the file as `what`). */
  encodeCheckpoint: (p: { step: number; data: DataOrderState; window: MetricsWindow; lastLoss: number; elapsedSeconds: number; what: string }) => Uint8Array;
  /** After the last step: the final model's bytes and what they are, for messages ("the final model"). */
  finalModel: (p: { step: number; path: string }) => { bytes: Uint8Array; what: string };
  finalFiles?: readonly RunFinalFile[];
  checkpointEvery: number;
  logEvery: number;
  sink?: ScalarSink | null;
  signal?: AbortFlag | null;
  stopAfterStep?: number;
  onStep?: (p: { step: number; result: R }) => void | Promise<void>;
  onProgress?: (p: { step: number; steps: number; loss: number; result: R }) => void;
  log: (message: string) => void;
  flags?: { force?: string };
  /** The step name in complete.json. */
  stepName: string;
}

/** How {@link runCheckpointedTraining} ended. */
export type CheckpointedTrainingResult =
  | { status: 'finished'; finalLoss: number; resumed: boolean; elapsedSeconds: number }
  | { status: 'interrupted'; checkpointPath: string; step: number; lastLoss: number; reason: 'signal' | 'stop-after-step' };

/** Runs a started or resumed run to its end or an interruption (see the file comment). */
export async function runCheckpointedTraining<S extends CheckpointedRunState, R extends TrainingStepLog>(p: CheckpointedTrainingParams<S, R>): Promise<CheckpointedTrainingResult> {
  const { dir, steps, kind } = p;
  const checkpointPath = join(dir, kind.files.checkpoint);
  const metricsPath = join(dir, kind.files.metrics);
  const modelPath = join(dir, kind.files.model);
  const order = new DataOrder({ indices: p.indices, seed: p.dataSeed });
  let window = emptyMetricsWindow();
  let step = 0;
  let elapsedBefore = 0;
  let lastLoss = NaN;
  const resumeFrom = p.prepared.action === 'resume' ? p.prepared.checkpoint : null;
  if (resumeFrom) {
    const { state } = resumeFrom;
    loadCheckpointInto({
      where: `${kind.checkpointWhat} ${checkpointPath}`, flags: p.flags,
      load: () => {
        p.restore(resumeFrom);
        order.setState(state.data);
      },
    });
    window = state.window;
    step = state.step;
    elapsedBefore = state.elapsedSeconds;
    lastLoss = state.lastLoss;
    withRunFs(metricsPath, 'rewrite the metrics log', () => truncateMetricsLog(metricsPath, step));
    p.log(`resuming ${dir} at step ${step}/${steps}`);
  }
  const t0 = Date.now();
  const elapsed = () => elapsedBefore + (Date.now() - t0) / 1000;
  const outcome = await runTrainingLoop<R>({
    startStep: step, steps, metricsPath, window, logEvery: p.logEvery, sink: p.sink, checkpointEvery: p.checkpointEvery, lastLoss, signal: p.signal, stopAfterStep: p.stopAfterStep,
    trainStep: () => p.trainStep(order),
    writeCheckpoint: (s) => {
      const bytes = p.encodeCheckpoint({ step: s.step, data: order.getState(), window: s.window, lastLoss: s.lastLoss, elapsedSeconds: elapsed(), what: `the checkpoint ${checkpointPath}` });
      withRunFs(checkpointPath, 'write the training checkpoint', () => writeFileAtomicSync(checkpointPath, bytes));
    },
    onStep: p.onStep,
    onProgress: p.onProgress ? (s) => p.onProgress!({ step: s.step, steps, loss: s.result.loss, result: s.result }) : undefined,
  });
  if (outcome.status === 'interrupted') return { status: 'interrupted', checkpointPath, step: outcome.step, lastLoss: outcome.lastLoss, reason: outcome.reason! };
  // The final model, the caller's files, then the completion marker.
  const model = p.finalModel({ step: outcome.step, path: modelPath });
  withRunFs(modelPath, `write ${model.what}`, () => writeFileAtomicSync(modelPath, model.bytes));
  for (const f of p.finalFiles ?? []) {
    const path = join(dir, f.name);
    const bytes = f.bytes();
    withRunFs(path, `write ${f.what}`, () => writeFileAtomicSync(path, bytes));
  }
  const elapsedSeconds = elapsed();
  const resumed = resumeFrom !== null;
  withRunFs(join(dir, COMPLETE_FILE), 'write the completion marker', () =>
    writeCompleteMarker(dir, { step: p.stepName, key: p.key, steps, finalLoss: outcome.lastLoss, backend: p.backend, modelSha256: sha256(model.bytes), elapsedSeconds, resumed }));
  return { status: 'finished', finalLoss: outcome.lastLoss, resumed, elapsedSeconds };
}
