/**
 * Helpers shared by the DDPM and DDIM schedulers:
 * - the inference timestep grids of diffusers' `timestep_spacing` options;
 * - the config fields both schedulers have, with defaults and validation;
 * - the forward process q(x_t | x_0) (`addNoise`, `getVelocity`) evaluated from alpha-bar;
 * - argument checks for `step`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Generator } from '../random';
import { betaScheduleNames, checkBetas } from './beta-schedules';
import type { BetaScheduleName, PredictionType, StepOptions, TimestepSpacing } from './scheduler';

// ---------------------------------------------------------------------------------------------
// Timestep grids
// ---------------------------------------------------------------------------------------------

/** Accepted `predictionType` values. */
export const PREDICTION_TYPES: readonly PredictionType[] = ['epsilon', 'sample', 'v_prediction'];

/** Accepted `timestepSpacing` values. */
export const TIMESTEP_SPACINGS: readonly TimestepSpacing[] = ['leading', 'trailing', 'linspace'];

/** Rounds to the nearest integer, ties to even, like `numpy.round` (which diffusers uses). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/** The training timesteps T-1, T-2, ..., 0: the schedule before `setTimesteps` is called. */
export function trainingTimesteps(numTrainTimesteps: number): Int32Array {
  return Int32Array.from({ length: numTrainTimesteps }, (_, i) => numTrainTimesteps - 1 - i);
}

/** Parameters of {@link inferenceTimesteps}. */
export interface InferenceTimestepsParams {
  /** T, the number of training timesteps. */
  numTrainTimesteps: number;
  /** Number of denoising steps, an integer in 1..T (validated by the caller). */
  numInferenceSteps: number;
  timestepSpacing: TimestepSpacing;
  /** Added to every timestep for "leading" spacing only, as in diffusers. */
  stepsOffset: number;
}

/**
 * The descending inference timesteps for a spacing, as diffusers' `set_timesteps` computes them
 * (the three strategies compared by Lin et al. 2024, "Common Diffusion Noise Schedules and Sample
 * Steps are Flawed"):
 * - `leading`:  k * floor(T / n) + stepsOffset, k = n-1..0 (e.g. T=1000, n=50: 980, 960, ..., 0);
 * - `trailing`: round(T - k * T / n) - 1, k = 0..n-1 (999, 979, ..., 19);
 * - `linspace`: round of n evenly spaced points from T-1 down to 0.
 *
 * Rounding is half-to-even like numpy. For "trailing" exactly n values are produced; numpy's float
 * `arange` occasionally yields n+1 values there (a trailing -1), which is not reproduced.
 *
 * @throws RangeError if "leading" with `stepsOffset` pushes a timestep past T-1.
 */
export function inferenceTimesteps(params: InferenceTimestepsParams): Int32Array {
  const { numTrainTimesteps: T, numInferenceSteps: n, timestepSpacing, stepsOffset } = params;
  const out = new Int32Array(n);
  switch (timestepSpacing) {
    case 'leading': {
      const stepRatio = Math.floor(T / n);
      for (let i = 0; i < n; i++) out[i] = (n - 1 - i) * stepRatio + stepsOffset;
      if (out[0] > T - 1) {
        throw new RangeError(
          `stepsOffset ${stepsOffset} with ${n} "leading" steps gives timestep ${out[0]}, ` +
            `past the last training timestep ${T - 1}`,
        );
      }
      return out;
    }
    case 'trailing': {
      const stepRatio = T / n;
      for (let i = 0; i < n; i++) out[i] = roundHalfEven(T - i * stepRatio) - 1;
      return out;
    }
    case 'linspace': {
      const step = n > 1 ? (T - 1) / (n - 1) : 0;
      for (let i = 0; i < n; i++) out[n - 1 - i] = roundHalfEven(i * step);
      if (n > 1) out[0] = T - 1;
      return out;
    }
    default:
      throw new RangeError(
        `timestepSpacing must be one of ${TIMESTEP_SPACINGS.join(', ')}, got ${JSON.stringify(timestepSpacing)}`,
      );
  }
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/** Config fields shared by DDPM and DDIM (diffusers' names in camelCase). */
export interface BaseSchedulerConfig {
  /** T, the number of diffusion steps the model was trained with. */
  numTrainTimesteps: number;
  /** First beta for the `linear` and `scaled_linear` schedules. */
  betaStart: number;
  /** Last beta for the `linear` and `scaled_linear` schedules. */
  betaEnd: number;
  /** A registered beta schedule, see `betaScheduleNames()`. Ignored when `trainedBetas` is set. */
  betaSchedule: BetaScheduleName;
  /** Explicit betas (length T, each in (0, 1)) that bypass `betaSchedule`. */
  trainedBetas: number[] | null;
  /** What the model predicts: the noise, x_0, or the velocity v (Salimans & Ho 2022). */
  predictionType: PredictionType;
  /** Clamp the predicted x_0 to [-clipSampleRange, clipSampleRange] in `step`. */
  clipSample: boolean;
  /** Bound used by `clipSample`. */
  clipSampleRange: number;
  /** How `setTimesteps` spaces the inference timesteps. */
  timestepSpacing: TimestepSpacing;
  /** Offset added to "leading" inference timesteps (Stable Diffusion uses 1). */
  stepsOffset: number;
  /**
   * Rescale the betas so that the terminal SNR is exactly zero (alpha-bar_{T-1} = 0; Lin et al.
   * 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed", Algorithm 1; diffusers'
   * `rescale_betas_zero_snr`). The model then sees pure noise at t = T-1, as the sampler's start
   * x_T ~ N(0, I) is, so no image mean leaks through training that sampling cannot reproduce.
   * Needs `predictionType` "v_prediction" or "sample": an epsilon model cannot give x_0 at zero SNR.
   */
  rescaleBetasZeroSnr: boolean;
}

/** diffusers' defaults for the shared fields (identical for DDPMScheduler and DDIMScheduler). */
export const BASE_SCHEDULER_DEFAULTS: Readonly<BaseSchedulerConfig> = Object.freeze({
  numTrainTimesteps: 1000,
  betaStart: 0.0001,
  betaEnd: 0.02,
  betaSchedule: 'linear',
  trainedBetas: null,
  predictionType: 'epsilon',
  clipSample: true,
  clipSampleRange: 1.0,
  timestepSpacing: 'leading',
  stepsOffset: 0,
  rescaleBetasZeroSnr: false,
});

/**
 * A field check: returns null when the value is acceptable, otherwise a phrase describing what is
 * accepted ("one of a, b", "an integer >= 1") for the error message.
 */
export type FieldCheck = (value: unknown) => string | null;

/** Default and check for every field of a config type. */
export type ConfigSpec<C> = { [K in keyof C]-?: { default: C[K]; check: FieldCheck } };

/** Short, readable rendering of a bad value for error messages. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (value === null || typeof value !== 'object') return String(value);
  const json = JSON.stringify(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

/** Check: one of a fixed list of strings. */
export function oneOf(values: readonly string[]): FieldCheck {
  return (v) => (typeof v === 'string' && values.includes(v) ? null : `one of ${values.join(', ')}`);
}

/** Check: a boolean. */
export const isBoolean: FieldCheck = (v) => (typeof v === 'boolean' ? null : 'a boolean');

/** Check: an integer >= min. */
export function integerAtLeast(min: number): FieldCheck {
  return (v) => (typeof v === 'number' && Number.isInteger(v) && v >= min ? null : `an integer >= ${min}`);
}

/** Check: a finite number in the open interval (0, max). */
export function numberInOpenInterval(max: number): FieldCheck {
  return (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 && v < max ? null : `a number in (0, ${max})`);
}

/** Check: a finite number > 0. */
export const positiveNumber: FieldCheck = (v) =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? null : 'a finite number > 0';

/** Specs of the shared fields. `betaSchedule` accepts whatever is registered at the time of the check. */
export const BASE_CONFIG_SPEC: ConfigSpec<BaseSchedulerConfig> = {
  numTrainTimesteps: { default: BASE_SCHEDULER_DEFAULTS.numTrainTimesteps, check: integerAtLeast(1) },
  betaStart: { default: BASE_SCHEDULER_DEFAULTS.betaStart, check: numberInOpenInterval(1) },
  betaEnd: { default: BASE_SCHEDULER_DEFAULTS.betaEnd, check: numberInOpenInterval(1) },
  betaSchedule: { default: BASE_SCHEDULER_DEFAULTS.betaSchedule, check: (v) => oneOf(betaScheduleNames())(v) },
  trainedBetas: {
    default: null,
    check: (v) =>
      v === null || (Array.isArray(v) && v.every((b) => typeof b === 'number')) ? null : 'null or an array of numbers',
  },
  predictionType: { default: BASE_SCHEDULER_DEFAULTS.predictionType, check: oneOf(PREDICTION_TYPES) },
  clipSample: { default: BASE_SCHEDULER_DEFAULTS.clipSample, check: isBoolean },
  clipSampleRange: { default: BASE_SCHEDULER_DEFAULTS.clipSampleRange, check: positiveNumber },
  timestepSpacing: { default: BASE_SCHEDULER_DEFAULTS.timestepSpacing, check: oneOf(TIMESTEP_SPACINGS) },
  stepsOffset: { default: BASE_SCHEDULER_DEFAULTS.stepsOffset, check: integerAtLeast(0) },
  rescaleBetasZeroSnr: { default: BASE_SCHEDULER_DEFAULTS.rescaleBetasZeroSnr, check: isBoolean },
};

/** Parameters of {@link resolveConfig}. */
export interface ResolveConfigParams<C> {
  /** Class name that prefixes error messages, e.g. "DDIMScheduler". */
  owner: string;
  /** The user's partial config (undefined for all defaults). `undefined` values count as absent. */
  input: unknown;
  spec: ConfigSpec<C>;
}

/**
 * Fills defaults into a partial config and validates every field, then the cross-field rules of the
 * shared fields (trainedBetas length and range, stepsOffset < T). The result is frozen, with its
 * own copy of any array.
 *
 * @throws TypeError for a non-object input, an unknown key or a value of the wrong kind;
 *   RangeError for the cross-field rules. Messages read `${owner}: config.<field> must be ...`.
 */
export function resolveConfig<C extends BaseSchedulerConfig>(params: ResolveConfigParams<C>): Readonly<C> {
  const { owner, input, spec } = params;
  if (input !== undefined && (input === null || typeof input !== 'object' || Array.isArray(input))) {
    throw new TypeError(`${owner}: config must be a plain object, got ${describeValue(input)}`);
  }
  const given = (input ?? {}) as Record<string, unknown>;
  const keys = Object.keys(spec) as (keyof C & string)[];
  for (const key of Object.keys(given)) {
    if (!(keys as string[]).includes(key)) {
      throw new TypeError(`${owner}: unknown config key "${key}"; accepted keys are ${keys.join(', ')}`);
    }
  }
  const out = {} as C;
  for (const key of keys) {
    const value = given[key] === undefined ? spec[key].default : given[key];
    const expected = spec[key].check(value);
    if (expected !== null) {
      throw new TypeError(`${owner}: config.${key} must be ${expected}, got ${describeValue(value)}`);
    }
    out[key] = (Array.isArray(value) ? Object.freeze([...value]) : value) as C[typeof key];
  }
  if (out.trainedBetas !== null) {
    checkBetas(out.trainedBetas, out.numTrainTimesteps, `${owner}: config.trainedBetas`);
  }
  if (out.stepsOffset >= out.numTrainTimesteps) {
    throw new RangeError(
      `${owner}: config.stepsOffset must be an integer in 0..numTrainTimesteps-1 (${out.numTrainTimesteps - 1}), ` +
        `got ${out.stepsOffset}`,
    );
  }
  if (out.rescaleBetasZeroSnr && out.predictionType === 'epsilon') {
    throw new RangeError(
      `${owner}: config.rescaleBetasZeroSnr needs predictionType "v_prediction" or "sample": at zero terminal SNR ` +
        'an epsilon prediction carries no information about x_0 (Lin et al. 2024, section 3.2)',
    );
  }
  return Object.freeze(out);
}

/** `config` plus `_class`, as a fresh JSON-safe object (arrays copied). */
export function configToJSON<C extends BaseSchedulerConfig, N extends string>(
  className: N,
  config: Readonly<C>,
): C & { _class: N } {
  const copy = { ...config, trainedBetas: config.trainedBetas === null ? null : [...config.trainedBetas] };
  return { _class: className, ...copy };
}

/**
 * Strips and checks `_class` from a serialised config, returning the remaining fields.
 *
 * @throws TypeError if `json` is not an object or its `_class` is present and not `className`.
 */
export function configFromJSON(className: string, json: unknown): Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new TypeError(`${className}.fromConfig: expected a config object, got ${describeValue(json)}`);
  }
  const { _class, ...rest } = json as Record<string, unknown>;
  if (_class !== undefined && _class !== className) {
    throw new TypeError(`${className}.fromConfig: config._class must be "${className}", got ${describeValue(_class)}`);
  }
  return rest;
}

// ---------------------------------------------------------------------------------------------
// Argument checks
// ---------------------------------------------------------------------------------------------

/**
 * Checks `numInferenceSteps` for `setTimesteps`.
 * @throws RangeError unless it is an integer in 1..numTrainTimesteps.
 */
export function checkNumInferenceSteps(owner: string, numInferenceSteps: number, numTrainTimesteps: number): void {
  if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1 || numInferenceSteps > numTrainTimesteps) {
    throw new RangeError(
      `${owner}.setTimesteps: numInferenceSteps must be an integer in 1..numTrainTimesteps (${numTrainTimesteps}), ` +
        `got ${describeValue(numInferenceSteps)}`,
    );
  }
}

/**
 * Checks a timestep used to index alpha-bar.
 * @throws RangeError unless it is an integer in 0..numTrainTimesteps-1.
 */
export function checkTrainTimestep(owner: string, timestep: number, numTrainTimesteps: number): void {
  if (!Number.isInteger(timestep) || timestep < 0 || timestep >= numTrainTimesteps) {
    throw new RangeError(
      `${owner}: timestep must be an integer in 0..numTrainTimesteps-1 (${numTrainTimesteps - 1}), ` +
        `got ${describeValue(timestep)}`,
    );
  }
}

/** Validated step options, with `eta` defaulted to 0. */
export interface CheckedStepOptions {
  generator: Generator | undefined;
  eta: number;
}

/** Parameters of {@link checkStepArgs}. */
export interface CheckStepArgsParams {
  /** "DDPMScheduler.step" or "DDIMScheduler.step". */
  owner: string;
  modelOutput: tf.Tensor;
  sample: tf.Tensor;
  options: StepOptions | undefined;
}

/**
 * Checks the tensors and options of `step`: both tensors present with identical shapes, `eta` a
 * finite number >= 0, `generator` (if given) something with a `normal(shape)` method.
 */
export function checkStepArgs(params: CheckStepArgsParams): CheckedStepOptions {
  const { owner, modelOutput, sample, options } = params;
  if (!(modelOutput instanceof tf.Tensor)) {
    throw new TypeError(`${owner}: modelOutput must be a tf.Tensor, got ${describeValue(modelOutput)}`);
  }
  if (!(sample instanceof tf.Tensor)) {
    throw new TypeError(`${owner}: sample must be a tf.Tensor, got ${describeValue(sample)}`);
  }
  if (!tf.util.arraysEqual(modelOutput.shape, sample.shape)) {
    throw new RangeError(
      `${owner}: modelOutput shape [${modelOutput.shape}] must equal sample shape [${sample.shape}]`,
    );
  }
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new TypeError(`${owner}: options must be an object, got ${describeValue(options)}`);
  }
  const eta = options?.eta ?? 0;
  if (typeof eta !== 'number' || !Number.isFinite(eta) || eta < 0) {
    throw new RangeError(`${owner}: options.eta must be a finite number >= 0, got ${describeValue(eta)}`);
  }
  const generator = options?.generator;
  if (generator !== undefined && typeof (generator as { normal?: unknown }).normal !== 'function') {
    throw new TypeError(`${owner}: options.generator must be a Generator, got ${describeValue(generator)}`);
  }
  return { generator, eta };
}

// ---------------------------------------------------------------------------------------------
// Forward process
// ---------------------------------------------------------------------------------------------

/** Parameters of {@link addNoiseFromAlphaBars} and {@link velocityFromAlphaBars}. */
export interface ForwardProcessParams {
  /** "DDPMScheduler.addNoise" etc., for error messages. */
  owner: string;
  alphasCumprod: Float32Array;
  /** x_0 for addNoise, x_t for getVelocity; leading dimension is the batch. */
  sample: tf.Tensor;
  noise: tf.Tensor;
  /** One timestep per batch element. */
  timesteps: tf.Tensor1D | number[];
}

/** Reads and checks per-example timesteps: one integer in [0, T) per batch element. */
function readTimesteps(params: ForwardProcessParams): number[] {
  const { owner, alphasCumprod, sample, noise, timesteps } = params;
  const T = alphasCumprod.length;
  if (!(sample instanceof tf.Tensor) || sample.rank < 1) {
    throw new TypeError(`${owner}: samples must be a tf.Tensor of rank >= 1 (batch first)`);
  }
  if (!(noise instanceof tf.Tensor) || !tf.util.arraysEqual(noise.shape, sample.shape)) {
    const got = noise instanceof tf.Tensor ? `[${noise.shape}]` : describeValue(noise);
    throw new RangeError(`${owner}: noise shape ${got} must equal samples shape [${sample.shape}]`);
  }
  let values: number[];
  if (Array.isArray(timesteps)) {
    values = timesteps;
  } else if (timesteps instanceof tf.Tensor) {
    if (timesteps.rank !== 1 || timesteps.dtype !== 'int32') {
      throw new TypeError(
        `${owner}: timesteps must be a number[] or an int32 Tensor1D, ` +
          `got a ${timesteps.dtype} tensor of rank ${timesteps.rank}`,
      );
    }
    values = Array.from(timesteps.dataSync());
  } else {
    throw new TypeError(`${owner}: timesteps must be a number[] or an int32 Tensor1D, got ${describeValue(timesteps)}`);
  }
  const batch = sample.shape[0];
  if (values.length !== batch) {
    throw new RangeError(`${owner}: timesteps has ${values.length} entries, expected one per batch element (${batch})`);
  }
  for (const t of values) {
    if (!Number.isInteger(t) || t < 0 || t >= T) {
      throw new RangeError(
        `${owner}: every timestep must be an integer in 0..numTrainTimesteps-1 (${T - 1}), got ${describeValue(t)}`,
      );
    }
  }
  return values;
}

/** sqrt(alpha-bar_t) and sqrt(1 - alpha-bar_t) per example, shaped [B, 1, ..., 1] to broadcast. */
function perExampleCoefficients(params: ForwardProcessParams): { signal: tf.Tensor; noise: tf.Tensor } {
  const ts = readTimesteps(params);
  const shape = [ts.length, ...new Array<number>(params.sample.rank - 1).fill(1)];
  const ab = ts.map((t) => params.alphasCumprod[t]);
  return {
    signal: tf.tensor(Float32Array.from(ab, (a) => Math.sqrt(a)), shape, 'float32'),
    noise: tf.tensor(Float32Array.from(ab, (a) => Math.sqrt(1 - a)), shape, 'float32'),
  };
}

/**
 * x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps: a sample of q(x_t | x_0), Ho et al. (2020)
 * eq. 4, with the coefficients broadcast over all but the batch dimension.
 */
export function addNoiseFromAlphaBars(params: ForwardProcessParams): tf.Tensor {
  return tf.tidy(() => {
    const c = perExampleCoefficients(params);
    return tf.add(tf.mul(c.signal, params.sample), tf.mul(c.noise, params.noise));
  });
}

/**
 * v = sqrt(alpha-bar_t) eps - sqrt(1 - alpha-bar_t) x_0, the v-prediction target of
 * Salimans & Ho (2022), section 4; `params.sample` is x_0.
 */
export function velocityFromAlphaBars(params: ForwardProcessParams): tf.Tensor {
  return tf.tidy(() => {
    const c = perExampleCoefficients(params);
    return tf.sub(tf.mul(c.signal, params.noise), tf.mul(c.noise, params.sample));
  });
}

// ---------------------------------------------------------------------------------------------
// Shared pieces of `step`
// ---------------------------------------------------------------------------------------------

/** Parameters of {@link predictOriginalSample} and {@link predictEpsilon}. */
export interface PredictParams {
  predictionType: PredictionType;
  modelOutput: tf.Tensor;
  /** x_t. */
  sample: tf.Tensor;
  /** alpha-bar_t. */
  alphaBar: number;
}

/**
 * The model's estimate of x_0, for each prediction type. With x_t = sqrt(ab) x_0 + sqrt(1-ab) eps
 * and v = sqrt(ab) eps - sqrt(1-ab) x_0:
 * - epsilon: x_0 = (x_t - sqrt(1-ab) eps) / sqrt(ab)  (Ho et al. 2020 eq. 15; Song et al. 2021 eq. 12,
 *   "predicted x_0");
 * - sample:  x_0 is the model output;
 * - v_prediction: x_0 = sqrt(ab) x_t - sqrt(1-ab) v.
 * Call inside a `tf.tidy`.
 */
export function predictOriginalSample(params: PredictParams): tf.Tensor {
  const { predictionType, modelOutput, sample, alphaBar } = params;
  switch (predictionType) {
    case 'epsilon':
      return tf.div(tf.sub(sample, tf.mul(modelOutput, Math.sqrt(1 - alphaBar))), Math.sqrt(alphaBar));
    case 'sample':
      return modelOutput;
    case 'v_prediction':
      return tf.sub(tf.mul(sample, Math.sqrt(alphaBar)), tf.mul(modelOutput, Math.sqrt(1 - alphaBar)));
    default:
      throw new RangeError(
        `predictionType must be one of ${PREDICTION_TYPES.join(', ')}, got ${describeValue(predictionType)}`,
      );
  }
}

/**
 * The model's estimate of the noise eps, for each prediction type (same relations as
 * {@link predictOriginalSample}):
 * - epsilon: eps is the model output;
 * - sample:  eps = (x_t - sqrt(ab) x_0) / sqrt(1-ab);
 * - v_prediction: eps = sqrt(ab) v + sqrt(1-ab) x_t.
 * Call inside a `tf.tidy`.
 */
export function predictEpsilon(params: PredictParams): tf.Tensor {
  const { predictionType, modelOutput, sample, alphaBar } = params;
  switch (predictionType) {
    case 'epsilon':
      return modelOutput;
    case 'sample':
      return tf.div(tf.sub(sample, tf.mul(modelOutput, Math.sqrt(alphaBar))), Math.sqrt(1 - alphaBar));
    case 'v_prediction':
      return tf.add(tf.mul(modelOutput, Math.sqrt(alphaBar)), tf.mul(sample, Math.sqrt(1 - alphaBar)));
    default:
      throw new RangeError(
        `predictionType must be one of ${PREDICTION_TYPES.join(', ')}, got ${describeValue(predictionType)}`,
      );
  }
}

/**
 * Returns the generator, or throws a TypeError naming `owner` and the reason noise is needed.
 * Used before any tensor work so a missing generator never leaves half a step allocated.
 */
export function requireGenerator(owner: string, generator: Generator | undefined, why: string): Generator {
  if (!generator) throw new TypeError(`${owner}: options.generator is required ${why}`);
  return generator;
}
