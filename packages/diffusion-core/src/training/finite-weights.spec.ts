import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCpuBackend } from '../testing/setup-cpu';
import { describeNonFiniteWeights, findNonFiniteWeights } from './finite-weights';

beforeAll(useCpuBackend);

describe('findNonFiniteWeights', () => {
  it('returns null for finite weights (large values included) and leaves no tensors behind', () => {
    const named: Array<[string, tf.Tensor]> = [['a', tf.tensor1d([1, -2, 3e38])], ['b', tf.zeros([2, 3])]];
    const before = tf.memory().numTensors;
    expect(findNonFiniteWeights(named)).toBeNull();
    expect(findNonFiniteWeights([])).toBeNull();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(named.map((n) => n[1]));
  });

  it('names the first non-finite tensor and counts NaN and both infinities, checked against a plain loop', () => {
    const values: Record<string, number[]> = { ok: [1, 2], bad1: [1, NaN, Infinity, 4], bad2: [-Infinity, 0, 0] };
    const named = Object.entries(values).map(([k, v]) => [k, tf.tensor1d(v)] as [string, tf.Tensor]);
    const before = tf.memory().numTensors;
    const r = findNonFiniteWeights(named)!;
    expect(tf.memory().numTensors).toBe(before);
    const loop = Object.values(values).flat().filter((x) => !Number.isFinite(x)).length;
    expect(r).toEqual({ first: 'bad1', firstCount: 2, firstSize: 4, tensors: 2, count: loop, total: 9 });
    expect(describeNonFiniteWeights(r)).toBe('tensor "bad1" has 2 of 4 values NaN or infinite (3 of 9 values in 2 tensor(s) overall)');
    tf.dispose(named.map((n) => n[1]));
  });

  it('rejects what is not a list of [name, tensor] pairs', () => {
    expect(() => findNonFiniteWeights({} as never)).toThrow(/named must be an array/);
    expect(() => findNonFiniteWeights([['x', 1]] as never)).toThrow(/named\[0\] must be a \[name, tensor\] pair/);
  });
});
