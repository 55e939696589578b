/**
 * Beta schedules: the per-timestep noise variances beta_1..beta_T of the forward process, and the
 * cumulative products alpha-bar_t = prod_{s<=t} (1 - beta_s) derived from them.
 *
 * Schedules live in a registry keyed by name, so a config can name a user-defined schedule
 * (`registerBetaSchedule`) exactly like the built-in ones.
 *
 * Numerics follow HuggingFace diffusers, which holds betas in float32 torch tensors and takes the
 * cumulative product in float32: the schedule itself is evaluated in float64, each beta is rounded to
 * float32, and the cumulative product is carried out in emulated float32 (`Math.fround` after every
 * operation). Keeping betas and product in float64 and casting only at the end would drift by
 * ~1.5e-5 relative from diffusers at the tail of the cosine schedule.
 */

/** What a beta schedule function receives. */
export interface BetaScheduleParams {
  /** Number of betas to produce (T). */
  numTrainTimesteps: number;
  /** The config's `betaStart`; schedules are free to ignore it. */
  betaStart: number;
  /** The config's `betaEnd`; schedules are free to ignore it. */
  betaEnd: number;
}

/**
 * A beta schedule: returns T betas, each in (0, 1), in float64. The caller rounds them to float32.
 */
export type BetaScheduleFn = (params: BetaScheduleParams) => ArrayLike<number>;

/** Evenly spaced values from `start` to `end` inclusive (numpy/torch `linspace`), in float64. */
function linspace(start: number, end: number, count: number): Float64Array {
  const out = new Float64Array(count);
  if (count === 1) {
    out[0] = start;
    return out;
  }
  const step = (end - start) / (count - 1);
  for (let i = 0; i < count; i++) out[i] = start + i * step;
  out[count - 1] = end;
  return out;
}

/** Parameters of {@link betasForAlphaBar}. */
export interface BetasForAlphaBarParams {
  /** Number of betas to produce (T). */
  numTrainTimesteps: number;
  /** alpha-bar as a function of continuous time in [0, 1]; must be positive and decreasing. */
  alphaBar: (time: number) => number;
  /** Upper bound on every beta, to avoid a singularity where alpha-bar reaches 0. Default 0.999. */
  maxBeta?: number;
}

/**
 * Discretises a continuous alpha-bar(t) curve into T betas:
 * beta_i = min(1 - alphaBar((i + 1) / T) / alphaBar(i / T), maxBeta).
 * Useful for building custom schedules to pass to {@link registerBetaSchedule}.
 */
export function betasForAlphaBar(params: BetasForAlphaBarParams): Float64Array {
  const { numTrainTimesteps: n, alphaBar, maxBeta = 0.999 } = params;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), maxBeta);
  }
  return out;
}

/** Linear betas from betaStart to betaEnd (Ho et al. 2020). */
const linearBetas: BetaScheduleFn = ({ numTrainTimesteps, betaStart, betaEnd }) =>
  linspace(betaStart, betaEnd, numTrainTimesteps);

/** Linear in sqrt(beta), then squared: the latent-diffusion / Stable Diffusion schedule. */
const scaledLinearBetas: BetaScheduleFn = ({ numTrainTimesteps, betaStart, betaEnd }) =>
  linspace(Math.sqrt(betaStart), Math.sqrt(betaEnd), numTrainTimesteps).map((r) => r * r);

/**
 * The cosine schedule of Nichol & Dhariwal (2021), "Improved DDPM", eq. 17, with s = 0.008 and
 * betas capped at 0.999 (the "cap_v2" variant used by GLIDE and diffusers).
 */
const squaredcosCapV2Betas: BetaScheduleFn = ({ numTrainTimesteps }) =>
  betasForAlphaBar({
    numTrainTimesteps,
    alphaBar: (time) => Math.cos(((time + 0.008) / 1.008) * (Math.PI / 2)) ** 2,
    maxBeta: 0.999,
  });

/** The built-in beta schedule names (`registerBetaSchedule` adds more; see {@link betaScheduleNames}). */
export const BUILTIN_BETA_SCHEDULE_NAMES = ['linear', 'scaled_linear', 'squaredcos_cap_v2'] as const;

const BUILT_IN_SCHEDULES: ReadonlyMap<string, BetaScheduleFn> = new Map<(typeof BUILTIN_BETA_SCHEDULE_NAMES)[number], BetaScheduleFn>([
  ['linear', linearBetas],
  ['scaled_linear', scaledLinearBetas],
  ['squaredcos_cap_v2', squaredcosCapV2Betas],
]);

const registry = new Map<string, BetaScheduleFn>(BUILT_IN_SCHEDULES);

/**
 * Adds a named beta schedule that scheduler configs can then refer to in `betaSchedule`.
 *
 * The registry is process-wide. A config naming a custom schedule only round-trips through JSON in
 * a process where the same name has been registered.
 *
 * @throws TypeError if the name is empty or `fn` is not a function.
 * @throws Error if the name is already registered (built-in or custom); unregister it first.
 */
export function registerBetaSchedule(name: string, fn: BetaScheduleFn): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError(`registerBetaSchedule: name must be a non-empty string, got ${JSON.stringify(name)}`);
  }
  if (typeof fn !== 'function') {
    throw new TypeError(`registerBetaSchedule: fn must be a function, got ${typeof fn}`);
  }
  if (registry.has(name)) {
    throw new Error(`registerBetaSchedule: a beta schedule named "${name}" is already registered`);
  }
  registry.set(name, fn);
}

/**
 * Removes a custom beta schedule. Returns whether one was removed.
 *
 * @throws Error for the built-in schedules, which cannot be removed.
 */
export function unregisterBetaSchedule(name: string): boolean {
  if (BUILT_IN_SCHEDULES.has(name)) {
    throw new Error(`unregisterBetaSchedule: "${name}" is a built-in beta schedule and cannot be removed`);
  }
  return registry.delete(name);
}

/** Names of every registered beta schedule, built-ins first, then custom ones in registration order. */
export function betaScheduleNames(): string[] {
  return [...registry.keys()];
}

/** Parameters of {@link makeBetas}. */
export interface MakeBetasParams extends BetaScheduleParams {
  /** A registered schedule name, see {@link betaScheduleNames}. */
  schedule: string;
}

/**
 * Evaluates a registered schedule and checks its output: exactly T finite betas, each in (0, 1).
 * Values are float64 as the schedule returned them.
 *
 * @throws RangeError naming the schedule when it is unknown or its output is invalid.
 */
export function makeBetas(params: MakeBetasParams): Float64Array {
  const { schedule, ...rest } = params;
  const fn = registry.get(schedule);
  if (!fn) {
    throw new RangeError(
      `makeBetas: schedule must be one of ${betaScheduleNames().join(', ')}, got ${JSON.stringify(schedule)}`,
    );
  }
  const betas = Float64Array.from(fn(rest));
  checkBetas(betas, rest.numTrainTimesteps, `beta schedule "${schedule}"`);
  return betas;
}

/**
 * Throws a RangeError unless `betas` holds exactly `expectedLength` finite values in (0, 1).
 * `source` names the origin of the betas in the message.
 */
export function checkBetas(betas: ArrayLike<number>, expectedLength: number, source: string): void {
  if (betas.length !== expectedLength) {
    throw new RangeError(`${source} produced ${betas.length} betas, expected numTrainTimesteps = ${expectedLength}`);
  }
  for (let i = 0; i < betas.length; i++) {
    const b = betas[i];
    if (!(Number.isFinite(b) && b > 0 && b < 1)) {
      throw new RangeError(`${source}: every beta must be a finite number in (0, 1), got beta[${i}] = ${b}`);
    }
  }
}

/** Rounds each beta to float32, as diffusers stores them. */
export function toFloat32Betas(betas: ArrayLike<number>): Float32Array {
  return Float32Array.from(betas);
}

/**
 * alpha-bar_t = prod_{s<=t} (1 - beta_s), computed step by step in float32 arithmetic (each `1 - beta`
 * and each product rounded with `Math.fround`), matching a float32 `cumprod` in torch/numpy.
 */
export function alphasCumprodFromBetas(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc = Math.fround(acc * Math.fround(1 - betas[i]));
    out[i] = acc;
  }
  return out;
}

/**
 * Rescales float32 betas to zero terminal SNR (Lin et al. 2024, Algorithm 1), in float32 arithmetic
 * like diffusers' `rescale_zero_terminal_snr`:
 * 1. sqrt(alpha-bar_t) from the betas;
 * 2. shift it so that its last value is 0: s_t - s_{T-1};
 * 3. scale it so that its first value is unchanged: * s_0 / (s_0 - s_{T-1});
 * 4. back to betas: alpha_t = ab_t / ab_{t-1} (alpha_0 = ab_0), beta_t = 1 - alpha_t.
 * The last beta becomes exactly 1, so alpha-bar_{T-1} = 0 and the SNR there is 0.
 */
export function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const n = betas.length;
  const f = Math.fround;
  if (n < 2) throw new RangeError(`rescaleZeroTerminalSnr: needs at least 2 betas, got ${n}`);
  // 1.
  const sqrtAb = new Float32Array(n);
  let acc = 1;
  for (let i = 0; i < n; i++) {
    acc = f(acc * f(1 - betas[i]));
    sqrtAb[i] = f(Math.sqrt(acc));
  }
  const s0 = sqrtAb[0];
  const sT = sqrtAb[n - 1];
  const scale = f(s0 / f(s0 - sT));
  // 2.-3.
  const ab = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = f(f(sqrtAb[i] - sT) * scale);
    ab[i] = f(s * s);
  }
  // 4.
  const out = new Float32Array(n);
  out[0] = f(1 - ab[0]);
  for (let i = 1; i < n; i++) out[i] = f(1 - f(ab[i] / ab[i - 1]));
  return out;
}

/** The config fields {@link noiseSchedule} reads (a scheduler config satisfies it). */
export interface NoiseScheduleParams extends BetaScheduleParams {
  betaSchedule: string;
  /** When set, used instead of `betaSchedule` (already validated by the caller). */
  trainedBetas: readonly number[] | null;
  /** Rescale to zero terminal SNR ({@link rescaleZeroTerminalSnr}). Default false. */
  rescaleBetasZeroSnr?: boolean;
}

/** Float32 betas and alpha-bars for a scheduler config: `trainedBetas` if set, else the named schedule. */
export function noiseSchedule(params: NoiseScheduleParams): { betas: Float32Array; alphasCumprod: Float32Array } {
  const { betaSchedule, trainedBetas, numTrainTimesteps, betaStart, betaEnd } = params;
  let betas = toFloat32Betas(
    trainedBetas ?? makeBetas({ schedule: betaSchedule, numTrainTimesteps, betaStart, betaEnd }),
  );
  if (params.rescaleBetasZeroSnr) betas = rescaleZeroTerminalSnr(betas);
  return { betas, alphasCumprod: alphasCumprodFromBetas(betas) };
}
