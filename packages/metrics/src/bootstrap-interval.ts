/**
 * Percentile bootstrap for statistics of items (e.g. test images) that may also be averaged over
 * groups (e.g. training seeds), with the resampling shared by every statistic so that differences
 * (paired comparisons: the same images, the same seeds) get a coherent interval.
 *
 * Each replicate draws `numItems` items with replacement and, when `resampleGroups`, `numGroups`
 * groups with replacement (seeded: xoshiro128** through `seed`); the caller's `statistics` turns the
 * draw (how often each item and each group was drawn) into a vector of values. The interval of a
 * statistic is the `(1 - level) / 2` and `(1 + level) / 2` quantiles (numpy's default linear
 * interpolation) of its finite replicate values; replicates where it is NaN (e.g. the recall of a
 * class no drawn image belongs to) are left out and counted.
 */
import { MetricInputError } from './metric-input';
import { createSeededRandom } from './seeded-random';
import { quantile } from './summary-statistics';

/** One bootstrap replicate's draw. */
export interface BootstrapDraw {
  /** Times each item was drawn (length `numItems`, sums to `numItems`). */
  readonly itemCounts: Int32Array;
  /** Times each group was drawn (length `numGroups`, sums to `numGroups`); all ones when groups are not resampled. */
  readonly groupCounts: Int32Array;
}

/** Parameters of {@link bootstrapIntervals}. */
export interface BootstrapIntervalsParams {
  /** Items resampled (e.g. test images), >= 1. */
  readonly numItems: number;
  /** Groups (e.g. training seeds), >= 1, default 1. */
  readonly numGroups?: number;
  /** Resample the groups too (default true; with one group it makes no difference). */
  readonly resampleGroups?: boolean;
  /** Replicates, default 1000. */
  readonly samples?: number;
  /** Seed of the draws (integer in [0, 2^32-1]), default 0. */
  readonly seed?: number;
  /** Coverage in (0, 1), default 0.95. */
  readonly level?: number;
  /** The statistics of a draw; the same number of values every time (NaN where undefined). */
  readonly statistics: (draw: BootstrapDraw) => ArrayLike<number>;
}

/** Result of {@link bootstrapIntervals}. */
export interface BootstrapIntervalsResult {
  /** Per statistic: [lower, upper]; [NaN, NaN] with fewer than 2 finite replicates. */
  readonly intervals: Array<[number, number]>;
  /** Per statistic: its value in every replicate. */
  readonly replicates: Float64Array[];
  /** Per statistic: replicates with a finite value. */
  readonly finiteReplicates: number[];
  readonly samples: number;
  readonly level: number;
}

/** Parameters of {@link percentileInterval}. */
export interface PercentileIntervalParams {
  /** Replicate values; non-finite ones are ignored. */
  readonly values: ArrayLike<number>;
  /** Coverage in (0, 1), default 0.95. */
  readonly level?: number;
}

/** The central `level` percentile interval of the finite values; [NaN, NaN] with fewer than 2. */
export function percentileInterval(params: PercentileIntervalParams): [number, number] {
  const level = params.level ?? 0.95;
  checkLevel('percentileInterval', level);
  const finite = Array.from(params.values).filter((v) => Number.isFinite(v));
  if (finite.length < 2) return [NaN, NaN];
  return [quantile(finite, (1 - level) / 2), quantile(finite, (1 + level) / 2)];
}

function checkLevel(fn: string, level: number): void {
  if (typeof level !== 'number' || !(level > 0 && level < 1)) throw new MetricInputError(`${fn}: option "level" must be a number in (0, 1), got ${String(level)}`);
}

function checkInt(fn: string, name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new MetricInputError(`${fn}: option "${name}" must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

/** Percentile bootstrap intervals of several statistics over one shared resampling (see the file comment). */
export function bootstrapIntervals(params: BootstrapIntervalsParams): BootstrapIntervalsResult {
  const fn = 'bootstrapIntervals';
  if (params === null || typeof params !== 'object') throw new MetricInputError(`${fn}: expected a parameter object, got ${String(params)}`);
  const numItems = checkInt(fn, 'numItems', params.numItems, 1);
  const numGroups = checkInt(fn, 'numGroups', params.numGroups ?? 1, 1);
  const samples = checkInt(fn, 'samples', params.samples ?? 1000, 1);
  const seed = checkInt(fn, 'seed', params.seed ?? 0, 0, 0xffffffff);
  const level = params.level ?? 0.95;
  checkLevel(fn, level);
  const resampleGroups = params.resampleGroups ?? true;
  if (typeof resampleGroups !== 'boolean') throw new MetricInputError(`${fn}: option "resampleGroups" must be a boolean, got ${String(resampleGroups)}`);
  if (typeof params.statistics !== 'function') throw new MetricInputError(`${fn}: option "statistics" must be a function of a draw, got ${String(params.statistics)}`);
  const random = createSeededRandom(seed);
  const itemCounts = new Int32Array(numItems);
  const groupCounts = new Int32Array(numGroups).fill(1);
  let replicates: Float64Array[] | null = null;
  for (let r = 0; r < samples; r++) {
    itemCounts.fill(0);
    for (let d = 0; d < numItems; d++) itemCounts[random.nextInt(numItems)]++;
    if (resampleGroups && numGroups > 1) {
      groupCounts.fill(0);
      for (let d = 0; d < numGroups; d++) groupCounts[random.nextInt(numGroups)]++;
    }
    const values = params.statistics({ itemCounts, groupCounts });
    if (replicates === null) replicates = Array.from({ length: values.length }, () => new Float64Array(samples));
    if (values.length !== replicates.length) throw new MetricInputError(`${fn}: statistics returned ${values.length} values in replicate ${r}, ${replicates.length} before`);
    for (let s = 0; s < values.length; s++) replicates[s][r] = values[s];
  }
  const reps = replicates ?? [];
  return {
    intervals: reps.map((v) => percentileInterval({ values: v, level })),
    replicates: reps,
    finiteReplicates: reps.map((v) => v.reduce((n, x) => n + (Number.isFinite(x) ? 1 : 0), 0)),
    samples,
    level,
  };
}
