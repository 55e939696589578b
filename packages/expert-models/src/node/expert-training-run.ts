/**
 * The expert training run (Node only: `@fad/expert-models/node`): `trainExpert` in a run folder
 * that can be reused, resumed and refused, as `fad expert train` and `fad experiment` use it.
 *
 * The folder holds, once finished:
 * - `expert.safetensors`: the best epoch's expert (written by `trainExpert` as it improves);
 * - `eval.json`: its evaluation on the validation split, the best epoch and the history;
 * - `metrics.jsonl`: one line per epoch (`epoch`, `step`, `loss`, `trainAccuracy`,
 *   `validationAccuracy`, `validationLoss`, `lr`, `time`);
 * - `complete.json`: the completion marker with the run's key (diffusion-core's resumable step).
 * While it runs, `expert-state.safetensors` holds the resumable state (removed at the end).
 *
 * Two phases, as the diffusion training run: {@link prepareExpertRun} decides whether the folder is
 * reused, resumed or started (so the caller can open its TensorBoard writer at the right step), and
 * {@link trainExpertRun} trains.
 */
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describeNonFiniteWeights, findNonFiniteWeights, MODEL_FILE_LIMITS } from '@fad/diffusion-core';
import { COMPLETE_FILE, type CompleteMarker, prepareResumableStep, removeStaleTemps, sha256, truncateMetricsLog, writeCompleteMarker, writeFileAtomicSync } from '@fad/diffusion-core/node';
// The package's own main entry (see expert-files.ts).
import {
  createExpert,
  describeTorchvisionResNet,
  type ExpertConfig,
  type ExpertEvaluation,
  type ExpertModel,
  type TorchvisionResNetLayout,
  type TrainProgress,
} from '@fad/expert-models';
import { assertObject, show } from '../validate';
import { ExpertRunError } from './expert-run-error';
import { loadTorchvisionResNet, readExpertTrainingState, trainExpert } from './expert-files';

/** The files of an expert run folder. */
export const EXPERT_RUN_FILES = {
  expert: 'expert.safetensors',
  state: 'expert-state.safetensors',
  evaluation: 'eval.json',
  metrics: 'metrics.jsonl',
} as const;

/** Where a TensorBoard writer or the like gets the run's scalars. */
export interface ExpertScalarSink {
  addScalars(p: { step: number; scalars: Record<string, number | null> }): void;
}

/** Parameters of {@link prepareExpertRun}. */
export interface PrepareExpertRunParams {
  /** The run folder (created if missing). */
  dir: string;
  /** The run's step key (diffusion-core's `stepKey` over everything that shapes the expert). */
  key: string;
  /** Continue an unfinished run from its state; without it, a state is an error (`unfinished-state`). */
  resume?: boolean;
  /** Start over: the state, outputs and marker are removed. */
  force?: boolean;
  /** A state written with another key: an error (default, `stale-state`), or discarded to start over. */
  staleState?: 'error' | 'restart';
  /** The backend the run continues on: a state of another one gets a warning. */
  backend: string;
  /** How messages name `force` and `resume` (the CLI: `--force`, `--resume`). */
  flags?: { force?: string; resume?: string };
  /** Gets what was decided ("reusing it", "resuming ... at step", warnings). */
  onLog?: (message: string) => void;
}

/** What {@link prepareExpertRun} decided. */
export type PreparedExpertRun =
  | { action: 'reuse'; dir: string; key: string; path: string; marker: CompleteMarker }
  | { action: 'start'; dir: string; key: string; path: string }
  | { action: 'resume'; dir: string; key: string; path: string; step: number; epochsDone: number };

const fsError = (e: unknown, path: string, doing: string): ExpertRunError =>
  new ExpertRunError('fs', `cannot ${doing} ${path}: ${(e as Error)?.message ?? String(e)}`, { path, doing }, e);

/** Runs a file system call; its errno error (one with a string `code`) becomes an ExpertRunError `fs`, others pass. */
function withFs<T>(path: string, doing: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (typeof (e as NodeJS.ErrnoException)?.code === 'string' && !(e instanceof ExpertRunError)) throw fsError(e, path, doing);
    throw e;
  }
}

/**
 * Decides whether `dir` is reused (finished with this key), resumed (its state has this key and
 * `resume` is on) or started. Refusals of the folder are diffusion-core `ResumableStepError`s; a
 * state that cannot be read, has another key (with `staleState: 'error'`) or exists without
 * `resume` is an {@link ExpertRunError}.
 */
export async function prepareExpertRun(params: PrepareExpertRunParams): Promise<PreparedExpertRun> {
  const fn = 'prepareExpertRun';
  assertObject(fn, 'params', params);
  const { dir, key, backend } = params;
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`${fn}: dir must be a non-empty string, got ${show(dir)}`);
  if (typeof key !== 'string' || key === '') throw new TypeError(`${fn}: key must be a non-empty string, got ${show(key)}`);
  if (typeof backend !== 'string' || backend === '') throw new TypeError(`${fn}: backend must be a non-empty string, got ${show(backend)}`);
  for (const k of ['resume', 'force'] as const) if (params[k] !== undefined && typeof params[k] !== 'boolean') throw new TypeError(`${fn}: ${k} must be a boolean, got ${show(params[k])}`);
  if (params.staleState !== undefined && params.staleState !== 'error' && params.staleState !== 'restart') throw new RangeError(`${fn}: staleState must be 'error' or 'restart', got ${show(params.staleState)}`);
  const log = params.onLog ?? (() => {});
  const forceFlag = params.flags?.force ?? 'force';
  const resumeFlag = params.flags?.resume ?? 'resume';
  const path = join(dir, EXPERT_RUN_FILES.expert);
  // The marker part of the resumable step (the state's own key check below can restart a stale one).
  const prepared = withFs(dir, 'prepare the output folder', () =>
    prepareResumableStep({ dir, key, resume: params.resume ?? false, force: params.force, describe: { finished: 'an expert trained' }, flags: params.flags }));
  if (prepared.action === 'reuse') {
    log(`fad: ${dir} already holds an expert trained with this config (key ${key}); reusing it`);
    return { action: 'reuse', dir, key, path, marker: prepared.marker };
  }
  removeStaleTemps({ dir, log });
  const statePath = join(dir, EXPERT_RUN_FILES.state);
  withFs(dir, 'prepare the output folder', () => {
    rmSync(join(dir, COMPLETE_FILE), { force: true });
    if (params.force) rmSync(statePath, { force: true });
  });
  if (!existsSync(statePath)) return { action: 'start', dir, key, path };
  let info;
  try {
    info = await readExpertTrainingState({ path: statePath });
  } catch (err) {
    throw new ExpertRunError('unreadable-state', `cannot read the expert training state: ${(err as Error).message}; use ${forceFlag} to start over`, { path: statePath }, err);
  }
  if (info.metadata.key !== key) {
    if (params.staleState !== 'restart') {
      throw new ExpertRunError(
        'stale-state',
        `the expert training state in ${dir} was written with a different config or data (key ${info.metadata.key}, now ${key}); ${resumeFlag} needs the same settings (or ${forceFlag} to start over)`,
        { dir, stored: info.metadata.key, key },
      );
    }
    log('fad: the expert config or its inputs changed since the unfinished run; training the expert again');
    withFs(statePath, 'remove the stale training state', () => rmSync(statePath));
    return { action: 'start', dir, key, path };
  }
  if (!params.resume) throw new ExpertRunError('unfinished-state', `${dir} has the state of an unfinished expert training run; pass ${resumeFlag} to continue it, or ${forceFlag} to start over`, { dir });
  if (info.metadata.backend !== backend) {
    log(`fad: warning: the state was written on the "${info.metadata.backend}" backend, resuming on "${backend}": the result will not be bit-identical to an uninterrupted run`);
  }
  log(`fad: resuming ${dir} at step ${info.globalStep}/${info.totalSteps} (${info.epochsDone} epoch(s) done)`);
  return { action: 'resume', dir, key, path, step: info.globalStep, epochsDone: info.epochsDone };
}

/** Parameters of {@link readTorchvisionResNetLayout}. */
export interface ReadTorchvisionResNetLayoutParams {
  /** A torchvision ResNet state dict as safetensors. */
  path: string;
}

/**
 * The architecture of the torchvision state dict at `path`, read from its safetensors header alone
 * (shapes checked against diffusion-core's `MODEL_FILE_LIMITS` before anything is built). A file
 * that cannot be read or is not a torchvision ResNet is an {@link ExpertRunError} `pretrained`
 * whose message is `cannot read PATH: ...` or `PATH: ...`.
 */
export function readTorchvisionResNetLayout(params: ReadTorchvisionResNetLayoutParams): TorchvisionResNetLayout {
  assertObject('readTorchvisionResNetLayout', 'params', params);
  const { path } = params;
  if (typeof path !== 'string' || path === '') throw new TypeError(`readTorchvisionResNetLayout: path must be a non-empty string, got ${show(path)}`);
  const L = MODEL_FILE_LIMITS;
  let shapes: Record<string, { shape: number[] }>;
  try {
    const fd = openSync(path, 'r');
    try {
      const len = Buffer.alloc(8);
      if (readSync(fd, len, 0, 8, 0) !== 8) throw new Error('too short for a safetensors file');
      const n = Number(len.readBigUInt64LE(0));
      if (n > statSync(path).size - 8 || n > 100_000_000) throw new Error(`header length ${n} exceeds the file; not a safetensors file`);
      const header = Buffer.alloc(n);
      readSync(fd, header, 0, n, 8);
      const parsed = JSON.parse(header.toString('utf8')) as Record<string, { shape: number[] }>;
      delete parsed.__metadata__;
      // Untrusted input: shapes within limits before anything is built from them.
      let total = 0;
      for (const [name, t] of Object.entries(parsed)) {
        const shape = t?.shape;
        if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0 && d <= L.maxDim)) throw new Error(`tensor "${name}" has an invalid shape ${JSON.stringify(shape)?.slice(0, 80)}`);
        total += shape.reduce((a, b) => a * b, 1);
        if (total > L.maxParameters) throw new Error(`the tensors hold more than ${L.maxParameters} values (at "${name}"); refusing to load it`);
      }
      shapes = parsed;
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new ExpertRunError('pretrained', `cannot read ${path}: ${reason}`, { path, reason }, e);
  }
  try {
    return describeTorchvisionResNet({ tensors: shapes });
  } catch (e) {
    throw new ExpertRunError('pretrained', `${path}: ${(e as Error).message}`, { path, reason: (e as Error).message }, e);
  }
}

/** Where the expert starts from: torchvision weights (a fine-tuning run). */
export interface ExpertPretrainedStart {
  /** The torchvision ResNet state dict (safetensors). */
  path: string;
  /** `'new'`: a freshly initialised conv1 of the config's channels; default: the file's, summed over RGB when the channels differ. */
  conv1?: 'new' | 'file';
}

/** Parameters of {@link trainExpertRun}. */
export interface TrainExpertRunParams {
  /** What {@link prepareExpertRun} decided (a `'reuse'` returns at once). */
  prepared: PreparedExpertRun;
  /** The expert to build (a ResNet config for `pretrained`). */
  config: ExpertConfig;
  classNames: string[];
  /** All images [N, size, size, channels] in [0, 1], their labels, and the split (indices into them). */
  images: Float32Array;
  labels: Int32Array;
  imageSize: number;
  channels: number;
  train: number[];
  validation: number[];
  /** Training settings of `trainExpert` (the paper's learning-rate schedule). */
  epochs: number;
  batchSize: number;
  learningRate: number;
  weightDecay: number;
  augment: boolean | Record<string, unknown>;
  /** Seed of the expert's initialisation (a new head or conv1), the shuffles and the augmentation. */
  seed: number;
  /** Steps between state writes (default: every epoch). */
  checkpointEvery?: number | null;
  /** Noise-aware training: the diffusion schedule's alpha-bars (see `noisyExpertBatch`). */
  noiseAware?: { alphasCumprod: Float32Array };
  /** A description of the noise-aware schedule for the log (e.g. `linear schedule (T = 1000)`). */
  noiseAwareDescription?: string;
  /** Fine-tune from torchvision weights instead of a fresh expert. */
  pretrained?: ExpertPretrainedStart | null;
  /** The backend name stored in the state and the marker. */
  backend: string;
  /** Checked after every step; true: the state is written and the run returns `interrupted`. */
  shouldStop?: () => boolean;
  /** Gets the log lines. */
  onLog?: (message: string) => void;
  /** Gets `trainExpert`'s progress events. */
  onProgress?: (event: TrainProgress) => void;
  /** Gets the epoch scalars (`train/loss`, `train/accuracy`, `train/lr`, `train/epoch`, `validation/loss`, `validation/accuracy`). */
  sink?: ExpertScalarSink | null;
}

/** What {@link trainExpertRun} did. */
export interface TrainExpertRunResult {
  path: string;
  key: string;
  /** The folder already held a finished expert of this key. */
  reused: boolean;
  /** Stopped by `shouldStop`: the state is at `statePath`, at step `step` of `totalSteps`. */
  interrupted: { step: number; totalSteps: number; statePath: string } | null;
  /** The best epoch's evaluation on the validation split (null when reused or interrupted, or without validation). */
  evaluation: ExpertEvaluation | null;
}

function gather(images: Float32Array, per: number, idx: number[]): Float32Array {
  const out = new Float32Array(idx.length * per);
  idx.forEach((k, i) => out.set(images.subarray(k * per, (k + 1) * per), i * per));
  return out;
}

/** The expert to fine-tune: torchvision weights with `config`'s head, input and conv1. */
async function pretrainedExpert(p: TrainExpertRunParams, start: ExpertPretrainedStart, log: (m: string) => void): Promise<ExpertModel> {
  const { config } = p;
  const path = start.path;
  if (config.arch !== 'resnet') throw new ExpertRunError('pretrained', `${path}: fine-tuning needs a ResNet expert (torchvision weights), but the config is a ${config.arch}`, { path, reason: 'not-resnet' });
  const layout = readTorchvisionResNetLayout({ path });
  const conv1 = start.conv1 === 'new' ? 'new' : config.input.channels !== layout.inChannels ? 'sum-rgb' : undefined;
  const hidden = config.head.type === 'mlp' ? { hidden: config.head.hiddenDim } : {};
  let expert: ExpertModel;
  try {
    ({ expert } = await loadTorchvisionResNet({ file: path, inChannels: config.input.channels, conv1, head: { numClasses: config.numClasses, ...hidden }, classNames: p.classNames, input: config.input, seed: p.seed }));
  } catch (e) {
    throw new ExpertRunError('pretrained', `${path}: ${(e as Error).message}`, { path, reason: (e as Error).message }, e);
  }
  const bad = findNonFiniteWeights(expert.namedParameters());
  if (bad) {
    expert.dispose();
    throw new ExpertRunError('non-finite', `${path}: its weights are not finite: ${describeNonFiniteWeights(bad)}`, { path });
  }
  const stem = conv1 === undefined ? 'the file\'s conv1' : conv1 === 'sum-rgb' ? `conv1 summed over its ${layout.inChannels} input channels` : `a new ${config.input.channels}-channel conv1 (seed ${p.seed})`;
  const head = config.head.type === 'mlp' ? `MLP (${config.head.hiddenDim} hidden)` : 'linear';
  log(`fad: fine-tuning from ${path} (${layout.arch ?? 'torchvision ResNet'}: ${layout.block} ${JSON.stringify(layout.layers)}): ${stem}, a new ${head} head for ${config.numClasses} classes (seed ${p.seed})`);
  return expert;
}

/** A trainExpert error as the run's: divergence `non-finite`, a file system error `fs`, or as it is. */
function trainingError(err: unknown, dir: string): unknown {
  const e = err as Error & { code?: string; path?: string };
  if (e?.code === 'FAD_NON_FINITE') return new ExpertRunError('non-finite', `expert training in ${dir} diverged: ${e.message.replace(/^trainExpert: /, '')}`, { dir }, err);
  if (typeof e?.code === 'string' && e.path) return fsError(err, e.path, 'write the expert training output');
  return err;
}

function checkParams(p: TrainExpertRunParams): void {
  const fn = 'trainExpertRun';
  assertObject(fn, 'params', p);
  if (!p.prepared || !['reuse', 'start', 'resume'].includes((p.prepared as { action?: string }).action ?? '')) throw new TypeError(`${fn}: prepared must be what prepareExpertRun returned, got ${show(p.prepared)}`);
  if (p.prepared.action === 'reuse') return;
  if (!(p.images instanceof Float32Array)) throw new TypeError(`${fn}: images must be a Float32Array, got ${show(p.images)}`);
  if (!(p.labels instanceof Int32Array)) throw new TypeError(`${fn}: labels must be an Int32Array, got ${show(p.labels)}`);
  for (const k of ['imageSize', 'channels', 'epochs', 'batchSize'] as const) {
    if (!Number.isInteger(p[k]) || p[k] < 1) throw new RangeError(`${fn}: ${k} must be an integer >= 1, got ${show(p[k])}`);
  }
  const per = p.imageSize * p.imageSize * p.channels;
  if (p.images.length !== p.labels.length * per) throw new RangeError(`${fn}: images holds ${p.images.length} values; ${p.labels.length} labelled images of ${p.imageSize}x${p.imageSize}x${p.channels} need ${p.labels.length * per}`);
  for (const k of ['train', 'validation'] as const) {
    const idx = p[k];
    if (!Array.isArray(idx) || !idx.every((i) => Number.isInteger(i) && i >= 0 && i < p.labels.length)) throw new RangeError(`${fn}: ${k} must be indices in 0..${p.labels.length - 1}`);
  }
  if (p.train.length === 0) throw new RangeError(`${fn}: train must not be empty`);
  if (!Array.isArray(p.classNames) || p.classNames.length !== p.config?.numClasses) throw new RangeError(`${fn}: classNames must list config.numClasses (${show(p.config?.numClasses)}) names, got ${show(p.classNames)}`);
  if (typeof p.backend !== 'string' || p.backend === '') throw new TypeError(`${fn}: backend must be a non-empty string, got ${show(p.backend)}`);
}

/**
 * Trains the expert into the prepared folder (or returns at once for a `'reuse'`), writes
 * `eval.json`, the metrics log and the completion marker, and removes the state. Interrupted by
 * `shouldStop`, it returns `interrupted` with the state written.
 * @throws ExpertRunError (`pretrained`, `non-finite`, `fs`).
 */
export async function trainExpertRun(params: TrainExpertRunParams): Promise<TrainExpertRunResult> {
  checkParams(params);
  const { prepared } = params;
  const { dir, key, path } = prepared;
  if (prepared.action === 'reuse') return { path, key, reused: true, interrupted: null, evaluation: null };
  const log = params.onLog ?? (() => {});
  const { config } = params;
  const statePath = join(dir, EXPERT_RUN_FILES.state);
  const metricsPath = join(dir, EXPERT_RUN_FILES.metrics);
  const resumeFrom = prepared.action === 'resume' ? { step: prepared.step, epochsDone: prepared.epochsDone } : null;
  withFs(dir, 'create the output folder', () => mkdirSync(dir, { recursive: true }));
  withFs(metricsPath, 'prepare the metrics log', () => {
    if (resumeFrom) truncateMetricsLog(metricsPath, resumeFrom.epochsDone, 'epoch');
    else rmSync(metricsPath, { force: true });
  });
  const expert = params.pretrained ? await pretrainedExpert(params, params.pretrained, log) : createExpert({ config, classNames: params.classNames, seed: params.seed });
  try {
    const per = params.imageSize * params.imageSize * params.channels;
    const shape = (n: number) => [n, params.imageSize, params.imageSize, params.channels];
    const trainImages = gather(params.images, per, params.train);
    const valImages = gather(params.images, per, params.validation);
    if (params.noiseAware) log(`fad: noise-aware expert: training batches are diffused to x_t at random timesteps of the ${params.noiseAwareDescription ?? 'diffusion schedule'}; validation stays clean`);
    log(`fad: training the expert (${config.arch}${config.arch === 'resnet' ? ` ${config.block} ${JSON.stringify(config.layers)} width ${config.baseWidth}` : ` depth ${config.depth} width ${config.width}`}, ${expert.numParameters().toLocaleString('en-US')} parameters) on ${params.train.length} images for ${params.epochs} epoch(s)`);
    let totalSteps = 0;
    const result = await trainExpert({
      expert,
      images: { data: trainImages, shape: shape(params.train.length) },
      labels: params.train.map((k) => params.labels[k]),
      ...(params.validation.length > 0
        ? { validation: { images: { data: valImages, shape: shape(params.validation.length) }, labels: params.validation.map((k) => params.labels[k]) } }
        : { validationFraction: 0 }),
      epochs: params.epochs,
      batchSize: params.batchSize,
      learningRate: params.learningRate,
      weightDecay: params.weightDecay,
      augment: params.augment as never,
      noiseAware: params.noiseAware,
      seed: params.seed,
      checkpointPath: path,
      statePath,
      checkpointEverySteps: params.checkpointEvery ?? undefined,
      resume: resumeFrom !== null,
      shouldStop: params.shouldStop,
      stateMetadata: { key, backend: params.backend },
      onProgress: (p) => {
        totalSteps = p.totalSteps;
        params.onProgress?.(p);
        if (p.kind === 'epoch') {
          appendFileSync(metricsPath, `${JSON.stringify({ epoch: p.epoch, step: p.globalStep, loss: p.loss, trainAccuracy: p.trainAccuracy, validationAccuracy: p.validationAccuracy, validationLoss: p.validationLoss, lr: p.learningRate, time: new Date().toISOString() })}\n`);
          params.sink?.addScalars({
            step: p.globalStep,
            scalars: { 'train/loss': p.loss, 'train/accuracy': p.trainAccuracy, 'train/lr': p.learningRate, 'train/epoch': p.epoch, 'validation/loss': p.validationLoss, 'validation/accuracy': p.validationAccuracy },
          });
        }
      },
    }).catch((err: unknown) => {
      throw trainingError(err, dir);
    });
    if (result.interrupted) return { path, key, reused: false, interrupted: { step: result.steps, totalSteps, statePath }, evaluation: null };
    const evaluation = result.validation;
    withFs(join(dir, EXPERT_RUN_FILES.evaluation), 'write', () =>
      writeFileAtomicSync(join(dir, EXPERT_RUN_FILES.evaluation), `${JSON.stringify({
        classNames: params.classNames,
        numSamples: evaluation?.numSamples ?? 0,
        accuracy: evaluation?.accuracy ?? null,
        confusionMatrix: evaluation?.confusionMatrix ?? null,
        perClass: evaluation?.perClass ?? null,
        macro: evaluation?.macro ?? null,
        bestEpoch: result.bestEpoch,
        history: result.history,
      }, null, 2)}\n`));
    withFs(join(dir, COMPLETE_FILE), 'write the completion marker', () =>
      writeCompleteMarker(dir, { step: 'train-expert', key, sha256: sha256(readFileSync(path)), backend: params.backend, config: config as unknown as Record<string, unknown>, resumed: resumeFrom !== null }));
    // The state is up to 4x the expert's size and of no use once the run is complete.
    rmSync(statePath, { force: true });
    return { path, key, reused: false, interrupted: null, evaluation };
  } finally {
    expert.dispose();
  }
}
