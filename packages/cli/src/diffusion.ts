/**
 * Fine-tuning the diffusion U-Net, with or without feature alignment, as a resumable job:
 * metrics to `metrics.jsonl` as they happen, an atomic checkpoint every `checkpointEvery` steps (and
 * at the end, and on Ctrl-C) holding the weights, the optimizer, EMA and trainer RNG state
 * (`DiffusionTrainer.getState`) and the data-order RNG, so `--resume` continues a killed run and ends
 * with the same weights as an uninterrupted run on the same backend.
 *
 * Output folder (`dir`):
 * - `checkpoint.safetensors`: resumable state (raw weights, Adam moments, EMA, projection, RNG state)
 * - `metrics.jsonl`: one JSON object per `logEvery` steps: step, loss, terms, lr, gradNorm, time
 * - `model.safetensors`: the final weights for sampling (the EMA weights when EMA is on)
 * - `align.safetensors`: the final alignment projection (aligned runs)
 * - `complete.json`: written last; the run is complete only when it exists
 * - `validation/step-NNNNNN.png`: with `diffusion.validation`, the fixed-seed class grids (see validation.ts)
 * - `events.out.tfevents.*`: with `run.reportTo: [tensorboard]` (the default), the same scalars and the grids (see tensorboard.ts)
 *
 * The checkpoint format (one safetensors file, tensors `model.<name>`, `align.<name>`, `adam.m.<i>`,
 * `adam.v.<i>`, `ema.<i>`, JSON state in the metadata) is reusable and belongs in
 * @fad/diffusion-core next to `saveUNet` eventually.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  type BaseSchedulerConfig,
  type BuiltinSchedulerName,
  type AutoencoderKL,
  DDPMScheduler,
  DiffusionTrainer,
  Generator,
  type GeneratorState,
  type TrainStepResult,
  type TrainerState,
  type NoiseScheduler,
  type TrainingObjective,
  UNET_PRESETS,
  UNet2DConditional,
  type UNetConfig,
  decodeSafetensors,
  deserializeAutoencoder,
  encodeSafetensors,
  flipImages,
  resolveUNetConfig,
  schedulerFromName,
  serializeUNet,
} from '@fad/diffusion-core';
import { numberedTensors, numberTensors, prefixTensors, tensorsWithPrefix, truncateMetricsLog } from '@fad/diffusion-core/node';
import { FeatureAlignmentLoss, featureAlignmentObjective, serializeFeatureAlignmentLoss } from '@fad/feature-align';
import type { AlignmentSection, DataConfig, DiffusionSection, FadConfig } from './config';
import { CliError, InterruptedError, withFs } from './errors';
import { expertAsFeatureExtractor, type LoadedExpertModel } from './expert';
import { assertSameStateKey, prepareStep, sha256, stepKey, writeComplete, writeFileAtomicSync } from './fsutil';
import type { Interrupt } from './interrupt';
import { loadPretrainedDiffusers, pretrainedDiffusersSha256 } from './pretrained-diffusers';
import { chooseMicroBatch } from './memory-fit';
import { assertFiniteWeights, loadAutoencoderFile, loadCheckpointWeights, readTrainCheckpoint, STATUS_COMPLETE, STATUS_KEY } from './model-files';
import { removeStaleTemps } from './safety';
import { Progress } from './progress';
import { type TensorBoardWriter, openRunTensorBoard, trainingScalars } from './tensorboard';
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

export interface DiffusionJob {
  cfg: FadConfig;
  data: TrainingData;
  /** Required when alignment is enabled. */
  expert?: LoadedExpertModel;
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

interface DataOrderState {
  gen: { s: GeneratorState; spare: number | null };
  perm: number[];
  cursor: number;
}

interface CheckpointState {
  format: 'fad-train-checkpoint/1';
  key: string;
  step: number;
  trainer: Omit<TrainerState, 'optimizer' | 'ema'> & { optimizerStep: number };
  data: DataOrderState;
  window: MetricsWindow;
  backend: string;
  unet: UNetConfig;
  alignment: AlignmentSection | null;
  elapsedSeconds: number;
  lastLoss: number;
}

/** Draws the next batch of indices (epoch-wise permutations of the training indices) and flips. */
export class DataOrder {
  private readonly gen: Generator;
  private perm: number[] = [];
  private cursor = 0;
  constructor(private readonly indices: number[], seed: number) {
    this.gen = new Generator(seed);
  }
  next(batch: number): number[] {
    const out: number[] = [];
    while (out.length < batch) {
      if (this.cursor >= this.perm.length) {
        this.perm = this.gen.permutation(this.indices.length).map((i) => this.indices[i]);
        this.cursor = 0;
      }
      out.push(this.perm[this.cursor++]);
    }
    return out;
  }
  coin(): boolean {
    return this.gen.nextFloat() < 0.5;
  }
  getState(): DataOrderState {
    return { gen: this.gen.getState(), perm: this.perm.slice(), cursor: this.cursor };
  }
  setState(s: DataOrderState): void {
    this.gen.setState(s.gen);
    this.perm = s.perm.slice();
    this.cursor = s.cursor;
  }
}

/**
 * A batch as a tensor in [-1, 1] with optional random flips (`flipImages` of @fad/diffusion-core,
 * chosen per image by a mask). The coins are drawn per image in order, horizontal then vertical,
 * only for the flips that are on, so the data order of a run (and its resume) is unchanged.
 */
export function makeBatch(data: Pick<TrainingData, 'images' | 'imageSize' | 'channels'>, idx: number[], order: DataOrder, d: DataConfig): tf.Tensor4D {
  const s = data.imageSize;
  const c = data.channels;
  const per = s * s * c;
  const out = new Float32Array(idx.length * per);
  const flips = idx.map((k, b) => {
    const src = data.images.subarray(k * per, (k + 1) * per);
    for (let i = 0; i < per; i++) out[b * per + i] = src[i] * 2 - 1;
    const horizontal = d.hflip && order.coin();
    const vertical = d.vflip && order.coin();
    return { horizontal, vertical };
  });
  return tf.tidy(() => {
    let x = tf.tensor4d(out, [idx.length, s, s, c]);
    for (const direction of ['horizontal', 'vertical'] as const) {
      if (flips.some((f) => f[direction])) x = flipImages({ images: x, direction, which: flips.map((f) => f[direction]) });
    }
    return x;
  });
}

/**
 * Throws a DivergenceError (exit 4) naming the step and the first non-finite tensor when the
 * weights hold NaN or infinity: nothing non-finite is written as a checkpoint or a finished model.
 * One reduction per tensor, only before a write.
 */
export function assertFiniteTraining(modules: Array<{ namedParameters(): Array<[string, tf.Variable]> } | null>, step: number, what: string): void {
  const named = modules.flatMap((m) => (m ? m.namedParameters() : []));
  assertFiniteWeights(named, `training diverged at step ${step}: ${what} was not written, the weights are not finite`);
}

function writeCheckpoint(path: string, state: CheckpointState, model: UNet2DConditional, loss: FeatureAlignmentLoss | null, trainer: DiffusionTrainer): void {
  assertFiniteTraining([model, loss], state.step, `the checkpoint ${path}`);
  const ts = trainer.getState();
  const tensors = {
    ...prefixTensors('model.', model.stateDict()),
    ...(loss ? prefixTensors('align.', loss.stateDict()) : {}),
    ...numberTensors('adam.m.', ts.optimizer.m),
    ...numberTensors('adam.v.', ts.optimizer.v),
    ...numberTensors('ema.', ts.ema ?? []),
  };
  const st: CheckpointState = { ...state, trainer: { step: ts.step, generator: ts.generator, optimizerStep: ts.optimizer.step } };
  writeFileAtomicSync(path, encodeSafetensors({ tensors, metadata: { format: st.format, state: JSON.stringify(st) } }), 'the training checkpoint');
}

function readCheckpoint(path: string, totalSteps: number): { state: CheckpointState; tensors: Record<string, { shape: number[]; data: Float32Array }> } {
  return readTrainCheckpoint<CheckpointState>({
    path, format: 'fad-train-checkpoint/1', what: 'the training checkpoint', totalSteps, totalKey: 'diffusion.steps',
    check: (st) => {
      const t = st.trainer as Partial<CheckpointState['trainer']> | undefined;
      if (!t || typeof t !== 'object') return ['trainer', 'the trainer state { step, generator, optimizerStep }'];
      if (!Number.isInteger(t.step) || t.step! < 0 || t.step! > totalSteps) return ['trainer.step', `an integer in 0..${totalSteps}`];
      if (!Number.isInteger(t.optimizerStep) || t.optimizerStep! < 0 || t.optimizerStep! > totalSteps) return ['trainer.optimizerStep', `an integer in 0..${totalSteps}`];
      if (!Array.isArray(t.generator?.s) || t.generator!.s.length !== 4) return ['trainer.generator', 'a generator state { s: [4 integers], spare }'];
      return null;
    },
  });
}

/** Running sums of the training steps since the last `metrics.jsonl` line (a checkpoint holds it). */
export interface MetricsWindow {
  n: number;
  loss: number;
  terms: Record<string, number>;
  gradNorm: number;
}

export function emptyMetricsWindow(): MetricsWindow {
  return { n: 0, loss: 0, terms: {}, gradNorm: 0 };
}

/**
 * Adds a training step's result to `window`; every `logEvery` steps and at `lastStep`, appends the
 * window's means to `metricsPath` (one JSON line: step, loss, terms, lr, gradNorm, steps, time).
 * Returns the window to go on with: the same one, or an empty one after a line.
 */
export function logTrainingStep(p: { metricsPath: string; window: MetricsWindow; step: number; result: TrainStepResult; logEvery: number; lastStep: number; tensorboard?: TensorBoardWriter | null }): MetricsWindow {
  const { window: w, step, result: r } = p;
  w.n++;
  w.loss += r.loss;
  w.gradNorm += r.gradNorm;
  for (const [k, v] of Object.entries(r.terms)) w.terms[k] = (w.terms[k] ?? 0) + v;
  if (step % p.logEvery !== 0 && step !== p.lastStep) return w;
  const terms: Record<string, number> = {};
  for (const [k, v] of Object.entries(w.terms)) terms[k] = v / w.n;
  const line = { step, loss: w.loss / w.n, terms, lr: r.learningRate, gradNorm: w.gradNorm / w.n, steps: w.n, time: new Date().toISOString() };
  withFs(p.metricsPath, 'append to the metrics log', () => appendFileSync(p.metricsPath, `${JSON.stringify(line)}\n`));
  p.tensorboard?.addScalars({ step, scalars: trainingScalars(line) });
  return emptyMetricsWindow();
}

/** The feature-alignment objective (and its loss, holding the projection) for a U-Net and an expert. */
export function makeAlignmentObjective(p: { model: UNet2DConditional; alignment: AlignmentSection; expert: LoadedExpertModel; seed: number; latent?: boolean }): { loss: FeatureAlignmentLoss; objective: TrainingObjective } {
  const { model, alignment: a } = p;
  const extractor = expertAsFeatureExtractor(p.expert);
  const c = model.config;
  // The tapped activation's channels, from one forward pass on a dummy image.
  const probe = tf.tidy(() => {
    const r = model.forward({ sample: tf.zeros([1, c.sampleSize, c.sampleSize, c.inChannels]) as tf.Tensor4D, timesteps: [0], classLabels: [0], returnActivations: model.activationNames().includes(a.tap) ? [a.tap] : [] });
    return r.activations[a.tap];
  });
  if (!probe) throw new CliError(`alignment.tap "${a.tap}" is not an activation of the U-Net (available: ${model.activationNames().join(', ')})`);
  const diffusionDim = probe.shape[3];
  probe.dispose();
  const loss = new FeatureAlignmentLoss({ diffusionDim, expertDim: extractor.featureDim as number, projection: a.projection, centering: a.centering, seed: p.seed });
  const objective = featureAlignmentObjective({
    loss, expert: extractor, tap: a.tap, alignTo: a.alignTo, lambda2: a.lambda2, inputAdaptation: a.inputAdaptation, ...(p.latent ? { latentExpertInput: a.latentExpertInput } : {}),
  });
  return { loss, objective };
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
  const ckptPath = join(dir, 'checkpoint.safetensors');
  const metricsPath = join(dir, 'metrics.jsonl');
  const modelPath = join(dir, 'model.safetensors');
  withFs(dir, 'create the output folder', () => mkdirSync(dir, { recursive: true }));
  removeStaleTemps({ dir, log });
  const prepared = prepareStep({
    dir, key, resume: job.resume, force: job.force, stateFile: 'checkpoint.safetensors', outputs: ['metrics.jsonl', 'model.safetensors', 'align.safetensors'],
    describe: { finished: 'a finished training run', unfinished: 'a checkpoint of an unfinished run' },
  });
  if (prepared.action === 'reuse') {
    log(`fad: ${dir} is already trained with this config (key ${key}); reusing it`);
    return { dir, modelPath, steps: d.steps, finalLoss: Number(prepared.marker.finalLoss), reused: true, key };
  }
  let resumeFrom: ReturnType<typeof readCheckpoint> | null = null;
  if (prepared.action === 'resume') {
    resumeFrom = readCheckpoint(ckptPath, d.steps);
    assertSameStateKey({ where: `the checkpoint ${ckptPath}`, stored: resumeFrom.state.key, storedName: 'state.key', key });
    if (resumeFrom.state.backend !== job.backend) {
      log(`fad: warning: the checkpoint was written on the "${resumeFrom.state.backend}" backend, resuming on "${job.backend}": the result will not be bit-identical to an uninterrupted run`);
    }
  } else if (existsSync(metricsPath)) {
    rmSync(metricsPath);
  }

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
  if (a.enabled && job.expert) {
    const made = makeAlignmentObjective({ model, alignment: a, expert: job.expert, seed: (d.seed + 2) >>> 0, latent: Boolean(autoencoder) });
    loss = made.loss;
    objectives.push(made.objective);
  }
  const trainer = new DiffusionTrainer({
    model,
    scheduler,
    seed: d.seed,
    optimizer: { learningRate: d.learningRate },
    lrSchedule: d.lrSchedule === 'cosine'
      ? { type: 'cosine', totalSteps: Math.max(d.steps, d.warmupSteps + 1), warmupSteps: Math.min(d.warmupSteps, Math.max(0, d.steps - 1)), minLearningRate: d.minLearningRate }
      : { type: 'constant', warmupSteps: Math.min(d.warmupSteps, Math.max(0, d.steps - 1)) },
    gradClipNorm: d.gradClipNorm,
    emaDecay: d.emaDecay,
    condDropProb: d.condDropProb,
    diffusionLossWeight: a.enabled ? a.lambda1 : 1,
    objectives,
    microBatchSize: micro.microBatchSize ?? undefined,
    noiseOffset: d.noiseOffset,
    snrGamma: d.snrGamma,
    ...(autoencoder ? { autoencoder } : {}),
  });
  const order = new DataOrder(data.indices, (d.seed + 1) >>> 0);
  let validation: TrainingValidation | null = null;
  const tensorboard = openRunTensorBoard({ cfg, dir, resumeStep: resumeFrom ? resumeFrom.state.step : null });
  try {
    validation = validationEnabled(d) ? new TrainingValidation({ settings: d.validation!, diffusion: d, unetConfig, classNames: data.classNames, dir, metricsPath, log, autoencoder, tensorboard }) : null;
  } catch (e) {
    tensorboard?.close();
    trainer.dispose();
    model.dispose();
    loss?.dispose();
    throw e;
  }
  let window = emptyMetricsWindow();
  let step = 0;
  let elapsedBefore = 0;
  let lastLoss = NaN;
  if (resumeFrom) {
    const { state, tensors } = resumeFrom;
    const ema = numberedTensors(tensors, 'ema.');
    try {
      loadCheckpointWeights(() => {
        model.loadStateDict(tensorsWithPrefix(tensors, 'model.'));
        if (loss) loss.loadStateDict(tensorsWithPrefix(tensors, 'align.'));
        trainer.setState({
          step: state.trainer.step,
          generator: state.trainer.generator,
          optimizer: { step: state.trainer.optimizerStep, m: numberedTensors(tensors, 'adam.m.'), v: numberedTensors(tensors, 'adam.v.') },
          ema: ema.length ? ema : null,
        });
        const train = new Set(data.indices);
        if (state.data.perm.some((k) => !train.has(k))) throw new Error('state.data.perm holds indices that are not training images');
      }, `the training checkpoint ${ckptPath}`);
    } catch (e) {
      trainer.dispose();
      model.dispose();
      loss?.dispose();
      validation?.dispose();
      throw e;
    }
    order.setState(state.data);
    window = state.window;
    step = state.step;
    elapsedBefore = state.elapsedSeconds;
    lastLoss = state.lastLoss;
    truncateMetricsLog(metricsPath, step);
    log(`fad: resuming ${dir} at step ${step}/${d.steps}`);
  }
  const t0 = Date.now();
  const stateNow = (): CheckpointState => ({
    format: 'fad-train-checkpoint/1',
    key,
    step,
    trainer: { step: 0, generator: { s: [0, 0, 0, 0], spare: null }, optimizerStep: 0 },
    data: order.getState(),
    window,
    backend: job.backend,
    unet: unetConfig,
    alignment: a.enabled ? a : null,
    elapsedSeconds: elapsedBefore + (Date.now() - t0) / 1000,
    lastLoss,
  });
  const progress = new Progress({ label: `train ${a.enabled ? `aligned (${a.alignTo})` : 'baseline'}`, total: d.steps, start: step, quiet: job.quiet });
  try {
    while (step < d.steps) {
      const idx = order.next(d.batchSize);
      const x0 = makeBatch(data, idx, order, cfg.data);
      let r;
      try {
        r = trainer.step({ x0, classLabels: Array.from(idx, (k) => data.labels[k]) });
      } finally {
        x0.dispose();
      }
      step = r.step;
      lastLoss = r.loss;
      window = logTrainingStep({ metricsPath, window, step, result: r, logEvery: d.logEvery, lastStep: d.steps, tensorboard });
      if (validation?.due(step)) {
        progress.end(); // the validation's line below a terminal progress bar
        await validation.run(step, trainer, model);
      }
      if (step % d.checkpointEvery === 0 || step === d.steps) writeCheckpoint(ckptPath, stateNow(), model, loss, trainer);
      progress.update(step, `loss ${r.loss.toFixed(4)}`);
      // Let signal handlers run between steps.
      await new Promise<void>((res) => setImmediate(res));
      if (job.stopAfterStep !== undefined && step >= job.stopAfterStep && step < d.steps) {
        writeCheckpoint(ckptPath, stateNow(), model, loss, trainer);
        progress.end();
        throw new InterruptedError(`stopped at step ${step} (test hook)`);
      }
      if (job.interrupt?.requested && step < d.steps) {
        writeCheckpoint(ckptPath, stateNow(), model, loss, trainer);
        progress.end();
        throw new InterruptedError(`interrupted at step ${step}/${d.steps}; checkpoint written to ${ckptPath}; ${job.resumeHint ?? 'continue with --resume'}`);
      }
    }
    // Final outputs: the EMA weights (what is sampled), the projection, then the completion marker.
    if (trainer.ema) trainer.copyEmaTo();
    const meta = {
      classes: JSON.stringify(data.classNames),
      steps: String(d.steps),
      alignment: JSON.stringify(a.enabled ? a : null),
      weights: trainer.ema ? 'ema' : 'raw',
      scheduler: JSON.stringify(schedulerConfig(d)),
      backend: job.backend,
      key,
      ...(latent ? { autoencoderSource: latent.path, autoencoderSha256: latent.sha256 } : {}),
      // Where the weights started; the model's own config (metadata.config) describes it fully.
      ...(pretrained ? { diffusersSource: pretrained.folder, diffusersConfig: JSON.stringify(pretrained.diffusersConfig) } : {}),
    };
    assertFiniteTraining([model, loss], step, `the final model ${modelPath}`);
    // A latent model embeds its autoencoder, so that fad generate needs the model file alone.
    writeFileAtomicSync(modelPath, serializeUNet(model, { ...meta, [STATUS_KEY]: STATUS_COMPLETE }, autoencoder ? { autoencoder } : {}), 'the final model');
    if (loss) writeFileAtomicSync(join(dir, 'align.safetensors'), serializeFeatureAlignmentLoss({ loss, metadata: { tap: a.tap, alignTo: a.alignTo } }), 'the alignment projection');
    writeComplete(dir, {
      step: 'train-diffusion',
      key,
      steps: d.steps,
      finalLoss: lastLoss,
      backend: job.backend,
      modelSha256: sha256(readFileSync(modelPath)),
      elapsedSeconds: elapsedBefore + (Date.now() - t0) / 1000,
      resumed: resumeFrom !== null,
    });
    return { dir, modelPath, steps: d.steps, finalLoss: lastLoss, reused: false, key };
  } finally {
    trainer.dispose();
    model.dispose();
    loss?.dispose();
    validation?.dispose();
    tensorboard?.close();
  }
}
