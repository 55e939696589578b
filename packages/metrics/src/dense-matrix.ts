/**
 * Dense Float64 matrix kernels in plain JavaScript for the feature-distribution metrics: a
 * cache-blocked `C += alpha * A B^T` with a 4x4 register tile, a blocked Cholesky factorisation,
 * and column statistics. Matrices are row-major `Float64Array`s with an explicit leading dimension
 * (row stride). Internal module.
 */

/** Arguments of {@link gemmABt}: `C[m x p] += alpha * A[m x k] * B[p x k]^T`. */
export interface GemmABtParams {
  readonly m: number;
  readonly p: number;
  readonly k: number;
  readonly a: Float64Array;
  readonly aOffset?: number;
  /** Row stride of A (default k). */
  readonly lda?: number;
  readonly b: Float64Array;
  readonly bOffset?: number;
  /** Row stride of B (default k). */
  readonly ldb?: number;
  readonly c: Float64Array;
  readonly cOffset?: number;
  /** Row stride of C (default p). */
  readonly ldc?: number;
  readonly alpha?: number;
  /** Only entries with column <= row are guaranteed (others may be partly written). */
  readonly lowerOnly?: boolean;
  /** Row r of A is zero before column r (A upper triangular): the products skip those zeros. */
  readonly aUpper?: boolean;
  /** Row r of B is zero before column r (B upper triangular). */
  readonly bUpper?: boolean;
}

const KC = 256;
const JB = 64;

/** `C += alpha * A B^T` (dot products of rows), cache-blocked with a 4x4 register tile. */
export function gemmABt(params: GemmABtParams): void {
  const { m, p, k, a, b, c } = params;
  const aOff = params.aOffset ?? 0;
  const bOff = params.bOffset ?? 0;
  const cOff = params.cOffset ?? 0;
  const lda = params.lda ?? k;
  const ldb = params.ldb ?? k;
  const ldc = params.ldc ?? p;
  const alpha = params.alpha ?? 1;
  const lower = params.lowerOnly ?? false;
  const aUpper = params.aUpper ?? false;
  const bUpper = params.bUpper ?? false;
  for (let kc0 = 0; kc0 < k; kc0 += KC) {
    const kc1 = Math.min(k, kc0 + KC);
    for (let jb0 = 0; jb0 < p; jb0 += JB) {
      const jb1 = Math.min(p, jb0 + JB);
      for (let i0 = 0; i0 < m; i0 += 4) {
        const iN = Math.min(4, m - i0);
        if (lower && jb0 > i0 + iN - 1) continue;
        for (let j0 = jb0; j0 < jb1; j0 += 4) {
          const jN = Math.min(4, jb1 - j0);
          if (lower && j0 > i0 + iN - 1) break;
          let ks = kc0;
          if (aUpper && i0 > ks) ks = i0;
          if (bUpper && j0 > ks) ks = j0;
          if (ks >= kc1) continue;
          if (iN === 4 && jN === 4) {
            const a0 = aOff + i0 * lda;
            const a1 = a0 + lda;
            const a2 = a1 + lda;
            const a3 = a2 + lda;
            const b0 = bOff + j0 * ldb;
            const b1 = b0 + ldb;
            const b2 = b1 + ldb;
            const b3 = b2 + ldb;
            let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0; // prettier-ignore
            let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0; // prettier-ignore
            for (let t = ks; t < kc1; t++) {
              const x0 = a[a0 + t];
              const x1 = a[a1 + t];
              const x2 = a[a2 + t];
              const x3 = a[a3 + t];
              const y0 = b[b0 + t];
              const y1 = b[b1 + t];
              const y2 = b[b2 + t];
              const y3 = b[b3 + t];
              c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3; // prettier-ignore
              c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3; // prettier-ignore
              c20 += x2 * y0; c21 += x2 * y1; c22 += x2 * y2; c23 += x2 * y3; // prettier-ignore
              c30 += x3 * y0; c31 += x3 * y1; c32 += x3 * y2; c33 += x3 * y3; // prettier-ignore
            }
            let o = cOff + i0 * ldc + j0;
            c[o] += alpha * c00; c[o + 1] += alpha * c01; c[o + 2] += alpha * c02; c[o + 3] += alpha * c03; // prettier-ignore
            o += ldc;
            c[o] += alpha * c10; c[o + 1] += alpha * c11; c[o + 2] += alpha * c12; c[o + 3] += alpha * c13; // prettier-ignore
            o += ldc;
            c[o] += alpha * c20; c[o + 1] += alpha * c21; c[o + 2] += alpha * c22; c[o + 3] += alpha * c23; // prettier-ignore
            o += ldc;
            c[o] += alpha * c30; c[o + 1] += alpha * c31; c[o + 2] += alpha * c32; c[o + 3] += alpha * c33; // prettier-ignore
          } else {
            for (let i = i0; i < i0 + iN; i++) {
              const ar = aOff + i * lda;
              for (let j = j0; j < j0 + jN; j++) {
                const br = bOff + j * ldb;
                let s = 0;
                for (let t = ks; t < kc1; t++) s += a[ar + t] * b[br + t];
                c[cOff + i * ldc + j] += alpha * s;
              }
            }
          }
        }
      }
    }
  }
}

/** `A[rows x cols]` transposed into a new `[cols x rows]` array. */
export function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  const B = 32;
  for (let i0 = 0; i0 < rows; i0 += B) {
    for (let j0 = 0; j0 < cols; j0 += B) {
      const i1 = Math.min(rows, i0 + B);
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) t[j * rows + i] = a[i * cols + j];
    }
  }
  return t;
}

/** Copies the lower triangle of a square matrix onto its upper triangle (in place). */
export function symmetrizeFromLower(a: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[j * n + i] = a[i * n + j];
}

/** Column means of `X[rows x cols]`. */
export function columnMeans(x: Float64Array, rows: number, cols: number): Float64Array {
  const m = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let j = 0; j < cols; j++) m[j] += x[o + j];
  }
  for (let j = 0; j < cols; j++) m[j] /= rows;
  return m;
}

/** `X - 1 mean^T` as a new array. */
export function centerColumns(x: Float64Array, rows: number, cols: number, means: Float64Array): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let j = 0; j < cols; j++) out[o + j] = x[o + j] - means[j];
  }
  return out;
}

/** Unbiased covariance `Xc^T Xc / (rows - 1)` of already-centred rows, full symmetric `[cols x cols]`. */
export function covarianceOfCentred(xc: Float64Array, rows: number, cols: number): Float64Array {
  const xt = transpose(xc, rows, cols);
  const cov = new Float64Array(cols * cols);
  gemmABt({ m: cols, p: cols, k: rows, a: xt, b: xt, c: cov, alpha: 1 / (rows - 1), lowerOnly: true });
  symmetrizeFromLower(cov, cols);
  return cov;
}

/**
 * Lower Cholesky factor L (A = L L^T) of a symmetric matrix, reading its lower triangle; returns
 * null when a pivot is <= `relativeTolerance` times the largest diagonal entry (A not numerically
 * positive definite). Right-looking, blocked, with the trailing update done by {@link gemmABt}.
 */
export function cholesky(a: Float64Array, n: number, relativeTolerance = 1e-12): Float64Array | null {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) l[i * n + j] = a[i * n + j];
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, a[i * n + i]);
  if (!(maxDiag > 0)) return null;
  const tol = relativeTolerance * maxDiag;
  const NB = 64;
  for (let k0 = 0; k0 < n; k0 += NB) {
    const k1 = Math.min(n, k0 + NB);
    // Factor the diagonal block (already updated by earlier panels).
    for (let j = k0; j < k1; j++) {
      const rj = j * n;
      let d = l[rj + j];
      for (let t = k0; t < j; t++) d -= l[rj + t] * l[rj + t];
      if (!(d > tol)) return null;
      const ljj = Math.sqrt(d);
      l[rj + j] = ljj;
      // Column j below the diagonal, rows of the whole panel (j+1 .. n-1).
      for (let i = j + 1; i < n; i++) {
        const ri = i * n;
        let s = l[ri + j];
        for (let t = k0; t < j; t++) s -= l[ri + t] * l[rj + t];
        l[ri + j] = s / ljj;
      }
    }
    // Trailing update: A22 -= L21 L21^T (lower triangle).
    const m = n - k1;
    if (m > 0) {
      gemmABt({
        m,
        p: m,
        k: k1 - k0,
        a: l,
        aOffset: k1 * n + k0,
        lda: n,
        b: l,
        bOffset: k1 * n + k0,
        ldb: n,
        c: l,
        cOffset: k1 * n + k1,
        ldc: n,
        alpha: -1,
        lowerOnly: true,
      });
    }
  }
  // Clear anything the blocked update wrote above the diagonal.
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) l[i * n + j] = 0;
  return l;
}

/** Result of {@link pivotedCholesky}. */
export interface PivotedCholesky {
  /** `[n x rank]` row-major, lower trapezoidal: P A P^T ~= L L^T. */
  readonly factor: Float64Array;
  readonly rank: number;
  /** Row i of the factor belongs to variable perm[i]. */
  readonly perm: Int32Array;
}

/**
 * Cholesky factorisation with complete (diagonal) pivoting of a symmetric positive semi-definite
 * matrix (LAPACK dpstf2's algorithm): at each step the largest remaining diagonal entry is the
 * pivot, and the factorisation stops when it is <= `relativeTolerance` times the largest diagonal
 * entry (default n * 2^-52, LAPACK's default). The neglected remainder is then at rounding level,
 * so A = P^T L L^T P to working accuracy with L of the numerical rank. Reads the full matrix.
 */
export function pivotedCholesky(a: Float64Array, n: number, relativeTolerance = n * 2 ** -52): PivotedCholesky {
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  const diag = new Float64Array(n);
  let maxDiag = 0;
  for (let i = 0; i < n; i++) {
    diag[i] = a[i * n + i];
    maxDiag = Math.max(maxDiag, diag[i]);
  }
  if (!(maxDiag > 0)) return { factor: new Float64Array(0), rank: 0, perm };
  const tol = relativeTolerance * maxDiag;
  const l = new Float64Array(n * n);
  let rank = 0;
  for (let j = 0; j < n; j++) {
    let p = j;
    for (let i = j + 1; i < n; i++) if (diag[i] > diag[p]) p = i;
    if (!(diag[p] > tol)) break;
    if (p !== j) {
      [perm[j], perm[p]] = [perm[p], perm[j]];
      [diag[j], diag[p]] = [diag[p], diag[j]];
      for (let t = 0; t < j; t++) [l[j * n + t], l[p * n + t]] = [l[p * n + t], l[j * n + t]];
    }
    const ljj = Math.sqrt(diag[j]);
    const rj = j * n;
    l[rj + j] = ljj;
    const rowA = perm[j] * n;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = a[rowA + perm[i]];
      for (let t = 0; t < j; t++) s -= l[ri + t] * l[rj + t];
      const lij = s / ljj;
      l[ri + j] = lij;
      diag[i] -= lij * lij;
    }
    rank = j + 1;
  }
  const factor = new Float64Array(n * rank);
  for (let i = 0; i < n; i++) for (let t = 0; t < Math.min(rank, i + 1); t++) factor[i * rank + t] = l[i * n + t];
  return { factor, rank, perm };
}

/** `A[perm[i], perm[j]]` as a new matrix. */
export function permuteSymmetric(a: Float64Array, n: number, perm: Int32Array): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const src = perm[i] * n;
    const dst = i * n;
    for (let j = 0; j < n; j++) out[dst + j] = a[src + perm[j]];
  }
  return out;
}
