import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { rowCosineSimilarity } from './cosine-similarity';
import { cosine64, randomValues, useCpuBackend } from './test-support/setup';
import './register-gradients';

beforeAll(useCpuBackend);

describe('rowCosineSimilarity', () => {
  it('gives 1 for identical directions, -1 for opposite, 0 for orthogonal', () => {
    const a = tf.tensor2d([[1, 2, 3], [1, 0, 0], [0, 3, 0], [2, -1, 0.5]]);
    const b = tf.tensor2d([[2, 4, 6], [-5, 0, 0], [0, 0, 7], [-4, 2, -1]]);
    const c = rowCosineSimilarity({ a, b });
    const v = Array.from(c.dataSync());
    expect(v[0]).toBeCloseTo(1, 6);
    expect(v[1]).toBeCloseTo(-1, 6);
    expect(v[2]).toBeCloseTo(0, 7);
    expect(v[3]).toBeCloseTo(-1, 6);
    tf.dispose([a, b, c]);
  });

  it('matches a float64 reference to 1e-5 on random rows', () => {
    const B = 7;
    const N = 33;
    const av = randomValues(B * N, 1);
    const bv = randomValues(B * N, 2);
    const c = tf.tidy(() => rowCosineSimilarity({ a: tf.tensor2d(av, [B, N]), b: tf.tensor2d(bv, [B, N]) }));
    const got = c.dataSync();
    for (let i = 0; i < B; i++) {
      expect(Math.abs(got[i] - cosine64(av.slice(i * N, (i + 1) * N), bv.slice(i * N, (i + 1) * N)))).toBeLessThan(1e-5);
    }
    c.dispose();
  });

  it('is 0 with a finite gradient for a zero vector (the epsilon)', () => {
    const a = tf.zeros([1, 4]) as tf.Tensor2D;
    const b = tf.tensor2d([[1, 2, 3, 4]]);
    const { value, grads } = tf.valueAndGrads((x: tf.Tensor) => tf.sum(rowCosineSimilarity({ a: x as tf.Tensor2D, b })))([a]);
    expect(value.dataSync()[0]).toBe(0);
    expect(Array.from(grads[0].dataSync()).every(Number.isFinite)).toBe(true);
    tf.dispose([a, b, value, ...grads]);
  });

  it('rejects shapes that disagree, naming both', () => {
    const a = tf.zeros([2, 3]) as tf.Tensor2D;
    const b = tf.zeros([2, 4]) as tf.Tensor2D;
    expect(() => rowCosineSimilarity({ a, b })).toThrow('a and b must have the same shape, got a [2,3] and b [2,4]');
    expect(() => rowCosineSimilarity({ a, b: a, epsilon: -1 })).toThrow(/epsilon must be a finite number >= 0, got -1/);
    expect(() => rowCosineSimilarity({ a: tf.zeros([2]) as unknown as tf.Tensor2D, b })).toThrow(/a must be \[B,N\], got shape \[2\]/);
    tf.dispose([a, b]);
  });
});
