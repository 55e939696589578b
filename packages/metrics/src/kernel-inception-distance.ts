/**
 * Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs") on arbitrary features:
 * the unbiased estimate of the squared maximum mean discrepancy with the cubic polynomial kernel
 *
 *   k(x, y) = (x . y / D + 1)^3,
 *   MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (n (n-1))
 *             - 2 sum_{i,j} k(x_i, y_j) / (m n),
 *
 * averaged, as in the reference implementation, over `numSubsets` random subsets of
 * `subsetSize` samples drawn without replacement from each set (size clamped to the smaller set).
 * The reported `std` is the population standard deviation (ddof 0, `numpy.std`) of the subset
 * values, as in the reference code and torch-fidelity.
 */
import { gemmABt } from './dense-matrix';
import { type FeatureInput, type FeatureMatrix, MetricInputError, formatShape, readFeatures } from './metric-input';
import { createSeededRandom, sampleWithoutReplacement } from './seeded-random';
import { mean, standardDeviation } from './summary-statistics';

/** Parameters of {@link kernelInceptionDistance}. */
export interface KernelInceptionDistanceParams {
  /** First feature set `[N1, D]`, N1 >= 2. */
  readonly features1: FeatureInput;
  /** Second feature set `[N2, D]`, N2 >= 2. */
  readonly features2: FeatureInput;
  /** Number of random subsets (default 100). */
  readonly numSubsets?: number;
  /** Samples per subset from each set (default 1000; clamped to min(N1, N2)). */
  readonly subsetSize?: number;
  /** Seed of the subset draws (default 0). For subset s, set 1's indices are drawn, then set 2's. */
  readonly seed?: number;
  /**
   * Compute the full kernel matrices once and sum entries per subset (faster when the subsets
   * cover the sets many times; memory (N1 + N2)^2 doubles). Default: when it is cheaper and
   * N1 + N2 <= 4096.
   */
  readonly cacheKernel?: boolean;
}

/** Result of {@link kernelInceptionDistance}. */
export interface KernelInceptionDistanceResult {
  /** Mean of the subset MMD^2 values: the KID. */
  readonly mean: number;
  /** Population standard deviation (ddof 0) of the subset values. */
  readonly std: number;
  /** One unbiased MMD^2 per subset. */
  readonly values: number[];
  readonly numSubsets: number;
  readonly subsetSize: number;
}

function readPair(fn: string, params: { features1: FeatureInput; features2: FeatureInput }): [FeatureMatrix, FeatureMatrix] {
  const x = readFeatures(fn, 'features1', params.features1, 2);
  const y = readFeatures(fn, 'features2', params.features2, 2);
  if (y.cols !== x.cols) {
    throw new MetricInputError(
      `${fn}: argument "features2" has shape ${formatShape([y.rows, y.cols])}, expected [N2,${x.cols}] (the feature dimension of "features1")`,
    );
  }
  return [x, y];
}

function gather(x: FeatureMatrix, rows: readonly number[]): Float64Array {
  const d = x.cols;
  const out = new Float64Array(rows.length * d);
  rows.forEach((r, i) => out.set(x.data.subarray(r * d, (r + 1) * d), i * d));
  return out;
}

/** Polynomial kernel values (a b^T / d + 1)^3 as a new `[rowsA x rowsB]` matrix (lower only if `lower`). */
function kernelMatrix(a: Float64Array, rowsA: number, b: Float64Array, rowsB: number, d: number, lower: boolean): Float64Array {
  const g = new Float64Array(rowsA * rowsB);
  gemmABt({ m: rowsA, p: rowsB, k: d, a, b, c: g, alpha: 1 / d, lowerOnly: lower });
  for (let i = 0; i < g.length; i++) {
    const t = g[i] + 1;
    g[i] = t * t * t;
  }
  return g;
}

/** Sum of off-diagonal entries of a symmetric matrix from its lower triangle. */
function offDiagonalSum(k: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) s += k[i * n + j];
  return 2 * s;
}

function fullSum(k: Float64Array): number {
  let s = 0;
  for (let i = 0; i < k.length; i++) s += k[i];
  return s;
}

function mmd2FromSums(kxx: number, kyy: number, kxy: number, m: number, n: number): number {
  return kxx / (m * (m - 1)) + kyy / (n * (n - 1)) - (2 * kxy) / (m * n);
}

/**
 * Unbiased MMD^2 between two whole feature sets with the cubic polynomial kernel (no subsets;
 * the sets may differ in size). This is one subset value of {@link kernelInceptionDistance}.
 */
export function mmd2Unbiased(params: { readonly features1: FeatureInput; readonly features2: FeatureInput }): number {
  const [x, y] = readPair('mmd2Unbiased', params);
  const d = x.cols;
  const kxx = offDiagonalSum(kernelMatrix(x.data, x.rows, x.data, x.rows, d, true), x.rows);
  const kyy = offDiagonalSum(kernelMatrix(y.data, y.rows, y.data, y.rows, d, true), y.rows);
  const kxy = fullSum(kernelMatrix(x.data, x.rows, y.data, y.rows, d, false));
  return mmd2FromSums(kxx, kyy, kxy, x.rows, y.rows);
}

/**
 * Kernel Inception Distance: mean (and std) of the unbiased polynomial-kernel MMD^2 over seeded
 * random subsets (see the module notes).
 *
 * @example
 * const { mean, std } = kernelInceptionDistance({ features1: real, features2: fake, numSubsets: 100, subsetSize: 1000 });
 */
export function kernelInceptionDistance(params: KernelInceptionDistanceParams): KernelInceptionDistanceResult {
  const fn = 'kernelInceptionDistance';
  const [x, y] = readPair(fn, params);
  const { numSubsets = 100, subsetSize = 1000, seed = 0 } = params;
  if (!Number.isInteger(numSubsets) || numSubsets < 1) {
    throw new MetricInputError(`${fn}: option "numSubsets" must be a positive integer, got ${numSubsets}`);
  }
  if (!Number.isInteger(subsetSize) || subsetSize < 2) {
    throw new MetricInputError(`${fn}: option "subsetSize" must be an integer >= 2, got ${subsetSize}`);
  }
  const m = Math.min(subsetSize, x.rows, y.rows);
  const d = x.cols;
  const n1 = x.rows;
  const n2 = y.rows;
  const total = n1 + n2;
  const cache =
    params.cacheKernel ?? (total <= 4096 && (n1 * n1 + n2 * n2) / 2 + n1 * n2 <= numSubsets * 2 * m * m);
  const random = createSeededRandom(seed);
  let kxxAll: Float64Array | null = null;
  let kyyAll: Float64Array | null = null;
  let kxyAll: Float64Array | null = null;
  if (cache) {
    kxxAll = kernelMatrix(x.data, n1, x.data, n1, d, true);
    kyyAll = kernelMatrix(y.data, n2, y.data, n2, d, true);
    kxyAll = kernelMatrix(x.data, n1, y.data, n2, d, false);
  }
  const values: number[] = [];
  for (let s = 0; s < numSubsets; s++) {
    const ix = sampleWithoutReplacement({ n: n1, k: m, random });
    const iy = sampleWithoutReplacement({ n: n2, k: m, random });
    let kxx = 0;
    let kyy = 0;
    let kxy = 0;
    if (kxxAll && kyyAll && kxyAll) {
      // Indices are ascending, so (ix[a], ix[b]) with b < a lies in the lower triangle.
      for (let a = 0; a < m; a++) {
        const ra = ix[a] * n1;
        const rb = iy[a] * n2;
        const rxy = ix[a] * n2;
        for (let b = 0; b < a; b++) {
          kxx += kxxAll[ra + ix[b]];
          kyy += kyyAll[rb + iy[b]];
        }
        for (let b = 0; b < m; b++) kxy += kxyAll[rxy + iy[b]];
      }
      kxx *= 2;
      kyy *= 2;
    } else {
      const gx = gather(x, ix);
      const gy = gather(y, iy);
      kxx = offDiagonalSum(kernelMatrix(gx, m, gx, m, d, true), m);
      kyy = offDiagonalSum(kernelMatrix(gy, m, gy, m, d, true), m);
      kxy = fullSum(kernelMatrix(gx, m, gy, m, d, false));
    }
    values.push(mmd2FromSums(kxx, kyy, kxy, m, m));
  }
  return { mean: mean(values), std: standardDeviation(values, 0), values, numSubsets, subsetSize: m };
}
