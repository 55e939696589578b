/**
 * A resumable autoencoder training run into a folder (Node only: part of `@fad/diffusion-core/node`):
 * what `fad autoencoder train` does before its fidelity check, as a library function taking plain
 * params. It trains an `AutoencoderKL` with `AutoencoderTrainer`, then measures the latent scaling
 * factor (1 / std of the posterior means over up to `scalingImages` training images) and stores it
 * in the model's config. The folder holds
 *
 * - `autoencoder-checkpoint.safetensors`: the resumable state (see autoencoder-checkpoint.ts),
 *   written every `checkpointEvery` steps, at the end, and when the run is aborted;
 * - `metrics.jsonl`: one JSON line per `logEvery` steps (see metrics-log.ts): loss, terms (`l1`,
 *   `ssim`, `kl`[, `perceptual`]), lr, gradNorm;
 * - `autoencoder.safetensors`: the trained autoencoder with its scaling factor, `fad.status: complete`;
 * - `complete.json`: written last, holding the run's key; the run is complete only when it exists.
 *
 * A folder with a finished run of the same key is reused; a checkpoint is resumed with `resume`
 * (`prepareAutoencoderRun` decides), and a resumed run ends with the same weights as an
 * uninterrupted one on the same backend. The loop (metrics, checkpoint cadence, abort) is
 * `runTrainingLoop`'s, shared with the diffusion run.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  type AutoencoderKL,
  AutoencoderTrainer,
  type AutoencoderStepResult,
  type AutoencoderTrainerParams,
  computeScalingFactor,
  MODEL_STATUS_KEY,
  serializeAutoencoder,
} from '@fad/diffusion-core';
import { type AutoencoderCheckpointState, encodeAutoencoderCheckpoint, readAutoencoderCheckpoint } from './autoencoder-checkpoint';
import { DataOrder, makeBatch } from './data-order';
import { assertFiniteTraining } from './finite-training';
import { emptyMetricsWindow, type ScalarSink } from './metrics-log';
import { failParam as fail, isIntAtLeast as isInt } from './param-check';
import { type CheckpointedRunKind, type PrepareCheckpointedRunParams, prepareCheckpointedRun, type PreparedCheckpointedRun } from './prepare-checkpointed-run';
import { loadCheckpointInto } from './read-training-checkpoint';
import { COMPLETE_FILE, type CompleteMarker, sha256, stableStringify, stepKey, writeCompleteMarker } from './resumable-step';
import { numberedTensors, tensorsWithPrefix, truncateMetricsLog } from './training-checkpoint';
import { type AbortFlag, runTrainingLoop } from './training-loop';
import { withRunFs } from './training-run-error';
import { writeFileAtomicSync } from './write-file-atomic';

/** The file names of an autoencoder run folder. */
export const AUTOENCODER_RUN_FILES = { checkpoint: 'autoencoder-checkpoint.safetensors', metrics: 'metrics.jsonl', model: 'autoencoder.safetensors' } as const;

/** Parameters of {@link prepareAutoencoderRun} (`outputs`: files besides metrics.jsonl and autoencoder.safetensors). */
export type PrepareAutoencoderRunParams = PrepareCheckpointedRunParams;

/** What {@link prepareAutoencoderRun} decided. */
export type PreparedAutoencoderRun = PreparedCheckpointedRun<AutoencoderCheckpointState>;

const AUTOENCODER_RUN: CheckpointedRunKind<AutoencoderCheckpointState> = {
  fn: 'prepareAutoencoderRun',
  files: AUTOENCODER_RUN_FILES,
  describe: { finished: 'a finished autoencoder run', unfinished: 'a checkpoint of an unfinished autoencoder run' },
  checkpointWhat: 'the autoencoder checkpoint',
  read: readAutoencoderCheckpoint,
};

/**
 * Decides whether an autoencoder run folder is reused, resumed or started (and reads and checks
 * the checkpoint to resume; a metrics log of an earlier start is removed).
 * @throws ResumableStepError (a finished run with another key, a checkpoint without `resume`, a
 *   checkpoint of another key), ModelFileError / TrainingRunError `bad-checkpoint` (a damaged
 *   checkpoint), TrainingRunError `fs`.
 */
export function prepareAutoencoderRun(p: PrepareAutoencoderRunParams): PreparedAutoencoderRun {
  return prepareCheckpointedRun(AUTOENCODER_RUN, p);
}

/** The training images of an autoencoder run. */
export interface AutoencoderRunData {
  /** [N, S, S, C] in [0, 1], row-major. */
  images: Float32Array;
  imageSize: number;
  channels: number;
  /** The rows to train on and to measure the scaling factor on (default all). */
  indices?: readonly number[];
}

/** Parameters of {@link trainAutoencoderRun}. */
export interface TrainAutoencoderRunParams {
  /** The autoencoder to train (the caller owns and disposes it; on resume its weights are replaced; its scaling factor is set at the end). */
  model: AutoencoderKL;
  data: AutoencoderRunData;
  /** Total optimizer steps. */
  steps: number;
  batchSize: number;
  /**
   * The trainer's settings as `AutoencoderTrainer` takes them (learning rate and schedule, clipping,
   * loss weights, seed, ...). `ssim` defaults to the trainer's (Gaussian 11x11), or to a uniform 3x3
   * window for images under 11 pixels.
   */
  trainer?: Omit<AutoencoderTrainerParams, 'model' | 'perceptual'>;
  /** The frozen feature function of the perceptual term (needed when `trainer.lossWeights.perceptual` > 0). */
  perceptual?: AutoencoderTrainerParams['perceptual'];
  /** Training images (the first of `data.indices`) the scaling factor is measured on (default 512). */
  scalingImages?: number;
  /** Random horizontal / vertical flips of the training images. */
  hflip?: boolean;
  vflip?: boolean;
  /** Seed of the data order and flips (default trainer seed + 1). */
  dataSeed?: number;
  /** The run folder. */
  dir: string;
  /**
   * The step key: what determines the result. A folder holding a finished run of this key is
   * reused; a checkpoint of another key is refused. Default: a hash of the settings, the model
   * config and the training images.
   */
  key?: string;
  resume?: boolean;
  force?: boolean;
  /** The folder's state as `prepareAutoencoderRun` found it (default: it is called here). */
  prepared?: PreparedAutoencoderRun;
  /** Files besides metrics.jsonl and autoencoder.safetensors that a finished run leaves (removed with `force`; the CLI: fidelity.json). */
  outputs?: readonly string[];
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
  /** After each step's checkpoint. */
  onProgress?: (p: { step: number; steps: number; loss: number; result: AutoencoderStepResult }) => void;
  /** The final model's metadata (default `{ steps, backend, key, scalingImages }`); `fad.status` is added. */
  modelMetadata?: (p: { scalingImages: number }) => Record<string, string>;
  /** `flags` and `totalKey` of {@link PrepareAutoencoderRunParams}, for messages. */
  flags?: { force?: string; resume?: string };
  totalKey?: string;
  /** The step name in complete.json (default "train-autoencoder"). */
  stepName?: string;
}

/** What {@link trainAutoencoderRun} returns. */
export type TrainAutoencoderRunResult =
  | { status: 'reused'; dir: string; key: string; modelPath: string; steps: number; finalLoss: number; marker: CompleteMarker }
  | { status: 'finished'; dir: string; key: string; modelPath: string; steps: number; finalLoss: number; resumed: boolean; elapsedSeconds: number; scalingFactor: number }
  | { status: 'interrupted'; dir: string; key: string; checkpointPath: string; step: number; steps: number; lastLoss: number; reason: 'signal' | 'stop-after-step' };

function checkRunParams(p: TrainAutoencoderRunParams): { indices: number[] } {
  const fn = 'trainAutoencoderRun';
  if (p === null || typeof p !== 'object') fail(fn, 'params', 'one params object', p, TypeError);
  const m = p.model as Partial<AutoencoderKL> | undefined;
  if (!m || typeof m !== 'object' || typeof m.encode !== 'function' || typeof m.stateDict !== 'function' || typeof m.setScalingFactor !== 'function' || !m.config) fail(fn, 'model', 'an AutoencoderKL', typeof m, TypeError);
  const d = p.data;
  if (!d || typeof d !== 'object') fail(fn, 'data', 'an object { images, imageSize, channels }', typeof d, TypeError);
  if (!(d.images instanceof Float32Array)) fail(fn, 'data.images', 'a Float32Array [N, S, S, C] in [0, 1]', typeof d.images, TypeError);
  if (!isInt(d.imageSize, 1)) fail(fn, 'data.imageSize', 'an integer >= 1', d.imageSize);
  if (!isInt(d.channels, 1)) fail(fn, 'data.channels', 'an integer >= 1', d.channels);
  const per = d.imageSize * d.imageSize * d.channels;
  const n = d.images.length / per;
  if (!Number.isInteger(n) || n < 1) fail(fn, 'data.images.length', `a positive multiple of imageSize*imageSize*channels (${per})`, d.images.length);
  const indices = d.indices === undefined ? Array.from({ length: n }, (_, i) => i) : d.indices;
  if (!Array.isArray(indices) || indices.length === 0 || !indices.every((k) => Number.isInteger(k) && k >= 0 && k < n)) fail(fn, 'data.indices', `a non-empty list of image rows in 0..${n - 1}`, indices);
  const c = p.model.config;
  if (d.channels !== c.inChannels) fail(fn, 'data.channels', `${c.inChannels} (model.config.inChannels)`, d.channels);
  const f = p.model.downsamplingFactor;
  if (d.imageSize % f !== 0) fail(fn, 'data.imageSize', `divisible by the autoencoder's downsampling factor ${f}`, d.imageSize);
  if (!isInt(p.steps, 1)) fail(fn, 'steps', 'an integer >= 1', p.steps);
  if (!isInt(p.batchSize, 1)) fail(fn, 'batchSize', 'an integer >= 1', p.batchSize);
  if (p.scalingImages !== undefined && !isInt(p.scalingImages, 1)) fail(fn, 'scalingImages', 'an integer >= 1', p.scalingImages);
  if (p.checkpointEvery !== undefined && !isInt(p.checkpointEvery, 1)) fail(fn, 'checkpointEvery', 'an integer >= 1', p.checkpointEvery);
  if (p.logEvery !== undefined && !isInt(p.logEvery, 1)) fail(fn, 'logEvery', 'an integer >= 1', p.logEvery);
  if (p.stopAfterStep !== undefined && !isInt(p.stopAfterStep, 0)) fail(fn, 'stopAfterStep', 'an integer >= 0', p.stopAfterStep);
  if (p.dataSeed !== undefined && !(isInt(p.dataSeed, 0) && p.dataSeed <= 0xffffffff)) fail(fn, 'dataSeed', 'an integer in [0, 2^32-1]', p.dataSeed);
  if (typeof p.dir !== 'string' || p.dir.length === 0) fail(fn, 'dir', 'a non-empty string (the run folder)', p.dir, TypeError);
  if (p.key !== undefined && (typeof p.key !== 'string' || p.key.length === 0)) fail(fn, 'key', 'a non-empty string', p.key, TypeError);
  if (p.trainer !== undefined && (p.trainer === null || typeof p.trainer !== 'object')) fail(fn, 'trainer', 'an object of AutoencoderTrainer settings', p.trainer, TypeError);
  if ((p.trainer?.lossWeights?.perceptual ?? 0) > 0 && typeof p.perceptual !== 'function') fail(fn, 'perceptual', 'a feature function when trainer.lossWeights.perceptual > 0', typeof p.perceptual, TypeError);
  for (const k of ['onLog', 'onProgress', 'modelMetadata'] as const) if (p[k] !== undefined && typeof p[k] !== 'function') fail(fn, k, 'a function', typeof p[k], TypeError);
  if (p.sink != null && typeof p.sink.addScalars !== 'function') fail(fn, 'sink', 'an object with addScalars (a TensorBoardWriter)', typeof p.sink, TypeError);
  if (p.signal != null && typeof p.signal.aborted !== 'boolean') fail(fn, 'signal', 'an object with a boolean aborted (an AbortSignal)', typeof p.signal, TypeError);
  return { indices: indices.slice() };
}

/** The default step key: the settings, the model config and the training images. */
function defaultKey(p: TrainAutoencoderRunParams, indices: number[], dataSeed: number): string {
  const images = sha256(new Uint8Array(p.data.images.buffer, p.data.images.byteOffset, p.data.images.byteLength));
  return stepKey('train-autoencoder', {
    steps: p.steps, batchSize: p.batchSize, trainer: p.trainer ?? {}, config: p.model.config, hflip: Boolean(p.hflip), vflip: Boolean(p.vflip), dataSeed,
    logEvery: p.logEvery ?? 10, scalingImages: p.scalingImages ?? 512, perceptual: Boolean(p.perceptual),
  }, { data: images, indices: sha256(stableStringify(indices)) });
}

/** Rows `indices` of images [N,S,S,C] in [0, 1] as a tensor in [-1, 1]. */
function gather(data: AutoencoderRunData, indices: readonly number[]): tf.Tensor4D {
  const per = data.imageSize * data.imageSize * data.channels;
  const out = new Float32Array(indices.length * per);
  indices.forEach((k, i) => {
    const src = data.images.subarray(k * per, (k + 1) * per);
    for (let j = 0; j < per; j++) out[i * per + j] = src[j] * 2 - 1;
  });
  return tf.tensor4d(out, [indices.length, data.imageSize, data.imageSize, data.channels]);
}

/**
 * Runs, resumes or reuses an autoencoder training run in `params.dir` (see the file comment). The
 * caller owns the model and the sink; the trainer is made and disposed here.
 * @throws TypeError / RangeError for bad params (naming the field); ResumableStepError for a folder
 *   that cannot be used as asked; TrainingRunError `bad-checkpoint`, `non-finite` (training
 *   diverged: nothing non-finite is written) or `fs`; ModelFileError for a damaged checkpoint header.
 */
export async function trainAutoencoderRun(params: TrainAutoencoderRunParams): Promise<TrainAutoencoderRunResult> {
  const { indices } = checkRunParams(params);
  const { model, data, dir, steps } = params;
  const backend = params.backend ?? tf.getBackend();
  const dataSeed = params.dataSeed ?? (((params.trainer?.seed ?? 0) + 1) >>> 0);
  const key = params.key ?? defaultKey(params, indices, dataSeed);
  const log = params.onLog ?? (() => {});
  const checkpointPath = join(dir, AUTOENCODER_RUN_FILES.checkpoint);
  const metricsPath = join(dir, AUTOENCODER_RUN_FILES.metrics);
  const modelPath = join(dir, AUTOENCODER_RUN_FILES.model);
  const prepared = params.prepared ?? prepareAutoencoderRun({
    dir, key, resume: params.resume, force: params.force, steps, outputs: params.outputs, flags: params.flags, totalKey: params.totalKey, backend, onLog: log,
  });
  if (prepared.action === 'reuse') {
    log(`${dir} is already trained with this key (${key}); reusing it`);
    return { status: 'reused', dir, key, modelPath, steps, finalLoss: Number(prepared.marker.finalLoss), marker: prepared.marker };
  }
  const trainer = new AutoencoderTrainer({
    ...(data.imageSize < 11 ? { ssim: { window: 'uniform' as const, winSize: 3 } } : {}),
    ...params.trainer, model, ...(params.perceptual ? { perceptual: params.perceptual } : {}),
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
      loadCheckpointInto({
        where: `the autoencoder checkpoint ${checkpointPath}`, flags: params.flags,
        load: () => {
          model.loadStateDict(tensorsWithPrefix(tensors, 'model.'));
          trainer.setState({ step: state.optimizerStep, generator: state.generator, optimizer: { step: state.optimizerStep, m: numberedTensors(tensors, 'adam.m.'), v: numberedTensors(tensors, 'adam.v.') } });
          order.setState(state.data);
        },
      });
      window = state.window;
      step = state.step;
      elapsedBefore = state.elapsedSeconds;
      lastLoss = state.lastLoss;
      withRunFs(metricsPath, 'rewrite the metrics log', () => truncateMetricsLog(metricsPath, step));
      log(`resuming ${dir} at step ${step}/${steps}`);
    }
    const t0 = Date.now();
    const elapsed = () => elapsedBefore + (Date.now() - t0) / 1000;
    const outcome = await runTrainingLoop<AutoencoderStepResult>({
      startStep: step, steps, metricsPath, window, logEvery: params.logEvery ?? 10, sink: params.sink, checkpointEvery: params.checkpointEvery ?? 100, lastLoss,
      signal: params.signal, stopAfterStep: params.stopAfterStep,
      trainStep: () => {
        const idx = order.next(params.batchSize);
        const x = makeBatch({ images: data.images, imageSize: data.imageSize, channels: data.channels, indices: idx, order, hflip: params.hflip, vflip: params.vflip });
        try {
          return trainer.step({ x });
        } finally {
          x.dispose();
        }
      },
      writeCheckpoint: (s) => {
        const bytes = encodeAutoencoderCheckpoint({
          key, step: s.step, model, trainer, data: order.getState(), window: s.window, backend, elapsedSeconds: elapsed(), lastLoss: s.lastLoss, what: `the checkpoint ${checkpointPath}`,
        });
        withRunFs(checkpointPath, 'write the training checkpoint', () => writeFileAtomicSync(checkpointPath, bytes));
      },
      onProgress: params.onProgress ? (s) => params.onProgress!({ step: s.step, steps, loss: s.result.loss, result: s.result }) : undefined,
    });
    if (outcome.status === 'interrupted') {
      return { status: 'interrupted', dir, key, checkpointPath, step: outcome.step, steps, lastLoss: outcome.lastLoss, reason: outcome.reason! };
    }
    step = outcome.step;
    lastLoss = outcome.lastLoss;
    // The latent scaling factor 1/std(z) over (up to) scalingImages training images, posterior means.
    const scaleIdx = indices.slice(0, params.scalingImages ?? 512);
    const xs = gather(data, scaleIdx);
    try {
      model.setScalingFactor(computeScalingFactor({ model, images: xs }));
    } finally {
      xs.dispose();
    }
    const meta = params.modelMetadata ? params.modelMetadata({ scalingImages: scaleIdx.length }) : { steps: String(steps), backend, key, scalingImages: String(scaleIdx.length) };
    assertFiniteTraining({ modules: [model], step, what: `the final autoencoder ${modelPath}` });
    const modelBytes = serializeAutoencoder(model, { ...meta, [MODEL_STATUS_KEY]: 'complete' });
    withRunFs(modelPath, 'write the final autoencoder', () => writeFileAtomicSync(modelPath, modelBytes));
    const elapsedSeconds = elapsed();
    withRunFs(join(dir, COMPLETE_FILE), 'write the completion marker', () =>
      writeCompleteMarker(dir, {
        step: params.stepName ?? 'train-autoencoder', key, steps, finalLoss: lastLoss, backend, modelSha256: sha256(modelBytes), elapsedSeconds, resumed: resumeFrom !== null,
      }));
    return { status: 'finished', dir, key, modelPath, steps, finalLoss: lastLoss, resumed: resumeFrom !== null, elapsedSeconds, scalingFactor: model.config.scalingFactor };
  } finally {
    trainer.dispose();
  }
}
