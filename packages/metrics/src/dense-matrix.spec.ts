import { describe, expect, it } from 'vitest';
import {
  centerColumns,
  cholesky,
  columnMeans,
  covarianceOfCentred,
  gemmABt,
  permuteSymmetric,
  pivotedCholesky,
  transpose,
} from './dense-matrix';
import { createSeededRandom } from './seeded-random';

function randomMatrix(rows: number, cols: number, seed: number): Float64Array {
  const r = createSeededRandom(seed);
  return Float64Array.from({ length: rows * cols }, () => 2 * r.nextFloat() - 1);
}

function naiveABt(a: Float64Array, b: Float64Array, m: number, p: number, k: number): Float64Array {
  const c = new Float64Array(m * p);
  for (let i = 0; i < m; i++) for (let j = 0; j < p; j++) {
    let s = 0;
    for (let t = 0; t < k; t++) s += a[i * k + t] * b[j * k + t];
    c[i * p + j] = s;
  }
  return c;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('gemmABt', () => {
  it('matches a naive triple loop, including ragged edges and k > block size', () => {
    for (const [m, p, k] of [[1, 1, 1], [5, 7, 3], [13, 9, 300], [70, 66, 513]]) {
      const a = randomMatrix(m, k, m);
      const b = randomMatrix(p, k, p + 100);
      const c = new Float64Array(m * p).fill(1);
      gemmABt({ m, p, k, a, b, c, alpha: -2 });
      const ref = naiveABt(a, b, m, p, k).map((v) => 1 - 2 * v);
      expect(maxAbsDiff(c, ref)).toBeLessThan(1e-12);
    }
  });

  it('honours lowerOnly, triangular skips and strided sub-matrices', () => {
    const n = 37;
    const u = randomMatrix(n, n, 3);
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) u[i * n + j] = 0; // upper triangular rows
    const x = randomMatrix(n, n, 4);
    const full = naiveABt(u, x, n, n, n);
    const c = new Float64Array(n * n);
    gemmABt({ m: n, p: n, k: n, a: u, b: x, c, aUpper: true });
    expect(maxAbsDiff(c, full)).toBeLessThan(1e-12);
    const c2 = new Float64Array(n * n);
    gemmABt({ m: n, p: n, k: n, a: x, b: u, c: c2, bUpper: true });
    expect(maxAbsDiff(c2, naiveABt(x, u, n, n, n))).toBeLessThan(1e-12);
    const sym = new Float64Array(n * n);
    gemmABt({ m: n, p: n, k: n, a: x, b: x, c: sym, lowerOnly: true });
    const ref = naiveABt(x, x, n, n, n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) expect(sym[i * n + j]).toBeCloseTo(ref[i * n + j], 12);
    // Sub-matrix: rows 2..9, columns 3..12 of x times itself, written into a 20x20 buffer at (5,5).
    const big = new Float64Array(400);
    gemmABt({ m: 8, p: 8, k: 10, a: x, aOffset: 2 * n + 3, lda: n, b: x, bOffset: 2 * n + 3, ldb: n, c: big, cOffset: 5 * 20 + 5, ldc: 20 });
    let s = 0;
    for (let t = 0; t < 10; t++) s += x[4 * n + 3 + t] * x[7 * n + 3 + t];
    expect(big[(5 + 2) * 20 + 5 + 5]).toBeCloseTo(s, 13);
  });
});

describe('cholesky and covariance', () => {
  it('factors an SPD matrix (L L^T = A, L lower) across block boundaries, and refuses a singular one', () => {
    const n = 150;
    const x = randomMatrix(n, n + 10, 5);
    const a = naiveABt(x, x, n, n, n + 10);
    const l = cholesky(a, n);
    expect(l).not.toBeNull();
    const ll = l as Float64Array;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) expect(ll[i * n + j]).toBe(0);
    expect(maxAbsDiff(naiveABt(ll, ll, n, n, n), a)).toBeLessThan(1e-10);
    // Rank 3 PSD matrix of size 10: not positive definite.
    const y = randomMatrix(10, 3, 6);
    expect(cholesky(naiveABt(y, y, 10, 10, 3), 10)).toBeNull();
    expect(cholesky(new Float64Array(4), 2)).toBeNull();
  });

  it('pivoted Cholesky finds the numerical rank and reproduces P A P^T = L L^T', () => {
    for (const [n, r] of [[10, 3], [40, 40], [30, 1]]) {
      const y = randomMatrix(n, r, n + r);
      const a = naiveABt(y, y, n, n, r); // rank r PSD
      const piv = pivotedCholesky(a, n);
      expect(piv.rank).toBe(r);
      const llt = naiveABt(piv.factor, piv.factor, n, n, piv.rank);
      expect(maxAbsDiff(llt, permuteSymmetric(a, n, piv.perm))).toBeLessThan(1e-12);
      for (let i = 0; i < n; i++) for (let t = i + 1; t < piv.rank; t++) expect(piv.factor[i * piv.rank + t]).toBe(0);
      // Pivots are non-increasing down the diagonal.
      for (let i = 1; i < piv.rank; i++) expect(piv.factor[i * piv.rank + i]).toBeLessThanOrEqual(piv.factor[(i - 1) * piv.rank + i - 1] * (1 + 1e-12));
    }
    expect(pivotedCholesky(new Float64Array(9), 3).rank).toBe(0);
  });

  it('computes the unbiased covariance like numpy.cov(rowvar=False)', () => {
    // x = [[1,2],[3,5],[5,11]]: means (3, 6); deviations (-2,-4),(0,-1),(2,5)
    // var0 = (4+0+4)/2 = 4, var1 = (16+1+25)/2 = 21, cov = (8+0+10)/2 = 9
    const x = Float64Array.from([1, 2, 3, 5, 5, 11]);
    const mu = columnMeans(x, 3, 2);
    expect(Array.from(mu)).toEqual([3, 6]);
    expect(Array.from(covarianceOfCentred(centerColumns(x, 3, 2, mu), 3, 2))).toEqual([4, 9, 9, 21]);
    expect(Array.from(transpose(Float64Array.from([1, 2, 3, 4, 5, 6]), 2, 3))).toEqual([1, 4, 2, 5, 3, 6]);
  });
});
