/**
 * The expert classifier, through @fad/expert-models: building its config from the `fad` config and
 * the data, training it (`trainExpert`), loading a checkpoint, running it over image sets, and
 * presenting it to @fad/feature-align as a `FeatureExtractor`.
 */
import { readFileSync, statSync } from 'node:fs';
import { DDPMScheduler } from '@fad/diffusion-core';
import {
  type ExpertConfig,
  type ExpertEvaluation,
  type ExpertModel,
  type ExpertPresetName,
  type TorchvisionResNetLayout,
  EXPERT_PRESETS,
  expertOutputs as libraryExpertOutputs,
  presetConfig,
} from '@fad/expert-models';
import { EXPERT_RUN_FILES, prepareExpertRun, readTorchvisionResNetLayout, trainExpertRun } from '@fad/expert-models/node';
import { type FeatureExtractor, featureExtractorFromFunction } from '@fad/feature-align';
import type { FadConfig } from './config';
import { CliError, fromExpertRunError, fromLibraryError, InterruptedError } from './errors';
import { CLI_FLAGS, sha256, stepKey } from './fsutil';
import { loadExpertFile } from './model-files';
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

/** The architecture of the torchvision state dict at `path` (expert-models' `readTorchvisionResNetLayout`), errors naming `expert.pretrained`. */
export function pretrainedLayout(path: string): TorchvisionResNetLayout {
  try {
    return readTorchvisionResNetLayout({ path });
  } catch (e) {
    throw fromExpertRunError(e);
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
export const EXPERT_STATE_FILE = EXPERT_RUN_FILES.state;

export interface ExpertTrainResult {
  path: string;
  key: string;
  reused: boolean;
  evaluation: ExpertEvaluation | null;
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

/** Trains the expert (or reuses a finished one with the same key) into `dir/expert.safetensors` (expert-models' `trainExpertRun`). */
export async function trainExpertJob(job: ExpertTrainJob): Promise<ExpertTrainResult> {
  const { cfg, dir, log } = job;
  const e = cfg.expert;
  const key = expertStepKey(cfg, job.fingerprint, { train: job.train, validation: job.validation });
  const prepared = await prepareExpertRun({ dir, key, resume: job.resume ?? false, force: job.force, staleState: job.staleState, backend: job.backend, flags: CLI_FLAGS, onLog: log }).catch((err: unknown) => {
    throw fromExpertRunError(fromLibraryError(err));
  });
  if (prepared.action === 'reuse') return { path: prepared.path, key, reused: true, evaluation: null };
  const config = expertConfigFor(cfg, job.classNames.length);
  let progress: Progress | null = null;
  const tensorboard = openRunTensorBoard({ cfg, dir, resumeStep: prepared.action === 'resume' ? prepared.step : null });
  try {
    const { betaSchedule, numTrainTimesteps } = cfg.diffusion.scheduler;
    const r = await trainExpertRun({
      prepared,
      config,
      classNames: job.classNames,
      images: job.images,
      labels: job.labels,
      imageSize: job.imageSize,
      channels: job.channels,
      train: job.train,
      validation: job.validation,
      epochs: e.epochs,
      batchSize: e.batchSize,
      learningRate: e.learningRate,
      weightDecay: e.weightDecay,
      augment: e.augment as never,
      seed: e.seed,
      checkpointEvery: e.checkpointEvery,
      noiseAware: noiseAwareFor(cfg),
      noiseAwareDescription: `${betaSchedule} schedule (T = ${numTrainTimesteps})`,
      pretrained: e.pretrained ? { path: e.pretrained, conv1: e.pretrainedConv1 === 'new' ? 'new' : 'file' } : null,
      backend: job.backend,
      shouldStop: job.interrupt ? () => job.interrupt!.requested : undefined,
      onLog: log,
      onProgress: (p) => {
        progress ??= new Progress({ label: 'train expert', total: p.totalSteps, start: prepared.action === 'resume' ? prepared.step : undefined, quiet: job.quiet });
        progress.update(p.globalStep, `epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(3)}${p.validationAccuracy !== null ? ` val acc ${(p.validationAccuracy * 100).toFixed(1)}%` : ''}`);
      },
      sink: tensorboard,
    }).catch((err: unknown) => {
      (progress as Progress | null)?.end();
      throw fromExpertRunError(err);
    });
    if (r.interrupted) {
      (progress as Progress | null)?.end();
      throw new InterruptedError(`interrupted at step ${r.interrupted.step}/${r.interrupted.totalSteps}; expert training state written to ${r.interrupted.statePath}; ${job.resumeHint ?? 'continue with --resume'}`);
    }
    return { path: r.path, key, reused: false, evaluation: r.evaluation };
  } finally {
    tensorboard?.close();
  }
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

