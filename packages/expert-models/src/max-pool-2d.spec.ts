import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { maxPool2d, maxPoolGradLoop } from './max-pool-2d';
import { leakedTensors, maxAbsDiff, useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

describe('maxPool2d', () => {
  it('pads with -inf like PyTorch (3x3/2 pad 1 on all-negative input)', () => {
    // x = -1 .. -16 on a 4x4 grid. Windows (rows, cols): (-1..1, -1..1) -> max over x[0..1][0..1] = -1;
    // (-1..1, 1..3) -> -2; (1..3, -1..1) -> -5; (1..3, 1..3) -> -6. Zero padding would give 0s.
    const x = tf.tensor4d(Array.from({ length: 16 }, (_, i) => -(i + 1)), [1, 4, 4, 1]);
    const y = maxPool2d({ x, kernelSize: 3, stride: 2, padding: 1 });
    expect(y.shape).toEqual([1, 2, 2, 1]);
    expect(Array.from(y.dataSync())).toEqual([-1, -2, -5, -6]);
  });

  it('has PyTorch output sizes floor((H + 2p - k) / s) + 1', () => {
    for (const [h, w] of [[64, 64], [65, 63], [7, 8], [1, 2]]) {
      const y = maxPool2d({ x: tf.zeros([1, h, w, 2]) as tf.Tensor4D, kernelSize: 3, stride: 2, padding: 1 });
      expect(y.shape).toEqual([1, Math.floor((h - 1) / 2) + 1, Math.floor((w - 1) / 2) + 1, 2]);
    }
  });

  it('routes the gradient to the first maximum of each window (row-major), as PyTorch', () => {
    // All zeros: every window ties. Output (0,0)'s window starts inside at (0,0); output (0,1)'s
    // first in-image cell is (0,1); (1,0)'s is (1,0); (1,1)'s is (1,1).
    const z = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
    const g = tf.grad((a: tf.Tensor) => tf.sum(maxPool2d({ x: a as tf.Tensor4D, kernelSize: 3, stride: 2, padding: 1 })))(z);
    expect(Array.from(g.dataSync())).toEqual([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // Overlapping windows share a maximum: both outputs add their gradient to it.
    const x = tf.tensor4d([0, 0, 0, 0, 9, 0, 0, 0, 0], [1, 3, 3, 1]);
    const g2 = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(maxPool2d({ x: a as tf.Tensor4D, kernelSize: 2, stride: 1 }), tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]))))(x);
    expect(Array.from(g2.dataSync())).toEqual([0, 0, 0, 0, 10, 0, 0, 0, 0]);
  });

  it('matches tfjs own gradient on random input for several geometries', () => {
    for (const [h, w, k, s, p] of [[8, 8, 3, 2, 1], [7, 9, 3, 2, 1], [6, 6, 2, 2, 0], [9, 7, 3, 1, 1], [5, 8, 2, 3, 1], [11, 11, 5, 2, 2]]) {
      tf.tidy(() => {
        const x = tf.randomNormal([2, h, w, 3], 0, 1, 'float32', h * 100 + k) as tf.Tensor4D;
        const y = tf.maxPool(x, k, s, p === 0 ? 'valid' : p);
        const wts = tf.randomNormal(y.shape, 0, 1, 'float32', 3);
        const ours = maxPool2d({ x, kernelSize: k, stride: s, padding: p });
        expect(maxAbsDiff(ours.dataSync(), y.dataSync())).toBe(0);
        const gRef = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, k, s, p === 0 ? 'valid' : p), wts)))(x);
        const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(maxPool2d({ x: a as tf.Tensor4D, kernelSize: k, stride: s, padding: p }), wts)))(x);
        expect(maxAbsDiff(g.dataSync(), gRef.dataSync())).toBeLessThan(1e-5);
      });
    }
  });

  it('computes the typed-array gradient directly', () => {
    // 1x2x2x1, window 2 stride 2: one output, max at index 2.
    expect(Array.from(maxPoolGradLoop(new Float32Array([1, 2, 5, 3]), [1, 2, 2, 1], new Float32Array([7]), 1, 1, 2, 2, 0))).toEqual([0, 0, 7, 0]);
  });

  it('leaves no tensors behind, forward or backward', () => {
    const x = tf.randomNormal([1, 6, 6, 2]) as tf.Tensor4D;
    expect(leakedTensors(() => maxPool2d({ x, kernelSize: 3, stride: 2, padding: 1 }).dispose())).toBe(0);
    expect(leakedTensors(() => tf.grad((a: tf.Tensor) => tf.sum(maxPool2d({ x: a as tf.Tensor4D, kernelSize: 3, stride: 2, padding: 1 })))(x).dispose())).toBe(0);
    x.dispose();
  });

  it('rejects bad arguments', () => {
    const x = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
    expect(() => maxPool2d({ x, kernelSize: 3, stride: 2, padding: 2 })).toThrow(/padding must be an integer in \[0, 1\], got 2/);
    expect(() => maxPool2d({ x, kernelSize: 0 })).toThrow(/kernelSize must be an integer >= 1, got 0/);
    expect(() => maxPool2d({ x: tf.zeros([4, 4]) as unknown as tf.Tensor4D, kernelSize: 2 })).toThrow(/x must be a \[B,H,W,C\] tensor, got shape \[4,4\]/);
    expect(() => maxPool2d({ x: tf.zeros([1, 2, 2, 1]) as tf.Tensor4D, kernelSize: 3 })).toThrow(/smaller than the 3x3 window/);
  });
});
