/**
 * A resumable diffusion training run into a folder (Node only: part of `@fad/diffusion-core/node`):
 * what `fad train` does, as a library function taking plain params. The folder holds
 *
 * - `checkpoint.safetensors`: the resumable state (see diffusion-checkpoint.ts), written every
 *   `checkpointEvery` steps, at the end, and when the run is aborted;
 * - `metrics.jsonl`: one JSON line per `logEvery` steps (see metrics-log.ts);
 * - `model.safetensors`: the final weights for sampling (the EMA weights when EMA is on), with
 *   `fad.status: complete`; then the caller's `finalFiles`;
 * - `complete.json`: written last, holding the run's key; the run is complete only when it exists.
 *
 * A folder with a finished run of the same key is reused; a checkpoint is resumed with `resume`
 * (`prepareDiffusionRun` decides, see resumable-step.ts), and a resumed run ends with the same
 * weights as an uninterrupted one on the same backend: the checkpoint holds the weights, Adam
 * moments, EMA, the trainer's and the data order's random state and the metrics window.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  type AutoencoderKL,
  DiffusionTrainer,
  type DiffusionTrainerParams,
  MODEL_STATUS_KEY,
  serializeUNet,
  type TrainingObjective,
  type TrainStepResult,
  type UNet2DConditional,
} from '@fad/diffusion-core';
import { DataOrder } from './data-order';
import { makeBatch } from './data-order';
import { type CheckpointModule, type DiffusionCheckpointState, encodeDiffusionCheckpoint, readDiffusionCheckpoint } from './diffusion-checkpoint';
import { assertFiniteTraining } from './finite-training';
import { emptyMetricsWindow, type ScalarSink } from './metrics-log';
import { type CheckpointedRunKind, type PrepareCheckpointedRunParams, prepareCheckpointedRun, type PreparedCheckpointedRun } from './prepare-checkpointed-run';
import { loadCheckpointInto } from './read-training-checkpoint';
import { COMPLETE_FILE, type CompleteMarker, sha256, stableStringify, stepKey, writeCompleteMarker } from './resumable-step';
import { numberedTensors, tensorsWithPrefix, truncateMetricsLog } from './training-checkpoint';
import { type AbortFlag, runTrainingLoop } from './training-loop';
import { withRunFs } from './training-run-error';
import { writeFileAtomicSync } from './write-file-atomic';
import { failParam as fail, isIntAtLeast as isInt } from './param-check';

/** The file names of a diffusion run folder. */
export const DIFFUSION_RUN_FILES = { checkpoint: 'checkpoint.safetensors', metrics: 'metrics.jsonl', model: 'model.safetensors' } as const;

/** Parameters of {@link prepareDiffusionRun} (`outputs`: files besides metrics.jsonl and model.safetensors). */
export type PrepareDiffusionRunParams = PrepareCheckpointedRunParams;

/** What {@link prepareDiffusionRun} decided. */
export type PreparedDiffusionRun = PreparedCheckpointedRun<DiffusionCheckpointState>;

const DIFFUSION_RUN: CheckpointedRunKind<DiffusionCheckpointState> = {
  fn: 'prepareDiffusionRun',
  files: DIFFUSION_RUN_FILES,
  describe: { finished: 'a finished training run', unfinished: 'a checkpoint of an unfinished run' },
  checkpointWhat: 'the training checkpoint',
  read: readDiffusionCheckpoint,
};

/**
 * Decides whether a run folder is reused, resumed or started (and reads and checks the checkpoint
 * to resume; a metrics log of an earlier start is removed).
 * @throws ResumableStepError (a finished run with another key, a checkpoint without `resume`, a
 *   checkpoint of another key), ModelFileError / TrainingRunError `bad-checkpoint` (a damaged
 *   checkpoint), TrainingRunError `fs`.
 */
export function prepareDiffusionRun(p: PrepareDiffusionRunParams): PreparedDiffusionRun {
  return prepareCheckpointedRun(DIFFUSION_RUN, p);
}

/** The training images: what `loadImageFolder` returns fits. */
export interface DiffusionRunData {
  /** [N, S, S, C] in [0, 1], row-major. */
  images: Float32Array;
  /** Class label of each image, in 0..numClasses-1. */
  labels: Int32Array | readonly number[];
  imageSize: number;
  channels: number;
  /** The rows to train on (default all). */
  indices?: readonly number[];
}

/** A file written after the final model, e.g. the CLI's `align.safetensors`. */
export interface DiffusionRunFinalFile {
  /** File name in the run folder. */
  name: string;
  /** What it is, for messages ("the alignment projection"). */
  what: string;
  bytes: () => Uint8Array;
}

/** Parameters of {@link trainDiffusionRun}. */
export interface TrainDiffusionRunParams {
  /** The U-Net to train (the caller owns and disposes it; on resume its weights are replaced). */
  model: UNet2DConditional;
  /** The noise schedule (a `DDPMScheduler`). */
  scheduler: DiffusionTrainerParams['scheduler'];
  data: DiffusionRunData;
  /** Total optimizer steps. */
  steps: number;
  batchSize: number;
  /**
   * The trainer's settings as `DiffusionTrainer` takes them (learning rate and schedule, EMA,
   * clipping, label dropout, seed, micro-batches, ...); model, scheduler, objectives and
   * autoencoder are the params below.
   */
  trainer?: Omit<DiffusionTrainerParams, 'model' | 'scheduler' | 'objectives' | 'autoencoder'>;
  /** Extra loss terms (e.g. feature alignment). */
  objectives?: TrainingObjective[];
  /** Extra trainable modules (the objectives' own weights), checkpointed under their prefixes. */
  modules?: readonly CheckpointModule[];
  /** Latent diffusion: the frozen autoencoder (embedded in the final model file). */
  autoencoder?: AutoencoderKL;
  /** Random horizontal / vertical flips of the training images. */
  hflip?: boolean;
  vflip?: boolean;
  /** Seed of the data order and flips (default trainer seed + 1). */
  dataSeed?: number;
  /** The run folder. */
  dir: string;
  /**
   * The step key: what determines the result. A folder holding a finished run of this key is
   * reused; a checkpoint of another key is refused. Default: a hash of the settings, the U-Net
   * config and the images and labels.
   */
  key?: string;
  resume?: boolean;
  force?: boolean;
  /** The folder's state as `prepareDiffusionRun` found it (default: it is called here). */
  prepared?: PreparedDiffusionRun;
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
  /** After each step's metrics, before its checkpoint (e.g. sample grids); awaited. */
  onStep?: (p: { step: number; result: TrainStepResult; trainer: DiffusionTrainer; model: UNet2DConditional }) => void | Promise<void>;
  /** After each step's checkpoint. */
  onProgress?: (p: { step: number; steps: number; loss: number; result: TrainStepResult }) => void;
  /** Stored in the checkpoint's state after `unet` (the CLI: `{ alignment }`). */
  extraState?: Record<string, unknown>;
  /** The final model's metadata (default `{ steps, weights, backend, key }`); `fad.status` is added. */
  modelMetadata?: (p: { weights: 'ema' | 'raw' }) => Record<string, string>;
  /** Files written after the final model. */
  finalFiles?: readonly DiffusionRunFinalFile[];
  /** `flags` and `totalKey` of {@link PrepareDiffusionRunParams}, for messages. */
  flags?: { force?: string; resume?: string };
  totalKey?: string;
  /** The step name in complete.json (default "train-diffusion"). */
  stepName?: string;
}

/** What {@link trainDiffusionRun} returns. */
export type TrainDiffusionRunResult =
  | { status: 'reused'; dir: string; key: string; modelPath: string; steps: number; finalLoss: number; marker: CompleteMarker }
  | { status: 'finished'; dir: string; key: string; modelPath: string; steps: number; finalLoss: number; resumed: boolean; elapsedSeconds: number }
  | { status: 'interrupted'; dir: string; key: string; checkpointPath: string; step: number; steps: number; lastLoss: number; reason: 'signal' | 'stop-after-step' };

function checkRunParams(p: TrainDiffusionRunParams): { indices: number[] } {
  const fn = 'trainDiffusionRun';
  if (p === null || typeof p !== 'object') fail(fn, 'params', 'one params object', p, TypeError);
  const m = p.model as Partial<UNet2DConditional> | undefined;
  if (!m || typeof m !== 'object' || typeof m.forward !== 'function' || typeof m.stateDict !== 'function' || !m.config) fail(fn, 'model', 'a UNet2DConditional', typeof m, TypeError);
  if (!p.scheduler || typeof p.scheduler !== 'object' || typeof p.scheduler.addNoise !== 'function') fail(fn, 'scheduler', 'a noise scheduler (DDPMScheduler)', typeof p.scheduler, TypeError);
  const d = p.data;
  if (!d || typeof d !== 'object') fail(fn, 'data', 'an object { images, labels, imageSize, channels } (what loadImageFolder returns)', typeof d, TypeError);
  if (!(d.images instanceof Float32Array)) fail(fn, 'data.images', 'a Float32Array [N, S, S, C] in [0, 1]', typeof d.images, TypeError);
  if (!isInt(d.imageSize, 1)) fail(fn, 'data.imageSize', 'an integer >= 1', d.imageSize);
  if (!isInt(d.channels, 1)) fail(fn, 'data.channels', 'an integer >= 1', d.channels);
  const per = d.imageSize * d.imageSize * d.channels;
  const n = d.images.length / per;
  if (!Number.isInteger(n) || n < 1) fail(fn, 'data.images.length', `a positive multiple of imageSize*imageSize*channels (${per})`, d.images.length);
  if (!(d.labels instanceof Int32Array || Array.isArray(d.labels)) || d.labels.length !== n) fail(fn, 'data.labels', `one integer label per image (${n})`, d.labels?.length, TypeError);
  const classes = m!.config!.numClasses;
  for (let i = 0; i < n; i++) if (!Number.isInteger(d.labels[i]) || d.labels[i] < 0 || d.labels[i] >= classes) fail(fn, `data.labels[${i}]`, `an integer in 0..${classes - 1} (model.config.numClasses ${classes})`, d.labels[i]);
  const indices = d.indices === undefined ? Array.from({ length: n }, (_, i) => i) : d.indices;
  if (!Array.isArray(indices) || indices.length === 0 || !indices.every((k) => Number.isInteger(k) && k >= 0 && k < n)) fail(fn, 'data.indices', `a non-empty list of image rows in 0..${n - 1}`, indices);
  const f = p.autoencoder ? p.autoencoder.downsamplingFactor : 1;
  const channels = p.autoencoder ? p.autoencoder.config.inChannels : m!.config!.inChannels;
  if (d.imageSize / f !== m!.config!.sampleSize) fail(fn, 'data.imageSize', `${m!.config!.sampleSize * f} (model.config.sampleSize${p.autoencoder ? ` times the autoencoder's downsampling factor ${f}` : ''})`, d.imageSize);
  if (d.channels !== channels) fail(fn, 'data.channels', `${channels} (${p.autoencoder ? 'the autoencoder\'s inChannels' : 'model.config.inChannels'})`, d.channels);
  if (!isInt(p.steps, 1)) fail(fn, 'steps', 'an integer >= 1', p.steps);
  if (!isInt(p.batchSize, 1)) fail(fn, 'batchSize', 'an integer >= 1', p.batchSize);
  if (p.checkpointEvery !== undefined && !isInt(p.checkpointEvery, 1)) fail(fn, 'checkpointEvery', 'an integer >= 1', p.checkpointEvery);
  if (p.logEvery !== undefined && !isInt(p.logEvery, 1)) fail(fn, 'logEvery', 'an integer >= 1', p.logEvery);
  if (p.stopAfterStep !== undefined && !isInt(p.stopAfterStep, 0)) fail(fn, 'stopAfterStep', 'an integer >= 0', p.stopAfterStep);
  if (p.dataSeed !== undefined && !(isInt(p.dataSeed, 0) && p.dataSeed <= 0xffffffff)) fail(fn, 'dataSeed', 'an integer in [0, 2^32-1]', p.dataSeed);
  if (typeof p.dir !== 'string' || p.dir.length === 0) fail(fn, 'dir', 'a non-empty string (the run folder)', p.dir, TypeError);
  if (p.key !== undefined && (typeof p.key !== 'string' || p.key.length === 0)) fail(fn, 'key', 'a non-empty string', p.key, TypeError);
  if (p.trainer !== undefined && (p.trainer === null || typeof p.trainer !== 'object')) fail(fn, 'trainer', 'an object of DiffusionTrainer settings', p.trainer, TypeError);
  if (p.objectives !== undefined && !Array.isArray(p.objectives)) fail(fn, 'objectives', 'an array of TrainingObjective', typeof p.objectives, TypeError);
  const prefixes = new Set<string>(['model.', 'adam.', 'ema.']);
  (p.modules ?? []).forEach((x, i) => {
    if (!x || typeof x.prefix !== 'string' || !/^[a-z][a-z0-9_-]*\.$/i.test(x.prefix)) fail(fn, `modules[${i}].prefix`, 'a name ending in "." (e.g. "align.")', x?.prefix, TypeError);
    if (prefixes.has(x.prefix)) fail(fn, `modules[${i}].prefix`, 'a prefix not used by the checkpoint (model., adam., ema.) or another module', x.prefix);
    prefixes.add(x.prefix);
    if (!x.module || typeof x.module.stateDict !== 'function' || typeof x.module.loadStateDict !== 'function' || typeof x.module.namedParameters !== 'function') fail(fn, `modules[${i}].module`, 'a module with stateDict, loadStateDict and namedParameters', typeof x.module, TypeError);
  });
  for (const k of ['onLog', 'onStep', 'onProgress', 'modelMetadata'] as const) if (p[k] !== undefined && typeof p[k] !== 'function') fail(fn, k, 'a function', typeof p[k], TypeError);
  if (p.sink != null && typeof p.sink.addScalars !== 'function') fail(fn, 'sink', 'an object with addScalars (a TensorBoardWriter)', typeof p.sink, TypeError);
  if (p.signal != null && typeof p.signal.aborted !== 'boolean') fail(fn, 'signal', 'an object with a boolean aborted (an AbortSignal)', typeof p.signal, TypeError);
  (p.finalFiles ?? []).forEach((x, i) => {
    if (!x || typeof x.name !== 'string' || !/^[^/\\]+$/.test(x.name) || typeof x.bytes !== 'function') fail(fn, `finalFiles[${i}]`, 'a { name (a file name), what, bytes() }', x, TypeError);
  });
  return { indices: indices.slice() };
}

/** The default step key: the settings, the U-Net config and the training images and labels. */
function defaultKey(p: TrainDiffusionRunParams, indices: number[], dataSeed: number): string {
  const { trainer = {} } = p;
  const labels = Int32Array.from(p.data.labels);
  const data = sha256(new Uint8Array(p.data.images.buffer, p.data.images.byteOffset, p.data.images.byteLength)) + sha256(new Uint8Array(labels.buffer));
  return stepKey('train-diffusion', {
    steps: p.steps, batchSize: p.batchSize, trainer, unet: p.model.config, hflip: Boolean(p.hflip), vflip: Boolean(p.vflip), dataSeed, logEvery: p.logEvery ?? 10,
    objectives: (p.objectives ?? []).map((o) => o.name), modules: (p.modules ?? []).map((m) => m.prefix), extraState: p.extraState ?? null,
  }, { data: sha256(data), indices: sha256(stableStringify(indices)), ...(p.autoencoder ? { autoencoder: sha256(stableStringify(p.autoencoder.config)) } : {}) });
}

/**
 * Runs, resumes or reuses a diffusion training run in `params.dir` (see the file comment). The
 * caller owns the model, scheduler, modules, autoencoder and sink; the trainer is made and
 * disposed here.
 * @throws TypeError / RangeError for bad params (naming the field); ResumableStepError for a folder
 *   that cannot be used as asked; TrainingRunError `bad-checkpoint`, `non-finite` (training
 *   diverged: nothing non-finite is written) or `fs`; ModelFileError for a damaged checkpoint header.
 */
export async function trainDiffusionRun(params: TrainDiffusionRunParams): Promise<TrainDiffusionRunResult> {
  const { indices } = checkRunParams(params);
  const { model, data, dir, steps } = params;
  const modules = params.modules ?? [];
  const backend = params.backend ?? tf.getBackend();
  const dataSeed = params.dataSeed ?? (((params.trainer?.seed ?? 0) + 1) >>> 0);
  const key = params.key ?? defaultKey(params, indices, dataSeed);
  const checkpointEvery = params.checkpointEvery ?? 100;
  const logEvery = params.logEvery ?? 10;
  const log = params.onLog ?? (() => {});
  const checkpointPath = join(dir, DIFFUSION_RUN_FILES.checkpoint);
  const metricsPath = join(dir, DIFFUSION_RUN_FILES.metrics);
  const modelPath = join(dir, DIFFUSION_RUN_FILES.model);
  const prepared = params.prepared ?? prepareDiffusionRun({
    dir, key, resume: params.resume, force: params.force, steps, outputs: (params.finalFiles ?? []).map((f) => f.name), flags: params.flags, totalKey: params.totalKey, backend, onLog: log,
  });
  if (prepared.action === 'reuse') {
    log(`${dir} is already trained with this key (${key}); reusing it`);
    return { status: 'reused', dir, key, modelPath, steps, finalLoss: Number(prepared.marker.finalLoss), marker: prepared.marker };
  }
  const trainer = new DiffusionTrainer({
    ...params.trainer, model, scheduler: params.scheduler, objectives: params.objectives ?? [], ...(params.autoencoder ? { autoencoder: params.autoencoder } : {}),
  });
  try {
    const order = new DataOrder({ indices, seed: dataSeed });
    let window = emptyMetricsWindow();
    let step = 0;
    let elapsedBefore = 0;
    let lastLoss = NaN;
    const resumeFrom = prepared.action === 'resume' ? prepared.checkpoint : null;
    if (resumeFrom) {
      const { state, tensors } = resumeFrom;
      const ema = numberedTensors(tensors, 'ema.');
      loadCheckpointInto({
        where: `the training checkpoint ${checkpointPath}`, flags: params.flags,
        load: () => {
          model.loadStateDict(tensorsWithPrefix(tensors, 'model.'));
          for (const m of modules) m.module.loadStateDict(tensorsWithPrefix(tensors, m.prefix));
          trainer.setState({
            step: state.trainer.step,
            generator: state.trainer.generator,
            optimizer: { step: state.trainer.optimizerStep, m: numberedTensors(tensors, 'adam.m.'), v: numberedTensors(tensors, 'adam.v.') },
            ema: ema.length ? ema : null,
          });
          const train = new Set(indices);
          if (state.data.perm.some((k) => !train.has(k))) throw new Error('state.data.perm holds indices that are not training images');
        },
      });
      order.setState(state.data);
      window = state.window;
      step = state.step;
      elapsedBefore = state.elapsedSeconds;
      lastLoss = state.lastLoss;
      withRunFs(metricsPath, 'rewrite the metrics log', () => truncateMetricsLog(metricsPath, step));
      log(`resuming ${dir} at step ${step}/${steps}`);
    }
    const t0 = Date.now();
    const elapsed = () => elapsedBefore + (Date.now() - t0) / 1000;
    const outcome = await runTrainingLoop<TrainStepResult>({
      startStep: step, steps, metricsPath, window, logEvery, sink: params.sink, checkpointEvery, lastLoss, signal: params.signal, stopAfterStep: params.stopAfterStep,
      trainStep: () => {
        const idx = order.next(params.batchSize);
        const x0 = makeBatch({ images: data.images, imageSize: data.imageSize, channels: data.channels, indices: idx, order, hflip: params.hflip, vflip: params.vflip });
        try {
          return trainer.step({ x0, classLabels: Array.from(idx, (k) => data.labels[k]) });
        } finally {
          x0.dispose();
        }
      },
      writeCheckpoint: (s) => {
        const bytes = encodeDiffusionCheckpoint({
          key, step: s.step, model, modules, trainer, data: order.getState(), window: s.window, backend, extraState: params.extraState,
          elapsedSeconds: elapsed(), lastLoss: s.lastLoss, what: `the checkpoint ${checkpointPath}`,
        });
        withRunFs(checkpointPath, 'write the training checkpoint', () => writeFileAtomicSync(checkpointPath, bytes));
      },
      onStep: params.onStep ? (s) => params.onStep!({ step: s.step, result: s.result, trainer, model }) : undefined,
      onProgress: params.onProgress ? (s) => params.onProgress!({ step: s.step, steps, loss: s.result.loss, result: s.result }) : undefined,
    });
    if (outcome.status === 'interrupted') {
      return { status: 'interrupted', dir, key, checkpointPath, step: outcome.step, steps, lastLoss: outcome.lastLoss, reason: outcome.reason! };
    }
    step = outcome.step;
    lastLoss = outcome.lastLoss;
    // Final outputs: the EMA weights (what is sampled), the caller's files, then the completion marker.
    if (trainer.ema) trainer.copyEmaTo();
    const weights = trainer.ema ? 'ema' : 'raw';
    const meta = params.modelMetadata ? params.modelMetadata({ weights }) : { steps: String(steps), weights, backend, key };
    assertFiniteTraining({ modules: [model, ...modules.map((m) => m.module)], step, what: `the final model ${modelPath}` });
    // A latent model embeds its autoencoder, so that sampling needs the model file alone.
    const modelBytes = serializeUNet(model, { ...meta, [MODEL_STATUS_KEY]: 'complete' }, params.autoencoder ? { autoencoder: params.autoencoder } : {});
    withRunFs(modelPath, 'write the final model', () => writeFileAtomicSync(modelPath, modelBytes));
    for (const f of params.finalFiles ?? []) {
      const path = join(dir, f.name);
      const bytes = f.bytes();
      withRunFs(path, `write ${f.what}`, () => writeFileAtomicSync(path, bytes));
    }
    const elapsedSeconds = elapsed();
    withRunFs(join(dir, COMPLETE_FILE), 'write the completion marker', () =>
      writeCompleteMarker(dir, {
        step: params.stepName ?? 'train-diffusion', key, steps, finalLoss: lastLoss, backend, modelSha256: sha256(modelBytes), elapsedSeconds, resumed: resumeFrom !== null,
      }));
    return { status: 'finished', dir, key, modelPath, steps, finalLoss: lastLoss, resumed: resumeFrom !== null, elapsedSeconds };
  } finally {
    trainer.dispose();
  }
}
