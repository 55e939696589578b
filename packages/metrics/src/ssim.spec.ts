import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { MetricInputError } from './metric-input';
import { resolveSsimWindow, ssim } from './ssim';
import { hasSharedReference, skipReason } from '@fad/test-utils/shared-reference';
import {
  addNoise,
  gaussianKernel1d,
  loadSsimCases,
  naiveSsim,
  syntheticImage,
} from './test-support/ssim-reference';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

for (const file of ['ssim/ssim-64.json', 'ssim/ssim-128.json']) {
  describe.skipIf(!hasSharedReference(file))(`ssim vs scikit-image 0.19.3 (${file})${skipReason(file, '@fad/metrics tests')}`, () => {
    it('matches structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False) to 1e-4', () => {
      const cases = loadSsimCases(file);
      const n = cases[0].size;
      const x = new Float64Array(cases.length * n * n);
      const y = new Float64Array(cases.length * n * n);
      cases.forEach((c, i) => {
        x.set(c.a, i * n * n);
        y.set(c.b, i * n * n);
      });
      const res = ssim({ x: { data: x, shape: [cases.length, n, n, 1] }, y: { data: y, shape: [cases.length, n, n, 1] }, dataRange: 1 });
      let worst = 0;
      cases.forEach((c, i) => {
        expect(res.values[i]).toBeCloseTo(c.ref.ssim_gaussian_dr1, 4);
        worst = Math.max(worst, Math.abs(res.values[i] - c.ref.ssim_gaussian_dr1));
      });
      // Separable float64 filtering reproduces scipy to rounding error, far inside 1e-4.
      expect(worst).toBeLessThan(1e-9);
      const mean = cases.reduce((s, c) => s + c.ref.ssim_gaussian_dr1, 0) / cases.length;
      expect(res.mean).toBeCloseTo(mean, 9);
    });

    it("matches scikit-image's default (7x7 uniform, sample covariance) to 1e-4, one [H,W] pair at a time", () => {
      for (const c of loadSsimCases(file)) {
        const res = ssim({
          x: { data: c.a, shape: [c.size, c.size] },
          y: { data: c.b, shape: [c.size, c.size] },
          dataRange: 1,
          window: 'uniform',
        });
        expect(Math.abs(res.values[0] - c.ref.ssim_uniform7_dr1)).toBeLessThan(1e-9);
        expect(res.mean).toBe(res.values[0]);
      }
    });
  });
}

describe('ssim', () => {
  it('agrees with a naive 2-D, reflect-padded, full-map-then-crop re-implementation', () => {
    const h = 23;
    const w = 19;
    const x = syntheticImage(h, w, 3);
    const y = addNoise(syntheticImage(h, w, 3), 0.3, 9);
    const g = naiveSsim({ x, y, h, w, kernel1d: gaussianKernel1d(1.5), covNorm: 1, c1: 1e-4, c2: 9e-4 });
    const gRes = ssim({ x: { data: x, shape: [h, w] }, y: { data: y, shape: [h, w] }, dataRange: 1 });
    expect(gRes.mean).toBeCloseTo(g.ssim, 12);
    const u = naiveSsim({ x, y, h, w, kernel1d: Array(5).fill(1 / 5), covNorm: 25 / 24, c1: 4e-4, c2: 36e-4 });
    const uRes = ssim({ x: { data: x, shape: [h, w] }, y: { data: y, shape: [h, w] }, dataRange: 2, window: 'uniform', winSize: 5 });
    expect(uRes.mean).toBeCloseTo(u.ssim, 12);
    // The two settings really differ, so each comparison can fail independently.
    expect(Math.abs(gRes.mean - uRes.mean)).toBeGreaterThan(1e-3);
  });

  it('builds the 11-tap Gaussian window (radius int(3.5*1.5+0.5)=5) and population covariance by default', () => {
    const win = resolveSsimWindow('t', { dataRange: 1 });
    expect(win.size).toBe(11);
    expect(win.covNorm).toBe(1);
    expect(win.c1).toBeCloseTo(1e-4, 15);
    expect(win.c2).toBeCloseTo(9e-4, 15);
    expect(Array.from(win.kernel)).toEqual(gaussianKernel1d(1.5).map((v) => expect.closeTo(v, 15)));
    const uni = resolveSsimWindow('t', { dataRange: 1, window: 'uniform' });
    expect(uni.size).toBe(7);
    expect(uni.covNorm).toBeCloseTo(49 / 48, 15);
  });

  it('gives 1 for identical images and the closed form for constant images', () => {
    const img = syntheticImage(32, 32, 1);
    expect(ssim({ x: { data: img, shape: [32, 32] }, y: { data: img, shape: [32, 32] }, dataRange: 1 }).mean).toBeCloseTo(1, 12);
    // Constant a vs constant b: variances and covariance are 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    const a = 0.2;
    const b = 0.7;
    const c1 = (0.01 * 1) ** 2;
    const res = ssim({
      x: { data: new Float64Array(16 * 16).fill(a), shape: [16, 16] },
      y: { data: new Float64Array(16 * 16).fill(b), shape: [16, 16] },
      dataRange: 1,
    });
    expect(res.mean).toBeCloseTo((2 * a * b + c1) / (a * a + b * b + c1), 12);
  });

  it('is symmetric and decreases as noise grows', () => {
    const x = syntheticImage(40, 40, 5);
    const vals = [0.05, 0.2, 0.5].map(
      (amp) => ssim({ x: { data: x, shape: [40, 40] }, y: { data: addNoise(x, amp, 7), shape: [40, 40] }, dataRange: 1 }).mean,
    );
    expect(vals[0]).toBeGreaterThan(vals[1]);
    expect(vals[1]).toBeGreaterThan(vals[2]);
    const y = addNoise(x, 0.2, 8);
    const xy = ssim({ x: { data: x, shape: [40, 40] }, y: { data: y, shape: [40, 40] }, dataRange: 1 }).mean;
    const yx = ssim({ x: { data: y, shape: [40, 40] }, y: { data: x, shape: [40, 40] }, dataRange: 1 }).mean;
    expect(xy).toBeCloseTo(yx, 14);
  });

  it('averages per-channel SSIM for NHWC batches (channel_axis semantics)', () => {
    const h = 24;
    const w = 24;
    const planesX = [syntheticImage(h, w, 1), syntheticImage(h, w, 2), syntheticImage(h, w, 3)];
    const planesY = planesX.map((p, i) => addNoise(p, 0.1 * (i + 1), 11 + i));
    const x = new Float64Array(h * w * 3);
    const y = new Float64Array(h * w * 3);
    for (let i = 0; i < h * w; i++) {
      for (let c = 0; c < 3; c++) {
        x[i * 3 + c] = planesX[c][i];
        y[i * 3 + c] = planesY[c][i];
      }
    }
    const perChannel = planesX.map((p, c) => ssim({ x: { data: p, shape: [h, w] }, y: { data: planesY[c], shape: [h, w] }, dataRange: 1 }).mean);
    const rgb = ssim({ x: { data: x, shape: [h, w, 3] }, y: { data: y, shape: [h, w, 3] }, dataRange: 1 });
    expect(rgb.perChannel[0]).toEqual(perChannel.map((v) => expect.closeTo(v, 14)));
    expect(rgb.values[0]).toBeCloseTo((perChannel[0] + perChannel[1] + perChannel[2]) / 3, 14);
    expect(new Set(perChannel.map((v) => v.toFixed(6))).size).toBe(3);
  });

  it('accepts tensors and leaks none', () => {
    const x = tf.tensor4d(Float32Array.from(syntheticImage(16, 16, 1)), [1, 16, 16, 1]);
    const y = tf.tensor4d(Float32Array.from(addNoise(syntheticImage(16, 16, 1), 0.2, 3)), [1, 16, 16, 1]);
    const before = tf.memory().numTensors;
    const fromTensor = ssim({ x, y, dataRange: 1 });
    expect(tf.memory().numTensors).toBe(before);
    const fromArray = ssim({ x: { data: x.dataSync(), shape: x.shape }, y: { data: y.dataSync(), shape: y.shape }, dataRange: 1 });
    expect(fromTensor.mean).toBe(fromArray.mean);
    tf.dispose([x, y]);
  });

  it('rejects bad inputs with messages that name the argument and the shapes', () => {
    const img = { data: new Float64Array(64 * 64), shape: [64, 64] };
    expect(() => ssim({ x: img, y: { data: new Float64Array(64 * 63), shape: [64, 63] }, dataRange: 1 })).toThrow(
      /argument "y" has shape \[64,63\], expected \[64,64\]/,
    );
    expect(() => ssim({ x: { data: new Float64Array(8), shape: [2, 2, 2] }, y: img, dataRange: 1 } as never)).toThrow(MetricInputError);
    const nan = new Float64Array(64 * 64);
    nan[65] = NaN;
    expect(() => ssim({ x: img, y: { data: nan, shape: [64, 64] }, dataRange: 1 })).toThrow(/argument "y" contains NaN at index \[1,1\]/);
    const big = new Float64Array(64 * 64).fill(0);
    big[0] = 255;
    expect(() => ssim({ x: { data: big, shape: [64, 64] }, y: img, dataRange: 1 })).toThrow(/argument "x" has values from 0 to 255.*dataRange = 1/);
    expect(() => ssim({ x: { data: new Float64Array(100), shape: [10, 10] }, y: { data: new Float64Array(100), shape: [10, 10] }, dataRange: 1 })).toThrow(
      /argument "x" has shape \[10,10\].*at least 11x11/,
    );
    expect(() => ssim({ x: img, y: img } as never)).toThrow(/"dataRange" is required/);
    expect(() => ssim({ x: { data: new Float64Array(10), shape: [64, 64] }, y: img, dataRange: 1 })).toThrow(/argument "x" has 10 values/);
    expect(() => ssim({ x: img, y: img, dataRange: 1, window: 'uniform', winSize: 4 })).toThrow(/"winSize" must be an odd integer/);
  });

});
