/**
 * The expert classifier, through @fad/expert-models: building its config from the `fad` config and
 * the data, training it (`trainExpert`), loading a checkpoint, running it over image sets, and
 * presenting it to @fad/feature-align as a `FeatureExtractor`.
 */
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DDPMScheduler } from '@fad/diffusion-core';
import {
  type ExpertConfig,
  type ExpertEvaluation,
  type ExpertModel,
  type ExpertPresetName,
  type TorchvisionResNetLayout,
  createExpert,
  describeTorchvisionResNet,
  EXPERT_PRESETS,
  expertOutputs as libraryExpertOutputs,
  presetConfig,
} from '@fad/expert-models';
import { loadTorchvisionResNet, readExpertTrainingState, trainExpert } from '@fad/expert-models/node';
import { type FeatureExtractor, featureExtractorFromFunction } from '@fad/feature-align';
import type { FadConfig } from './config';
import { CliError, DivergenceError, InterruptedError, fsError, withFs } from './errors';
import { prepareStep, sha256, stepKey, writeComplete, writeFileAtomicSync, writeJsonAtomic } from './fsutil';
import { LIMITS } from './limits';
import { assertFiniteWeights, loadExpertFile } from './model-files';
import { removeStaleTemps } from './safety';
import type { Interrupt } from './interrupt';
import { Progress } from './progress';
import { openRunTensorBoard } from './tensorboard';

export interface LoadedExpertModel {
  expert: ExpertModel;
  path: string;
  sha256: string;
  metadata: Record<string, string>;
}

const DEFAULT_PRESET: Record<'resnet' | 'vit', ExpertPresetName> = { resnet: 'resnet50-kather', vit: 'vit-small-kather' };

/** The expert architecture for the data: the preset, the config's overrides, and the data's classes, size and channels. */
export function expertConfigFor(cfg: FadConfig, numClasses: number): ExpertConfig {
  const name = (cfg.expert.preset ?? DEFAULT_PRESET[cfg.expert.arch]) as ExpertPresetName;
  if (!(name in EXPERT_PRESETS)) {
    throw new CliError(`expert.preset: must be one of ${Object.keys(EXPERT_PRESETS).join(', ')}, got ${JSON.stringify(name)}`);
  }
  const preset = EXPERT_PRESETS[name] as ExpertConfig;
  if (preset.arch !== cfg.expert.arch) throw new CliError(`expert.preset ${name} is a ${preset.arch}, but expert.arch is ${cfg.expert.arch}`);
  const arch = cfg.expert.architecture as Record<string, unknown>;
  const input = { ...((arch.input as object) ?? {}), size: cfg.data.imageSize, channels: cfg.data.channels, range: [0, 1] as [number, number] };
  const backbone: Record<string, unknown> = {};
  if (cfg.expert.pretrained) {
    // The backbone comes from the file; the preset gives the head type and the input normalisation.
    if (preset.arch !== 'resnet') throw new CliError(`expert.pretrained needs a ResNet expert (torchvision weights), but expert.arch is ${preset.arch}`);
    const set = PRETRAINED_BACKBONE_FIELDS.filter((k) => k in arch);
    if (set.length) throw new CliError(`expert.architecture.${set[0]} cannot be set with expert.pretrained: the backbone (${PRETRAINED_BACKBONE_FIELDS.join(', ')}) comes from ${cfg.expert.pretrained}`);
    const l = pretrainedLayout(cfg.expert.pretrained);
    Object.assign(backbone, { block: l.block, layers: l.layers, baseWidth: l.baseWidth }, l.widthPerGroup !== 64 ? { widthPerGroup: l.widthPerGroup } : {});
  }
  try {
    return presetConfig({ name, overrides: { ...arch, ...backbone, numClasses, input } as never });
  } catch (e) {
    throw new CliError(`expert.architecture (preset ${name}): ${(e as Error).message}`);
  }
}

const PRETRAINED_BACKBONE_FIELDS = ['block', 'layers', 'baseWidth', 'widthPerGroup'];

/** The architecture of the torchvision state dict at `path`, read from its safetensors header alone. */
export function pretrainedLayout(path: string): TorchvisionResNetLayout {
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
        if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0 && d <= LIMITS.maxDim)) throw new Error(`tensor "${name}" has an invalid shape ${JSON.stringify(shape)?.slice(0, 80)}`);
        total += shape.reduce((a, b) => a * b, 1);
        if (total > LIMITS.maxParameters) throw new Error(`the tensors hold more than ${LIMITS.maxParameters} values (at "${name}"); refusing to load it`);
      }
      shapes = parsed;
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(`expert.pretrained: cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    return describeTorchvisionResNet({ tensors: shapes });
  } catch (e) {
    throw new CliError(`expert.pretrained ${path}: ${(e as Error).message}`);
  }
}

const pretrainedHashes = new Map<string, string>();

/** sha256 of the pretrained file (cached per path, size and modification time). */
function pretrainedSha256(path: string): string {
  let id: string;
  try {
    const st = statSync(path);
    id = `${path}\0${st.size}\0${st.mtimeMs}`;
  } catch {
    throw new CliError(`expert.pretrained: cannot read ${path}: no such file`);
  }
  let h = pretrainedHashes.get(id);
  if (!h) {
    h = sha256(readFileSync(path));
    pretrainedHashes.set(id, h);
  }
  return h;
}

/** The expert to fine-tune: the torchvision weights of expert.pretrained with `config`'s head, input and conv1. */
async function pretrainedExpert(cfg: FadConfig, config: ExpertConfig, classNames: string[], log: (m: string) => void): Promise<ExpertModel> {
  const path = cfg.expert.pretrained as string;
  if (config.arch !== 'resnet') throw new CliError(`expert.pretrained needs a ResNet expert (torchvision weights), but expert.arch is ${config.arch}`);
  const layout = pretrainedLayout(path);
  const conv1 = cfg.expert.pretrainedConv1 === 'new' ? 'new' : config.input.channels !== layout.inChannels ? 'sum-rgb' : undefined;
  const hidden = config.head.type === 'mlp' ? { hidden: config.head.hiddenDim } : {};
  let expert: ExpertModel;
  try {
    ({ expert } = await loadTorchvisionResNet({ file: path, inChannels: config.input.channels, conv1, head: { numClasses: config.numClasses, ...hidden }, classNames, input: config.input, seed: cfg.expert.seed }));
  } catch (e) {
    throw new CliError(`expert.pretrained ${path}: ${(e as Error).message}`);
  }
  try {
    assertFiniteWeights(expert.namedParameters(), `expert.pretrained ${path}: its weights are not finite`);
  } catch (e) {
    expert.dispose();
    throw e;
  }
  const stem = conv1 === undefined ? 'the file\'s conv1' : conv1 === 'sum-rgb' ? `conv1 summed over its ${layout.inChannels} input channels` : `a new ${config.input.channels}-channel conv1 (seed ${cfg.expert.seed})`;
  const head = config.head.type === 'mlp' ? `MLP (${config.head.hiddenDim} hidden)` : 'linear';
  log(`fad: fine-tuning from ${path} (${layout.arch ?? 'torchvision ResNet'}: ${layout.block} ${JSON.stringify(layout.layers)}): ${stem}, a new ${head} head for ${config.numClasses} classes (seed ${cfg.expert.seed})`);
  return expert;
}

export interface ExpertTrainJob {
  cfg: FadConfig;
  /** All images [N,S,S,C] in [0,1], labels, and the split. */
  images: Float32Array;
  labels: Int32Array;
  imageSize: number;
  channels: number;
  classNames: string[];
  train: number[];
  validation: number[];
  fingerprint: string;
  dir: string;
  force?: boolean;
  log: (m: string) => void;
  quiet?: boolean;
  backend: string;
  /** Continue an unfinished run from `dir/expert-state.safetensors` (otherwise its presence is an error). */
  resume?: boolean;
  /** A state written with another config or data: an error (default), or discarded to start over (`fad experiment`). */
  staleState?: 'error' | 'restart';
  /** Ctrl-C: write the state and stop with exit code 130. */
  interrupt?: Interrupt;
  /** How to continue after an interruption (default: "continue with --resume"). */
  resumeHint?: string;
}

/** The resumable training state of `fad expert train` (removed once the run is complete). */
export const EXPERT_STATE_FILE = 'expert-state.safetensors';

export interface ExpertTrainResult {
  path: string;
  key: string;
  reused: boolean;
  evaluation: ExpertEvaluation | null;
}

function gather(images: Float32Array, per: number, idx: number[]): Float32Array {
  const out = new Float32Array(idx.length * per);
  idx.forEach((k, i) => out.set(images.subarray(k * per, (k + 1) * per), i * per));
  return out;
}

export function expertStepKey(cfg: FadConfig, fingerprint: string, split: { train: number[]; validation: number[] }): string {
  // noiseAware enters the key only when on (with the noise schedule it uses), so the keys of
  // ordinary experts stay what they were before the option existed.
  // Likewise the pretrained weights (by content, with the conv1 option) only when used.
  const { checkpoint: _c, checkpointEvery: _e, noiseAware, pretrained, pretrainedConv1, ...expert } = cfg.expert;
  const noise = noiseAware ? { noiseAware, scheduler: cfg.diffusion.scheduler } : {};
  const init = pretrained ? { pretrained: { sha256: pretrainedSha256(pretrained), conv1: pretrainedConv1 } } : {};
  return stepKey('train-expert', { expert: { ...expert, ...noise, ...init }, data: { imageSize: cfg.data.imageSize, channels: cfg.data.channels } }, { data: fingerprint, split: sha256(JSON.stringify(split)) });
}

/** The noise-aware option of trainExpert for this config: the diffusion schedule's alpha-bars, or undefined. */
export function noiseAwareFor(cfg: FadConfig): { alphasCumprod: Float32Array } | undefined {
  if (!cfg.expert.noiseAware) return undefined;
  const { betaSchedule, numTrainTimesteps } = cfg.diffusion.scheduler;
  return { alphasCumprod: new DDPMScheduler({ betaSchedule, numTrainTimesteps }).alphasCumprod };
}

/** Trains the expert (or reuses a finished one with the same key) into `dir/expert.safetensors`. */
export async function trainExpertJob(job: ExpertTrainJob): Promise<ExpertTrainResult> {
  const { cfg, dir, log } = job;
  const e = cfg.expert;
  const key = expertStepKey(cfg, job.fingerprint, { train: job.train, validation: job.validation });
  const path = join(dir, 'expert.safetensors');
  // The marker part of the resumable step (the state's own key check below can restart a stale one).
  const prepared = prepareStep({ dir, key, resume: job.resume ?? false, force: job.force, describe: { finished: 'an expert trained' } });
  if (prepared.action === 'reuse') {
    log(`fad: ${dir} already holds an expert trained with this config (key ${key}); reusing it`);
    return { path, key, reused: true, evaluation: null };
  }
  removeStaleTemps({ dir, log });
  rmSync(join(dir, 'complete.json'), { force: true });
  const statePath = join(dir, EXPERT_STATE_FILE);
  const metricsPath = join(dir, 'metrics.jsonl');
  if (job.force) rmSync(statePath, { force: true });
  let resumeFrom: { step: number; epochsDone: number } | null = null;
  if (existsSync(statePath)) {
    let info;
    try {
      info = await readExpertTrainingState({ path: statePath });
    } catch (err) {
      throw new CliError(`cannot read the expert training state: ${(err as Error).message}; use --force to start over`);
    }
    if (info.metadata.key !== key) {
      if (job.staleState !== 'restart') {
        throw new CliError(`the expert training state in ${dir} was written with a different config or data (key ${info.metadata.key}, now ${key}); --resume needs the same settings (or --force to start over)`);
      }
      log('fad: the expert config or its inputs changed since the unfinished run; training the expert again');
      rmSync(statePath);
    } else {
      if (!job.resume) throw new CliError(`${dir} has the state of an unfinished expert training run; pass --resume to continue it, or --force to start over`);
      if (info.metadata.backend !== job.backend) {
        log(`fad: warning: the state was written on the "${info.metadata.backend}" backend, resuming on "${job.backend}": the result will not be bit-identical to an uninterrupted run`);
      }
      resumeFrom = { step: info.globalStep, epochsDone: info.epochsDone };
      log(`fad: resuming ${dir} at step ${info.globalStep}/${info.totalSteps} (${info.epochsDone} epoch(s) done)`);
    }
  }
  if (resumeFrom) keepEpochs(metricsPath, resumeFrom.epochsDone);
  else rmSync(metricsPath, { force: true });
  const config = expertConfigFor(cfg, job.classNames.length);
  const expert = e.pretrained ? await pretrainedExpert(cfg, config, job.classNames, log) : createExpert({ config, classNames: job.classNames, seed: e.seed });
  const per = job.imageSize * job.imageSize * job.channels;
  const shape = (n: number) => [n, job.imageSize, job.imageSize, job.channels];
  const trainImages = gather(job.images, per, job.train);
  const valImages = gather(job.images, per, job.validation);
  if (e.noiseAware) log(`fad: noise-aware expert: training batches are diffused to x_t at random timesteps of the ${cfg.diffusion.scheduler.betaSchedule} schedule (T = ${cfg.diffusion.scheduler.numTrainTimesteps}); validation stays clean`);
  log(`fad: training the expert (${config.arch}${config.arch === 'resnet' ? ` ${config.block} ${JSON.stringify(config.layers)} width ${config.baseWidth}` : ` depth ${config.depth} width ${config.width}`}, ${expert.numParameters().toLocaleString('en-US')} parameters) on ${job.train.length} images for ${e.epochs} epoch(s)`);
  let progress: Progress | null = null;
  let totalSteps = 0;
  const tensorboard = openRunTensorBoard({ cfg, dir, resumeStep: resumeFrom ? resumeFrom.step : null });
  try {
    const result = await trainExpert({
      expert,
      images: { data: trainImages, shape: shape(job.train.length) },
      labels: job.train.map((k) => job.labels[k]),
      ...(job.validation.length > 0
        ? { validation: { images: { data: valImages, shape: shape(job.validation.length) }, labels: job.validation.map((k) => job.labels[k]) } }
        : { validationFraction: 0 }),
      epochs: e.epochs,
      batchSize: e.batchSize,
      learningRate: e.learningRate,
      weightDecay: e.weightDecay,
      augment: e.augment,
      noiseAware: noiseAwareFor(cfg),
      seed: e.seed,
      checkpointPath: path,
      statePath,
      checkpointEverySteps: e.checkpointEvery ?? undefined,
      resume: resumeFrom !== null,
      shouldStop: job.interrupt ? () => job.interrupt!.requested : undefined,
      stateMetadata: { key, backend: job.backend },
      onProgress: (p) => {
        totalSteps = p.totalSteps;
        progress ??= new Progress({ label: 'train expert', total: p.totalSteps, start: resumeFrom?.step, quiet: job.quiet });
        progress.update(p.globalStep, `epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(3)}${p.validationAccuracy !== null ? ` val acc ${(p.validationAccuracy * 100).toFixed(1)}%` : ''}`);
        if (p.kind === 'epoch') {
          appendFileSync(metricsPath, `${JSON.stringify({ epoch: p.epoch, step: p.globalStep, loss: p.loss, trainAccuracy: p.trainAccuracy, validationAccuracy: p.validationAccuracy, validationLoss: p.validationLoss, lr: p.learningRate, time: new Date().toISOString() })}\n`);
          tensorboard?.addScalars({
            step: p.globalStep,
            scalars: { 'train/loss': p.loss, 'train/accuracy': p.trainAccuracy, 'train/lr': p.learningRate, 'train/epoch': p.epoch, 'validation/loss': p.validationLoss, 'validation/accuracy': p.validationAccuracy },
          });
        }
      },
    }).catch((err: unknown) => {
      (progress as Progress | null)?.end();
      throw expertTrainingError(err, dir);
    });
    if (result.interrupted) {
      (progress as Progress | null)?.end();
      throw new InterruptedError(`interrupted at step ${result.steps}/${totalSteps}; expert training state written to ${statePath}; ${job.resumeHint ?? 'continue with --resume'}`);
    }
    const evaluation = result.validation;
    writeJsonAtomic(join(dir, 'eval.json'), {
      classNames: job.classNames,
      numSamples: evaluation?.numSamples ?? 0,
      accuracy: evaluation?.accuracy ?? null,
      confusionMatrix: evaluation?.confusionMatrix ?? null,
      perClass: evaluation?.perClass ?? null,
      macro: evaluation?.macro ?? null,
      bestEpoch: result.bestEpoch,
      history: result.history,
    });
    writeComplete(dir, { step: 'train-expert', key, sha256: sha256(readFileSync(path)), backend: job.backend, config: config as unknown as Record<string, unknown>, resumed: resumeFrom !== null });
    // The state is up to 4x the expert's size and of no use once the run is complete.
    rmSync(statePath, { force: true });
    return { path, key, reused: false, evaluation };
  } finally {
    expert.dispose();
    tensorboard?.close();
  }
}

/** Keeps the metrics lines of the first `epochs` epochs (a resumed run rewrites what came after its state). */
function keepEpochs(path: string, epochs: number): void {
  if (!existsSync(path)) return;
  const keep = readFileSync(path, 'utf8').split('\n').filter((l) => {
    try {
      return l.trim() !== '' && (JSON.parse(l) as { epoch: number }).epoch <= epochs;
    } catch {
      return false;
    }
  });
  writeFileAtomicSync(path, keep.length ? `${keep.join('\n')}\n` : '');
}

/**
 * Loads, checks (metadata, limits, completion marker, finite weights: see model-files.ts) and
 * freezes an expert checkpoint. An unfinished expert (`fad.status: partial`) is refused with how to
 * resume its training.
 */
export function loadExpertModel(path: string, what = 'the expert'): LoadedExpertModel {
  return loadExpertFile(path, what);
}

/**
 * The expert as feature alignment's `FeatureExtractor`. The experts of @fad/expert-models normalise
 * internally (mean/std), so the input spec handed to feature alignment has only size, channels and
 * value range; giving mean/std too would normalise twice.
 */
export function expertAsFeatureExtractor(loaded: LoadedExpertModel): FeatureExtractor {
  const { expert } = loaded;
  const spec = expert.inputSpec;
  return featureExtractorFromFunction({
    fn: (x) => expert.features(x),
    featureDim: expert.featureDim,
    inputSpec: { size: spec.size, channels: spec.channels, range: spec.range },
  });
}

/** Features [N,D] and logits [N,K] of images [N,S,S,C] in [0,1], in batches (expert-models' `expertOutputs`). */
export function expertOutputs(expert: ExpertModel, images: Float32Array, n: number, size: number, channels: number, batchSize = 64): { features: number[][]; logits: number[][] } {
  return libraryExpertOutputs({ expert, images, n, size, channels, batchSize });
}

/** A trainExpert error for the user: divergence (exit 4), filesystem (naming the path), or as it is. */
function expertTrainingError(err: unknown, dir: string): unknown {
  const e = err as Error & { code?: string; path?: string };
  if (e?.code === 'FAD_NON_FINITE') return new DivergenceError(`expert training in ${dir} diverged: ${e.message.replace(/^trainExpert: /, '')}`);
  if (typeof e?.code === 'string' && e.path) return fsError(e, e.path, 'write the expert training output');
  return err;
}
