import { describe, expect, it } from 'vitest';
import { symmetricEigen } from './symmetric-eigen';
import { createSeededRandom } from './seeded-random';

function randomSymmetric(n: number, seed: number): Float64Array {
  const rnd = createSeededRandom(seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      const v = 2 * rnd.nextFloat() - 1;
      a[i * n + j] = v;
      a[j * n + i] = v;
    }
  }
  return a;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** V diag(w) V^T */
function reconstruct(v: Float64Array, w: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += v[i * n + k] * w[k] * v[j * n + k];
    out[i * n + j] = s;
  }
  return out;
}

describe('symmetricEigen', () => {
  it('reconstructs random symmetric matrices, A = V diag(w) V^T to 1e-10, with orthonormal V', () => {
    for (const [n, seed] of [[1, 1], [2, 2], [3, 3], [7, 4], [50, 5], [120, 6]]) {
      const a = randomSymmetric(n, seed);
      const { values, vectors } = symmetricEigen({ matrix: a, n, computeVectors: true });
      expect(vectors).toBeDefined();
      const v = vectors as Float64Array;
      expect(maxAbsDiff(reconstruct(v, values, n), a)).toBeLessThan(1e-10);
      const vtv = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += v[k * n + i] * v[k * n + j];
        vtv[i * n + j] = s - (i === j ? 1 : 0);
      }
      expect(maxAbsDiff(vtv, new Float64Array(n * n))).toBeLessThan(1e-12);
      for (let i = 1; i < n; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1]);
      // Trace is preserved.
      let tr = 0;
      for (let i = 0; i < n; i++) tr += a[i * n + i];
      expect(values.reduce((s, x) => s + x, 0)).toBeCloseTo(tr, 10);
    }
  });

  it('gives the same eigenvalues with and without vectors', () => {
    const a = randomSymmetric(60, 9);
    const withV = symmetricEigen({ matrix: a, n: 60, computeVectors: true });
    const without = symmetricEigen({ matrix: a, n: 60 });
    expect(without.vectors).toBeUndefined();
    expect(maxAbsDiff(withV.values, without.values)).toBeLessThan(1e-12);
  });

  it('finds known eigenvalues', () => {
    // [[2,1],[1,2]] -> 1, 3
    expect(Array.from(symmetricEigen({ matrix: Float64Array.from([2, 1, 1, 2]), n: 2 }).values)).toEqual([
      expect.closeTo(1, 14),
      expect.closeTo(3, 14),
    ]);
    // Tridiagonal Toeplitz (2 on the diagonal, -1 beside it): 2 - 2 cos(k pi / (n + 1)), k = 1..n.
    const n = 40;
    const t = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      t[i * n + i] = 2;
      if (i > 0) t[i * n + i - 1] = t[(i - 1) * n + i] = -1;
    }
    const expected = Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (n + 1)));
    expect(maxAbsDiff(symmetricEigen({ matrix: t, n }).values, expected)).toBeLessThan(1e-12);
    // Q diag(mu) Q^T for a Householder reflector Q: eigenvalues mu, with a repeated value and a zero.
    const mu = [5, -2, 0, 5, 1e-3, 7];
    const m = mu.length;
    const u = [1, 2, -1, 0.5, 3, -2];
    const uu = u.reduce((s, x) => s + x * x, 0);
    const q = (i: number, j: number) => (i === j ? 1 : 0) - (2 * u[i] * u[j]) / uu;
    const a = new Float64Array(m * m);
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) for (let k = 0; k < m; k++) a[i * m + j] += q(i, k) * mu[k] * q(j, k);
    expect(maxAbsDiff(symmetricEigen({ matrix: a, n: m }).values, [...mu].sort((x, y) => x - y))).toBeLessThan(1e-13);
    // Diagonal and zero matrices.
    expect(Array.from(symmetricEigen({ matrix: Float64Array.from([3, 0, 0, 0, -1, 0, 0, 0, 2]), n: 3 }).values)).toEqual([-1, 2, 3]);
    expect(Array.from(symmetricEigen({ matrix: new Float64Array(16), n: 4 }).values)).toEqual([0, 0, 0, 0]);
  });

  it('reads only the lower triangle and rejects non-finite values', () => {
    const a = Float64Array.from([2, 999, 1, 2]); // upper entry ignored: [[2,1],[1,2]]
    expect(symmetricEigen({ matrix: a, n: 2 }).values[1]).toBeCloseTo(3, 14);
    expect(() => symmetricEigen({ matrix: Float64Array.from([NaN, 0, 0, 1]), n: 2 })).toThrow(/non-finite value at \[0,0\]/);
  });
});
