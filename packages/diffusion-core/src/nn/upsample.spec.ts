import * as tf from '@tensorflow/tfjs-core';
import '../register-gradients';
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { leakedTensors, relMaxError, useCpuBackend } from '../testing/setup-cpu';
import { upsampleNearest2x } from './upsample';

beforeAll(useCpuBackend);

describe('upsampleNearest2x', () => {
  it('repeats each pixel into a 2x2 block', () => {
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    expect(Array.from(upsampleNearest2x(x).dataSync())).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  });

  it('has the gradient of a 2x2 block sum, for every batch element (batch 5)', () => {
    const g = new Generator(3);
    const x = g.normal([5, 3, 4, 2]) as tf.Tensor4D;
    const probe = g.normal([5, 6, 8, 2]);
    const dx = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(upsampleNearest2x(v as tf.Tensor4D), probe)))(x).dataSync();
    const p = probe.dataSync();
    const ref = new Float64Array(5 * 3 * 4 * 2);
    for (let b = 0; b < 5; b++)
      for (let y = 0; y < 6; y++)
        for (let xx = 0; xx < 8; xx++)
          for (let c = 0; c < 2; c++) ref[((b * 3 + (y >> 1)) * 4 + (xx >> 1)) * 2 + c] += p[((b * 6 + y) * 8 + xx) * 2 + c];
    expect(relMaxError(dx, ref)).toBeLessThan(1e-6);
    expect(leakedTensors(() => upsampleNearest2x(x).dispose())).toBe(0);
  });
});
