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
import { makeBatch } from './data-order';
import { type CheckpointModule, type DiffusionCheckpointState, encodeDiffusionCheckpoint, readDiffusionCheckpoint } from './diffusion-checkpoint';
import { assertFiniteTraining } from './finite-training';
import type { ScalarSink } from './metrics-log';
import {
  type CheckpointedRunKind,
  type PrepareCheckpointedRunParams,
  prepareCheckpointedRun,
  type PreparedCheckpointedRun,
  type RunFinalFile,
  type RunFolderOptions,
  runCheckpointedTraining,
} from './checkpointed-run';
import { type CompleteMarker, sha256, stableStringify, stepKey } from './resumable-step';
import { numberedTensors, tensorsWithPrefix } from './training-checkpoint';
import type { AbortFlag } from './training-loop';
import { failParam as fail } from './param-check';
import { checkRunImages, checkRunOptions, runImagesHash } from './run-params';

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
export type DiffusionRunFinalFile = RunFinalFile;

/** Parameters of {@link trainDiffusionRun} (the folder options: {@link RunFolderOptions}). */
export interface TrainDiffusionRunParams extends RunFolderOptions {
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
  /** The folder's state as `prepareDiffusionRun` found it (default: it is called here). */
  prepared?: PreparedDiffusionRun;
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
  const indices = checkRunImages(fn, d, m!.config!.numClasses);
  const f = p.autoencoder ? p.autoencoder.downsamplingFactor : 1;
  const channels = p.autoencoder ? p.autoencoder.config.inChannels : m!.config!.inChannels;
  if (d.imageSize / f !== m!.config!.sampleSize) fail(fn, 'data.imageSize', `${m!.config!.sampleSize * f} (model.config.sampleSize${p.autoencoder ? ` times the autoencoder's downsampling factor ${f}` : ''})`, d.imageSize);
  if (d.channels !== channels) fail(fn, 'data.channels', `${channels} (${p.autoencoder ? 'the autoencoder\'s inChannels' : 'model.config.inChannels'})`, d.channels);
  checkRunOptions(fn, p, ['onLog', 'onStep', 'onProgress', 'modelMetadata'], 'DiffusionTrainer');
  if (p.objectives !== undefined && !Array.isArray(p.objectives)) fail(fn, 'objectives', 'an array of TrainingObjective', typeof p.objectives, TypeError);
  const prefixes = new Set<string>(['model.', 'adam.', 'ema.']);
  (p.modules ?? []).forEach((x, i) => {
    if (!x || typeof x.prefix !== 'string' || !/^[a-z][a-z0-9_-]*\.$/i.test(x.prefix)) fail(fn, `modules[${i}].prefix`, 'a name ending in "." (e.g. "align.")', x?.prefix, TypeError);
    if (prefixes.has(x.prefix)) fail(fn, `modules[${i}].prefix`, 'a prefix not used by the checkpoint (model., adam., ema.) or another module', x.prefix);
    prefixes.add(x.prefix);
    if (!x.module || typeof x.module.stateDict !== 'function' || typeof x.module.loadStateDict !== 'function' || typeof x.module.namedParameters !== 'function') fail(fn, `modules[${i}].module`, 'a module with stateDict, loadStateDict and namedParameters', typeof x.module, TypeError);
  });
  (p.finalFiles ?? []).forEach((x, i) => {
    if (!x || typeof x.name !== 'string' || !/^[^/\\]+$/.test(x.name) || typeof x.bytes !== 'function') fail(fn, `finalFiles[${i}]`, 'a { name (a file name), what, bytes() }', x, TypeError);
  });
  return { indices };
}

/** The default step key: the settings, the U-Net config and the training images and labels. */
function defaultKey(p: TrainDiffusionRunParams, indices: number[], dataSeed: number): string {
  const { trainer = {} } = p;
  return stepKey('train-diffusion', {
    steps: p.steps, batchSize: p.batchSize, trainer, unet: p.model.config, hflip: Boolean(p.hflip), vflip: Boolean(p.vflip), dataSeed, logEvery: p.logEvery ?? 10,
    objectives: (p.objectives ?? []).map((o) => o.name), modules: (p.modules ?? []).map((m) => m.prefix), extraState: p.extraState ?? null,
  }, { data: runImagesHash(p.data), indices: sha256(stableStringify(indices)), ...(p.autoencoder ? { autoencoder: sha256(stableStringify(p.autoencoder.config)) } : {}) });
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
    const run = await runCheckpointedTraining<DiffusionCheckpointState, TrainStepResult>({
      kind: DIFFUSION_RUN, dir, key, steps, backend, prepared, indices, dataSeed, checkpointEvery, logEvery, sink: params.sink, signal: params.signal,
      stopAfterStep: params.stopAfterStep, log, flags: params.flags, stepName: params.stepName ?? 'train-diffusion', finalFiles: params.finalFiles,
      restore: ({ state, tensors }) => {
        const ema = numberedTensors(tensors, 'ema.');
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
      trainStep: (order) => {
        const idx = order.next(params.batchSize);
        const x0 = makeBatch({ images: data.images, imageSize: data.imageSize, channels: data.channels, indices: idx, order, hflip: params.hflip, vflip: params.vflip });
        try {
          return trainer.step({ x0, classLabels: Array.from(idx, (k) => data.labels[k]) });
        } finally {
          x0.dispose();
        }
      },
      encodeCheckpoint: (s) => encodeDiffusionCheckpoint({ key, model, modules, trainer, backend, extraState: params.extraState, ...s }),
      onStep: params.onStep ? (s) => params.onStep!({ step: s.step, result: s.result, trainer, model }) : undefined,
      onProgress: params.onProgress,
      finalModel: ({ step, path }) => {
        // The EMA weights (what is sampled); a latent model embeds its autoencoder, so that sampling needs the model file alone.
        if (trainer.ema) trainer.copyEmaTo();
        const weights = trainer.ema ? 'ema' : 'raw';
        const meta = params.modelMetadata ? params.modelMetadata({ weights }) : { steps: String(steps), weights, backend, key };
        assertFiniteTraining({ modules: [model, ...modules.map((m) => m.module)], step, what: `the final model ${path}` });
        return { bytes: serializeUNet(model, { ...meta, [MODEL_STATUS_KEY]: 'complete' }, params.autoencoder ? { autoencoder: params.autoencoder } : {}), what: 'the final model' };
      },
    });
    if (run.status === 'interrupted') return { ...run, dir, key, steps };
    return { ...run, dir, key, modelPath, steps };
  } finally {
    trainer.dispose();
  }
}
