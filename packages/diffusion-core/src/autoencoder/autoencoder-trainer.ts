/**
 * The autoencoder's training step: encode, draw z from the posterior (reparameterisation, seeded),
 * decode, loss (`autoencoderLoss`: L1 + (1 - SSIM) + beta KL [+ perceptual]), clip the global
 * gradient norm, step Adam. `getState` / `setState` (with the model's weights saved separately)
 * resume exactly.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../register-gradients';
import { Generator, type GeneratorState } from '../random';
import { Adam, type AdamConfig, type AdamState } from '../training/adam';
import { clipByGlobalNorm, globalNorm } from '../training/grad-clip';
import { type LrScheduleConfig, learningRateAt, resolveLrSchedule } from '../training/lr-schedule';
import type { AutoencoderKL } from './autoencoder';
import {
  type AutoencoderLossWeights,
  type FeatureFunction,
  type SsimTensorOptions,
  autoencoderLoss,
  resolveAutoencoderLossWeights,
} from './autoencoder-loss';

export interface AutoencoderTrainerParams {
  model: AutoencoderKL;
  /** Adam settings (default learning rate 1e-4 unless given). */
  optimizer?: Partial<AdamConfig>;
  lrSchedule?: Partial<LrScheduleConfig>;
  /** Clip the global gradient norm to this value; null/undefined disables clipping. */
  gradClipNorm?: number | null;
  /** Loss weights; defaults l1 1, ssim 1, kl 1e-6, perceptual 0. */
  lossWeights?: Partial<AutoencoderLossWeights>;
  /** SSIM settings of the loss; dataRange defaults to 2 (images in [-1, 1]). */
  ssim?: Partial<SsimTensorOptions>;
  /** Frozen feature extractor of the perceptual term (required when lossWeights.perceptual > 0). */
  perceptual?: FeatureFunction;
  /** Decode a posterior sample (true, the default, as in training a VAE) or the posterior mean. */
  samplePosterior?: boolean;
  /** Seed of the posterior samples. */
  seed?: number;
}

export interface AutoencoderStepResult {
  /** The step just completed (1-based). */
  step: number;
  /** The weighted total loss. */
  loss: number;
  /** Unweighted terms: l1, ssim (1 - SSIM), kl, and perceptual when on. */
  terms: Record<string, number>;
  learningRate: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
}

export interface AutoencoderTrainerState {
  step: number;
  generator: { s: GeneratorState; spare: number | null };
  optimizer: AdamState;
}

export class AutoencoderTrainer {
  readonly model: AutoencoderKL;
  readonly optimizer: Adam;
  readonly lrSchedule: LrScheduleConfig;
  readonly lossWeights: AutoencoderLossWeights;
  private readonly gradClipNorm: number | null;
  private readonly ssim: Partial<SsimTensorOptions>;
  private readonly perceptual: FeatureFunction | undefined;
  private readonly samplePosterior: boolean;
  private readonly generator: Generator;
  private readonly variables: tf.Variable[];

  constructor(p: AutoencoderTrainerParams) {
    if (!p || !p.model) throw new TypeError('AutoencoderTrainer: params.model is required');
    if (p.gradClipNorm != null && !(typeof p.gradClipNorm === 'number' && p.gradClipNorm > 0)) {
      throw new RangeError(`AutoencoderTrainer: gradClipNorm must be > 0 or null, got ${JSON.stringify(p.gradClipNorm)}`);
    }
    this.lossWeights = resolveAutoencoderLossWeights(p.lossWeights);
    if (this.lossWeights.perceptual > 0 && typeof p.perceptual !== 'function') {
      throw new TypeError('AutoencoderTrainer: lossWeights.perceptual > 0 needs params.perceptual, a frozen feature function (x) => tf.Tensor');
    }
    if (p.perceptual !== undefined && typeof p.perceptual !== 'function') {
      throw new TypeError(`AutoencoderTrainer: perceptual must be a function (x) => tf.Tensor, got ${typeof p.perceptual}`);
    }
    if (p.samplePosterior !== undefined && typeof p.samplePosterior !== 'boolean') {
      throw new TypeError(`AutoencoderTrainer: samplePosterior must be a boolean, got ${JSON.stringify(p.samplePosterior)}`);
    }
    const seed = p.seed ?? 0;
    this.generator = new Generator(seed); // validates the seed
    this.model = p.model;
    this.gradClipNorm = p.gradClipNorm ?? null;
    this.ssim = { ...(p.ssim ?? {}) };
    this.perceptual = p.perceptual;
    this.samplePosterior = p.samplePosterior ?? true;
    this.variables = p.model.trainableVariables();
    if (this.variables.length === 0) throw new Error('AutoencoderTrainer: the model has no trainable variables');
    this.lrSchedule = resolveLrSchedule(p.lrSchedule);
    this.optimizer = new Adam(this.variables, p.optimizer);
  }

  get stepCount(): number {
    return this.optimizer.step;
  }

  /** One optimisation step on a batch x [B,H,W,C] (the model's range, e.g. [-1, 1]). Leaves no tensor behind. */
  step({ x }: { x: tf.Tensor4D }): AutoencoderStepResult {
    const c = this.model.config;
    if (!x || x.rank !== 4 || x.shape[3] !== c.inChannels) {
      throw new Error(`AutoencoderTrainer.step: x must be [B,H,W,${c.inChannels}], got [${x?.shape}]`);
    }
    if (c.outChannels !== c.inChannels) {
      throw new Error(`AutoencoderTrainer.step: the model's outChannels (${c.outChannels}) must equal inChannels (${c.inChannels}) to reconstruct its input`);
    }
    const lr = learningRateAt(this.lrSchedule, this.optimizer.config.learningRate, this.optimizer.step);
    const kept: Record<string, tf.Scalar> = {};
    let grads: tf.Tensor[] = [];
    try {
      const { value, grads: named } = tf.variableGrads(() => {
        // 1. Posterior q(z|x), 2. z = mean + sigma * eps (reparameterisation) or the mean,
        // 3. decode, 4. loss.
        const out = this.model.forward({ x, generator: this.samplePosterior ? this.generator : undefined });
        const l = autoencoderLoss({
          x, reconstruction: out.reconstruction, mean: out.mean, logVar: out.logVar,
          weights: this.lossWeights, ssim: this.ssim, perceptual: this.perceptual,
        });
        for (const [k, v] of Object.entries(l.terms)) if (v) kept[k] = tf.keep(v);
        return l.total;
      }, this.variables);
      const loss = value.dataSync()[0];
      value.dispose();
      grads = this.variables.map((v) => named[v.name] ?? tf.zerosLike(v));
      for (const v of Object.values(named)) if (!grads.includes(v)) v.dispose();
      let gradNorm: number;
      if (this.gradClipNorm !== null) {
        const clipped = clipByGlobalNorm(grads, this.gradClipNorm);
        grads.forEach((g) => g.dispose());
        grads = clipped.grads;
        gradNorm = clipped.norm;
      } else {
        gradNorm = globalNorm(grads);
      }
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        throw new Error(`AutoencoderTrainer.step: non-finite loss (${loss}) or gradient norm (${gradNorm}) at step ${this.optimizer.step + 1}; lower the learning rate or set gradClipNorm`);
      }
      this.optimizer.apply(grads, lr);
      const terms: Record<string, number> = {};
      for (const [k, v] of Object.entries(kept)) terms[k] = v.dataSync()[0];
      return { step: this.optimizer.step, loss, terms, learningRate: lr, gradNorm };
    } finally {
      grads.forEach((g) => g.dispose());
      Object.values(kept).forEach((v) => v.dispose());
    }
  }

  /** Everything needed to resume exactly (with the model's weights saved separately). */
  getState(): AutoencoderTrainerState {
    return { step: this.optimizer.step, generator: this.generator.getState(), optimizer: this.optimizer.getState() };
  }

  setState(state: AutoencoderTrainerState): void {
    if (!state || typeof state !== 'object' || !state.optimizer || !state.generator) {
      throw new TypeError('AutoencoderTrainer.setState: expected { step, generator, optimizer } from getState()');
    }
    this.optimizer.setState(state.optimizer);
    this.generator.setState(state.generator);
  }

  /** Frees the optimizer state (not the model). */
  dispose(): void {
    this.optimizer.dispose();
  }
}
