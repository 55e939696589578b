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
import {
  type CheckpointedRunKind,
  type PrepareCheckpointedRunParams,
  prepareCheckpointedRun,
  type PreparedCheckpointedRun,
  type RunFolderOptions,
  runCheckpointedTraining,
} from './checkpointed-run';
import { makeBatch } from './data-order';
import { assertFiniteTraining } from './finite-training';
import type { ScalarSink } from './metrics-log';
import { failParam as fail, isIntAtLeast as isInt } from './param-check';
import { type CompleteMarker, sha256, stableStringify, stepKey } from './resumable-step';
import { checkRunImages, checkRunOptions, runImagesHash } from './run-params';
import { numberedTensors, tensorsWithPrefix } from './training-checkpoint';
import type { AbortFlag } from './training-loop';

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

/** Parameters of {@link trainAutoencoderRun} (the folder options: {@link RunFolderOptions}). */
export interface TrainAutoencoderRunParams extends RunFolderOptions {
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
  /** The folder's state as `prepareAutoencoderRun` found it (default: it is called here). */
  prepared?: PreparedAutoencoderRun;
  /** Files besides metrics.jsonl and autoencoder.safetensors that a finished run leaves (removed with `force`; the CLI: fidelity.json). */
  outputs?: readonly string[];
  /** After each step's checkpoint. */
  onProgress?: (p: { step: number; steps: number; loss: number; result: AutoencoderStepResult }) => void;
  /** The final model's metadata (default `{ steps, backend, key, scalingImages }`); `fad.status` is added. */
  modelMetadata?: (p: { scalingImages: number }) => Record<string, string>;
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
  const indices = checkRunImages(fn, d);
  const c = p.model.config;
  if (d.channels !== c.inChannels) fail(fn, 'data.channels', `${c.inChannels} (model.config.inChannels)`, d.channels);
  const f = p.model.downsamplingFactor;
  if (d.imageSize % f !== 0) fail(fn, 'data.imageSize', `divisible by the autoencoder's downsampling factor ${f}`, d.imageSize);
  if (p.scalingImages !== undefined && !isInt(p.scalingImages, 1)) fail(fn, 'scalingImages', 'an integer >= 1', p.scalingImages);
  checkRunOptions(fn, p, ['onLog', 'onProgress', 'modelMetadata'], 'AutoencoderTrainer');
  if ((p.trainer?.lossWeights?.perceptual ?? 0) > 0 && typeof p.perceptual !== 'function') fail(fn, 'perceptual', 'a feature function when trainer.lossWeights.perceptual > 0', typeof p.perceptual, TypeError);
  return { indices };
}

/** The default step key: the settings, the model config and the training images. */
function defaultKey(p: TrainAutoencoderRunParams, indices: number[], dataSeed: number): string {
  return stepKey('train-autoencoder', {
    steps: p.steps, batchSize: p.batchSize, trainer: p.trainer ?? {}, config: p.model.config, hflip: Boolean(p.hflip), vflip: Boolean(p.vflip), dataSeed,
    logEvery: p.logEvery ?? 10, scalingImages: p.scalingImages ?? 512, perceptual: Boolean(p.perceptual),
  }, { data: runImagesHash(p.data), indices: sha256(stableStringify(indices)) });
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
    const run = await runCheckpointedTraining<AutoencoderCheckpointState, AutoencoderStepResult>({
      kind: AUTOENCODER_RUN, dir, key, steps, backend, prepared, indices, dataSeed, checkpointEvery: params.checkpointEvery ?? 100, logEvery: params.logEvery ?? 10,
      sink: params.sink, signal: params.signal, stopAfterStep: params.stopAfterStep, log, flags: params.flags, stepName: params.stepName ?? 'train-autoencoder',
      restore: ({ state, tensors }) => {
        model.loadStateDict(tensorsWithPrefix(tensors, 'model.'));
        trainer.setState({ step: state.optimizerStep, generator: state.generator, optimizer: { step: state.optimizerStep, m: numberedTensors(tensors, 'adam.m.'), v: numberedTensors(tensors, 'adam.v.') } });
      },
      trainStep: (order) => {
        const x = makeBatch({ images: data.images, imageSize: data.imageSize, channels: data.channels, indices: order.next(params.batchSize), order, hflip: params.hflip, vflip: params.vflip });
        try {
          return trainer.step({ x });
        } finally {
          x.dispose();
        }
      },
      encodeCheckpoint: (s) => encodeAutoencoderCheckpoint({ key, model, trainer, backend, ...s }),
      onProgress: params.onProgress,
      finalModel: ({ step, path }) => {
        // The latent scaling factor 1/std(z) over (up to) scalingImages training images, posterior means.
        const scaleIdx = indices.slice(0, params.scalingImages ?? 512);
        const xs = gather(data, scaleIdx);
        try {
          model.setScalingFactor(computeScalingFactor({ model, images: xs }));
        } finally {
          xs.dispose();
        }
        const meta = params.modelMetadata ? params.modelMetadata({ scalingImages: scaleIdx.length }) : { steps: String(steps), backend, key, scalingImages: String(scaleIdx.length) };
        assertFiniteTraining({ modules: [model], step, what: `the final autoencoder ${path}` });
        return { bytes: serializeAutoencoder(model, { ...meta, [MODEL_STATUS_KEY]: 'complete' }), what: 'the final autoencoder' };
      },
    });
    if (run.status === 'interrupted') return { ...run, dir, key, steps };
    return { ...run, dir, key, modelPath, steps, scalingFactor: model.config.scalingFactor };
  } finally {
    trainer.dispose();
  }
}
