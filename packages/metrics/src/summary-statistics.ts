/**
 * Small descriptive statistics shared by the metrics (mean, sample standard deviation, numpy-style
 * quantiles, normal-approximation interval). Internal module.
 */

/** Two-sided 95% standard normal quantile, Phi^-1(0.975). */
export const Z_975 = 1.959963984540054;

/** Arithmetic mean; NaN for an empty input. */
export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return s / values.length;
}

/** Standard deviation with `ddof` (1 = sample, 0 = population); NaN when length <= ddof. */
export function standardDeviation(values: ArrayLike<number>, ddof: 0 | 1 = 1): number {
  const n = values.length;
  if (n <= ddof) return NaN;
  const m = mean(values);
  let s = 0;
  for (let i = 0; i < n; i++) s += (values[i] - m) ** 2;
  return Math.sqrt(s / (n - ddof));
}

/** Quantile `q` in [0,1] with linear interpolation between order statistics (numpy's default). */
export function quantile(values: ArrayLike<number>, q: number): number {
  const n = values.length;
  if (n === 0) return NaN;
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

/** `mean -/+ 1.96 * sd / sqrt(n)` with the sample sd; [NaN, NaN] for fewer than 2 values. */
export function normalInterval95(values: ArrayLike<number>): [number, number] {
  const n = values.length;
  if (n < 2) return [NaN, NaN];
  const m = mean(values);
  const half = (Z_975 * standardDeviation(values, 1)) / Math.sqrt(n);
  return [m - half, m + half];
}
