import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { areaMatrix, resampleDownUp, resizeImages } from './resize-images';
import { leakedTensors, maxAbsDiff, useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

describe('areaMatrix', () => {
  it('weights input pixels by overlap; rows sum to 1', () => {
    // 3 -> 2: output 0 covers [0, 1.5): pixel 0 fully, pixel 1 half -> [2/3, 1/3, 0].
    const m = Array.from(areaMatrix(3, 2));
    [2 / 3, 1 / 3, 0, 0, 1 / 3, 2 / 3].forEach((e, i) => expect(m[i]).toBeCloseTo(e, 6));
    const m2 = areaMatrix(7, 3);
    for (let r = 0; r < 3; r++) expect(m2.slice(r * 7, r * 7 + 7).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });
});

describe('resizeImages', () => {
  it("'area' by an integer factor is average pooling", () => {
    const x = tf.randomUniform([2, 8, 6, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const y = resizeImages({ images: x, height: 4, width: 3, method: 'area' });
    expect(y.shape).toEqual([2, 4, 3, 3]);
    expect(maxAbsDiff(y.dataSync(), tf.avgPool(x, 2, 2, 'valid').dataSync())).toBeLessThan(1e-6);
  });

  it("'area' matches a hand case with fractional overlaps", () => {
    // Row [0, 3, 6] -> 2 pixels: [2/3*0 + 1/3*3, 1/3*3 + 2/3*6] = [1, 5].
    const y = resizeImages({ images: tf.tensor4d([0, 3, 6], [1, 1, 3, 1]), height: 1, width: 2, method: 'area' });
    expect(Array.from(y.dataSync()).map((v) => +v.toFixed(5))).toEqual([1, 5]);
  });

  it("'bilinear' and 'nearest' use half-pixel centres", () => {
    // 2 -> 4 bilinear, half-pixel: positions -0.25, 0.25, 0.75, 1.25 clamped -> [0, 0.25, 0.75, 1] of [0, 1].
    const y = resizeImages({ images: tf.tensor4d([0, 1], [1, 1, 2, 1]), height: 1, width: 4, method: 'bilinear' });
    expect(Array.from(y.dataSync())).toEqual([0, 0.25, 0.75, 1]);
    const n = resizeImages({ images: tf.tensor4d([0, 1, 2, 3], [1, 1, 4, 1]), height: 1, width: 2, method: 'nearest' });
    expect(Array.from(n.dataSync())).toEqual([1, 3]);
    expect(() => resizeImages({ images: tf.zeros([1, 2, 2, 1]) as tf.Tensor4D, height: 0, width: 2, method: 'area' })).toThrow(/height must be an integer >= 1, got 0/);
    expect(() => resizeImages({ images: tf.zeros([1, 2, 2, 1]) as tf.Tensor4D, height: 2, width: 2, method: 'cubic' as never })).toThrow(/method must be one of "bilinear", "area", "nearest", got "cubic"/);
  });
});

describe('resampleDownUp', () => {
  it('keeps the size, is the identity at scale 1, keeps constants, loses detail otherwise', () => {
    const x = tf.randomUniform([1, 16, 16, 1], 0, 1, 'float32', 2) as tf.Tensor4D;
    expect(maxAbsDiff(resampleDownUp({ images: x, scale: 1, downMethod: 'area' }).dataSync(), x.dataSync())).toBe(0);
    for (const downMethod of ['bilinear', 'area', 'nearest'] as const) {
      const y = resampleDownUp({ images: x, scale: 0.5, downMethod });
      expect(y.shape).toEqual([1, 16, 16, 1]);
      expect(maxAbsDiff(y.dataSync(), x.dataSync())).toBeGreaterThan(0.05);
      const c = tf.fill([1, 16, 16, 1], 0.4) as tf.Tensor4D;
      expect(maxAbsDiff(resampleDownUp({ images: c, scale: 0.37, downMethod }).dataSync(), c.dataSync())).toBeLessThan(1e-6);
    }
    expect(leakedTensors(() => resampleDownUp({ images: x, scale: 0.6, downMethod: 'area' }).dispose())).toBe(0);
    expect(() => resampleDownUp({ images: x, scale: 1.5, downMethod: 'area' })).toThrow(/scale must be a finite number > 0 and <= 1, got 1.5/);
  });
});
