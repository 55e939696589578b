/**
 * DPMSolverMultistepScheduler: the multistep DPM-Solver++ of Lu, Zhou, Bao, Chen, Li & Zhu (2022),
 * "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models" (and the original
 * DPM-Solver, "DPM-Solver: A Fast ODE Solver for Diffusion Probabilistic Model Sampling in Around 10
 * Steps", NeurIPS 2022), numerically matching Hugging Face diffusers' `DPMSolverMultistepScheduler`.
 *
 * Notation (the papers' and diffusers'): for the schedule's sigma = sqrt((1 - ab) / ab) (ab = alpha-bar),
 * alpha_t = 1 / sqrt(sigma^2 + 1) = sqrt(ab), sigma_t = sigma * alpha_t = sqrt(1 - ab), and the half
 * log-SNR lambda_t = log(alpha_t) - log(sigma_t). A step goes from s (current) to t (next, less noisy)
 * with h = lambda_t - lambda_s > 0. DPM-Solver++ integrates the data-prediction (x_0) ODE, DPM-Solver
 * the noise-prediction (eps) ODE, both exactly in their linear part.
 *
 * The scalar coefficients are computed in float32 arithmetic step by step (`Math.fround`), as
 * diffusers does with its float32 sigma tensors, so outputs agree to float32 round-off.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NoiseScheduler, SchedulerOutput, StepOptions } from './scheduler';
import { BaseScheduler } from './scheduler-base';
import {
  BASE_CONFIG_SPEC,
  BASE_SCHEDULER_DEFAULTS,
  type BaseSchedulerConfig,
  checkNumInferenceSteps,
  checkTrainTimestep,
  type ConfigSpec,
  configFromJSON,
  configToJSON,
  describeValue,
  type FieldCheck,
  isBoolean,
  oneOf,
  positiveNumber,
  roundHalfEven,
} from './timesteps';

/** `dpmsolver++` integrates the x_0 (data) prediction; `dpmsolver` the noise prediction (deprecated in diffusers). */
export type DPMSolverAlgorithmType = 'dpmsolver++' | 'dpmsolver';
/** How the second-order multistep update uses the first divided difference D1. */
export type DPMSolverType = 'midpoint' | 'heun';
/** The sigma the last step lands on: 0 (a clean x_0) or the first training sigma. */
export type DPMFinalSigmasType = 'zero' | 'sigma_min';
/** A learned-variance model's output has twice the sample's channels; the first half is the noise. */
export type DPMVarianceType = 'learned' | 'learned_range';

/** Accepted `algorithmType` values (the SDE variants of diffusers are not supported). */
export const DPM_SOLVER_ALGORITHM_TYPES: readonly DPMSolverAlgorithmType[] = ['dpmsolver++', 'dpmsolver'];
/** Accepted `solverType` values. */
export const DPM_SOLVER_TYPES: readonly DPMSolverType[] = ['midpoint', 'heun'];
/** Accepted `finalSigmasType` values. */
export const DPM_FINAL_SIGMAS_TYPES: readonly DPMFinalSigmasType[] = ['zero', 'sigma_min'];

/** Configuration of {@link DPMSolverMultistepScheduler}: diffusers' keys in camelCase, JSON-serialisable. */
export interface DPMSolverMultistepSchedulerConfig extends BaseSchedulerConfig {
  /**
   * Order of the multistep solver: 1 (DDIM-equivalent), 2 (DPM-Solver++(2M), recommended for
   * guided sampling) or 3 (unconditional sampling).
   */
  solverOrder: 1 | 2 | 3;
  algorithmType: DPMSolverAlgorithmType;
  /** Second-order update: "midpoint" (DPM-Solver++ Algorithm 2) or "heun"; "midpoint" is diffusers' default. */
  solverType: DPMSolverType;
  /** Use lower-order updates for the last steps when there are fewer than 15 steps (stabilises few-step sampling). */
  lowerOrderFinal: boolean;
  /** Always use a first-order (Euler / DDIM) update for the last step. */
  eulerAtFinal: boolean;
  /** "zero": the last step lands on sigma 0 (x_0); "sigma_min": on the first training sigma. "zero" needs "dpmsolver++". */
  finalSigmasType: DPMFinalSigmasType;
  /**
   * Timesteps whose lambda_t is below this value are left out of the schedule (diffusers uses -5.1 for
   * cosine schedules). null means no clipping (diffusers' default -inf, which JSON cannot hold).
   */
  lambdaMinClipped: number | null;
  /**
   * null, or "learned" / "learned_range" for a model that also predicts its variance: with
   * `predictionType` "epsilon" the model output then has twice the sample's channels and the first
   * half is used.
   */
  varianceType: DPMVarianceType | null;
  /**
   * Dynamic thresholding of the predicted x_0 (Saharia et al. 2022, Imagen): per image, s = the
   * `dynamicThresholdingRatio` quantile of |x_0|, clamped to [1, sampleMaxValue]; x_0 = clamp(x_0, -s, s) / s.
   * Only for pixel-space models; with sampleMaxValue 1 it is plain clipping to [-1, 1].
   */
  thresholding: boolean;
  /** The quantile of |x_0| used by `thresholding`, in (0, 1]. */
  dynamicThresholdingRatio: number;
  /** Upper bound of the thresholding level s. */
  sampleMaxValue: number;
  /** Karras sigmas are not supported: only false is accepted (the key exists so diffusers configs load). */
  useKarrasSigmas: boolean;
}

/**
 * diffusers' `DPMSolverMultistepScheduler` defaults. `clipSample` (not a diffusers option for this
 * scheduler; an fad extension that clips x_0 to [-clipSampleRange, clipSampleRange] like DDIM) is false.
 */
export const DPM_SOLVER_MULTISTEP_SCHEDULER_DEFAULTS: Readonly<DPMSolverMultistepSchedulerConfig> = Object.freeze({
  ...BASE_SCHEDULER_DEFAULTS,
  clipSample: false,
  timestepSpacing: 'linspace',
  stepsOffset: 0,
  solverOrder: 2,
  algorithmType: 'dpmsolver++',
  solverType: 'midpoint',
  lowerOrderFinal: true,
  eulerAtFinal: false,
  finalSigmasType: 'zero',
  lambdaMinClipped: null,
  varianceType: null,
  thresholding: false,
  dynamicThresholdingRatio: 0.995,
  sampleMaxValue: 1.0,
  useKarrasSigmas: false,
} as const);

const D = DPM_SOLVER_MULTISTEP_SCHEDULER_DEFAULTS;

const checkAlgorithmType: FieldCheck = (v) =>
  typeof v === 'string' && (DPM_SOLVER_ALGORITHM_TYPES as readonly string[]).includes(v)
    ? null
    : `one of ${DPM_SOLVER_ALGORITHM_TYPES.join(', ')} (diffusers' "sde-dpmsolver" variants are not supported)`;

const DPM_CONFIG_SPEC: ConfigSpec<DPMSolverMultistepSchedulerConfig> = {
  ...BASE_CONFIG_SPEC,
  clipSample: { default: D.clipSample, check: isBoolean },
  timestepSpacing: { ...BASE_CONFIG_SPEC.timestepSpacing, default: D.timestepSpacing },
  solverOrder: { default: D.solverOrder, check: (v) => (v === 1 || v === 2 || v === 3 ? null : 'one of 1, 2, 3') },
  algorithmType: { default: D.algorithmType, check: checkAlgorithmType },
  solverType: { default: D.solverType, check: oneOf(DPM_SOLVER_TYPES) },
  lowerOrderFinal: { default: D.lowerOrderFinal, check: isBoolean },
  eulerAtFinal: { default: D.eulerAtFinal, check: isBoolean },
  finalSigmasType: { default: D.finalSigmasType, check: oneOf(DPM_FINAL_SIGMAS_TYPES) },
  lambdaMinClipped: {
    default: D.lambdaMinClipped,
    check: (v) => (v === null || (typeof v === 'number' && Number.isFinite(v)) ? null : 'null (no clipping) or a finite number'),
  },
  varianceType: {
    default: D.varianceType,
    check: (v) => (v === null || v === 'learned' || v === 'learned_range' ? null : 'null, "learned" or "learned_range"'),
  },
  thresholding: { default: D.thresholding, check: isBoolean },
  dynamicThresholdingRatio: {
    default: D.dynamicThresholdingRatio,
    check: (v) => (typeof v === 'number' && v > 0 && v <= 1 ? null : 'a number in (0, 1]'),
  },
  sampleMaxValue: { default: D.sampleMaxValue, check: positiveNumber },
  useKarrasSigmas: {
    default: D.useKarrasSigmas,
    check: (v) => (v === false ? null : 'false (Karras sigmas are not supported)'),
  },
};

/** Serialised form of a {@link DPMSolverMultistepScheduler}: its config plus the class name. */
export type DPMSolverMultistepSchedulerJSON = DPMSolverMultistepSchedulerConfig & { _class: 'DPMSolverMultistepScheduler' };

const f32 = Math.fround;

/** alpha_t = 1 / sqrt(sigma^2 + 1) and sigma_t = sigma alpha_t, in float32 (diffusers' `_sigma_to_alpha_sigma_t`). */
function alphaSigma(sigma: number): { alpha: number; sigma: number } {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  return { alpha, sigma: f32(sigma * alpha) };
}

/** lambda = log(alpha_t) - log(sigma_t) in float32; +Infinity for sigma_t = 0 (no log(0) is taken). */
function lambdaOf(alpha: number, sigma: number): number {
  return sigma === 0 ? Infinity : f32(f32(Math.log(alpha)) - f32(Math.log(sigma)));
}

/** Parameters of {@link dpmSolverTimesteps}. */
export interface DPMSolverTimestepsParams {
  numTrainTimesteps: number;
  numInferenceSteps: number;
  timestepSpacing: BaseSchedulerConfig['timestepSpacing'];
  stepsOffset: number;
  /** The number of timesteps left after lambda clipping (T without clipping). */
  lastTimestep: number;
}

/**
 * diffusers' `DPMSolverMultistepScheduler.set_timesteps` grids (they differ from DDIM's), descending,
 * with L = `lastTimestep` (T unless lambda-clipped):
 * - `linspace`: round(i (L-1) / n) for i = n..1 (numpy's linspace(0, L-1, n+1) without its 0);
 * - `leading`:  i * floor(L / (n+1)) + stepsOffset for i = n..1;
 * - `trailing`: round(L - i T/n) - 1 for i = 0.. while positive (numpy's arange(L, 0, -T/n)).
 * Rounding is half-to-even like numpy. numpy's float arange occasionally yields one more "trailing"
 * value, -1, which is not a timestep and is left out.
 *
 * @throws RangeError if "leading" with `stepsOffset` pushes a timestep past T-1.
 */
export function dpmSolverTimesteps(params: DPMSolverTimestepsParams): Int32Array {
  const { numTrainTimesteps: T, numInferenceSteps: n, timestepSpacing, stepsOffset, lastTimestep: L } = params;
  const out: number[] = [];
  switch (timestepSpacing) {
    case 'linspace': {
      // numpy.linspace: y_i = i * ((stop - start) / n) + start, and the endpoint is set exactly.
      const step = (L - 1) / n;
      for (let i = n; i >= 1; i--) out.push(i === n ? L - 1 : roundHalfEven(i * step));
      break;
    }
    case 'leading': {
      const ratio = Math.floor(L / (n + 1));
      for (let i = n; i >= 1; i--) out.push(i * ratio + stepsOffset);
      if (out[0] > T - 1) {
        throw new RangeError(
          `stepsOffset ${stepsOffset} with ${n} "leading" steps gives timestep ${out[0]}, past the last training timestep ${T - 1}`,
        );
      }
      break;
    }
    case 'trailing': {
      // numpy.arange(L, 0, -r): length ceil(L / r); values start + i * delta with delta = (start - r) - start.
      const ratio = T / n;
      const length = Math.ceil(L / ratio);
      const delta = L - ratio - L;
      for (let i = 0; i < length; i++) {
        const t = roundHalfEven(L + i * delta) - 1;
        if (t >= 0) out.push(t);
      }
      break;
    }
    default:
      throw new RangeError(`timestepSpacing must be one of leading, trailing, linspace, got ${describeValue(timestepSpacing)}`);
  }
  return Int32Array.from(out);
}

/**
 * The multistep DPM-Solver(++) scheduler, a port of diffusers' `DPMSolverMultistepScheduler` with the
 * same defaults (DPM-Solver++(2M), midpoint, "linspace" spacing, final step to sigma 0), timestep
 * grids and numerics. Deterministic: `step` ignores `generator` and rejects eta > 0.
 *
 * The solver is stateful: each `step` remembers the converted model output for the next, higher-order
 * steps. `setTimesteps(n)` must be called before sampling and resets that state (releasing the
 * remembered tensors); steps must then be taken in the order of `timesteps` (the first one may start
 * anywhere in the schedule, e.g. for image-to-image). After the last step the remembered tensors are
 * released.
 *
 * A zero alpha-bar (zero terminal SNR, Lin et al. 2024) is replaced by 2^-24 in `alphasCumprod` as
 * diffusers does (so are float32-subnormal ones), so no sigma is infinite and no log(0) is taken.
 */
export class DPMSolverMultistepScheduler
  extends BaseScheduler<DPMSolverMultistepSchedulerConfig>
  implements NoiseScheduler<DPMSolverMultistepSchedulerConfig>
{
  /** The `_class` written by `toJSON`. */
  static readonly className = 'DPMSolverMultistepScheduler';

  /** sigma_t = sqrt((1 - ab_t) / ab_t) for t = 0..T-1, float32. Treat as read-only. */
  readonly trainSigmas: Float32Array;
  /** lambda_t = log sqrt(ab_t) - log sqrt(1 - ab_t) for t = 0..T-1, float32 (used by `lambdaMinClipped`). */
  readonly trainLambdas: Float32Array;

  private currentSigmas: Float32Array = new Float32Array(0);
  /** The converted outputs (x_0 for ++, eps otherwise) of the last `solverOrder` steps, oldest first. */
  private modelOutputs: (tf.Tensor | null)[];
  private lowerOrderNums = 0;
  private stepIndexValue: number | null = null;

  /**
   * @param config Any subset of {@link DPMSolverMultistepSchedulerConfig}; missing fields take diffusers' defaults.
   * @throws TypeError / RangeError for unknown keys or invalid values, naming the field.
   */
  constructor(config: Partial<DPMSolverMultistepSchedulerConfig> = {}) {
    super(DPMSolverMultistepScheduler.className, config, DPM_CONFIG_SPEC);
    const owner = DPMSolverMultistepScheduler.className;
    const c = this.config;
    if (c.algorithmType === 'dpmsolver' && c.finalSigmasType === 'zero') {
      throw new RangeError(
        `${owner}: config.finalSigmasType "zero" is not supported with config.algorithmType "dpmsolver" (as in diffusers); use "sigma_min"`,
      );
    }
    // A zero alpha-bar (e.g. rescaled to zero terminal SNR) would give sigma = inf; diffusers sets it to
    // 2^-24. Subnormal ones (< 2^-126, only from extreme betas) would overflow sigma too: same treatment.
    const ab = this.alphasCumprod;
    for (let t = 0; t < ab.length; t++) if (ab[t] < 2 ** -126) ab[t] = 2 ** -24;
    this.trainSigmas = new Float32Array(ab.length);
    this.trainLambdas = new Float32Array(ab.length);
    for (let t = 0; t < ab.length; t++) {
      this.trainSigmas[t] = Math.sqrt(f32(f32(1 - ab[t]) / ab[t]));
      this.trainLambdas[t] = f32(Math.log(f32(Math.sqrt(ab[t])))) - f32(Math.log(f32(Math.sqrt(f32(1 - ab[t])))));
    }
    if (!(this.trainSigmas[0] > 0)) {
      throw new RangeError(
        `${owner}: the first beta (${this.betas[0]}) is too small for float32: alpha-bar_0 rounds to 1 and sigma_0 to 0; ` +
          'use config.betaStart (or trainedBetas[0]) >= 1e-7',
      );
    }
    this.modelOutputs = new Array<tf.Tensor | null>(c.solverOrder).fill(null);
  }

  /**
   * Rebuilds a scheduler from `toJSON()` output (or any config object, with or without `_class`).
   * @throws TypeError if `_class` names another scheduler, or as the constructor does.
   */
  static fromConfig(json: unknown): DPMSolverMultistepScheduler {
    return new DPMSolverMultistepScheduler(
      configFromJSON(DPMSolverMultistepScheduler.className, json) as Partial<DPMSolverMultistepSchedulerConfig>,
    );
  }

  /**
   * The sigmas of the current schedule: one per timestep, then the final sigma (0 or sigma_0, per
   * `finalSigmasType`); float32. Empty before `setTimesteps`. Treat as read-only.
   */
  get sigmas(): Float32Array {
    return this.currentSigmas;
  }

  /** Index in `timesteps` of the next step, or null before the first step after `setTimesteps`. */
  get stepIndex(): number | null {
    return this.stepIndexValue;
  }

  /**
   * Builds diffusers' DPM-Solver timestep grid for `timestepSpacing` (see {@link dpmSolverTimesteps})
   * and its sigmas, and resets the multistep state (remembered outputs, lower-order count, step index).
   * `numInferenceSteps` afterwards is the length of the grid (n, except for lambda-clipped "trailing").
   * @throws RangeError unless numInferenceSteps is an integer in 1..numTrainTimesteps, if lambda clipping
   *   leaves no timestep, or if the grid repeats a timestep (too many steps for the spacing).
   */
  override setTimesteps(numInferenceSteps: number): void {
    const owner = `${DPMSolverMultistepScheduler.className}.setTimesteps`;
    const { numTrainTimesteps: T, timestepSpacing, stepsOffset, lambdaMinClipped, finalSigmasType } = this.config;
    checkNumInferenceSteps(DPMSolverMultistepScheduler.className, numInferenceSteps, T);
    // diffusers: searchsorted(flip(lambda_t), lambda_min_clipped) timesteps have too low a lambda.
    let clipped = 0;
    if (lambdaMinClipped !== null) for (let t = 0; t < T; t++) if (this.trainLambdas[t] < lambdaMinClipped) clipped++;
    const lastTimestep = T - clipped;
    if (lastTimestep < 2) {
      throw new RangeError(`${owner}: config.lambdaMinClipped ${lambdaMinClipped} leaves ${lastTimestep} timestep(s); lower it`);
    }
    let timesteps: Int32Array;
    try {
      timesteps = dpmSolverTimesteps({ numTrainTimesteps: T, numInferenceSteps, timestepSpacing, stepsOffset, lastTimestep });
    } catch (e) {
      throw new RangeError(`${owner}: ${(e as Error).message}`);
    }
    for (let i = 1; i < timesteps.length; i++) {
      if (timesteps[i] >= timesteps[i - 1]) {
        throw new RangeError(
          `${owner}: ${numInferenceSteps} "${timestepSpacing}" steps repeat timestep ${timesteps[i]} ` +
            `(the multistep solver needs distinct timesteps); use fewer steps`,
        );
      }
    }
    const sigmas = new Float32Array(timesteps.length + 1);
    timesteps.forEach((t, i) => (sigmas[i] = this.trainSigmas[t]));
    sigmas[timesteps.length] = finalSigmasType === 'zero' ? 0 : this.trainSigmas[0];
    this.resetState();
    this.currentTimesteps = timesteps;
    this.currentSigmas = sigmas;
    this.currentNumInferenceSteps = timesteps.length;
  }

  /**
   * One multistep DPM-Solver(++) step x_s -> x_t (s = `timestep`, t the next timestep of the
   * schedule, or the final sigma after the last one).
   *
   * @param modelOutput The model's prediction at (sample, timestep), per `config.predictionType`.
   * @param timestep The current timestep: the next one of `timesteps` (any one of them for the first step).
   * @param sample x_s, same shape as modelOutput.
   * @param options `generator` is ignored (the solver is deterministic); `eta` must be 0 or absent.
   * @returns x_t and the x_0 estimate at s; the caller owns both. The scheduler keeps its own copy of
   *   the converted model output for the following steps.
   * @throws Error / RangeError / TypeError before any tensor is created or any state changes.
   */
  step(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor, options?: StepOptions): SchedulerOutput {
    const owner = `${DPMSolverMultistepScheduler.className}.step`;
    const c = this.config;
    this.checkArgs(owner, modelOutput, sample, options);
    const n = this.currentTimesteps.length;
    if (this.currentNumInferenceSteps === null) {
      throw new Error(`${owner}: numInferenceSteps is not set; call setTimesteps(numInferenceSteps) first`);
    }
    checkTrainTimestep(owner, timestep, c.numTrainTimesteps);
    let index: number;
    if (this.stepIndexValue === null) {
      index = this.currentTimesteps.indexOf(timestep);
      if (index < 0) {
        throw new RangeError(`${owner}: timestep ${timestep} is not in the schedule set by setTimesteps(${this.currentNumInferenceSteps})`);
      }
    } else {
      index = this.stepIndexValue;
      if (index >= n) {
        throw new Error(`${owner}: all ${n} steps were taken; call setTimesteps(numInferenceSteps) to sample again`);
      }
      if (this.currentTimesteps[index] !== timestep) {
        throw new RangeError(
          `${owner}: expected timestep ${this.currentTimesteps[index]} (step ${index + 1} of ${n}), got ${timestep}; ` +
            'the multistep solver must follow `timesteps` in order (setTimesteps restarts)',
        );
      }
    }
    const previous = this.modelOutputs[this.modelOutputs.length - 1];
    if (previous && !tf.util.arraysEqual(previous.shape, sample.shape)) {
      throw new RangeError(`${owner}: sample shape [${sample.shape}] differs from the previous step's [${previous.shape}]`);
    }

    // 1. Order of this step (diffusers' rule). The first step has no history: first order. With
    //    lowerOrderFinal and fewer than 15 steps the last step is first order and the one before at most
    //    second order; the last step is also first order with eulerAtFinal or when it lands on sigma 0.
    const isLast = index === n - 1;
    const lowerOrderFinal = isLast && (c.eulerAtFinal || (c.lowerOrderFinal && n < 15) || c.finalSigmasType === 'zero');
    const lowerOrderSecond = index === n - 2 && c.lowerOrderFinal && n < 15;
    let order: 1 | 2 | 3;
    if (c.solverOrder === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) order = 1;
    else if (c.solverOrder === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) order = 2;
    else order = 3;

    // 2. alpha, sigma and lambda at s_0 = this step, s_1, s_2 = the previous ones, and t = the next
    //    sigma; h = lambda_t - lambda_{s0}, the step in half log-SNR over which the papers integrate
    //    exactly (DPM-Solver eq. (3.4); DPM-Solver++'s data-prediction analogue). sigma_t = 0 gives h = +inf.
    const sig = this.currentSigmas;
    const at = alphaSigma(sig[index + 1]);
    const s0 = alphaSigma(sig[index]);
    const lambdaT = lambdaOf(at.alpha, at.sigma);
    const lambdaS0 = lambdaOf(s0.alpha, s0.sigma);
    const h = f32(lambdaT - lambdaS0);
    const plusPlus = c.algorithmType === 'dpmsolver++';

    // 3. Convert the model output to what the solver integrates: x_0 for DPM-Solver++ (the data
    //    prediction model of DPM-Solver++, x_theta = (x - sigma eps) / alpha), eps for DPM-Solver;
    //    clip / threshold x_0 if configured. The scheduler owns the result: `keep` it, so that a `tidy`
    //    around this call (as in a sampling loop) does not free it before the next step.
    const converted = tf.keep(tf.tidy(() => this.convertModelOutput(modelOutput, sample, s0)));

    // 4. Remember it: shift the history window (dropping and freeing the oldest output).
    const dropped = this.modelOutputs.shift();
    if (dropped && !this.modelOutputs.includes(dropped)) dropped.dispose();
    this.modelOutputs.push(converted);
    const m = this.modelOutputs;
    const m0 = converted;

    const out = tf.tidy(() => {
      let prevSample: tf.Tensor;
      if (order === 1) {
        // 5a. First-order update, DPM-Solver++(1) / DPM-Solver-1, both equal to DDIM (the k = 1 Taylor term
        //     of the exact solution; also the first step of Algorithm 2):
        //     ++: x_t = (sigma_t / sigma_s) x_s - alpha_t (e^{-h} - 1) x_theta(x_s, s)
        //     eps: x_t = (alpha_t / alpha_s) x_s - sigma_t (e^{h} - 1) eps_theta(x_s, s)
        if (plusPlus) {
          const expNegH = at.sigma === 0 ? 0 : f32(Math.exp(f32(-h)));
          prevSample = tf.sub(tf.mul(sample, f32(at.sigma / s0.sigma)), tf.mul(m0, f32(at.alpha * f32(expNegH - 1))));
        } else {
          prevSample = tf.sub(tf.mul(sample, f32(at.alpha / s0.alpha)), tf.mul(m0, f32(at.sigma * f32(f32(Math.exp(h)) - 1))));
        }
      } else {
        // 5b. Multistep updates, from the remembered outputs of the previous step(s) at s_1 (and s_2):
        //     h_0 = lambda_{s0} - lambda_{s1}, r_0 = h_0 / h, D0 = m_0, D1 = (m_0 - m_1) / r_0
        //     (the backward-difference estimate of h times the derivative, as in DPM-Solver++ Algorithm 2).
        const m1 = m[m.length - 2] as tf.Tensor;
        const s1 = alphaSigma(sig[index - 1]);
        const lambdaS1 = lambdaOf(s1.alpha, s1.sigma);
        const r0 = f32(f32(lambdaS0 - lambdaS1) / h);
        const d1From01 = tf.mul(tf.sub(m0, m1), f32(1 / r0));
        const sampleCoef = plusPlus ? f32(at.sigma / s0.sigma) : f32(at.alpha / s0.alpha);
        // phi_1 terms: ++ alpha_t (e^{-h} - 1), eps sigma_t (e^{h} - 1).
        const expm1 = plusPlus ? f32(f32(Math.exp(f32(-h))) - 1) : f32(f32(Math.exp(h)) - 1);
        const phi1 = plusPlus ? f32(at.alpha * expm1) : f32(at.sigma * expm1);
        const base = tf.sub(tf.mul(sample, sampleCoef), tf.mul(m0, phi1));
        if (order === 2) {
          if (c.solverType === 'midpoint') {
            // 6a. DPM-Solver++(2M), Algorithm 2's update x_t = (sigma_t/sigma_s0) x - alpha_t (e^{-h} - 1) D with
            //     D = (1 + 1/(2 r0)) m0 - 1/(2 r0) m1, written as diffusers does:
            //     x_t = (sigma_t / sigma_s0) x - alpha_t (e^{-h} - 1) D0 - 0.5 alpha_t (e^{-h} - 1) D1
            //     (DPM-Solver: (alpha_t / alpha_s0) x - sigma_t (e^h - 1) D0 - 0.5 sigma_t (e^h - 1) D1).
            prevSample = tf.sub(base, tf.mul(d1From01, f32(0.5 * phi1)));
          } else if (plusPlus) {
            // 6b. Heun variant (the k = 2 Taylor term of the exact solution integrated exactly, D1 ~ h x_theta'):
            //     x_t = ... + alpha_t ((e^{-h} - 1) / h + 1) D1.
            prevSample = tf.add(base, tf.mul(d1From01, f32(at.alpha * f32(f32(expm1 / h) + 1))));
          } else {
            //     DPM-Solver: ... - sigma_t ((e^h - 1) / h - 1) D1.
            prevSample = tf.sub(base, tf.mul(d1From01, f32(at.sigma * f32(f32(expm1 / h) - 1))));
          }
        } else {
          // 6c. Third order (multistep DPM-Solver++(3M) / DPM-Solver-3, as diffusers implements it):
          //     r_1 = h_1 / h, D1_0 = (m0 - m1) / r0, D1_1 = (m1 - m2) / r1,
          //     D1 = D1_0 + r0 / (r0 + r1) (D1_0 - D1_1), D2 = (D1_0 - D1_1) / (r0 + r1).
          const m2 = m[m.length - 3] as tf.Tensor;
          const s2 = alphaSigma(sig[index - 2]);
          const r1 = f32(f32(lambdaS1 - lambdaOf(s2.alpha, s2.sigma)) / h);
          const d1From12 = tf.mul(tf.sub(m1, m2), f32(1 / r1));
          const diff = tf.sub(d1From01, d1From12);
          const r01 = f32(r0 + r1);
          const d1 = tf.add(d1From01, tf.mul(diff, f32(r0 / r01)));
          const d2 = tf.mul(diff, f32(1 / r01));
          const h2 = f32(h * h);
          if (plusPlus) {
            //     x_t = ... + alpha_t ((e^{-h} - 1) / h + 1) D1 - alpha_t ((e^{-h} - 1 + h) / h^2 - 0.5) D2
            const c1 = f32(at.alpha * f32(f32(expm1 / h) + 1));
            const c2 = f32(at.alpha * f32(f32(f32(expm1 + h) / h2) - 0.5));
            prevSample = tf.sub(tf.add(base, tf.mul(d1, c1)), tf.mul(d2, c2));
          } else {
            //     x_t = ... - sigma_t ((e^h - 1) / h - 1) D1 - sigma_t ((e^h - 1 - h) / h^2 - 0.5) D2
            const c1 = f32(at.sigma * f32(f32(expm1 / h) - 1));
            const c2 = f32(at.sigma * f32(f32(f32(expm1 - h) / h2) - 0.5));
            prevSample = tf.sub(tf.sub(base, tf.mul(d1, c1)), tf.mul(d2, c2));
          }
        }
      }
      // 7. The x_0 estimate at s: x_theta itself for ++, (x_s - sigma_s eps) / alpha_s otherwise.
      const predOriginalSample = plusPlus
        ? tf.clone(m0)
        : tf.div(tf.sub(sample, tf.mul(m0, s0.sigma)), s0.alpha);
      return { prevSample, predOriginalSample };
    });

    // 8. Advance: one more step of history (up to solverOrder), the next index; after the last step
    //    the history is no longer needed and is freed.
    if (this.lowerOrderNums < c.solverOrder) this.lowerOrderNums++;
    this.stepIndexValue = index + 1;
    if (this.stepIndexValue === n) this.resetHistory();
    return out;
  }

  /** The config plus `_class: "DPMSolverMultistepScheduler"`; `fromConfig` inverts it. */
  toJSON(): DPMSolverMultistepSchedulerJSON {
    return configToJSON('DPMSolverMultistepScheduler', this.config);
  }

  /** Tensor and option checks of `step`; throws before anything is allocated. */
  private checkArgs(owner: string, modelOutput: tf.Tensor, sample: tf.Tensor, options: StepOptions | undefined): void {
    if (!(modelOutput instanceof tf.Tensor)) {
      throw new TypeError(`${owner}: modelOutput must be a tf.Tensor, got ${describeValue(modelOutput)}`);
    }
    if (!(sample instanceof tf.Tensor) || sample.rank < 1) {
      throw new TypeError(`${owner}: sample must be a tf.Tensor of rank >= 1, got ${describeValue(sample)}`);
    }
    const learned = this.config.varianceType !== null && this.config.predictionType === 'epsilon';
    const expected = learned ? [...sample.shape.slice(0, -1), 2 * sample.shape[sample.rank - 1]] : sample.shape;
    if (!tf.util.arraysEqual(modelOutput.shape, expected)) {
      throw new RangeError(
        `${owner}: modelOutput shape [${modelOutput.shape}] must be [${expected}]` +
          (learned ? ` (varianceType "${this.config.varianceType}": twice the sample's channels)` : ' (the sample shape)'),
      );
    }
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw new TypeError(`${owner}: options must be an object, got ${describeValue(options)}`);
    }
    const eta = options?.eta;
    if (eta !== undefined && eta !== 0) {
      throw new RangeError(`${owner}: options.eta must be 0 or absent (the multistep DPM-Solver is deterministic), got ${describeValue(eta)}`);
    }
  }

  /** Step 3 of `step` (diffusers' `convert_model_output`). Call inside a tidy; returns a new tensor. */
  private convertModelOutput(modelOutput: tf.Tensor, sample: tf.Tensor, s: { alpha: number; sigma: number }): tf.Tensor {
    const c = this.config;
    let output = modelOutput;
    if (c.varianceType !== null && c.predictionType === 'epsilon') {
      const ch = sample.shape[sample.rank - 1];
      output = tf.slice(modelOutput, new Array<number>(sample.rank).fill(0), [...sample.shape.slice(0, -1), ch]);
    }
    const toX0 = (eps: tf.Tensor) => tf.div(tf.sub(sample, tf.mul(eps, s.sigma)), s.alpha);
    const needsX0Fix = c.clipSample || c.thresholding;
    if (c.algorithmType === 'dpmsolver++') {
      let x0: tf.Tensor;
      if (c.predictionType === 'epsilon') x0 = toX0(output);
      else if (c.predictionType === 'sample') x0 = tf.clone(output);
      else x0 = tf.sub(tf.mul(sample, s.alpha), tf.mul(output, s.sigma));
      return needsX0Fix ? this.fixX0(x0) : x0;
    }
    let eps: tf.Tensor;
    if (c.predictionType === 'epsilon') eps = tf.clone(output);
    else if (c.predictionType === 'sample') eps = tf.div(tf.sub(sample, tf.mul(output, s.alpha)), s.sigma);
    else eps = tf.add(tf.mul(output, s.alpha), tf.mul(sample, s.sigma));
    if (!needsX0Fix) return eps;
    const x0 = this.fixX0(toX0(eps));
    return tf.div(tf.sub(sample, tf.mul(x0, s.alpha)), s.sigma);
  }

  /** Clipping (clipSample) and dynamic thresholding of x_0. Call inside a tidy. */
  private fixX0(x0: tf.Tensor): tf.Tensor {
    const c = this.config;
    let x = x0;
    if (c.clipSample) x = tf.clipByValue(x, -c.clipSampleRange, c.clipSampleRange);
    if (c.thresholding) x = thresholdSample(x, c.dynamicThresholdingRatio, c.sampleMaxValue);
    return x;
  }

  /** Frees the remembered model outputs. */
  private resetHistory(): void {
    for (const t of new Set(this.modelOutputs)) t?.dispose();
    this.modelOutputs = new Array<tf.Tensor | null>(this.config.solverOrder).fill(null);
  }

  /** The multistep state diffusers' `set_timesteps` resets. */
  private resetState(): void {
    this.resetHistory();
    this.lowerOrderNums = 0;
    this.stepIndexValue = null;
  }
}

/**
 * Dynamic thresholding (Saharia et al. 2022), as diffusers' `_threshold_sample`: per batch element,
 * s = clamp(quantile(|x|, ratio), 1, maxValue) with torch.quantile's linear interpolation, then
 * x = clamp(x, -s, s) / s. Call inside a tidy.
 */
export function thresholdSample(x: tf.Tensor, ratio: number, maxValue: number): tf.Tensor {
  const b = x.shape[0];
  const count = x.size / b;
  const flat = tf.reshape(x, [b, count]);
  // torch.quantile: rank = q (count - 1) in the input's dtype, interpolating the two order statistics around it.
  const rank = f32(f32(ratio) * (count - 1));
  const below = Math.floor(rank);
  const above = Math.min(below + 1, count - 1);
  const weight = f32(rank - below);
  // The top (count - below) values in descending order end with ascending order statistic `below`.
  const k = count - below;
  const { values } = tf.topk(tf.abs(flat), k, true);
  const vBelow = tf.slice(values, [0, k - 1], [b, 1]);
  const vAbove = above === below ? vBelow : tf.slice(values, [0, k - 2], [b, 1]);
  const q = tf.add(vBelow, tf.mul(tf.sub(vAbove, vBelow), weight));
  const s = tf.minimum(tf.maximum(q, 1), maxValue);
  const clamped = tf.minimum(tf.maximum(flat, tf.neg(s)), s);
  return tf.reshape(tf.div(clamped, s), x.shape);
}
