/**
 * DDPMScheduler: ancestral sampling of Ho et al. (2020), "Denoising Diffusion Probabilistic Models",
 * numerically matching HuggingFace diffusers' `DDPMScheduler`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GuidedStepInput, NoiseScheduler, SchedulerOutput, StepOptions } from './scheduler';
import { BaseScheduler } from './scheduler-base';
import {
  BASE_CONFIG_SPEC,
  BASE_SCHEDULER_DEFAULTS,
  type BaseSchedulerConfig,
  checkStepArgs,
  type ConfigSpec,
  configFromJSON,
  configToJSON,
  oneOf,
  predictOriginalSample,
  requireGenerator,
} from './timesteps';

/**
 * Variance of the reverse step p(x_{t-1} | x_t):
 * - `fixed_small`: the posterior variance beta-tilde_t of Ho et al. eq. 7 (clamped at 1e-20);
 * - `fixed_large`: beta_t itself (Ho et al. section 3.2 discuss both choices);
 * - `fixed_small_log` / `fixed_large_log`: the same variances, named as diffusers does for models that
 *   work with log-variances. For the fixed (non-learned) types they yield the same step as the
 *   non-log types. (diffusers' `fixed_large_log` branch takes the square root of a log-variance, which
 *   gives NaN; that is deliberately not reproduced.)
 *
 * The learned variance types of Improved DDPM are not supported.
 */
export type VarianceType = 'fixed_small' | 'fixed_small_log' | 'fixed_large' | 'fixed_large_log';

/** Accepted `varianceType` values. */
export const VARIANCE_TYPES: readonly VarianceType[] = [
  'fixed_small',
  'fixed_small_log',
  'fixed_large',
  'fixed_large_log',
];

/** Configuration of {@link DDPMScheduler}; every field is JSON-serialisable. */
export interface DDPMSchedulerConfig extends BaseSchedulerConfig {
  /** Variance of the reverse step, see {@link VarianceType}. */
  varianceType: VarianceType;
}

/** diffusers' `DDPMScheduler` defaults. */
export const DDPM_SCHEDULER_DEFAULTS: Readonly<DDPMSchedulerConfig> = Object.freeze({
  ...BASE_SCHEDULER_DEFAULTS,
  varianceType: 'fixed_small',
});

const DDPM_CONFIG_SPEC: ConfigSpec<DDPMSchedulerConfig> = {
  ...BASE_CONFIG_SPEC,
  varianceType: { default: DDPM_SCHEDULER_DEFAULTS.varianceType, check: oneOf(VARIANCE_TYPES) },
};

/** Serialised form of a {@link DDPMScheduler}: its config plus the class name. */
export type DDPMSchedulerJSON = DDPMSchedulerConfig & { _class: 'DDPMScheduler' };

/**
 * The Gaussian posterior q(x_{t'} | x_t, x_0) that a DDPM step samples from, where t' is the previous
 * timestep (t - 1 without `setTimesteps`, the next entry of the schedule with it):
 * mean = coefX0 * x_0 + coefXt * x_t, variance as chosen by `varianceType`.
 */
export interface PosteriorCoefficients {
  /** t', or -1 after the last step (then alpha-bar_{t'} = 1). */
  prevTimestep: number;
  /** alpha-bar_t. */
  alphaBar: number;
  /** alpha-bar_{t'}. */
  alphaBarPrev: number;
  /** Coefficient of x_0 in the posterior mean (Ho et al. eq. 7). */
  coefX0: number;
  /** Coefficient of x_t in the posterior mean (Ho et al. eq. 7). */
  coefXt: number;
  /** Variance of the noise a step adds at t > 0 (none is added at t = 0). */
  variance: number;
  /** log(variance), for losses on log-variances. */
  logVariance: number;
}

/**
 * Denoising diffusion probabilistic model scheduler (Ho et al. 2020), a port of diffusers'
 * `DDPMScheduler` with the same defaults, timestep grids and numerics (float32 alpha-bar).
 *
 * Without `setTimesteps` it steps through every training timestep T-1..0; `setTimesteps(n)` selects
 * n of them and each step then jumps to the next selected timestep.
 */
export class DDPMScheduler extends BaseScheduler<DDPMSchedulerConfig> implements NoiseScheduler<DDPMSchedulerConfig> {
  /** The `_class` written by `toJSON`. */
  static readonly className = 'DDPMScheduler';


  /**
   * @param config Any subset of {@link DDPMSchedulerConfig}; missing fields take diffusers' defaults.
   * @throws TypeError / RangeError for unknown keys or invalid values, naming the field.
   */
  constructor(config: Partial<DDPMSchedulerConfig> = {}) {
    super(DDPMScheduler.className, config, DDPM_CONFIG_SPEC);
  }

  /**
   * Rebuilds a scheduler from `toJSON()` output (or any config object, with or without `_class`).
   * @throws TypeError if `_class` names another scheduler, or as the constructor does.
   */
  static fromConfig(json: unknown): DDPMScheduler {
    return new DDPMScheduler(configFromJSON(DDPMScheduler.className, json) as Partial<DDPMSchedulerConfig>);
  }

  /**
   * The timestep a step from `t` lands on, following diffusers: t - 1 before `setTimesteps`, else the
   * next entry of `timesteps`; -1 after the last one.
   * @throws RangeError if t is not in `timesteps`.
   */
  previousTimestep(t: number): number {
    this.checkScheduledTimestep(`${DDPMScheduler.className}.previousTimestep`, t, false);
    return this.prevTimestep(t);
  }

  /**
   * Coefficients of the posterior q(x_{t'} | x_t, x_0) used by `step` (Ho et al. 2020 eqs. 6-7, with
   * t' = `previousTimestep(t)`, so beta_t generalises to 1 - alpha-bar_t / alpha-bar_{t'}):
   * mean = sqrt(ab_{t'}) beta_t / (1 - ab_t) x_0 + sqrt(alpha_t) (1 - ab_{t'}) / (1 - ab_t) x_t,
   * variance = (1 - ab_{t'}) / (1 - ab_t) beta_t for the "small" types, beta_t for the "large" ones.
   * Evaluated in float64 from the float32 alpha-bars.
   * @throws RangeError if t is not in `timesteps`.
   */
  posteriorCoefficients(t: number): PosteriorCoefficients {
    this.checkScheduledTimestep(`${DDPMScheduler.className}.posteriorCoefficients`, t, false);
    return this.posterior(t);
  }

  /** {@link previousTimestep} for an already checked t. */
  private prevTimestep(t: number): number {
    if (this.currentNumInferenceSteps === null) return t - 1;
    const i = this.currentTimesteps.indexOf(t);
    return i === this.currentTimesteps.length - 1 ? -1 : this.currentTimesteps[i + 1];
  }

  /** {@link posteriorCoefficients} for an already checked t. */
  private posterior(t: number): PosteriorCoefficients {
    const prevTimestep = this.prevTimestep(t);
    const alphaBar = this.alphasCumprod[t];
    const alphaBarPrev = prevTimestep >= 0 ? this.alphasCumprod[prevTimestep] : 1;
    const currentAlpha = alphaBar / alphaBarPrev;
    const currentBeta = 1 - currentAlpha;
    const oneMinusAb = 1 - alphaBar;
    const oneMinusAbPrev = 1 - alphaBarPrev;
    const variance =
      this.config.varianceType === 'fixed_small' || this.config.varianceType === 'fixed_small_log'
        ? Math.max((oneMinusAbPrev / oneMinusAb) * currentBeta, 1e-20)
        : currentBeta;
    return {
      prevTimestep,
      alphaBar,
      alphaBarPrev,
      coefX0: (Math.sqrt(alphaBarPrev) * currentBeta) / oneMinusAb,
      coefXt: (Math.sqrt(currentAlpha) * oneMinusAbPrev) / oneMinusAb,
      variance,
      logVariance: Math.log(variance),
    };
  }

  /**
   * One ancestral sampling step x_t -> x_{t'} (Ho et al. 2020, Algorithm 2).
   *
   * @param modelOutput The model's prediction at (sample, timestep), per `config.predictionType`.
   * @param timestep The current t; must be in `timesteps`.
   * @param sample x_t, same shape as modelOutput.
   * @param options `generator` is required when timestep > 0 (noise is added); `eta` is ignored.
   * @returns x_{t'} and the x_0 estimate; the caller owns both, nothing else is left allocated.
   * @throws RangeError / TypeError for a timestep not in the schedule, mismatched shapes, a bad eta or
   *   a missing generator, before any tensor is created.
   */
  step(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor, options?: StepOptions): SchedulerOutput {
    const owner = `${DDPMScheduler.className}.step`;
    const checked = checkStepArgs({ owner, modelOutput, sample, options });
    this.checkScheduledTimestep(owner, timestep, false);
    const generator =
      timestep > 0 ? requireGenerator(owner, checked.generator, `at timestep ${timestep} > 0 (DDPM adds noise)`) : null;
    const { predictionType, clipSample, clipSampleRange } = this.config;

    // 1. Previous timestep t' (diffusers' rule: t - 1, or the next scheduled timestep) and the
    //    scalar coefficients of eqs. 6-7, in float64.
    const post = this.posterior(timestep);

    return tf.tidy(() => {
      // 2. Predicted x_0 from the model output; for epsilon prediction this is eq. 15,
      //    x_0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t).
      let predOriginalSample = predictOriginalSample({ predictionType, modelOutput, sample, alphaBar: post.alphaBar });
      // 3. Clip the predicted x_0 to [-clipSampleRange, clipSampleRange].
      if (clipSample) {
        predOriginalSample = tf.clipByValue(predOriginalSample, -clipSampleRange, clipSampleRange);
      }
      // 4. Posterior mean mu-tilde_t(x_t, x_0) = coefX0 x_0 + coefXt x_t (eq. 7).
      let prevSample = tf.add(tf.mul(predOriginalSample, post.coefX0), tf.mul(sample, post.coefXt));
      // 5. Sample x_{t'} ~ N(mu-tilde_t, sigma_t^2 I) (eq. 6), sigma_t^2 per varianceType (eq. 7 for
      //    beta-tilde); no noise at t = 0 (Algorithm 2, line 4).
      if (generator) {
        prevSample = tf.add(prevSample, tf.mul(generator.normal(sample.shape), Math.sqrt(post.variance)));
      }
      // For unclipped "sample" prediction x_0 is `modelOutput` itself: return a copy, so the caller
      // can dispose inputs and outputs independently.
      if (predOriginalSample === modelOutput) predOriginalSample = tf.clone(modelOutput);
      return { prevSample, predOriginalSample };
    });
  }

  /**
   * One step shifted by a gradient guidance g (Dhariwal & Nichol 2021, algorithm 1): the posterior
   * mean moves by Sigma g, Sigma the step's variance: x_prev = mu + Sigma g + sqrt(Sigma) z. Draws
   * the same noise as {@link step}; predOriginalSample is the unshifted estimate. The caller owns both.
   */
  guidedStep(input: GuidedStepInput): SchedulerOutput {
    const { modelOutput, timestep, sample, guidance, options } = input;
    const post = this.posteriorCoefficients(timestep);
    const out = this.step(modelOutput, timestep, sample, options);
    const prevSample = tf.tidy(() => tf.add(out.prevSample, tf.mul(guidance, post.variance)));
    out.prevSample.dispose();
    return { prevSample, predOriginalSample: out.predOriginalSample };
  }

  /** The config plus `_class: "DDPMScheduler"`; `DDPMScheduler.fromConfig` inverts it. */
  toJSON(): DDPMSchedulerJSON {
    return configToJSON('DDPMScheduler', this.config);
  }
}
