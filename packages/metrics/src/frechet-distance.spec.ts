import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { featureStatistics, frechetDistance, frechetDistanceFromStatistics, sumSqrtEigenvalues } from './frechet-distance';
import { createSeededRandom } from './seeded-random';
import { hasSharedReference, loadSharedReference, skipReason } from '@fad/test-utils/shared-reference';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Correlated Gaussian-ish features: rows = samples. */
function features(n: number, d: number, seed: number, shift = 0): number[][] {
  const r = createSeededRandom(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - r.nextFloat())) * Math.cos(2 * Math.PI * r.nextFloat());
  const mix = Array.from({ length: d }, () => Array.from({ length: d }, () => normal() / Math.sqrt(d)));
  return Array.from({ length: n }, () => {
    const z = Array.from({ length: d }, normal);
    return mix.map((row, i) => row.reduce((s, m, j) => s + m * z[j], 0) + 0.3 * z[i] + shift * (i % 3));
  });
}

/** Sylvester Hadamard matrix of order 2^p. */
function hadamard(p: number): number[][] {
  let h = [[1]];
  for (let k = 0; k < p; k++) h = [...h.map((r) => [...r, ...r]), ...h.map((r) => [...r, ...r.map((v) => -v)])];
  return h;
}

interface FrechetCase {
  dim: number;
  a: number[][];
  b: number[][];
  frechet_distance: number;
}

describe.skipIf(!hasSharedReference('fid/frechet.json'))(`frechetDistance vs scipy (fid/frechet.json)${skipReason('fid/frechet.json', '@fad/metrics tests')}`, () => {
  it('matches every case to 1e-3 relative, by every route', () => {
    const { cases } = loadSharedReference<{ cases: FrechetCase[] }>('fid/frechet.json');
    expect(cases.length).toBeGreaterThan(0);
    let worst = 0;
    for (const c of cases) {
      const ref = c.frechet_distance;
      const gram = frechetDistance({ features1: c.a, features2: c.b, method: 'gram' });
      const cov = frechetDistance({ features1: c.a, features2: c.b, method: 'covariance' });
      const stats = frechetDistanceFromStatistics({ stats1: featureStatistics({ features: c.a }), stats2: featureStatistics({ features: c.b }) });
      expect(gram.method).toBe('gram');
      expect(cov.method).toBe('cholesky');
      for (const r of [gram, cov, stats]) {
        const rel = Math.abs(r.distance - ref) / Math.abs(ref);
        worst = Math.max(worst, rel);
        expect(rel).toBeLessThan(1e-3);
      }
    }
    console.info(`frechetDistance: worst relative error vs scipy ${worst.toExponential(2)}`);
  });
});

describe('sumSqrtEigenvalues', () => {
  it('treats rounding-level eigenvalues of a singular PSD matrix as 0 (sqrt would magnify them)', () => {
    // M = Q diag(lambda) Q^T with 30 exact zeros and 1..10, Q a Householder reflector.
    const n = 40;
    const lambda = Array.from({ length: n }, (_, i) => (i < 30 ? 0 : i - 29));
    const u = Array.from({ length: n }, (_, i) => Math.sin(i + 1));
    const uu = u.reduce((s, x) => s + x * x, 0);
    const q = (i: number, j: number) => (i === j ? 1 : 0) - (2 * u[i] * u[j]) / uu;
    const m = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) m[i * n + j] += q(i, k) * lambda[k] * q(j, k);
    const expected = lambda.reduce((s, l) => s + Math.sqrt(l), 0);
    expect(Math.abs(sumSqrtEigenvalues(m, n).sum - expected)).toBeLessThan(1e-12);
    expect(Math.abs(sumSqrtEigenvalues(m, n, 10).sum - expected)).toBeLessThan(1e-12);
    // A rank cap below the true rank drops the smallest values.
    expect(sumSqrtEigenvalues(m, n, 9).sum).toBeCloseTo(expected - 1, 12);
  });
});

describe('frechetDistance', () => {
  it('is 0 for identical sets (fewer and more samples than features)', () => {
    for (const [n, d] of [[10, 30], [60, 12]]) {
      const x = features(n, d, n);
      const r = frechetDistance({ features1: x, features2: x });
      expect(r.method).toBe(n < d ? 'gram' : 'cholesky');
      expect(Math.abs(r.distance)).toBeLessThan(1e-9 * r.trace1);
      expect(r.traceSqrtProduct).toBeCloseTo(r.trace1, 8);
    }
  });

  it('is |m1-m2|^2 for a shifted copy (equal covariances)', () => {
    const x = features(40, 8, 1);
    const shift = [1, -2, 0.5, 0, 3, 0.25, -1, 2];
    const y = x.map((row) => row.map((v, i) => v + shift[i]));
    const expected = shift.reduce((s, v) => s + v * v, 0);
    for (const method of ['gram', 'covariance'] as const) {
      const r = frechetDistance({ features1: x, features2: y, method });
      expect(r.meanDistanceSquared).toBeCloseTo(expected, 10);
      expect(r.distance).toBeCloseTo(expected, 8);
    }
  });

  it('matches sum (sqrt(a)-sqrt(b))^2 + |dm|^2 for diagonal covariances (Hadamard design)', () => {
    const h = hadamard(3); // 8 x 8; columns 1..7 are zero-mean and orthogonal
    const sa = [0.5, 2, 3];
    const sb = [1.5, 0.25, 3];
    const ma = [1, 0, -1];
    const mb = [0, 2, -1];
    const x = h.map((row) => sa.map((s, j) => s * row[1 + j] + ma[j]));
    const y = h.map((row) => sb.map((s, j) => s * row[4 + j] + mb[j]));
    // Unbiased variances: s^2 * 8 / 7.
    const va = sa.map((s) => (s * s * 8) / 7);
    const vb = sb.map((s) => (s * s * 8) / 7);
    const expected = va.reduce((acc, a, i) => acc + (Math.sqrt(a) - Math.sqrt(vb[i])) ** 2, 0) + 1 + 4 + 0;
    for (const method of ['gram', 'covariance'] as const) {
      expect(frechetDistance({ features1: x, features2: y, method }).distance).toBeCloseTo(expected, 10);
    }
    const fromStats = frechetDistanceFromStatistics({
      stats1: { mean: ma, covariance: [va[0], 0, 0, 0, va[1], 0, 0, 0, va[2]] },
      stats2: { mean: mb, covariance: { data: [vb[0], 0, 0, 0, vb[1], 0, 0, 0, vb[2]], shape: [3, 3] } },
    });
    expect(fromStats.distance).toBeCloseTo(expected, 12);
  });

  it('matches the 2x2 closed form Tr sqrtm(M) = sqrt(tr M + 2 sqrt(det M)) for non-diagonal covariances', () => {
    const s1 = [2, 0.8, 0.8, 1];
    const s2 = [0.5, -0.3, -0.3, 1.5];
    const m = [s1[0] * s2[0] + s1[1] * s2[2], s1[0] * s2[1] + s1[1] * s2[3], s1[2] * s2[0] + s1[3] * s2[2], s1[2] * s2[1] + s1[3] * s2[3]];
    const trSqrt = Math.sqrt(m[0] + m[3] + 2 * Math.sqrt(m[0] * m[3] - m[1] * m[2]));
    const r = frechetDistanceFromStatistics({ stats1: { mean: [0, 0], covariance: s1 }, stats2: { mean: [1, 0.5], covariance: s2 } });
    expect(r.traceSqrtProduct).toBeCloseTo(trSqrt, 13);
    // |dm|^2 = 1 + 0.25, Tr S1 = 3, Tr S2 = 2.
    expect(r.distance).toBeCloseTo(1.25 + 3 + 2 - 2 * trSqrt, 13);
  });

  it('agrees across routes: Gram vs Cholesky on full-rank data, Gram vs eigen fallback on singular covariances', () => {
    const x = features(50, 10, 7);
    const y = features(45, 10, 8, 0.5);
    const g = frechetDistance({ features1: x, features2: y, method: 'gram' });
    const c = frechetDistance({ features1: x, features2: y, method: 'covariance' });
    expect(c.distance).toBeCloseTo(g.distance, 9);
    expect(g.distance).toBeGreaterThan(0.5);
    // n <= D: both covariances singular, Cholesky refuses both, the eigen factor takes over.
    const xs = features(9, 16, 9);
    const ys = features(12, 16, 10, 0.3);
    const gs = frechetDistance({ features1: xs, features2: ys });
    expect(gs.method).toBe('gram');
    const es = frechetDistanceFromStatistics({ stats1: featureStatistics({ features: xs }), stats2: featureStatistics({ features: ys }) });
    expect(es.method).toBe('pivoted-cholesky');
    expect(es.distance).toBeCloseTo(gs.distance, 8);
    // Without sample counts only the rounding-level threshold removes the structural zeros.
    const noCount = (f: number[][]) => {
      const st = featureStatistics({ features: f });
      return { mean: st.mean, covariance: st.covariance };
    };
    expect(frechetDistanceFromStatistics({ stats1: noCount(xs), stats2: noCount(ys) }).distance).toBeCloseTo(gs.distance, 6);
    // One singular covariance: Cholesky of the other one.
    const one = frechetDistanceFromStatistics({ stats1: featureStatistics({ features: xs }), stats2: featureStatistics({ features: features(40, 16, 11) }) });
    expect(one.method).toBe('cholesky');
    expect(one.distance).toBeCloseTo(frechetDistance({ features1: xs, features2: features(40, 16, 11), method: 'gram' }).distance, 8);
  });

  it('accepts tensors and leaks none', () => {
    const a = tf.tensor2d(features(20, 6, 1));
    const b = tf.tensor2d(features(25, 6, 2, 1));
    const before = tf.memory().numTensors;
    const r = frechetDistance({ features1: a, features2: b });
    const s = featureStatistics({ features: a });
    const mean = tf.tensor1d(Float32Array.from(s.mean));
    const cov = tf.tensor2d(Float32Array.from(s.covariance), [6, 6]);
    const sb = featureStatistics({ features: b });
    const before2 = tf.memory().numTensors;
    const fromTensors = frechetDistanceFromStatistics({ stats1: { mean, covariance: cov }, stats2: sb });
    expect(tf.memory().numTensors).toBe(before2);
    // float32 statistics: agreement to float32 precision.
    expect(fromTensors.distance).toBeCloseTo(r.distance, 4);
    tf.dispose([mean, cov]);
    expect(tf.memory().numTensors).toBe(before);
    const ref = frechetDistance({ features1: { data: a.dataSync(), shape: a.shape }, features2: { data: b.dataSync(), shape: b.shape } });
    expect(r.distance).toBe(ref.distance);
    expect(s.dim).toBe(6);
    tf.dispose([a, b]);
  });

  it('rejects bad inputs naming the argument and the shapes', () => {
    const x = features(5, 4, 1);
    expect(() => frechetDistance({ features1: x, features2: features(5, 3, 2) })).toThrow(/argument "features2" has shape \[5,3\], expected \[N2,4\]/);
    expect(() => frechetDistance({ features1: [x[0]], features2: x })).toThrow(/argument "features1" has shape \[1,4\], expected \[N,D\] with N >= 2/);
    expect(() => frechetDistance({ features1: { data: new Float64Array(8), shape: [2, 2, 2] }, features2: x })).toThrow(/argument "features1" has shape \[2,2,2\], expected \[N,D\]/);
    const bad = x.map((r) => r.slice());
    bad[2][1] = NaN;
    expect(() => frechetDistance({ features1: x, features2: bad })).toThrow(/argument "features2" contains NaN at index \[2,1\]/);
    expect(() => frechetDistance({ features1: [[1, 2], [3]], features2: x })).toThrow(/argument "features1" row 1 has length 1, expected 2/);
    expect(() =>
      frechetDistanceFromStatistics({ stats1: { mean: [0, 0], covariance: [1, 0.5, 0.4, 1] }, stats2: { mean: [0, 0], covariance: [1, 0, 0, 1] } }),
    ).toThrow(/argument "stats1.covariance" is not symmetric/);
    expect(() =>
      frechetDistanceFromStatistics({ stats1: { mean: [0, 0], covariance: [1, 0, 0, 1] }, stats2: { mean: [0, 0, 0], covariance: [1, 0, 0, 1] } }),
    ).toThrow(/argument "stats2.mean" has shape \[3\], expected \[2\]/);
  });
});
