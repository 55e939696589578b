import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { leakedTensors, relMaxError, useCpuBackend } from '../testing/setup-cpu';
import { conv2dWithConvFilterGrad } from './conv2d-op';

beforeAll(useCpuBackend);

describe('conv2d with the filter gradient as a convolution (for backends without a usable Conv2DBackpropFilter)', () => {
  const cases: Array<[number, number, number, number, number, number]> = [
    // [k, stride, pad, h, w, batch]
    [3, 1, 1, 6, 5, 2],
    [3, 2, 1, 8, 8, 1],
    [3, 2, 1, 7, 9, 3],
    [1, 1, 0, 4, 4, 2],
    [3, 1, 0, 5, 7, 1],
  ];
  for (const [k, s, p, h, w, b] of cases) {
    it(`matches tfjs's own gradients for k=${k} stride=${s} pad=${p} on ${b}x${h}x${w}`, () => {
      const g = new Generator(k * 100 + s * 10 + p + h);
      const x = g.normal([b, h, w, 3]) as tf.Tensor4D;
      const wt = g.normal([k, k, 3, 4]) as tf.Tensor4D;
      // Reference: tfjs's own conv2d and its Conv2DBackpropFilter / Conv2DBackpropInput kernels.
      const tfConv = (xx: tf.Tensor4D, ww: tf.Tensor4D) => tf.conv2d(xx, ww, s, p === 0 ? 'valid' : [[0, 0], [p, p], [p, p], [0, 0]]);
      const probe = g.normal(tfConv(x, wt).shape);
      const loss = (f: (a: tf.Tensor4D, b: tf.Tensor4D) => tf.Tensor4D) => (xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(f(xx as tf.Tensor4D, ww as tf.Tensor4D), probe));
      const [dxRef, dwRef] = tf.grads(loss(tfConv))([x, wt]);
      const [dx, dw] = tf.grads(loss((a, b) => conv2dWithConvFilterGrad(a, b, s, p)))([x, wt]);
      expect(relMaxError(dw.dataSync(), dwRef.dataSync())).toBeLessThan(1e-5);
      expect(relMaxError(dx.dataSync(), dxRef.dataSync())).toBeLessThan(1e-5);
      expect(relMaxError(conv2dWithConvFilterGrad(x, wt, s, p).dataSync(), tfConv(x, wt).dataSync())).toBe(0);
      tf.dispose([x, wt, probe, dxRef, dwRef, dx, dw]);
    });
  }

  it('leaks nothing through its gradient', () => {
    const g = new Generator(1);
    const x = g.normal([1, 5, 5, 2]) as tf.Tensor4D;
    const wt = g.normal([3, 3, 2, 2]) as tf.Tensor4D;
    expect(leakedTensors(() => tf.dispose(tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(conv2dWithConvFilterGrad(a as tf.Tensor4D, b as tf.Tensor4D, 2, 1)))([x, wt])))).toBe(0);
    tf.dispose([x, wt]);
  });
});
