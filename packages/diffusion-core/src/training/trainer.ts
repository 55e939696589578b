/**
 * The diffusion training step: sample t and noise, noise the images (forward process), predict,
 * regress onto the target of the scheduler's prediction type, plus any extra objectives (such as
 * feature alignment), then clip, step Adam, update the EMA.
 *
 * Extra objectives plug in through `TrainingObjective`: they name the U-Net activations they need,
 * bring their own trainable variables (e.g. a projection), and return loss terms. This keeps
 * diffusion-core independent of the packages that build on it (`@fad/feature-align`).
 */
import * as tf from '@tensorflow/tfjs-core';
import '../register-gradients';
import { Generator, type GeneratorState } from '../random';
import type { NoiseScheduler, PredictionType } from '../schedulers/scheduler';
import type { DiffusionModel } from '../unet/unet';
import type { AutoencoderKL } from '../autoencoder/autoencoder';
import { decodeLatents, encodeToLatents } from '../autoencoder/latents';
import { Adam, type AdamConfig, type AdamState } from './adam';
import { EmaWeights } from './ema';
import { clipByGlobalNorm, globalNorm } from './grad-clip';
import { type LrScheduleConfig, learningRateAt, resolveLrSchedule } from './lr-schedule';

/** What an extra objective sees of one training step (all tensors belong to the step). */
export interface ObjectiveContext {
  /** Clean images x_0 [B,H,W,C]. */
  x0: tf.Tensor4D;
  /** Noisy images x_t [B,H,W,C], what the U-Net saw. */
  noisy: tf.Tensor4D;
  noise: tf.Tensor4D;
  timesteps: number[];
  /** Labels as given to the model (after label dropout), if any. */
  classLabels?: number[];
  modelOutput: tf.Tensor4D;
  /** The activations named in the objective's `activations`. */
  activations: Record<string, tf.Tensor4D>;
  /**
   * Latent diffusion only (the trainer has an `autoencoder`): then `x0`, `noisy`, `noise` and
   * `modelOutput` are (scaled) latents, and this is the step seen in pixel space.
   */
  latent?: LatentObjectiveContext;
}

/** The pixel-space side of a latent-diffusion training step (see {@link ObjectiveContext.latent}). */
export interface LatentObjectiveContext {
  /** The clean pixel images [B,H,W,C] in the model's range (usually [-1, 1]) whose latents are `x0`. */
  pixelX0: tf.Tensor4D;
  /**
   * Fresh pixel-space noise [B,H,W,C] ~ N(0, I) drawn from the trainer's generator, present when an
   * objective sets `needsPixelNoise` (e.g. an expert input noised in pixel space).
   */
  pixelNoise?: tf.Tensor4D;
  /** alpha-bar_t of each sample's timestep (the scheduler's `alphasCumprod[t]`). */
  alphaBars: number[];
  /**
   * Decodes scaled latents to pixel images, `decodeLatents` with the frozen autoencoder:
   * decoder(z / scalingFactor). Recorded on the gradient tape like any op; run it off the tape
   * (e.g. feature-align's `runWithoutGradient`) when no gradient should flow through it.
   */
  decode(latents: tf.Tensor4D): tf.Tensor4D;
}

export interface TrainingObjective {
  /** Short name, used as a prefix of logged terms. */
  readonly name: string;
  /** U-Net activations the objective needs (see UNet2DConditional's activation names). */
  readonly activations: readonly string[];
  /** Extra trainable variables (e.g. a projection head), optimised with the model. */
  trainableVariables(): tf.Variable[];
  /**
   * Returns `total`, the scalar added to the loss (already weighted), and named terms for logging.
   * Called inside the gradient tape.
   */
  loss(ctx: ObjectiveContext): { total: tf.Scalar; terms: Record<string, tf.Scalar> };
  /**
   * Latent diffusion: ask the trainer for fresh pixel-space noise each step
   * (`ctx.latent.pixelNoise`). Drawn after the step's other random numbers, so objectives that do
   * not ask leave the random streams as they were. Ignored in pixel space.
   */
  readonly needsPixelNoise?: boolean;
}

type TrainableScheduler = Pick<NoiseScheduler, 'addNoise' | 'getVelocity' | 'alphasCumprod'> & {
  readonly config: { readonly numTrainTimesteps: number; readonly predictionType: PredictionType };
};

export interface DiffusionTrainerParams {
  model: DiffusionModel;
  scheduler: TrainableScheduler;
  optimizer?: Partial<AdamConfig>;
  lrSchedule?: Partial<LrScheduleConfig>;
  /** Clip the global gradient norm to this value; null/undefined disables clipping. */
  gradClipNorm?: number | null;
  /** Keep an exponential moving average of the model weights with this decay (e.g. 0.999). */
  emaDecay?: number | null;
  /** Decay warm-up of the EMA as in diffusers' `EMAModel` (`EmaOptions.warmup`); default false. */
  emaWarmup?: boolean;
  /** Probability of replacing a label with the null class (classifier-free guidance training). */
  condDropProb?: number;
  /** Weight of the diffusion MSE (lambda_1 in the paper). Default 1. */
  diffusionLossWeight?: number;
  objectives?: TrainingObjective[];
  /** Split each batch into chunks of this size and add up their gradients (saves memory). */
  microBatchSize?: number;
  /** Seed of timestep, noise and label-dropout sampling. */
  seed?: number;
  /**
   * Offset noise (Guttenberg 2023; diffusers' `--noise_offset`): add `noiseOffset * n` to the noise,
   * with n ~ N(0, 1) drawn once per image and channel [B,1,1,C], so the model learns to change an
   * image's mean. 0 (default) draws nothing extra: the random streams stay as without it.
   */
  noiseOffset?: number;
  /**
   * Min-SNR-gamma loss weighting (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
   * Weighting Strategy", eq. 10 and Table 1): each sample's MSE is weighted so that its weight in
   * x_0 space is min(SNR_t, gamma): min(SNR, gamma) / SNR for epsilon, min(SNR, gamma) / (SNR + 1)
   * for v, min(SNR, gamma) for sample, with SNR_t = alpha-bar_t / (1 - alpha-bar_t). The paper
   * uses gamma = 5. null/undefined (default): the plain MSE.
   */
  snrGamma?: number | null;
  /**
   * Latent diffusion (Rombach et al. 2022): a frozen autoencoder. The model then trains on its
   * scaled latents `encodeToLatents` (the posterior means times the scaling factor): each step
   * takes pixel images `x0` and encodes them (or takes pre-encoded `latents`), and the model's
   * `inChannels` (and `outChannels`) must equal the autoencoder's `latentChannels`. Its weights are never
   * trained. Absent: pixel space (unchanged).
   */
  autoencoder?: AutoencoderKL;
}

/**
 * The min-SNR-gamma weight of one timestep (see {@link DiffusionTrainerParams.snrGamma}).
 * At SNR = 0 (zero terminal SNR) the epsilon weight's limit is 1 and the v weight is 0.
 */
export function minSnrWeight(params: { alphaBar: number; gamma: number; predictionType: PredictionType }): number {
  const { alphaBar, gamma, predictionType } = params;
  if (!(alphaBar >= 0 && alphaBar <= 1)) throw new RangeError(`minSnrWeight: alphaBar must be in [0, 1], got ${alphaBar}`);
  if (!(gamma > 0 && Number.isFinite(gamma))) throw new RangeError(`minSnrWeight: gamma must be a finite number > 0, got ${gamma}`);
  if (alphaBar >= 1) return predictionType === 'sample' ? gamma : 0; // SNR = infinity
  const snr = alphaBar / (1 - alphaBar);
  const clipped = Math.min(snr, gamma);
  switch (predictionType) {
    case 'epsilon':
      return snr === 0 ? 1 : clipped / snr;
    case 'v_prediction':
      return clipped / (snr + 1);
    case 'sample':
      return clipped;
    default:
      throw new RangeError(`minSnrWeight: predictionType must be epsilon, v_prediction or sample, got ${String(predictionType)}`);
  }
}

export interface TrainStepParams {
  /**
   * Clean images in the model's value range (usually [-1, 1]), [B,H,W,C]. With an `autoencoder`
   * (latent diffusion) these are pixel images, encoded to latents unless `latents` are given.
   */
  x0: tf.Tensor4D;
  /**
   * Latent diffusion only: the scaled latents of `x0` [B,h,w,latentChannels], pre-encoded (e.g. with
   * `encodeToLatents` once for the whole data set, which gives exactly what the trainer would
   * compute per batch). Saves the encoder pass at every step. Not disposed.
   */
  latents?: tf.Tensor4D;
  classLabels?: ArrayLike<number>;
  /**
   * Per-sample weights of the diffusion loss: with them the diffusion term is
   * `sum_i lossWeights[i] * mse_i` (mse_i: the mean squared error of sample i) instead of the batch
   * mean (which is `lossWeights[i] = 1/B`). DreamBooth's prior preservation uses them to weigh the
   * instance and the class (prior) images (`composeDreamBoothBatch`). Finite and >= 0.
   */
  lossWeights?: ArrayLike<number>;
}

export interface TrainStepResult {
  /** The step number just completed (1-based). */
  step: number;
  /** The total loss. */
  loss: number;
  /** `diffusion` plus every objective's terms as `<objective>.<term>`. */
  terms: Record<string, number>;
  learningRate: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** The diffusion mean squared error of each sample (only when `lossWeights` were given). */
  sampleLosses?: number[];
}

export interface TrainerState {
  step: number;
  generator: { s: GeneratorState; spare: number | null };
  optimizer: AdamState;
  ema: Float32Array[] | null;
}

export class DiffusionTrainer {
  readonly model: DiffusionModel;
  readonly scheduler: TrainableScheduler;
  readonly optimizer: Adam;
  readonly lrSchedule: LrScheduleConfig;
  readonly ema: EmaWeights | null;
  private readonly params: Required<Omit<DiffusionTrainerParams, 'model' | 'scheduler' | 'optimizer' | 'lrSchedule' | 'gradClipNorm' | 'emaDecay' | 'emaWarmup' | 'microBatchSize' | 'snrGamma' | 'autoencoder'>> & {
    snrGamma: number | null;
    gradClipNorm: number | null;
    microBatchSize: number | null;
  };
  private readonly variables: tf.Variable[];
  private readonly modelVariables: tf.Variable[];
  private readonly generator: Generator;
  private readonly tapNames: string[];
  readonly autoencoder: AutoencoderKL | null;
  private readonly needsPixelNoise: boolean;

  constructor(p: DiffusionTrainerParams) {
    if (!p || !p.model || !p.scheduler) throw new TypeError('DiffusionTrainer: params.model and params.scheduler are required');
    const condDropProb = p.condDropProb ?? 0;
    if (!(condDropProb >= 0 && condDropProb < 1)) throw new RangeError(`DiffusionTrainer: condDropProb must be in [0, 1), got ${condDropProb}`);
    if (condDropProb > 0 && !p.model.config.nullClass) {
      throw new RangeError('DiffusionTrainer: condDropProb > 0 needs a model with a null class (config.nullClass = true)');
    }
    if (p.gradClipNorm != null && !(p.gradClipNorm > 0)) throw new RangeError(`DiffusionTrainer: gradClipNorm must be > 0 or null, got ${p.gradClipNorm}`);
    if (p.microBatchSize != null && !(Number.isInteger(p.microBatchSize) && p.microBatchSize > 0)) {
      throw new RangeError(`DiffusionTrainer: microBatchSize must be a positive integer or null, got ${p.microBatchSize}`);
    }
    const w = p.diffusionLossWeight ?? 1;
    if (!(w >= 0 && Number.isFinite(w))) throw new RangeError(`DiffusionTrainer: diffusionLossWeight must be >= 0, got ${w}`);
    const noiseOffset = p.noiseOffset ?? 0;
    if (!(noiseOffset >= 0 && Number.isFinite(noiseOffset))) throw new RangeError(`DiffusionTrainer: noiseOffset must be a finite number >= 0, got ${p.noiseOffset}`);
    const snrGamma = p.snrGamma ?? null;
    if (snrGamma !== null && !(snrGamma > 0 && Number.isFinite(snrGamma))) {
      throw new RangeError(`DiffusionTrainer: snrGamma must be a finite number > 0 or null, got ${p.snrGamma}`);
    }
    const ae = p.autoencoder ?? null;
    if (ae !== null) {
      if (typeof ae !== 'object' || typeof ae.encode !== 'function' || typeof ae.decode !== 'function' || !ae.config) {
        throw new TypeError('DiffusionTrainer: autoencoder must be an AutoencoderKL');
      }
      const k = ae.config.latentChannels;
      if (p.model.config.inChannels !== k) {
        throw new RangeError(`DiffusionTrainer: with an autoencoder the model's inChannels must equal autoencoder.config.latentChannels (${k}), got ${p.model.config.inChannels}`);
      }
    }
    this.autoencoder = ae;
    this.model = p.model;
    this.scheduler = p.scheduler;
    this.params = {
      condDropProb,
      diffusionLossWeight: w,
      objectives: p.objectives ?? [],
      seed: p.seed ?? 0,
      noiseOffset,
      snrGamma,
      gradClipNorm: p.gradClipNorm ?? null,
      microBatchSize: p.microBatchSize ?? null,
    };
    this.generator = new Generator(this.params.seed);
    this.modelVariables = p.model.trainableVariables();
    const extra = this.params.objectives.flatMap((o) => o.trainableVariables());
    this.variables = [...this.modelVariables, ...extra];
    if (this.variables.length === 0) throw new Error('DiffusionTrainer: the model has no trainable variables');
    this.optimizer = new Adam(this.variables, p.optimizer);
    this.lrSchedule = resolveLrSchedule(p.lrSchedule);
    this.ema = p.emaDecay != null ? new EmaWeights(this.modelVariables, p.emaDecay, { warmup: p.emaWarmup ?? false }) : null;
    this.tapNames = [...new Set(this.params.objectives.flatMap((o) => o.activations))];
    this.needsPixelNoise = ae !== null && this.params.objectives.some((o) => o.needsPixelNoise === true);
  }

  /**
   * The latents the model trains on for a batch: `latents` checked against `x0`, or `x0` encoded
   * (posterior means times the scaling factor). The caller disposes the result.
   */
  private batchLatents(x0: tf.Tensor4D, latents: tf.Tensor4D | undefined): tf.Tensor4D {
    const ae = this.autoencoder as AutoencoderKL;
    const cfg = this.model.config;
    const aec = ae.config;
    const f = ae.downsamplingFactor;
    if (!x0 || x0.rank !== 4 || x0.shape[3] !== aec.inChannels || x0.shape[1] !== cfg.sampleSize * f || x0.shape[2] !== cfg.sampleSize * f) {
      throw new Error(`DiffusionTrainer.step: x0 must be pixel images [B,${cfg.sampleSize * f},${cfg.sampleSize * f},${aec.inChannels}] (the model's sampleSize ${cfg.sampleSize} times the autoencoder's downsampling factor ${f}), got [${x0?.shape}]`);
    }
    if (latents === undefined) return encodeToLatents({ model: ae, images: x0 });
    const want = [x0.shape[0], cfg.sampleSize, cfg.sampleSize, aec.latentChannels];
    if (!(latents instanceof tf.Tensor) || !tf.util.arraysEqual(latents.shape, want)) {
      throw new Error(`DiffusionTrainer.step: latents must be [${want}] (the scaled latents of x0), got [${(latents as tf.Tensor | undefined)?.shape}]`);
    }
    return tf.clone(latents);
  }

  get stepCount(): number {
    return this.optimizer.step;
  }

  /** One optimisation step on a batch. Leaves no tensor behind. */
  step(params: TrainStepParams): TrainStepResult {
    if (this.autoencoder === null) {
      if (params.latents !== undefined) throw new Error('DiffusionTrainer.step: latents are only taken by a trainer with an autoencoder (latent diffusion)');
      return this.stepOn(params, params.x0, null);
    }
    const z0 = this.batchLatents(params.x0, params.latents);
    try {
      return this.stepOn(params, z0, params.x0);
    } finally {
      z0.dispose();
    }
  }

  /** The step on `x0` (pixels or latents); `pixelX0` the pixel images in latent space. */
  private stepOn({ classLabels, lossWeights }: TrainStepParams, x0: tf.Tensor4D, pixelX0: tf.Tensor4D | null): TrainStepResult {
    const cfg = this.model.config;
    if (!x0 || x0.rank !== 4 || x0.shape[3] !== cfg.inChannels) {
      throw new Error(`DiffusionTrainer.step: x0 must be [B,H,W,${cfg.inChannels}], got [${x0?.shape}]`);
    }
    const b = x0.shape[0];
    let labels: number[] | undefined;
    if (classLabels !== undefined) {
      labels = Array.from(classLabels);
      if (labels.length !== b) throw new Error(`DiffusionTrainer.step: ${labels.length} class labels for a batch of ${b}`);
    } else if (cfg.numClasses > 0 && !cfg.nullClass) {
      throw new Error('DiffusionTrainer.step: classLabels are required for a class-conditional model without a null class');
    }
    let weights: number[] | undefined;
    if (lossWeights !== undefined) {
      weights = Array.from(lossWeights);
      if (weights.length !== b) throw new Error(`DiffusionTrainer.step: ${weights.length} lossWeights for a batch of ${b}`);
      const bad = weights.findIndex((v) => !(Number.isFinite(v) && v >= 0));
      if (bad >= 0) throw new RangeError(`DiffusionTrainer.step: lossWeights[${bad}] must be a finite number >= 0, got ${weights[bad]}`);
    }
    // 1. Sample timesteps, noise and label dropout for the whole batch (micro-batching then only
    //    changes the float summation order, not the random draws).
    const T = this.scheduler.config.numTrainTimesteps;
    const timesteps = this.generator.integers(b, 0, T);
    let noiseData = this.generator.normal(x0.shape);
    if (labels && this.params.condDropProb > 0) {
      labels = labels.map((l) => (this.generator.nextFloat() < this.params.condDropProb ? cfg.numClasses : l));
    }
    if (this.params.noiseOffset > 0) {
      // Offset noise: one extra N(0, 1) per image and channel, after the other draws.
      const offsets = this.generator.normal([b, 1, 1, x0.shape[3]]);
      const plain = noiseData;
      noiseData = tf.tidy(() => tf.add(plain, tf.mul(offsets, this.params.noiseOffset)));
      plain.dispose();
      offsets.dispose();
    }
    // Latent diffusion: fresh pixel-space noise for objectives that ask, after every other draw.
    const pixelNoise = pixelX0 && this.needsPixelNoise ? this.generator.normal(pixelX0.shape) : null;
    if (this.params.snrGamma !== null) {
      // Min-SNR-gamma: fold the per-timestep weight into the per-sample weights (1/B each by default).
      const pt = this.scheduler.config.predictionType;
      const snrW = timesteps.map((t) => minSnrWeight({ alphaBar: this.scheduler.alphasCumprod[t], gamma: this.params.snrGamma as number, predictionType: pt }));
      weights = weights ? weights.map((v, i) => v * snrW[i]) : snrW.map((v) => v / b);
    }
    const lr = learningRateAt(this.lrSchedule, this.optimizer.config.learningRate, this.optimizer.step);
    const chunk = this.params.microBatchSize ?? b;
    const termSums: Record<string, number> = {};
    let lossSum = 0;
    const sampleLosses: number[] = [];
    let grads: tf.Tensor[] | null = null;
    try {
      for (let start = 0; start < b; start += chunk) {
        const end = Math.min(b, start + chunk);
        const frac = (end - start) / b;
        const r = this.chunkGradients({
          x0, noiseAll: noiseData, pixelX0, pixelNoise, start, end, frac,
          timesteps: timesteps.slice(start, end),
          labels: labels?.slice(start, end),
          weights: weights?.slice(start, end),
        });
        if (r.sampleLosses) sampleLosses.push(...r.sampleLosses);
        lossSum += r.loss;
        for (const [k, v] of Object.entries(r.terms)) termSums[k] = (termSums[k] ?? 0) + v;
        if (grads === null) grads = r.grads;
        else {
          const prev: tf.Tensor[] = grads;
          grads = prev.map((g, i) => tf.add(g, r.grads[i]));
          prev.forEach((g) => g.dispose());
          r.grads.forEach((g) => g.dispose());
        }
      }
      const g = grads as tf.Tensor[];
      const clip = this.params.gradClipNorm;
      let gradNorm: number;
      if (clip !== null) {
        const clipped = clipByGlobalNorm(g, clip);
        g.forEach((x) => x.dispose());
        grads = clipped.grads;
        gradNorm = clipped.norm;
      } else {
        gradNorm = globalNorm(g);
      }
      if (!Number.isFinite(gradNorm) || !Number.isFinite(lossSum)) {
        throw new Error(`DiffusionTrainer.step: non-finite loss (${lossSum}) or gradient norm (${gradNorm}) at step ${this.optimizer.step + 1}; lower the learning rate or enable gradClipNorm`);
      }
      this.optimizer.apply(grads as tf.Tensor[], lr);
      this.ema?.update({ step: this.optimizer.step });
      return { step: this.optimizer.step, loss: lossSum, terms: termSums, learningRate: lr, gradNorm, ...(lossWeights !== undefined ? { sampleLosses } : {}) };
    } finally {
      noiseData.dispose();
      pixelNoise?.dispose();
      grads?.forEach((x) => x.dispose());
    }
  }

  /**
   * Loss and gradients of one micro-batch, scaled by its share `frac` of the batch (per-sample
   * `weights`, when given, already carry that share for the diffusion term).
   */
  private chunkGradients(a: {
    x0: tf.Tensor4D; noiseAll: tf.Tensor; pixelX0: tf.Tensor4D | null; pixelNoise: tf.Tensor | null; start: number; end: number; frac: number; timesteps: number[]; labels?: number[]; weights?: number[];
  }): { loss: number; terms: Record<string, number>; grads: tf.Tensor[]; sampleLosses?: number[] } {
    const kept: Record<string, tf.Scalar> = {};
    let perSample: tf.Tensor1D | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const n = a.end - a.start;
      const whole = a.start === 0 && n === a.x0.shape[0];
      const x0 = (whole ? a.x0 : tf.slice(a.x0, [a.start, 0, 0, 0], [n, -1, -1, -1])) as tf.Tensor4D;
      const noise = (whole ? a.noiseAll : tf.slice(a.noiseAll, [a.start, 0, 0, 0], [n, -1, -1, -1])) as tf.Tensor4D;
      const part = (t: tf.Tensor) => (whole ? t : tf.slice(t, [a.start, 0, 0, 0], [n, -1, -1, -1])) as tf.Tensor4D;
      const ae = this.autoencoder;
      const latent: LatentObjectiveContext | undefined = ae && a.pixelX0
        ? {
          pixelX0: part(a.pixelX0),
          ...(a.pixelNoise ? { pixelNoise: part(a.pixelNoise) } : {}),
          alphaBars: a.timesteps.map((t) => this.scheduler.alphasCumprod[t]),
          decode: (latents: tf.Tensor4D) => decodeLatents({ model: ae, latents }),
        }
        : undefined;
      // 2. Forward process q(x_t | x_0) (Ho et al. 2020, eq. 4).
      const noisy = this.scheduler.addNoise(x0, noise, a.timesteps) as tf.Tensor4D;
      // 3. Predict, tapping the activations the objectives need, in the same pass.
      const out = this.model.forward({
        sample: noisy, timesteps: a.timesteps, classLabels: a.labels, returnActivations: this.tapNames,
      });
      // 4. Regression target of the prediction type.
      const pt = this.scheduler.config.predictionType;
      const target = pt === 'epsilon' ? noise : pt === 'sample' ? x0 : this.scheduler.getVelocity(x0, noise, a.timesteps);
      if (a.weights) {
        // Weighted: sum_i w_i mse_i; the weights already hold each sample's share of the batch.
        const ps = tf.mean(tf.squaredDifference(out.sample, target), [1, 2, 3]) as tf.Tensor1D;
        perSample = tf.keep(ps);
        const weighted = tf.sum(tf.mul(ps, tf.tensor1d(a.weights, 'float32'))) as tf.Scalar;
        kept.diffusion = tf.keep(tf.div(weighted, a.frac) as tf.Scalar);
        let rest = tf.scalar(0) as tf.Scalar;
        for (const obj of this.params.objectives) {
          const r = obj.loss({ x0, noisy, noise, timesteps: a.timesteps, classLabels: a.labels, modelOutput: out.sample, activations: out.activations, ...(latent ? { latent } : {}) });
          rest = tf.add(rest, r.total);
          for (const [k, v] of Object.entries(r.terms)) kept[`${obj.name}.${k}`] = tf.keep(v);
        }
        return tf.add(tf.mul(weighted, this.params.diffusionLossWeight), tf.mul(rest, a.frac)) as tf.Scalar;
      }
      const mse = tf.mean(tf.squaredDifference(out.sample, target)) as tf.Scalar;
      let total = tf.mul(mse, this.params.diffusionLossWeight) as tf.Scalar;
      kept.diffusion = tf.keep(mse);
      // 5. Extra objectives (feature alignment, ...).
      for (const obj of this.params.objectives) {
        const r = obj.loss({ x0, noisy, noise, timesteps: a.timesteps, classLabels: a.labels, modelOutput: out.sample, activations: out.activations, ...(latent ? { latent } : {}) });
        total = tf.add(total, r.total);
        for (const [k, v] of Object.entries(r.terms)) kept[`${obj.name}.${k}`] = tf.keep(v);
      }
      return tf.mul(total, a.frac) as tf.Scalar;
    }, this.variables);
    const loss = value.dataSync()[0];
    value.dispose();
    const terms: Record<string, number> = {};
    for (const [k, v] of Object.entries(kept)) {
      terms[k] = v.dataSync()[0] * a.frac;
      v.dispose();
    }
    const ordered = this.variables.map((v) => grads[v.name] ?? tf.zerosLike(v));
    let sampleLosses: number[] | undefined;
    if (perSample) {
      sampleLosses = Array.from((perSample as tf.Tensor1D).dataSync());
      (perSample as tf.Tensor1D).dispose();
    }
    return { loss, terms, grads: ordered, ...(sampleLosses ? { sampleLosses } : {}) };
  }

  /** Everything needed to resume training exactly (with the model's weights saved separately). */
  getState(): TrainerState {
    return {
      step: this.optimizer.step,
      generator: this.generator.getState(),
      optimizer: this.optimizer.getState(),
      ema: this.ema ? this.ema.getState() : null,
    };
  }

  setState(state: TrainerState): void {
    this.optimizer.setState(state.optimizer);
    this.generator.setState(state.generator);
    if (this.ema && state.ema) this.ema.setState(state.ema);
  }

  /** Copies the EMA weights into the model's variables (or into `targets`). */
  copyEmaTo(targets: tf.Variable[] = this.modelVariables): void {
    if (!this.ema) throw new Error('DiffusionTrainer.copyEmaTo: the trainer has no EMA (set emaDecay)');
    this.ema.copyTo(targets);
  }

  /** Frees the optimizer state and the EMA (not the model). */
  dispose(): void {
    this.optimizer.dispose();
    this.ema?.dispose();
  }
}
