/**
 * A DreamBooth fine-tuning run into a folder (Node only: part of `@fad/diffusion-core/node`): what
 * `fad train --dreambooth` and the `fad` experiment's DreamBooth arms do, as a library function
 * taking plain params. A trained class-conditional pixel U-Net is fine-tuned on `instanceImages`
 * training images of one class (`chooseInstances`), bound to a new identifier token initialised
 * from the class's embedding (`addConditioningToken`), with prior preservation on class images the
 * model generated before fine-tuning (`dreamBoothClassImages`; loss `mse(instance) + priorLossWeight
 * * mse(prior)`, `DreamBoothTrainer`). Extra objectives (the CLI's feature alignment) apply to the
 * whole batch, the instance and the prior images alike. The folder holds
 *
 * - `instances.json`: `{ class, token, indices, seed }`, the data rows used as instance images;
 * - `metrics.jsonl`: one JSON line per `logEvery` steps (see metrics-log.ts): loss, terms
 *   (`diffusion`, `diffusion.instance`, `diffusion.prior`, the objectives'), lr, gradNorm;
 * - `model.safetensors`: the fine-tuned weights with the token (the EMA weights when EMA is on),
 *   `fad.status: complete`;
 * - `complete.json`: written last, holding the run's key (a finished run with the same key is reused).
 *
 * DreamBooth runs are short and not resumable: an aborted run returns `interrupted`, and the next
 * one starts over.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  addConditioningToken,
  DreamBoothTrainer,
  type DreamBoothTrainerParams,
  MODEL_STATUS_KEY,
  serializeUNet,
  type TrainingObjective,
  type TrainStepResult,
  type UNet2DConditional,
} from '@fad/diffusion-core';
import { DataOrder, makeBatch } from './data-order';
import type { DiffusionRunData } from './diffusion-training-run';
import { type DreamBoothPriorSettings, dreamBoothClassImages } from './dreambooth-class-images';
import { chooseInstances } from './dreambooth-instances';
import { assertFiniteTraining, type NamedParametersModule } from './finite-training';
import { emptyMetricsWindow, logTrainingStep, type ScalarSink } from './metrics-log';
import { failParam as fail, isIntAtLeast as isInt } from './param-check';
import { checkRunImages, checkRunOptions, runImagesHash } from './run-params';
import { COMPLETE_FILE, type CompleteMarker, prepareResumableStep, ResumableStepError, sha256, stableStringify, stepKey, writeCompleteMarker } from './resumable-step';
import type { AbortFlag } from './training-loop';
import { withRunFs } from './training-run-error';
import { writeFileAtomicSync } from './write-file-atomic';

/** The file names of a DreamBooth run folder (`classImages`: the default cache of the class images). */
export const DREAMBOOTH_RUN_FILES = { model: 'model.safetensors', metrics: 'metrics.jsonl', instances: 'instances.json', classImages: 'class-images.safetensors' } as const;

/** Parameters of {@link prepareDreamBoothRun}. */
export interface PrepareDreamBoothRunParams {
  /** The run folder (created if missing). */
  dir: string;
  /** The run's step key. */
  key: string;
  /** Start over even if the folder holds a finished run of this key. */
  force?: boolean;
  /** Start over, instead of refusing, when the folder holds a finished run of another key. */
  replaceStale?: boolean;
  /** Files besides model.safetensors, metrics.jsonl and instances.json that a run leaves (removed on a start). */
  outputs?: readonly string[];
  /** How messages name `force` (the CLI: `--force`). */
  flags?: { force?: string; resume?: string };
}

/** What {@link prepareDreamBoothRun} decided. */
export type PreparedDreamBoothRun = { action: 'reuse'; marker: CompleteMarker } | { action: 'start' };

/**
 * Decides whether a DreamBooth run folder is reused or started; a start removes the completion
 * marker and the outputs of an earlier run.
 * @throws ResumableStepError `finished-with-other-key` (without `force` or `replaceStale`);
 *   TrainingRunError `fs`.
 */
export function prepareDreamBoothRun(p: PrepareDreamBoothRunParams): PreparedDreamBoothRun {
  const fn = 'prepareDreamBoothRun';
  if (p === null || typeof p !== 'object') fail(fn, 'params', 'one params object', p, TypeError);
  if (typeof p.dir !== 'string' || p.dir.length === 0) fail(fn, 'dir', 'a non-empty string (the run folder)', p.dir, TypeError);
  if (typeof p.key !== 'string' || p.key.length === 0) fail(fn, 'key', 'a non-empty string (the run\'s step key)', p.key, TypeError);
  for (const k of ['force', 'replaceStale'] as const) if (p[k] !== undefined && typeof p[k] !== 'boolean') fail(fn, k, 'a boolean', p[k], TypeError);
  const { dir, key } = p;
  const outputs = [DREAMBOOTH_RUN_FILES.model, DREAMBOOTH_RUN_FILES.metrics, DREAMBOOTH_RUN_FILES.instances, ...(p.outputs ?? [])];
  let prepared: PreparedDreamBoothRun;
  try {
    prepared = withRunFs(dir, 'prepare the output folder', () => prepareResumableStep({
      dir, key, resume: false, force: p.force ?? false, outputs, describe: { finished: 'a finished DreamBooth run', inputs: 'inputs' }, flags: p.flags,
    })) as PreparedDreamBoothRun;
  } catch (e) {
    // A finished run of another key is replaced when the caller says so (replaceStale).
    if (!p.replaceStale || !(e instanceof ResumableStepError)) throw e;
    prepared = { action: 'start' };
  }
  if (prepared.action === 'start') for (const f of [COMPLETE_FILE, ...outputs]) rmSync(join(dir, f), { force: true });
  return prepared;
}

/** The training images of a DreamBooth run (the instance images are chosen from `indices`): what `loadImageFolder` returns fits. */
export type DreamBoothRunData = DiffusionRunData;

/** Parameters of {@link trainDreamBoothRun}. */
export interface TrainDreamBoothRunParams {
  /** The trained pixel U-Net to fine-tune; not changed (the run trains a copy with the token). The caller owns it. */
  model: UNet2DConditional;
  /** The noise schedule the model was trained with (a `DDPMScheduler`). */
  scheduler: DreamBoothTrainerParams['scheduler'];
  data: DreamBoothRunData;
  /** The class to fine-tune on. */
  classLabel: number;
  /** The model's class names: stored in the model file (metadata `classes`) and naming the class. */
  classNames?: readonly string[];
  /** The identifier token's name (not yet a token of the model). */
  token: string;
  /** How many of the class's images to fine-tune on. */
  instanceImages: number;
  /** Seed of the instance choice, the trainer, the data orders and the class images (default 0). */
  seed?: number;
  /** Total optimizer steps. */
  steps: number;
  /** Instance images per step (as many prior images join them). */
  batchSize: number;
  /**
   * The trainer's settings as `DreamBoothTrainer` takes them (prior loss weight, which embeddings
   * train, learning rate and schedule, EMA, clipping, label dropout, micro-batches, ...); model,
   * scheduler, token, seed and objectives are the params here.
   */
  trainer?: Omit<DreamBoothTrainerParams, 'model' | 'scheduler' | 'token' | 'objectives' | 'seed'>;
  /** Extra loss terms (e.g. feature alignment), over the whole batch. */
  objectives?: TrainingObjective[];
  /** The objectives' trainable modules: checked for finite weights before the model is written. */
  modules?: ReadonlyArray<NamedParametersModule>;
  /** Prior preservation: how the class images are sampled (null: none). */
  prior?: DreamBoothPriorSettings | null;
  /** Identifies `model` in the keys (the model file's sha256; default the sha256 of `serializeUNet(model)`). */
  modelSha256?: string;
  /** Random horizontal / vertical flips of the instance images. */
  hflip?: boolean;
  vflip?: boolean;
  /** The run folder. */
  dir: string;
  /**
   * The step key: a folder holding a finished run of this key is reused. Default: a hash of the
   * settings, the model and the training images.
   */
  key?: string;
  force?: boolean;
  replaceStale?: boolean;
  /** The folder's state as `prepareDreamBoothRun` found it (default: it is called here). */
  prepared?: PreparedDreamBoothRun;
  /** Files besides the run's own that an earlier run left (removed on a start). */
  outputs?: readonly string[];
  /** A metrics line every this many steps (default 10; always at the end). */
  logEvery?: number;
  /** Recorded in the outputs (default `tf.getBackend()`). */
  backend?: string;
  /** Also gets the metrics lines' scalars (a TensorBoard writer of `@fad/metrics/node` fits). */
  sink?: ScalarSink | null;
  /** Checked after each class-images batch and each step: when aborted, the run returns `interrupted`. */
  signal?: AbortFlag | null;
  /** Messages: reusing the run or the class images. */
  onLog?: (message: string) => void;
  /** Class images done, from 0, when they are sampled (not when read from the cache). */
  onClassImages?: (p: { done: number; total: number }) => void;
  /** Before the first step: the instance rows, the token's label, the number of prior images. */
  onStart?: (p: { instances: number[]; tokenLabel: number; priorImages: number }) => void;
  /** After each step. */
  onProgress?: (p: { step: number; steps: number; loss: number; result: TrainStepResult }) => void;
  /**
   * The final model's metadata (default `{ classes, dreambooth, steps, weights, backend, key }`,
   * `dreambooth` being `{ class, classLabel, token, tokenLabel }`); `fad.status` is added.
   */
  modelMetadata?: (p: { tokenLabel: number; weights: 'ema' | 'raw' }) => Record<string, string>;
  /** How messages name `force`. */
  flags?: { force?: string; resume?: string };
  /** The step name in complete.json (default "train-dreambooth"). */
  stepName?: string;
}

/** What {@link trainDreamBoothRun} returns. */
export type TrainDreamBoothRunResult =
  | { status: 'reused'; dir: string; key: string; modelPath: string; steps: number; finalLoss: number; marker: CompleteMarker }
  | { status: 'finished'; dir: string; key: string; modelPath: string; steps: number; finalLoss: number; tokenLabel: number; instances: number[]; elapsedSeconds: number }
  | { status: 'interrupted'; dir: string; key: string; step: number; steps: number; phase: 'class-images' | 'training' };

function checkRunParams(p: TrainDreamBoothRunParams): { indices: number[]; className: string } {
  const fn = 'trainDreamBoothRun';
  if (p === null || typeof p !== 'object') fail(fn, 'params', 'one params object', p, TypeError);
  const m = p.model as Partial<UNet2DConditional> | undefined;
  if (!m || typeof m !== 'object' || typeof m.forward !== 'function' || typeof m.conditioningEmbeddings !== 'function' || !m.config) fail(fn, 'model', 'a UNet2DConditional', typeof m, TypeError);
  const c = m!.config!;
  if (!p.scheduler || typeof p.scheduler !== 'object' || typeof p.scheduler.addNoise !== 'function') fail(fn, 'scheduler', 'a noise scheduler (DDPMScheduler)', typeof p.scheduler, TypeError);
  const d = p.data;
  const indices = checkRunImages(fn, d, c.numClasses);
  if (d.imageSize !== c.sampleSize) fail(fn, 'data.imageSize', `${c.sampleSize} (model.config.sampleSize)`, d.imageSize);
  if (d.channels !== c.inChannels) fail(fn, 'data.channels', `${c.inChannels} (model.config.inChannels)`, d.channels);
  if (!isInt(p.classLabel, 0) || p.classLabel >= c.numClasses) fail(fn, 'classLabel', `a class of the model, in 0..${c.numClasses - 1}`, p.classLabel);
  if (p.classNames !== undefined && (!Array.isArray(p.classNames) || p.classNames.length !== c.numClasses)) fail(fn, 'classNames', `one name per class of the model (${c.numClasses})`, p.classNames);
  if (typeof p.token !== 'string' || p.token.length === 0) fail(fn, 'token', 'a non-empty string', p.token, TypeError);
  if ((c.conditioningTokens ?? []).some((t) => t.name === p.token)) fail(fn, 'token', 'a name that is not yet a token of the model', p.token);
  if (!isInt(p.instanceImages, 1)) fail(fn, 'instanceImages', 'an integer >= 1', p.instanceImages);
  if (p.seed !== undefined && !(isInt(p.seed, 0) && p.seed <= 0xffffffff - 7)) fail(fn, 'seed', 'an integer in [0, 2^32-8]', p.seed);
  checkRunOptions(fn, p, ['onLog', 'onClassImages', 'onStart', 'onProgress', 'modelMetadata'], 'DreamBoothTrainer');
  if (p.objectives !== undefined && !Array.isArray(p.objectives)) fail(fn, 'objectives', 'an array of TrainingObjective', typeof p.objectives, TypeError);
  (p.modules ?? []).forEach((x, i) => {
    if (!x || typeof x.namedParameters !== 'function') fail(fn, `modules[${i}]`, 'a module with namedParameters', typeof x, TypeError);
  });
  const pr = p.prior;
  if (pr != null) {
    if (typeof pr !== 'object') fail(fn, 'prior', 'null or the class-image settings { count, scheduler, sampler, steps, guidanceScale, batchSize }', pr, TypeError);
    if (!isInt(pr.count, 1)) fail(fn, 'prior.count', 'an integer >= 1', pr.count);
    if (!pr.scheduler || typeof pr.scheduler.step !== 'function') fail(fn, 'prior.scheduler', 'a noise scheduler to sample with', typeof pr.scheduler, TypeError);
    if (typeof pr.sampler !== 'string' || pr.sampler.length === 0) fail(fn, 'prior.sampler', 'the sampler\'s name', pr.sampler, TypeError);
    if (!isInt(pr.steps, 1)) fail(fn, 'prior.steps', 'an integer >= 1', pr.steps);
    if (!isInt(pr.batchSize, 1)) fail(fn, 'prior.batchSize', 'an integer >= 1', pr.batchSize);
    if (typeof pr.guidanceScale !== 'number' || !Number.isFinite(pr.guidanceScale)) fail(fn, 'prior.guidanceScale', 'a finite number', pr.guidanceScale);
    if (pr.eta !== undefined && !(typeof pr.eta === 'number' && pr.eta >= 0)) fail(fn, 'prior.eta', 'a number >= 0', pr.eta);
    if (pr.path !== undefined && (typeof pr.path !== 'string' || pr.path.length === 0)) fail(fn, 'prior.path', 'a non-empty string (a file)', pr.path, TypeError);
  }
  if (p.modelSha256 !== undefined && (typeof p.modelSha256 !== 'string' || p.modelSha256.length === 0)) fail(fn, 'modelSha256', 'a non-empty string', p.modelSha256, TypeError);
  return { indices, className: p.classNames ? p.classNames[p.classLabel] : String(p.classLabel) };
}

/** The default step key: the settings, the model and the training images. */
function defaultKey(p: TrainDreamBoothRunParams, indices: number[], modelSha256: string): string {
  const { scheduler: _s, ...prior } = p.prior ?? { scheduler: null };
  return stepKey('train-dreambooth', {
    classLabel: p.classLabel, token: p.token, instanceImages: p.instanceImages, seed: p.seed ?? 0, steps: p.steps, batchSize: p.batchSize, trainer: p.trainer ?? {},
    prior: p.prior ? prior : null, hflip: Boolean(p.hflip), vflip: Boolean(p.vflip), logEvery: p.logEvery ?? 10, objectives: (p.objectives ?? []).map((o) => o.name),
  }, { model: modelSha256, data: runImagesHash(p.data), indices: sha256(stableStringify(indices)) });
}

/**
 * Runs or reuses a DreamBooth fine-tuning run in `params.dir` (see the file comment). The caller
 * owns the model, the schedulers, the objectives' modules and the sink; the fine-tuned copy and
 * the trainer are made and disposed here.
 * @throws TypeError / RangeError for bad params (naming the field); ResumableStepError for a folder
 *   holding a finished run of another key; TrainingRunError `too-few-images` (the class has fewer
 *   training images than `instanceImages`), `non-finite` (training diverged: nothing is written)
 *   or `fs`.
 */
export async function trainDreamBoothRun(params: TrainDreamBoothRunParams): Promise<TrainDreamBoothRunResult> {
  const { indices, className } = checkRunParams(params);
  const { data, dir, steps, token } = params;
  const seed = params.seed ?? 0;
  const backend = params.backend ?? tf.getBackend();
  const log = params.onLog ?? (() => {});
  const modelSha256 = params.modelSha256 ?? sha256(serializeUNet(params.model));
  const key = params.key ?? defaultKey(params, indices, modelSha256);
  const modelPath = join(dir, DREAMBOOTH_RUN_FILES.model);
  const metricsPath = join(dir, DREAMBOOTH_RUN_FILES.metrics);
  const prepared = params.prepared ?? prepareDreamBoothRun({ dir, key, force: params.force, replaceStale: params.replaceStale, outputs: params.outputs, flags: params.flags });
  if (prepared.action === 'reuse') {
    log(`${dir} is already fine-tuned with this key (${key}); reusing it`);
    return { status: 'reused', dir, key, modelPath, steps, finalLoss: Number(prepared.marker.finalLoss), marker: prepared.marker };
  }
  const instances = chooseInstances({ labels: data.labels, indices, classLabel: params.classLabel, count: params.instanceImages, seed, className });
  const instancesPath = join(dir, DREAMBOOTH_RUN_FILES.instances);
  withRunFs(instancesPath, 'write', () => writeFileAtomicSync(instancesPath, `${JSON.stringify({ class: className, token, indices: instances, seed }, null, 2)}\n`));
  const prior = params.prior
    ? await dreamBoothClassImages({
        model: params.model, classLabel: params.classLabel, className, seed, modelSha256, prior: { ...params.prior, path: params.prior.path ?? join(dir, DREAMBOOTH_RUN_FILES.classImages) },
        signal: params.signal, onLog: log, onProgress: params.onClassImages,
      })
    : null;
  if (params.prior && !prior) return { status: 'interrupted', dir, key, step: 0, steps, phase: 'class-images' };
  const withToken = addConditioningToken({ model: params.model, fromClass: params.classLabel, name: token });
  const model = withToken.model;
  let trainer: DreamBoothTrainer | null = null;
  try {
    trainer = new DreamBoothTrainer({ ...params.trainer, model, scheduler: params.scheduler, token, seed, objectives: params.objectives ?? [] });
    const instanceOrder = new DataOrder({ indices: instances, seed: (seed + 1) >>> 0 });
    const numPrior = prior ? params.prior!.count : 0;
    const priorOrder = new DataOrder({ indices: Array.from({ length: numPrior }, (_, i) => i), seed: (seed + 3) >>> 0 });
    const priorData = prior ? { images: prior, imageSize: data.imageSize, channels: data.channels } : null;
    const t0 = Date.now();
    let window = emptyMetricsWindow();
    let lastLoss = NaN;
    params.onStart?.({ instances, tokenLabel: withToken.label, priorImages: numPrior });
    for (let step = 1; step <= steps; step++) {
      const inst = makeBatch({ images: data.images, imageSize: data.imageSize, channels: data.channels, indices: instanceOrder.next(params.batchSize), order: instanceOrder, hflip: params.hflip, vflip: params.vflip });
      const pri = priorData ? makeBatch({ ...priorData, indices: priorOrder.next(params.batchSize), order: priorOrder }) : null;
      let r: TrainStepResult;
      try {
        r = trainer.step({ instanceImages: inst, priorImages: pri });
      } finally {
        inst.dispose();
        pri?.dispose();
      }
      lastLoss = r.loss;
      window = logTrainingStep({ metricsPath, window, step, result: r, logEvery: params.logEvery ?? 10, lastStep: steps, sink: params.sink });
      params.onProgress?.({ step, steps, loss: r.loss, result: r });
      // Let signal handlers run between steps.
      await new Promise<void>((res) => setImmediate(res));
      if (params.signal?.aborted && step < steps) return { status: 'interrupted', dir, key, step, steps, phase: 'training' };
    }
    if (trainer.trainer.ema) trainer.copyEmaTo();
    const weights = trainer.trainer.ema ? 'ema' : 'raw';
    const meta = params.modelMetadata
      ? params.modelMetadata({ tokenLabel: withToken.label, weights })
      : {
          ...(params.classNames ? { classes: JSON.stringify(params.classNames) } : {}),
          dreambooth: JSON.stringify({ class: className, classLabel: params.classLabel, token, tokenLabel: withToken.label }),
          steps: String(steps), weights, backend, key,
        };
    assertFiniteTraining({ modules: [model, ...(params.modules ?? [])], step: steps, what: `the final model ${modelPath}` });
    const modelBytes = serializeUNet(model, { ...meta, [MODEL_STATUS_KEY]: 'complete' });
    withRunFs(modelPath, 'write the final model', () => writeFileAtomicSync(modelPath, modelBytes));
    const elapsedSeconds = (Date.now() - t0) / 1000;
    withRunFs(join(dir, COMPLETE_FILE), 'write the completion marker', () =>
      writeCompleteMarker(dir, { step: params.stepName ?? 'train-dreambooth', key, steps, finalLoss: lastLoss, backend, modelSha256: sha256(modelBytes), elapsedSeconds }));
    return { status: 'finished', dir, key, modelPath, steps, finalLoss: lastLoss, tokenLabel: withToken.label, instances, elapsedSeconds };
  } finally {
    trainer?.dispose();
    model.dispose();
  }
}
