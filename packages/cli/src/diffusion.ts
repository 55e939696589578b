/**
 * `fad train`: fine-tuning the diffusion U-Net, with or without feature alignment, as a resumable
 * job. The run itself (checkpoint format, data order, metrics log, resume) is
 * `trainDiffusionRun` of @fad/diffusion-core/node; this file is the wiring: the config as the
 * run's params, the step key, the model (a preset or a pretrained diffusers U-Net, latent space),
 * the feature-alignment objective (its projection checkpointed as `align.<name>`), validation
 * grids, progress output, and the library's errors as the CLI's (same messages, exit codes).
 *
 * Output folder (`dir`):
 * - `checkpoint.safetensors`: resumable state (raw weights, Adam moments, EMA, projection, RNG state)
 * - `metrics.jsonl`: one JSON object per `logEvery` steps: step, loss, terms, lr, gradNorm, time
 * - `model.safetensors`: the final weights for sampling (the EMA weights when EMA is on)
 * - `align.safetensors`: the final alignment projection (aligned runs)
 * - `complete.json`: written last; the run is complete only when it exists
 * - `validation/step-NNNNNN.png`: with `diffusion.validation`, the fixed-seed class grids (see validation.ts)
 * - `events.out.tfevents.*`: with `run.reportTo: [tensorboard]` (the default), the same scalars and the grids (see tensorboard.ts)
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  type BaseSchedulerConfig,
  type BuiltinSchedulerName,
  type AutoencoderKL,
  DDPMScheduler,
  type NoiseScheduler,
  type TrainingObjective,
  UNET_PRESETS,
  UNet2DConditional,
  type UNetConfig,
  resolveUNetConfig,
  schedulerFromName,
} from '@fad/diffusion-core';
import { DIFFUSION_RUN_FILES, prepareDiffusionRun, trainDiffusionRun } from '@fad/diffusion-core/node';
import { type FeatureAlignmentLoss, serializeFeatureAlignmentLoss, unetFeatureAlignment } from '@fad/feature-align';
import type { AlignmentSection, DataConfig, DiffusionSection, FadConfig } from './config';
import { CliError, fromLibraryError, InterruptedError, withFs, withLibraryErrors } from './errors';
import { expertAsFeatureExtractor, type LoadedExpertModel } from './expert';
import { CLI_FLAGS, sha256, stepKey } from './fsutil';
import type { Interrupt } from './interrupt';
import { loadPretrainedDiffusers, pretrainedDiffusersSha256 } from './pretrained-diffusers';
import { chooseMicroBatch } from './memory-fit';
import { loadAutoencoderFile } from './model-files';
import { removeStaleTemps } from './safety';
import { Progress } from './progress';
import { type TensorBoardWriter, openRunTensorBoard } from './tensorboard';
import { TrainingValidation, validationEnabled } from './validation';

/**
 * The U-Net config for a data set: the preset, its overrides, and the data's size, channels and
 * classes; in latent space (`autoencoder` given) the latent size and channels instead.
 */
export function unetConfigFor(cfg: FadConfig, numClasses: number, autoencoder?: AutoencoderKL): UNetConfig {
  const base = UNET_PRESETS[cfg.diffusion.unet.preset];
  const size = autoencoder ? cfg.data.imageSize / autoencoder.downsamplingFactor : cfg.data.imageSize;
  const channels = autoencoder ? autoencoder.config.latentChannels : cfg.data.channels;
  try {
    return resolveUNetConfig({
      ...base,
      ...(cfg.diffusion.unet.overrides as Partial<UNetConfig>),
      sampleSize: size,
      inChannels: channels,
      outChannels: channels,
      numClasses,
      nullClass: true,
    });
  } catch (e) {
    throw new CliError(`diffusion.unet (preset ${cfg.diffusion.unet.preset} with data.imageSize ${cfg.data.imageSize}): ${(e as Error).message}`);
  }
}

/**
 * The noise schedule a model trains with, as stored in its file. `rescaleBetasZeroSnr` is written
 * only when on, so that models and step keys made before it existed stay byte-identical.
 */
export function schedulerConfig(d: DiffusionSection): {
  betaSchedule: DiffusionSection['scheduler']['betaSchedule'];
  numTrainTimesteps: number;
  predictionType: DiffusionSection['scheduler']['predictionType'];
  rescaleBetasZeroSnr?: boolean;
} {
  return {
    betaSchedule: d.scheduler.betaSchedule,
    numTrainTimesteps: d.scheduler.numTrainTimesteps,
    predictionType: d.scheduler.predictionType,
    ...(d.scheduler.rescaleBetasZeroSnr ? { rescaleBetasZeroSnr: true } : {}),
  };
}

/**
 * Latent diffusion (`diffusion.space: latent`): the frozen autoencoder of `diffusion.autoencoder`,
 * checked against the data, and its file's sha256 (part of the step key). Null in pixel space.
 */
export function loadLatentAutoencoder(cfg: FadConfig): { autoencoder: AutoencoderKL; sha256: string; path: string } | null {
  const d = cfg.diffusion;
  if (d.space !== 'latent') return null;
  if (!d.autoencoder) throw new CliError('diffusion.autoencoder is required when diffusion.space is latent: the autoencoder.safetensors written by fad autoencoder train');
  if (!existsSync(d.autoencoder)) throw new CliError(`diffusion.autoencoder: cannot read ${d.autoencoder}: no such file (train one with fad autoencoder train)`);
  // Untrusted input like every model file: limits, completion marker, finite weights.
  const loaded = loadAutoencoderFile(d.autoencoder, 'diffusion.autoencoder');
  const autoencoder: AutoencoderKL = loaded.model;
  const c = autoencoder.config;
  const f = autoencoder.downsamplingFactor;
  if (c.inChannels !== cfg.data.channels || cfg.data.imageSize % f !== 0) {
    autoencoder.dispose();
    throw new CliError(`diffusion.autoencoder ${d.autoencoder} encodes ${c.inChannels}-channel images with sides divisible by ${f}; the data is ${cfg.data.imageSize}x${cfg.data.imageSize}x${cfg.data.channels} (data.imageSize, data.channels)`);
  }
  return { autoencoder, sha256: loaded.sha256, path: d.autoencoder };
}

/** The sha256 of `diffusion.autoencoder` in latent space (a step-key input), null in pixel space. */
export function latentAutoencoderSha256(cfg: FadConfig): string | null {
  const latent = loadLatentAutoencoder(cfg);
  latent?.autoencoder.dispose();
  return latent?.sha256 ?? null;
}

/** The sampler `kind` (a name of diffusion-core's scheduler registry) with the model's noise schedule. */
export function makeScheduler(kind: BuiltinSchedulerName, config: Partial<BaseSchedulerConfig>): NoiseScheduler {
  try {
    return schedulerFromName({ name: kind, config });
  } catch (e) {
    throw new CliError(`generate.sampler ${kind}: ${(e as Error).message}`);
  }
}

export interface TrainingData {
  /** [N,S,S,C] in [0,1]. */
  images: Float32Array;
  labels: Int32Array;
  imageSize: number;
  channels: number;
  /** Indices used for training. */
  indices: number[];
  classNames: string[];
  /** Identifies the data (file list and decoding) for step keys. */
  fingerprint: string;
}

/** What every resumable training job of a run folder takes (fad train, fad autoencoder train). */
export interface ResumableTrainingJob {
  cfg: FadConfig;
  data: TrainingData;
  dir: string;
  resume: boolean;
  /** Start over even if the folder holds a checkpoint or a finished run. */
  force?: boolean;
  interrupt?: Interrupt;
  backend: string;
  log: (m: string) => void;
  quiet?: boolean;
  /** Stop (as if interrupted, without a message) after this step; for tests. */
  stopAfterStep?: number;
}

export interface DiffusionJob extends ResumableTrainingJob {
  /** Required when alignment is enabled. */
  expert?: LoadedExpertModel;
  /** How to continue after an interruption (default: "continue with --resume"). */
  resumeHint?: string;
}

/** What a training job returns (diffusion; DreamBooth and the autoencoder add their own fields). */
export interface DiffusionResult {
  dir: string;
  modelPath: string;
  steps: number;
  finalLoss: number;
  reused: boolean;
  key: string;
}

/** What determines a training run's result: the key stored in complete.json and the checkpoint. */
export function diffusionStepKey(cfg: FadConfig, data: TrainingData, expertHash: string | null, autoencoderHash: string | null = null, pretrainedHash: string | null = null): string {
  const relevant = {
    data: pickData(cfg.data),
    // Keys that joined the config later are left out at their defaults, so earlier runs keep their keys
    // (validation: in the key only when on; it changes metrics.jsonl, not the weights).
    diffusion: {
      ...cfg.diffusion,
      checkpointEvery: undefined,
      logEvery: cfg.diffusion.logEvery,
      scheduler: { ...cfg.diffusion.scheduler, rescaleBetasZeroSnr: cfg.diffusion.scheduler.rescaleBetasZeroSnr || undefined },
      noiseOffset: cfg.diffusion.noiseOffset || undefined,
      emaWarmup: cfg.diffusion.emaWarmup || undefined,
      snrGamma: cfg.diffusion.snrGamma ?? undefined,
      validation: validationEnabled(cfg.diffusion) ? cfg.diffusion.validation : undefined,
      // Latent diffusion: in the key only when on; the autoencoder by its content hash (below), not its path.
      space: cfg.diffusion.space === 'latent' ? 'latent' : undefined,
      autoencoder: undefined,
      // A pretrained diffusers U-Net: by the content hash of its files (below), not its path.
      pretrainedDiffusers: undefined,
    },
    // centering joined the config later: left out at its default so earlier runs keep their keys.
    alignment: cfg.alignment.enabled
      ? {
          ...cfg.alignment,
          centering: cfg.alignment.centering === 'none' ? undefined : cfg.alignment.centering,
          latentExpertInput: cfg.diffusion.space === 'latent' ? cfg.alignment.latentExpertInput : undefined,
        }
      : { enabled: false },
  };
  return stepKey('train-diffusion', relevant, {
    data: data.fingerprint, split: sha256(JSON.stringify(data.indices)), expert: expertHash ?? '', ...(autoencoderHash ? { autoencoder: autoencoderHash } : {}),
    ...(pretrainedHash ? { pretrainedDiffusers: pretrainedHash } : {}),
  });
}

export function pickData(d: DataConfig) {
  return { imageSize: d.imageSize, channels: d.channels, resize: d.resize, hflip: d.hflip, vflip: d.vflip };
}

/** The feature-alignment objective (and its loss, holding the projection) for a U-Net and an expert (feature-align's `unetFeatureAlignment`). */
export function makeAlignmentObjective(p: { model: UNet2DConditional; alignment: AlignmentSection; expert: LoadedExpertModel; seed: number; latent?: boolean }): { loss: FeatureAlignmentLoss; objective: TrainingObjective } {
  const { model, alignment: a } = p;
  if (!model.activationNames().includes(a.tap)) throw new CliError(`alignment.tap "${a.tap}" is not an activation of the U-Net (available: ${model.activationNames().join(', ')})`);
  return unetFeatureAlignment({
    model, expert: expertAsFeatureExtractor(p.expert), tap: a.tap, projection: a.projection, centering: a.centering, seed: p.seed,
    alignTo: a.alignTo, lambda2: a.lambda2, inputAdaptation: a.inputAdaptation, ...(p.latent ? { latentExpertInput: a.latentExpertInput } : {}),
  });
}

/** Runs (or resumes, or reuses) a diffusion training job. */
export async function trainDiffusion(job: DiffusionJob): Promise<DiffusionResult> {
  const { cfg, data } = job;
  const a = cfg.alignment;
  if (a.enabled && !job.expert) throw new CliError('feature alignment needs an expert: pass --expert CHECKPOINT or set expert.checkpoint (or run fad experiment, which trains one)');
  const expertHash = a.enabled && job.expert ? job.expert.sha256 : null;
  const latent = loadLatentAutoencoder(cfg);
  const autoencoder = latent?.autoencoder;
  try {
    return await trainDiffusionIn(job, latent, diffusionStepKey(cfg, data, expertHash, latent?.sha256 ?? null, pretrainedDiffusersSha256(cfg)));
  } finally {
    autoencoder?.dispose();
  }
}

async function trainDiffusionIn(job: DiffusionJob, latent: ReturnType<typeof loadLatentAutoencoder>, key: string): Promise<DiffusionResult> {
  const { cfg, data, dir, log } = job;
  const d = cfg.diffusion;
  const a = cfg.alignment;
  const autoencoder = latent?.autoencoder;
  const modelPath = join(dir, DIFFUSION_RUN_FILES.model);
  const metricsPath = join(dir, DIFFUSION_RUN_FILES.metrics);
  const onLog = (m: string) => log(`fad: ${m}`);
  withFs(dir, 'create the output folder', () => mkdirSync(dir, { recursive: true }));
  removeStaleTemps({ dir, log });
  // Reuse, resume (the checkpoint read and checked) or start: decided before any model is built.
  const prepared = withLibraryErrors(() => prepareDiffusionRun({
    dir, key, resume: job.resume, force: job.force, steps: d.steps, outputs: ['align.safetensors'], flags: CLI_FLAGS, totalKey: 'diffusion.steps', backend: job.backend, onLog,
  }));
  if (prepared.action === 'reuse') {
    log(`fad: ${dir} is already trained with this config (key ${key}); reusing it`);
    return { dir, modelPath, steps: d.steps, finalLoss: Number(prepared.marker.finalLoss), reused: true, key };
  }
  const resumeStep = prepared.action === 'resume' ? prepared.checkpoint.state.step : null;

  const numClasses = data.classNames.length;
  // A pretrained diffusers U-Net (with the data's channels and classes), or a new one of the preset.
  const pretrained = d.pretrainedDiffusers ? await loadPretrainedDiffusers({ cfg, numClasses, autoencoder }) : null;
  const unetConfig = pretrained ? pretrained.model.config : unetConfigFor(cfg, numClasses, autoencoder);
  let scheduler: DDPMScheduler;
  try {
    scheduler = new DDPMScheduler(schedulerConfig(d));
  } catch (e) {
    pretrained?.model.dispose();
    throw new CliError(`diffusion.scheduler: ${(e as Error).message.replace(/^DDPMScheduler: config\./, '')}`);
  }
  // On wasm, micro-batches that fit its memory (gradient accumulation keeps the batch); see memory-fit.ts.
  const micro = chooseMicroBatch({ backend: job.backend, batchSize: d.batchSize, configured: d.microBatchSize, unet: unetConfig });
  if (micro.message) log(micro.message);
  const model = pretrained ? pretrained.model : new UNet2DConditional(unetConfig, { seed: d.seed });
  let loss: FeatureAlignmentLoss | null = null;
  const objectives: TrainingObjective[] = [];
  let validation: TrainingValidation | null = null;
  let tensorboard: TensorBoardWriter | null = null;
  try {
    if (a.enabled && job.expert) {
      const made = makeAlignmentObjective({ model, alignment: a, expert: job.expert, seed: (d.seed + 2) >>> 0, latent: Boolean(autoencoder) });
      loss = made.loss;
      objectives.push(made.objective);
    }
    tensorboard = openRunTensorBoard({ cfg, dir, resumeStep });
    validation = validationEnabled(d) ? new TrainingValidation({ settings: d.validation!, diffusion: d, unetConfig, classNames: data.classNames, dir, metricsPath, log, autoencoder, tensorboard }) : null;
    const progress = new Progress({ label: `train ${a.enabled ? `aligned (${a.alignTo})` : 'baseline'}`, total: d.steps, start: resumeStep ?? 0, quiet: job.quiet });
    const interrupt = job.interrupt;
    const alignLoss = loss;
    const run = await trainDiffusionRun({
      model,
      scheduler,
      data: { images: data.images, labels: data.labels, imageSize: data.imageSize, channels: data.channels, indices: data.indices },
      steps: d.steps,
      batchSize: d.batchSize,
      trainer: {
        seed: d.seed,
        optimizer: { learningRate: d.learningRate },
        lrSchedule: d.lrSchedule === 'cosine'
          ? { type: 'cosine', totalSteps: Math.max(d.steps, d.warmupSteps + 1), warmupSteps: Math.min(d.warmupSteps, Math.max(0, d.steps - 1)), minLearningRate: d.minLearningRate }
          : { type: 'constant', warmupSteps: Math.min(d.warmupSteps, Math.max(0, d.steps - 1)) },
        gradClipNorm: d.gradClipNorm,
        emaDecay: d.emaDecay,
        emaWarmup: d.emaWarmup,
        condDropProb: d.condDropProb,
        diffusionLossWeight: a.enabled ? a.lambda1 : 1,
        microBatchSize: micro.microBatchSize ?? undefined,
        noiseOffset: d.noiseOffset,
        snrGamma: d.snrGamma,
      },
      objectives,
      modules: alignLoss ? [{ prefix: 'align.', module: alignLoss }] : [],
      ...(autoencoder ? { autoencoder } : {}),
      hflip: cfg.data.hflip,
      vflip: cfg.data.vflip,
      dataSeed: (d.seed + 1) >>> 0,
      dir,
      key,
      prepared,
      checkpointEvery: d.checkpointEvery,
      logEvery: d.logEvery,
      backend: job.backend,
      sink: tensorboard,
      signal: { get aborted() { return interrupt?.requested ?? false; } },
      stopAfterStep: job.stopAfterStep,
      onLog,
      onStep: validation
        ? async ({ step, trainer, model: m }) => {
            if (!validation!.due(step)) return;
            progress.end(); // the validation's line below a terminal progress bar
            await validation!.run(step, trainer, m);
          }
        : undefined,
      onProgress: ({ step, loss: l }) => progress.update(step, `loss ${l.toFixed(4)}`),
      extraState: { alignment: a.enabled ? a : null },
      modelMetadata: ({ weights }) => ({
        classes: JSON.stringify(data.classNames),
        steps: String(d.steps),
        alignment: JSON.stringify(a.enabled ? a : null),
        weights,
        scheduler: JSON.stringify(schedulerConfig(d)),
        backend: job.backend,
        key,
        ...(latent ? { autoencoderSource: latent.path, autoencoderSha256: latent.sha256 } : {}),
        // Where the weights started; the model's own config (metadata.config) describes it fully.
        ...(pretrained ? { diffusersSource: pretrained.folder, diffusersConfig: JSON.stringify(pretrained.diffusersConfig) } : {}),
      }),
      finalFiles: alignLoss
        ? [{ name: 'align.safetensors', what: 'the alignment projection', bytes: () => serializeFeatureAlignmentLoss({ loss: alignLoss, metadata: { tap: a.tap, alignTo: a.alignTo } }) }]
        : [],
      flags: CLI_FLAGS,
      totalKey: 'diffusion.steps',
    }).catch((e: unknown) => {
      throw fromLibraryError(e);
    });
    if (run.status === 'interrupted') {
      progress.end();
      throw new InterruptedError(run.reason === 'stop-after-step'
        ? `stopped at step ${run.step} (test hook)`
        : `interrupted at step ${run.step}/${d.steps}; checkpoint written to ${run.checkpointPath}; ${job.resumeHint ?? 'continue with --resume'}`);
    }
    return { dir, modelPath, steps: d.steps, finalLoss: run.finalLoss, reused: false, key };
  } finally {
    model.dispose();
    loss?.dispose();
    validation?.dispose();
    tensorboard?.close();
  }
}
