/**
 * DDIMScheduler: the generalised, optionally deterministic sampler of Song, Meng & Ermon (2021),
 * "Denoising Diffusion Implicit Models", numerically matching HuggingFace diffusers' `DDIMScheduler`.
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
  describeValue,
  isBoolean,
  predictEpsilon,
  predictOriginalSample,
  requireGenerator,
} from './timesteps';

/** Configuration of {@link DDIMScheduler}; every field is JSON-serialisable. */
export interface DDIMSchedulerConfig extends BaseSchedulerConfig {
  /**
   * What alpha-bar the final step lands on when there is no previous timestep: 1 (a clean x_0) when
   * true, alpha-bar_0 when false (Stable Diffusion uses false with stepsOffset 1).
   */
  setAlphaToOne: boolean;
}

/** diffusers' `DDIMScheduler` defaults (clipSample true, timestepSpacing "leading", as for DDPM). */
export const DDIM_SCHEDULER_DEFAULTS: Readonly<DDIMSchedulerConfig> = Object.freeze({
  ...BASE_SCHEDULER_DEFAULTS,
  setAlphaToOne: true,
});

const DDIM_CONFIG_SPEC: ConfigSpec<DDIMSchedulerConfig> = {
  ...BASE_CONFIG_SPEC,
  setAlphaToOne: { default: DDIM_SCHEDULER_DEFAULTS.setAlphaToOne, check: isBoolean },
};

/** Serialised form of a {@link DDIMScheduler}: its config plus the class name. */
export type DDIMSchedulerJSON = DDIMSchedulerConfig & { _class: 'DDIMScheduler' };

/**
 * Scalars of one DDIM update (Song et al. 2021 eq. 12):
 * x_{t'} = coefX0 * x_0 + coefEps * eps + sigma * z.
 */
export interface DDIMStepCoefficients {
  /** t' = t - floor(T / n), or negative after the last step. */
  prevTimestep: number;
  /** alpha-bar_t. */
  alphaBar: number;
  /** alpha-bar_{t'}: the final alpha-bar (1 or alpha-bar_0, per setAlphaToOne) when t' < 0. */
  alphaBarPrev: number;
  /** sqrt(alpha-bar_{t'}). */
  coefX0: number;
  /** sqrt(1 - alpha-bar_{t'} - sigma^2): the "direction pointing to x_t". */
  coefEps: number;
  /** sigma_t(eta) of eq. 16. */
  sigma: number;
}

/**
 * Denoising diffusion implicit model scheduler (Song et al. 2021), a port of diffusers'
 * `DDIMScheduler` with the same defaults, timestep grids and numerics (float32 alpha-bar).
 *
 * `setTimesteps(n)` must be called before `step`. With eta = 0 (the default) sampling is
 * deterministic; eta = 1 gives DDPM-like ancestral noise.
 */
export class DDIMScheduler extends BaseScheduler<DDIMSchedulerConfig> implements NoiseScheduler<DDIMSchedulerConfig> {
  /** The `_class` written by `toJSON`. */
  static readonly className = 'DDIMScheduler';

  /** The alpha-bar a step lands on when its previous timestep is negative. */
  readonly finalAlphaCumprod: number;

  /**
   * @param config Any subset of {@link DDIMSchedulerConfig}; missing fields take diffusers' defaults.
   * @throws TypeError / RangeError for unknown keys or invalid values, naming the field.
   */
  constructor(config: Partial<DDIMSchedulerConfig> = {}) {
    super(DDIMScheduler.className, config, DDIM_CONFIG_SPEC);
    this.finalAlphaCumprod = this.config.setAlphaToOne ? 1 : this.alphasCumprod[0];
  }

  /**
   * Rebuilds a scheduler from `toJSON()` output (or any config object, with or without `_class`).
   * @throws TypeError if `_class` names another scheduler, or as the constructor does.
   */
  static fromConfig(json: unknown): DDIMScheduler {
    return new DDIMScheduler(configFromJSON(DDIMScheduler.className, json) as Partial<DDIMSchedulerConfig>);
  }

  /**
   * diffusers' DDIM rule for the timestep a step from t lands on: t - floor(T / n), whatever the
   * spacing; negative means the final step.
   * @throws Error before `setTimesteps`; RangeError if t is not in `timesteps`.
   */
  previousTimestep(t: number): number {
    this.checkScheduledTimestep(`${DDIMScheduler.className}.previousTimestep`, t, true);
    return this.prevTimestep(t);
  }

  /**
   * The scalars of a DDIM step from t with the given eta (Song et al. 2021 eqs. 12 and 16), in float64
   * from the float32 alpha-bars. Useful for guidance that needs to modify x_0 or eps before the update.
   * @throws Error before `setTimesteps`; RangeError if t is not in `timesteps`, eta < 0, or eta so large
   *   that 1 - alpha-bar_{t'} - sigma^2 < 0.
   */
  stepCoefficients(t: number, eta = 0): DDIMStepCoefficients {
    const owner = `${DDIMScheduler.className}.stepCoefficients`;
    this.checkScheduledTimestep(owner, t, true);
    if (typeof eta !== 'number' || !Number.isFinite(eta) || eta < 0) {
      throw new RangeError(`${owner}: eta must be a finite number >= 0, got ${describeValue(eta)}`);
    }
    return this.coefficients(owner, t, eta);
  }

  /**
   * One DDIM step x_t -> x_{t'} (Song et al. 2021 eq. 12, with sigma_t(eta) from eq. 16).
   *
   * @param modelOutput The model's prediction at (sample, timestep), per `config.predictionType`.
   * @param timestep The current t; must be in `timesteps` (call `setTimesteps` first).
   * @param sample x_t, same shape as modelOutput.
   * @param options `eta` (default 0) scales the added noise; `generator` is required when eta > 0.
   * @returns x_{t'} and the x_0 estimate; the caller owns both, nothing else is left allocated.
   * @throws Error / RangeError / TypeError before any tensor is created: no `setTimesteps` yet, a
   *   timestep not in the schedule, mismatched shapes, a bad eta, or eta > 0 without a generator.
   */
  step(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor, options?: StepOptions): SchedulerOutput {
    const owner = `${DDIMScheduler.className}.step`;
    const { eta, generator: maybeGenerator } = checkStepArgs({ owner, modelOutput, sample, options });
    this.checkScheduledTimestep(owner, timestep, true);
    const generator = eta > 0 ? requireGenerator(owner, maybeGenerator, `when options.eta > 0 (got ${eta})`) : null;
    const { predictionType, clipSample, clipSampleRange } = this.config;

    // Steps 1-3 are scalars, computed once in float64 by `coefficients`:
    // 1. Previous timestep t' = t - floor(T / n) (diffusers' rule).
    // 2. alpha-bar_t and alpha-bar_{t'} (the final alpha-bar when t' < 0).
    // 3. sigma_t(eta) = eta sqrt((1 - ab_{t'}) / (1 - ab_t)) sqrt(1 - ab_t / ab_{t'})  (eq. 16).
    const c = this.coefficients(owner, timestep, eta);

    return tf.tidy(() => {
      const predictParams = { predictionType, modelOutput, sample, alphaBar: c.alphaBar };
      // 4. Predicted x_0, the "predicted x_0" term of eq. 12, and the matching eps, both from the
      //    unclipped model output.
      let predOriginalSample = predictOriginalSample(predictParams);
      const predEpsilon = predictEpsilon(predictParams);
      // 5. Clip the predicted x_0 to [-clipSampleRange, clipSampleRange].
      if (clipSample) {
        predOriginalSample = tf.clipByValue(predOriginalSample, -clipSampleRange, clipSampleRange);
      }
      // 6. "Direction pointing to x_t" of eq. 12: sqrt(1 - ab_{t'} - sigma_t^2) eps.
      const direction = tf.mul(predEpsilon, c.coefEps);
      // 7. x_{t'} = sqrt(ab_{t'}) x_0 + direction (eq. 12) ...
      let prevSample = tf.add(tf.mul(predOriginalSample, c.coefX0), direction);
      //    ... + sigma_t z, the "random noise" term of eq. 12, when eta > 0.
      if (generator) {
        prevSample = tf.add(prevSample, tf.mul(generator.normal(sample.shape), c.sigma));
      }
      // For unclipped "sample" prediction x_0 is `modelOutput` itself: return a copy, so the caller
      // can dispose inputs and outputs independently.
      if (predOriginalSample === modelOutput) predOriginalSample = tf.clone(modelOutput);
      return { prevSample, predOriginalSample };
    });
  }

  /**
   * One step shifted by a gradient guidance g = s * grad_x E(x_t) (Dhariwal & Nichol 2021,
   * algorithm 2; Yang et al. 2024), with a = alpha-bar_t:
   *   1. x0 = clip((x_t - sqrt(1-a) eps) / sqrt(a))           (clip only if clipSample)
   *   2. eps' = (x_t / sqrt(a) - x0) / sqrt(1/a - 1)          (the eps matching the clipped x0)
   *   3. eps_hat = eps' - sqrt(1-a) g
   *   4. x0' = x0 + (1-a) / sqrt(a) g                        (= the x0 implied by eps_hat)
   *   5. x_prev = sqrt(a_prev) x0' + sqrt(1 - a_prev - sigma^2) eps_hat + sigma z
   * Without clipping, step 2 is skipped (eps' = eps), so g = 0 reproduces {@link step} bit for bit.
   * @returns prevSample and the shifted x0' as predOriginalSample; the caller owns both.
   */
  guidedStep(input: GuidedStepInput): SchedulerOutput {
    const owner = 'guidedStep';
    const { modelOutput, timestep, sample, guidance } = input;
    const { eta, generator: maybeGenerator } = checkStepArgs({ owner, modelOutput, sample, options: input.options });
    const c = this.stepCoefficients(timestep, eta);
    const generator = eta > 0 ? requireGenerator(owner, maybeGenerator, `when eta > 0 (got ${eta})`) : null;
    const { predictionType, clipSample, clipSampleRange } = this.config;
    const a = c.alphaBar;
    return tf.tidy(() => {
      const predictParams = { predictionType, modelOutput, sample, alphaBar: a };
      // 1.-2.
      let x0 = predictOriginalSample(predictParams);
      let eps = predictEpsilon(predictParams);
      if (clipSample) {
        x0 = tf.clipByValue(x0, -clipSampleRange, clipSampleRange);
        eps = tf.div(tf.sub(tf.div(sample, Math.sqrt(a)), x0), Math.sqrt(1 / a - 1));
      }
      // 3.-4.
      const epsHat = tf.sub(eps, tf.mul(guidance, Math.sqrt(1 - a)));
      const x0Hat = tf.add(x0, tf.mul(guidance, (1 - a) / Math.sqrt(a)));
      // 5. The same arithmetic as step.
      let prevSample = tf.add(tf.mul(x0Hat, c.coefX0), tf.mul(epsHat, c.coefEps));
      if (generator) prevSample = tf.add(prevSample, tf.mul(generator.normal(sample.shape), c.sigma));
      return { prevSample, predOriginalSample: x0Hat };
    });
  }

  /** The config plus `_class: "DDIMScheduler"`; `DDIMScheduler.fromConfig` inverts it. */
  toJSON(): DDIMSchedulerJSON {
    return configToJSON('DDIMScheduler', this.config);
  }

  /** {@link previousTimestep} for an already checked t (requires `setTimesteps`). */
  private prevTimestep(t: number): number {
    return t - Math.floor(this.config.numTrainTimesteps / (this.currentNumInferenceSteps as number));
  }

  /** {@link stepCoefficients} for an already checked t and eta. */
  private coefficients(owner: string, t: number, eta: number): DDIMStepCoefficients {
    const prevTimestep = this.prevTimestep(t);
    const alphaBar = this.alphasCumprod[t];
    const alphaBarPrev = prevTimestep >= 0 ? this.alphasCumprod[prevTimestep] : this.finalAlphaCumprod;
    const variance = ((1 - alphaBarPrev) / (1 - alphaBar)) * (1 - alphaBar / alphaBarPrev);
    const sigma = eta * Math.sqrt(variance);
    const directionVariance = 1 - alphaBarPrev - sigma * sigma;
    // Non-negative for eta <= 1; allow float round-off, reject a genuinely too-large eta.
    if (directionVariance < -1e-12) {
      throw new RangeError(
        `${owner}: eta = ${eta} is too large at timestep ${t}: ` +
          `1 - alphaBarPrev - sigma^2 = ${directionVariance} < 0 (eta <= 1 is always valid)`,
      );
    }
    return {
      prevTimestep,
      alphaBar,
      alphaBarPrev,
      coefX0: Math.sqrt(alphaBarPrev),
      coefEps: Math.sqrt(Math.max(directionVariance, 0)),
      sigma,
    };
  }
}
