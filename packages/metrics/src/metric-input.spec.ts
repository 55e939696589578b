import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { MetricInputError, assertFinite, readArray, readFeatures, readLabels, unravelIndex } from './metric-input';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('metric inputs', () => {
  it('reads tensors and shaped arrays, checking length against shape', () => {
    const t = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const before = tf.memory().numTensors;
    const r = readArray('f', 'x', t);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.shape).toEqual([2, 3]);
    expect(Array.from(r.data)).toEqual([1, 2, 3, 4, 5, 6]);
    t.dispose();
    expect(() => readArray('f', 'x', t)).toThrow(/argument "x" is a disposed tensor/);
    expect(() => readArray('f', 'x', { data: [1, 2, 3], shape: [2, 2] })).toThrow(/argument "x" has 3 values but its shape \[2,2\] needs 4/);
    expect(() => readArray('f', 'x', { data: [1], shape: [1.5] })).toThrow(/"x.shape" must be an array of non-negative integers/);
    expect(() => readArray('f', 'x', 'nope' as never)).toThrow(MetricInputError);
  });

  it('reports the first non-finite value with its multi-index', () => {
    expect(unravelIndex(7, [2, 3, 2])).toEqual([1, 0, 1]);
    expect(() => assertFinite('f', 'x', [0, 0, 0, 0, 0, 0, 0, Infinity], [2, 2, 2])).toThrow(/argument "x" contains Infinity at index \[1,1,1\] \(shape \[2,2,2\]\)/);
    expect(() => assertFinite('f', 'x', [0, 1], [2])).not.toThrow();
  });

  it('reads features from rows, tensors and shaped arrays into Float64', () => {
    const rows = readFeatures('f', 'a', [[1, 2], [3, 4], [5, 6]]);
    expect([rows.rows, rows.cols]).toEqual([3, 2]);
    expect(rows.data).toBeInstanceOf(Float64Array);
    const shaped = readFeatures('f', 'a', { data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [3, 2] });
    expect(Array.from(shaped.data)).toEqual(Array.from(rows.data));
    expect(() => readFeatures('f', 'a', { data: [1, 2, 3], shape: [3] })).toThrow(/argument "a" has shape \[3\], expected \[N,D\]/);
    expect(() => readFeatures('f', 'a', [[1, 2]], 2)).toThrow(/expected \[N,D\] with N >= 2/);
  });

  it('reads integer labels or arg-max of scores (first maximum on ties)', () => {
    expect(Array.from(readLabels('f', 'y', [2, 0, 1]).labels)).toEqual([2, 0, 1]);
    const scores = readLabels('f', 'y', { data: [0.2, 0.5, 0.5, 3, -1, 0], shape: [2, 3] });
    expect(Array.from(scores.labels)).toEqual([1, 0]);
    expect(scores.numScores).toBe(3);
    expect(() => readLabels('f', 'y', { data: [0.2, 0.8], shape: [1, 2] }, 3)).toThrow(/argument "y" has shape \[1,2\], expected \[1,3\]/);
    expect(() => readLabels('f', 'y', [1.5])).toThrow(/argument "y" has label 1.5 at index \[0\], expected a non-negative integer/);
  });
});
