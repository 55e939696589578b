import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { MS_SSIM_WEIGHTS, downsample2x2, msSsim, msSsimMinSize, planePairMsSsim } from './ms-ssim';
import { resolveSsimWindow, ssim } from './ssim';
import { addNoise, gaussianKernel1d, naiveSsim, syntheticImage } from './test-support/ssim-reference';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Independent MS-SSIM: naive 2-D SSIM per scale, pooling by explicit replicate-padding. */
function naiveMsSsim(x: Float64Array, y: Float64Array, side: number, kernel1d: number[], weights: readonly number[]): number {
  const pool = (img: Float64Array, n: number): Float64Array => {
    const m = n + (n % 2);
    const padded = new Float64Array(m * m);
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) padded[i * m + j] = img[Math.min(i, n - 1) * n + Math.min(j, n - 1)];
    const out = new Float64Array((m / 2) * (m / 2));
    for (let i = 0; i < m / 2; i++) {
      for (let j = 0; j < m / 2; j++) {
        let s = 0;
        for (const [di, dj] of [[0, 0], [0, 1], [1, 0], [1, 1]]) s += padded[(2 * i + di) * m + 2 * j + dj];
        out[i * (m / 2) + j] = s / 4;
      }
    }
    return out;
  };
  let a = x;
  let b = y;
  let n = side;
  let value = 1;
  weights.forEach((wt, s) => {
    const r = naiveSsim({ x: a, y: b, h: n, w: n, kernel1d, covNorm: 1, c1: 1e-4, c2: 9e-4 });
    value *= Math.max(0, s === weights.length - 1 ? r.ssim : r.cs) ** wt;
    a = pool(a, n);
    b = pool(b, n);
    n = Math.ceil(n / 2);
  });
  return value;
}

describe('msSsim', () => {
  it('agrees with an independent naive re-implementation at the minimum size 161 (5 scales, 11x11 Gaussian)', () => {
    const n = 161;
    const x = syntheticImage(n, n, 4);
    const y = addNoise(x, 0.25, 5);
    const ref = naiveMsSsim(x, y, n, gaussianKernel1d(1.5), MS_SSIM_WEIGHTS);
    const res = msSsim({ x: { data: x, shape: [n, n] }, y: { data: y, shape: [n, n] }, dataRange: 1 });
    expect(res.mean).toBeCloseTo(ref, 12);
    expect(ref).toBeGreaterThan(0.1);
    expect(ref).toBeLessThan(0.99);
  });

  it('agrees with the naive version for a small window and three custom weights on 40x40 images', () => {
    const n = 40;
    const weights = [0.2, 0.3, 0.5];
    const x = syntheticImage(n, n, 8);
    const y = addNoise(syntheticImage(n, n, 8), 0.3, 2);
    const ref = naiveMsSsim(x, y, n, gaussianKernel1d(0.4), weights);
    const res = msSsim({ x: { data: x, shape: [n, n] }, y: { data: y, shape: [n, n] }, dataRange: 1, sigma: 0.4, weights });
    expect(res.mean).toBeCloseTo(ref, 12);
  });

  it('gives 1 for identical images, is symmetric, and decreases with added noise', () => {
    const n = 164;
    const x = syntheticImage(n, n, 1);
    const img = (d: Float64Array) => ({ data: d, shape: [n, n] });
    expect(msSsim({ x: img(x), y: img(x), dataRange: 1 }).mean).toBeCloseTo(1, 12);
    const noisy = [0.05, 0.2, 0.6].map((amp, i) => addNoise(x, amp, 20 + i));
    const vals = noisy.map((y) => msSsim({ x: img(x), y: img(y), dataRange: 1 }).mean);
    expect(vals[0]).toBeGreaterThan(vals[1]);
    expect(vals[1]).toBeGreaterThan(vals[2]);
    expect(msSsim({ x: img(noisy[1]), y: img(x), dataRange: 1 }).mean).toBeCloseTo(vals[1], 14);
  });

  it('reduces to SSIM with a single weight of 1, and to l^w_M for constant images', () => {
    const n = 30;
    const x = syntheticImage(n, n, 3);
    const y = addNoise(x, 0.3, 3);
    const args = { x: { data: x, shape: [n, n] }, y: { data: y, shape: [n, n] }, dataRange: 1 };
    expect(msSsim({ ...args, weights: [1] }).mean).toBeCloseTo(ssim(args).mean, 14);
    // Constant images: every cs is C2/C2 = 1; the last scale gives l = (2ab + C1)/(a^2 + b^2 + C1).
    const side = 161;
    const a = 0.3;
    const b = 0.6;
    const l = (2 * a * b + 1e-4) / (a * a + b * b + 1e-4);
    const res = msSsim({
      x: { data: new Float64Array(side * side).fill(a), shape: [side, side] },
      y: { data: new Float64Array(side * side).fill(b), shape: [side, side] },
      dataRange: 1,
    });
    expect(res.mean).toBeCloseTo(l ** MS_SSIM_WEIGHTS[4], 12);
  });

  it('clamps a negative contrast-structure term to 0 (so the value is 0)', () => {
    const n = 33;
    const x = syntheticImage(n, n, 6);
    const inverted = x.map((v) => 1 - v);
    const win = resolveSsimWindow('t', { dataRange: 1, sigma: 0.4 });
    const { value, terms } = planePairMsSsim(x, inverted, n, n, win, [0.2, 0.3, 0.5]);
    expect(terms[0]).toBeLessThan(0);
    expect(value).toBe(0);
  });

  it('pools 2x2 with the odd last row/column replicated', () => {
    // 3x3: [[1,2,3],[4,5,6],[7,8,9]] -> [[3, 4.5],[7.5, 9]]
    const out = downsample2x2(Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), 3, 3);
    expect([out.h, out.w]).toEqual([2, 2]);
    expect(Array.from(out.data)).toEqual([3, 4.5, 7.5, 9]);
  });

  it('needs (11-1)*2^4+1 = 161 px per side by default and says so', () => {
    expect(msSsimMinSize({ windowSize: 11, scales: 5 })).toBe(161);
    const n = 160;
    const img = { data: new Float64Array(n * n), shape: [n, n] };
    expect(() => msSsim({ x: img, y: img, dataRange: 1 })).toThrow(/argument "x" has shape \[160,160\].*at least 161x161/);
    const m = 161;
    const ok = { data: new Float64Array(m * m).fill(0.5), shape: [m, m] };
    expect(msSsim({ x: ok, y: ok, dataRange: 1 }).mean).toBeCloseTo(1, 12);
    expect(() => msSsim({ x: ok, y: { data: new Float64Array(4), shape: [2, 2] }, dataRange: 1 })).toThrow(/argument "y" has shape \[2,2\], expected \[161,161\]/);
    expect(() => msSsim({ x: ok, y: ok, dataRange: 1, weights: [] })).toThrow(/"weights"/);
  });

  it('accepts batched multi-channel tensors and leaks none', () => {
    const n = 33;
    const data = new Float32Array(2 * n * n * 2);
    const noisy = new Float32Array(data.length);
    const planes = [0, 1, 2, 3].map((s) => syntheticImage(n, n, s));
    for (let b = 0; b < 2; b++) for (let i = 0; i < n * n; i++) for (let c = 0; c < 2; c++) data[(b * n * n + i) * 2 + c] = planes[b * 2 + c][i];
    const noisyPlanes = planes.map((p, k) => addNoise(Float64Array.from(p, (v) => Math.fround(v)), 0.2, k));
    for (let b = 0; b < 2; b++) for (let i = 0; i < n * n; i++) for (let c = 0; c < 2; c++) noisy[(b * n * n + i) * 2 + c] = noisyPlanes[b * 2 + c][i];
    const x = tf.tensor4d(data, [2, n, n, 2]);
    const y = tf.tensor4d(noisy, [2, n, n, 2]);
    const before = tf.memory().numTensors;
    const res = msSsim({ x, y, dataRange: 1, sigma: 0.4, weights: [0.2, 0.3, 0.5] });
    expect(tf.memory().numTensors).toBe(before);
    const win = resolveSsimWindow('t', { dataRange: 1, sigma: 0.4 });
    const expected01 = planePairMsSsim(
      Float64Array.from(planes[1], (v) => Math.fround(v)),
      Float64Array.from(noisyPlanes[1], (v) => Math.fround(v)),
      n,
      n,
      win,
      [0.2, 0.3, 0.5],
    ).value;
    expect(res.perChannel[0][1]).toBeCloseTo(expected01, 12);
    expect(res.values[1]).toBeCloseTo((res.perChannel[1][0] + res.perChannel[1][1]) / 2, 14);
    tf.dispose([x, y]);
  });
});
