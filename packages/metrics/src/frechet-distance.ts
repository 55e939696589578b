/**
 * Fréchet distance between two feature distributions modelled as Gaussians (the quantity behind
 * FID, Heusel et al. 2017, on whatever features you give it):
 *
 *   d^2 = |m1 - m2|^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrtm(S1 S2)),
 *
 * with unbiased (n-1) covariances (as `numpy.cov`). The matrix square root is never formed: if
 * S1 = A A^T for any factor A, S1 S2 has the same non-zero eigenvalues as the symmetric PSD matrix
 * A^T S2 A, so Tr(sqrtm(S1 S2)) = sum_i sqrt(lambda_i(A^T S2 A)). Those eigenvalues come from a
 * Float64 symmetric eigen-solver (Householder tridiagonalisation + implicit QL). Eigenvalues that
 * come out negative (only by rounding, as the matrix is PSD) are clamped to 0; the smallest one
 * before clamping is reported as `minEigenvalue`.
 *
 * Factors used:
 * - `'gram'` (features only): A1 = Xc1^T / sqrt(n1-1), so A1^T S2 A1 = C C^T with
 *   C = Xc1 Xc2^T / sqrt((n1-1)(n2-1)) — an eigenproblem of size min(n1, n2), exact whatever the
 *   rank, and much cheaper than D x D work when there are fewer samples than features.
 * - `'cholesky'`: S1 = L L^T (or S2 when S1 is singular), eigenproblem of size D.
 * - `'pivoted-cholesky'`: when neither covariance is numerically positive definite (statistics
 *   of fewer samples than features): Cholesky with diagonal pivoting of S1 down to its numerical
 *   rank r (remainder at rounding level), eigenproblem of size r.
 */
import {
  centerColumns,
  cholesky,
  pivotedCholesky,
  permuteSymmetric,
  columnMeans,
  covarianceOfCentred,
  gemmABt,
  transpose,
} from './dense-matrix';
import {
  type ArrayInput,
  type FeatureInput,
  type NumericArray,
  MetricInputError,
  assertFinite,
  formatShape,
  readArray,
  readFeatures,
  toFloat64,
} from './metric-input';
import { symmetricEigen } from './symmetric-eigen';

/** Mean and unbiased covariance of a feature set. */
export interface FeatureStatistics {
  /** `[D]` column means. */
  readonly mean: Float64Array;
  /** `[D x D]` row-major unbiased (n-1) covariance. */
  readonly covariance: Float64Array;
  /** Number of samples n. */
  readonly count: number;
  /** Feature dimension D. */
  readonly dim: number;
}

/** Statistics as input: `mean` `[D]`, `covariance` `[D,D]` (tensors, shaped or flat arrays). */
export interface StatisticsInput {
  readonly mean: NumericArray | ArrayInput;
  readonly covariance: NumericArray | ArrayInput;
  /**
   * Number of samples behind the statistics (optional). When both counts are known, only the
   * min(n1-1, n2-1, D) largest eigenvalues are used (the others are zero in exact arithmetic).
   */
  readonly count?: number;
}

/** Result of {@link frechetDistance} and {@link frechetDistanceFromStatistics}. */
export interface FrechetDistanceResult {
  /** The Fréchet distance d^2 (may be a rounding-size negative number for identical inputs). */
  readonly distance: number;
  /** |m1 - m2|^2. */
  readonly meanDistanceSquared: number;
  readonly trace1: number;
  readonly trace2: number;
  /** Tr(sqrtm(S1 S2)). */
  readonly traceSqrtProduct: number;
  /** Factorisation used (see the module notes). */
  readonly method: 'gram' | 'cholesky' | 'pivoted-cholesky';
  /** Smallest eigenvalue of A^T S2 A before clamping negatives to 0. */
  readonly minEigenvalue: number;
}

/** Parameters of {@link frechetDistance}. */
export interface FrechetDistanceParams {
  /** First feature set `[N1, D]`, N1 >= 2. */
  readonly features1: FeatureInput;
  /** Second feature set `[N2, D]`, N2 >= 2. */
  readonly features2: FeatureInput;
  /**
   * `'auto'` (default) picks the cheaper of `'gram'` (work ~ N1 N2 D) and `'covariance'` (forms
   * both D x D covariances, then Cholesky; work ~ (N1 + N2) D^2 / 2 + 1.5 D^3).
   */
  readonly method?: 'auto' | 'gram' | 'covariance';
}

/**
 * Sum of square roots of the eigenvalues of a symmetric PSD matrix (lower triangle read). Values
 * that are zero in exact arithmetic come out as rounding noise of order n eps lambda_max, and
 * sqrt() would magnify that noise to ~1e-8 relative, so: negative values are clamped to 0, values
 * at or below `n * 2^-52 * lambda_max` count as 0, and with `rank` (a known upper bound on the
 * rank) only the `rank` largest values are used.
 */
export function sumSqrtEigenvalues(m: Float64Array, n: number, rank = n): { sum: number; min: number } {
  const { values } = symmetricEigen({ matrix: m, n });
  const top = values[n - 1];
  const tol = n * 2 ** -52 * Math.max(top, 0);
  let sum = 0;
  for (let i = n - 1; i >= Math.max(0, n - rank); i--) if (values[i] > tol) sum += Math.sqrt(values[i]);
  return { sum, min: values[0] };
}

function trace(s: Float64Array, d: number): number {
  let t = 0;
  for (let i = 0; i < d; i++) t += s[i * d + i];
  return t;
}

function squaredDistance(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s;
}

/** Tr(sqrtm(S1 S2)) from two covariance matrices. Internal. */
export function traceSqrtProductOfCovariances(
  s1: Float64Array,
  s2: Float64Array,
  d: number,
  rank = d,
): { value: number; min: number; method: 'cholesky' | 'pivoted-cholesky' } {
  let factor = cholesky(s1, d);
  let other = s2;
  if (!factor) {
    factor = cholesky(s2, d);
    other = s1;
  }
  if (factor) {
    // M = L^T S L, with T = S L computed as S (L^T)^T and M = L^T T as (L^T) (T^T)^T.
    const lt = transpose(factor, d, d);
    const t = new Float64Array(d * d);
    gemmABt({ m: d, p: d, k: d, a: other, b: lt, c: t, bUpper: true });
    const tt = transpose(t, d, d);
    const m = new Float64Array(d * d);
    gemmABt({ m: d, p: d, k: d, a: lt, b: tt, c: m, aUpper: true, lowerOnly: true });
    const r = sumSqrtEigenvalues(m, d, rank);
    return { value: r.sum, min: r.min, method: 'cholesky' };
  }
  // Neither is numerically positive definite: pivoted Cholesky of S1, P S1 P^T = L L^T with L of
  // the numerical rank r, and M = L^T (P S2 P^T) L, computed as W = L^T S2p, M = W L.
  const piv = pivotedCholesky(s1, d);
  const { rank: r, perm } = piv;
  if (r === 0) return { value: 0, min: 0, method: 'pivoted-cholesky' };
  const s2p = permuteSymmetric(s2, d, perm);
  const lt = transpose(piv.factor, d, r);
  const w = new Float64Array(r * d);
  gemmABt({ m: r, p: d, k: d, a: lt, b: s2p, c: w, aUpper: true });
  const m = new Float64Array(r * r);
  gemmABt({ m: r, p: r, k: d, a: w, b: lt, c: m, bUpper: true, lowerOnly: true });
  const res = sumSqrtEigenvalues(m, r, rank);
  return { value: res.sum, min: res.min, method: 'pivoted-cholesky' };
}

/** Mean and unbiased covariance (`numpy.cov(x, rowvar=False)`) of a feature set `[N, D]`, N >= 2. */
export function featureStatistics(params: { readonly features: FeatureInput }): FeatureStatistics {
  const f = readFeatures('featureStatistics', 'features', params.features, 2);
  const mean = columnMeans(f.data, f.rows, f.cols);
  const covariance = covarianceOfCentred(centerColumns(f.data, f.rows, f.cols, mean), f.rows, f.cols);
  return { mean, covariance, count: f.rows, dim: f.cols };
}

/**
 * Fréchet distance between two feature sets `[N1, D]` and `[N2, D]` (see the module notes for the
 * definition and numerics).
 *
 * @example
 * const { distance } = frechetDistance({ features1: realFeatures, features2: fakeFeatures });
 */
export function frechetDistance(params: FrechetDistanceParams): FrechetDistanceResult {
  const fn = 'frechetDistance';
  const x1 = readFeatures(fn, 'features1', params.features1, 2);
  const x2 = readFeatures(fn, 'features2', params.features2, 2);
  if (x2.cols !== x1.cols) {
    throw new MetricInputError(
      `${fn}: argument "features2" has shape ${formatShape([x2.rows, x2.cols])}, expected [N2,${x1.cols}] (the feature dimension of "features1")`,
    );
  }
  const method = params.method ?? 'auto';
  if (method !== 'auto' && method !== 'gram' && method !== 'covariance') {
    throw new MetricInputError(`${fn}: option "method" must be 'auto', 'gram' or 'covariance', got ${String(method)}`);
  }
  const d = x1.cols;
  const n1 = x1.rows;
  const n2 = x2.rows;
  const m1 = columnMeans(x1.data, n1, d);
  const m2 = columnMeans(x2.data, n2, d);
  const c1 = centerColumns(x1.data, n1, d, m1);
  const c2 = centerColumns(x2.data, n2, d, m2);
  const meanDistanceSquared = squaredDistance(m1, m2);

  const k = Math.min(n1, n2);
  const gramCost = n1 * n2 * d + k * k * Math.max(n1, n2) + (2 / 3) * k ** 3;
  const bothSingular = n1 - 1 < d && n2 - 1 < d;
  const covCost = ((n1 + n2) * d * d) / 2 + 1.5 * d ** 3 + (bothSingular ? 4 * d ** 3 : 0);
  const useGram = method === 'gram' || (method === 'auto' && gramCost <= covCost);

  if (!useGram) {
    return fromCovariances(meanDistanceSquared, covarianceOfCentred(c1, n1, d), covarianceOfCentred(c2, n2, d), d, Math.min(n1 - 1, n2 - 1, d));
  }
  // Gram route: A_i = Xc_i / sqrt(n_i - 1) (rows are samples).
  const s1 = 1 / Math.sqrt(n1 - 1);
  const s2 = 1 / Math.sqrt(n2 - 1);
  let t1 = 0;
  for (let i = 0; i < c1.length; i++) t1 += c1[i] * c1[i];
  t1 /= n1 - 1;
  let t2 = 0;
  for (let i = 0; i < c2.length; i++) t2 += c2[i] * c2[i];
  t2 /= n2 - 1;
  const c = new Float64Array(n1 * n2);
  gemmABt({ m: n1, p: n2, k: d, a: c1, b: c2, c, alpha: s1 * s2 });
  const rows = n1 <= n2 ? c : transpose(c, n1, n2);
  const inner = n1 <= n2 ? n2 : n1;
  const g = new Float64Array(k * k);
  gemmABt({ m: k, p: k, k: inner, a: rows, b: rows, c: g, lowerOnly: true });
  const r = sumSqrtEigenvalues(g, k, Math.min(n1 - 1, n2 - 1, d));
  return {
    distance: meanDistanceSquared + t1 + t2 - 2 * r.sum,
    meanDistanceSquared,
    trace1: t1,
    trace2: t2,
    traceSqrtProduct: r.sum,
    method: 'gram',
    minEigenvalue: r.min,
  };
}

function readStatistics(
  fn: string,
  arg: string,
  stats: StatisticsInput,
  dim?: number,
): { mean: Float64Array; cov: Float64Array; d: number; count: number | undefined } {
  if (typeof stats !== 'object' || stats === null || !('mean' in stats) || !('covariance' in stats)) {
    throw new MetricInputError(`${fn}: argument "${arg}" must be { mean, covariance }`);
  }
  if (stats.count !== undefined && (!Number.isInteger(stats.count) || stats.count < 2)) {
    throw new MetricInputError(`${fn}: argument "${arg}.count" must be an integer >= 2, got ${stats.count}`);
  }
  const read = (name: string, v: NumericArray | ArrayInput) =>
    Array.isArray(v) || ArrayBuffer.isView(v) ? { data: v as NumericArray, shape: [(v as NumericArray).length] } : readArray(fn, name, v as ArrayInput);
  const mean = read(`${arg}.mean`, stats.mean);
  const cov = read(`${arg}.covariance`, stats.covariance);
  if (mean.shape.length !== 1 || mean.shape[0] < 1 || (dim !== undefined && mean.shape[0] !== dim)) {
    throw new MetricInputError(`${fn}: argument "${arg}.mean" has shape ${formatShape(mean.shape)}, expected [${dim ?? 'D'}]`);
  }
  const d = mean.shape[0];
  const covOk = cov.shape.length === 2 ? cov.shape[0] === d && cov.shape[1] === d : cov.shape.length === 1 && cov.shape[0] === d * d;
  if (!covOk) {
    throw new MetricInputError(`${fn}: argument "${arg}.covariance" has shape ${formatShape(cov.shape)}, expected [${d},${d}] (or ${d * d} values row-major)`);
  }
  assertFinite(fn, `${arg}.mean`, mean.data, mean.shape);
  assertFinite(fn, `${arg}.covariance`, cov.data, [d, d]);
  const c = toFloat64(cov.data);
  let scale = 0;
  for (let i = 0; i < d; i++) scale = Math.max(scale, Math.abs(c[i * d + i]));
  for (let i = 0; i < d; i++) {
    if (c[i * d + i] < 0) throw new MetricInputError(`${fn}: argument "${arg}.covariance" has a negative variance ${c[i * d + i]} at [${i},${i}]`);
    for (let j = 0; j < i; j++) {
      if (Math.abs(c[i * d + j] - c[j * d + i]) > 1e-9 * scale) {
        throw new MetricInputError(`${fn}: argument "${arg}.covariance" is not symmetric: [${i},${j}] = ${c[i * d + j]} but [${j},${i}] = ${c[j * d + i]}`);
      }
    }
  }
  return { mean: toFloat64(mean.data), cov: c, d, count: stats.count };
}

/**
 * Fréchet distance from precomputed statistics (e.g. cached statistics of the real set, from
 * {@link featureStatistics}). Covariances must be symmetric PSD `[D,D]`.
 */
export function frechetDistanceFromStatistics(params: { readonly stats1: StatisticsInput; readonly stats2: StatisticsInput }): FrechetDistanceResult {
  const fn = 'frechetDistanceFromStatistics';
  const a = readStatistics(fn, 'stats1', params.stats1);
  const b = readStatistics(fn, 'stats2', params.stats2, a.d);
  const rank = a.count !== undefined && b.count !== undefined ? Math.min(a.count - 1, b.count - 1, a.d) : a.d;
  return fromCovariances(squaredDistance(a.mean, b.mean), a.cov, b.cov, a.d, rank);
}

/** ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2) from the two covariances (d x d). */
function fromCovariances(meanDistanceSquared: number, s1: Float64Array, s2: Float64Array, d: number, rank: number): FrechetDistanceResult {
  const t1 = trace(s1, d);
  const t2 = trace(s2, d);
  const r = traceSqrtProductOfCovariances(s1, s2, d, rank);
  return {
    distance: meanDistanceSquared + t1 + t2 - 2 * r.value,
    meanDistanceSquared,
    trace1: t1,
    trace2: t2,
    traceSqrtProduct: r.value,
    method: r.method,
    minEigenvalue: r.min,
  };
}
