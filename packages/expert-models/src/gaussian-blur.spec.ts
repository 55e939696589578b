import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { gaussianBlur, gaussianKernel1d, unsharpMask } from './gaussian-blur';
import { leakedTensors, maxAbsDiff, useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

describe('gaussianKernel1d', () => {
  it('is the normalised Gaussian with radius ceil(3 sigma)', () => {
    const k = gaussianKernel1d({ sigma: 1 });
    expect(k).toHaveLength(7);
    const raw = [-3, -2, -1, 0, 1, 2, 3].map((i) => Math.exp(-(i * i) / 2));
    const s = raw.reduce((a, b) => a + b, 0);
    raw.forEach((r, i) => expect(k[i]).toBeCloseTo(r / s, 7));
    expect(gaussianKernel1d({ sigma: 0.2 })).toHaveLength(3);
    expect(gaussianKernel1d({ sigma: 2, radius: 1 })).toHaveLength(3);
    expect(() => gaussianKernel1d({ sigma: 0 })).toThrow(/sigma must be a finite number > 0, got 0/);
  });
});

describe('gaussianBlur', () => {
  it('blurs a centred delta into the outer product of the kernel (every channel alike)', () => {
    const size = 9;
    const x = tf.buffer([1, size, size, 2]);
    x.set(1, 0, 4, 4, 0);
    x.set(2, 0, 4, 4, 1);
    const y = gaussianBlur({ images: x.toTensor() as tf.Tensor4D, sigma: 1 }).arraySync()[0];
    const k = gaussianKernel1d({ sigma: 1 });
    for (let i = 0; i < size; i++)
      for (let j = 0; j < size; j++) {
        const e = i >= 1 && i <= 7 && j >= 1 && j <= 7 ? k[i - 1] * k[j - 1] : 0;
        expect(y[i][j][0]).toBeCloseTo(e, 6);
        expect(y[i][j][1]).toBeCloseTo(2 * e, 6);
      }
  });

  it('mirrors at the border (reflect, edge not repeated) and keeps constant images', () => {
    // Two identical rows [1, 0, 0, 0], 3-tap kernel [a, b, a]. Reflect padding gives the row
    // [0 | 1 0 0 0 | 0], so y0 = b and y1 = a (edge-repeating padding would give y0 = a + b);
    // vertically, the mirror of row 0 is row 1, so that pass changes nothing.
    const k = gaussianKernel1d({ sigma: 0.8, radius: 1 });
    const x = tf.tensor4d([1, 0, 0, 0, 1, 0, 0, 0], [1, 2, 4, 1]);
    const y = gaussianBlur({ images: x, sigma: 0.8, radius: 1 }).dataSync();
    expect(y[0]).toBeCloseTo(k[1], 6);
    expect(y[1]).toBeCloseTo(k[0], 6);
    expect(y[2]).toBeCloseTo(0, 6);
    const c = tf.fill([2, 5, 6, 1], 0.3) as tf.Tensor4D;
    expect(maxAbsDiff(gaussianBlur({ images: c, sigma: 2 }).dataSync(), c.dataSync())).toBeLessThan(1e-6);
  });

  it('leaves no tensors and rejects bad sigma', () => {
    const x = tf.randomUniform([2, 8, 8, 1]) as tf.Tensor4D;
    expect(leakedTensors(() => gaussianBlur({ images: x, sigma: 1.3 }).dispose())).toBe(0);
    expect(() => gaussianBlur({ images: x, sigma: -1 })).toThrow(/gaussianBlur: sigma must be a finite number > 0, got -1/);
  });
});

describe('unsharpMask', () => {
  it('is x + amount (x - blur(x))', () => {
    const x = tf.randomUniform([1, 8, 8, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
    const b = gaussianBlur({ images: x, sigma: 1 });
    const y = unsharpMask({ images: x, sigma: 1, amount: 0.7 });
    const e = tf.add(x, tf.mul(tf.sub(x, b), 0.7));
    expect(maxAbsDiff(y.dataSync(), e.dataSync())).toBeLessThan(1e-6);
    expect(maxAbsDiff(unsharpMask({ images: x, sigma: 1, amount: 0 }).dataSync(), x.dataSync())).toBe(0);
    expect(() => unsharpMask({ images: x, sigma: 1, amount: -1 })).toThrow(/amount must be a finite number >= 0, got -1/);
  });
});
