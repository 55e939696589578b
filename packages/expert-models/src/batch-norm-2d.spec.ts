import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { BatchNorm2d, isBufferVariable } from './batch-norm-2d';
import { leakedTensors, useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

// Two channels over a [2,1,2,2] batch: channel 0 = [1,2,3,6], channel 1 = [0,0,0,4].
// Channel 0: mean 3, biased var (4+1+0+9)/4 = 3.5, unbiased 14/3.
// Channel 1: mean 1, biased var (1+1+1+9)/4 = 3, unbiased 4.
const X = [1, 0, 2, 0, 3, 0, 6, 4];
const x = () => tf.tensor4d(X, [2, 1, 2, 2]);

function makeBn(): BatchNorm2d {
  const bn = new BatchNorm2d({ numFeatures: 2 });
  bn.weight.assign(tf.tensor1d([2, 0.5]));
  bn.bias.assign(tf.tensor1d([1, -1]));
  return bn;
}

describe('BatchNorm2d', () => {
  it('normalises with batch statistics in training and updates the running ones (PyTorch rule)', () => {
    const bn = makeBn();
    const y = bn.forward(x(), { training: true }).dataSync();
    const eps = 1e-5;
    const expected = X.map((v, i) => (i % 2 === 0 ? (2 * (v - 3)) / Math.sqrt(3.5 + eps) + 1 : (0.5 * (v - 1)) / Math.sqrt(3 + eps) - 1));
    expected.forEach((e, i) => expect(y[i]).toBeCloseTo(e, 5));
    // running = 0.9 * running + 0.1 * stat, with the unbiased variance.
    const rm = bn.runningMean.dataSync();
    const rv = bn.runningVar.dataSync();
    expect(rm[0]).toBeCloseTo(0.3, 6);
    expect(rm[1]).toBeCloseTo(0.1, 6);
    expect(rv[0]).toBeCloseTo(0.9 + 0.1 * (14 / 3), 6);
    expect(rv[1]).toBeCloseTo(0.9 + 0.1 * 4, 6);
    bn.dispose();
  });

  it('uses the running statistics in inference and leaves them unchanged', () => {
    const bn = makeBn();
    bn.runningMean.assign(tf.tensor1d([0.5, -1]));
    bn.runningVar.assign(tf.tensor1d([4, 0.25]));
    const y = bn.forward(x(), { training: false }).dataSync();
    const eps = 1e-5;
    const expected = X.map((v, i) => (i % 2 === 0 ? (2 * (v - 0.5)) / Math.sqrt(4 + eps) + 1 : (0.5 * (v + 1)) / Math.sqrt(0.25 + eps) - 1));
    expected.forEach((e, i) => expect(y[i]).toBeCloseTo(e, 5));
    expect(Array.from(bn.runningMean.dataSync())).toEqual([0.5, -1]);
    expect(Array.from(bn.runningVar.dataSync())).toEqual([4, 0.25]);
    bn.dispose();
  });

  it('keeps the running statistics out of gradients, parameter counts and setTrainable(true)', () => {
    const bn = makeBn();
    expect(bn.numParameters()).toBe(4);
    expect(isBufferVariable(bn.runningMean) && isBufferVariable(bn.runningVar)).toBe(true);
    expect(isBufferVariable(bn.weight)).toBe(false);
    bn.setTrainable(true);
    expect(bn.trainableVariables()).toEqual([bn.weight, bn.bias]);
    const xi = x();
    const { grads } = tf.variableGrads(() => tf.sum(tf.square(bn.forward(xi, { training: true }))) as tf.Scalar);
    expect(Object.keys(grads).sort()).toEqual([bn.weight.name, bn.bias.name].sort());
    // Saved with the weights under PyTorch's names.
    expect(Object.keys(bn.stateDict())).toEqual(['weight', 'bias', 'running_mean', 'running_var']);
    tf.dispose(grads);
    bn.setTrainable(false);
    expect(bn.trainableVariables()).toEqual([]);
    bn.dispose();
  });

  it('leaves no tensors behind in either mode', () => {
    const bn = makeBn();
    const xi = x();
    expect(leakedTensors(() => bn.forward(xi, { training: true }).dispose())).toBe(0);
    expect(leakedTensors(() => bn.forward(xi, { training: false }).dispose())).toBe(0);
    bn.dispose();
  });

  it('rejects bad arguments with clear messages', () => {
    expect(() => new BatchNorm2d({ numFeatures: 0 })).toThrow(/BatchNorm2d: numFeatures must be an integer >= 1, got 0/);
    expect(() => new BatchNorm2d({ numFeatures: 2, momentum: 2 })).toThrow(/momentum must be a finite number >= 0 and <= 1, got 2/);
    const bn = makeBn();
    expect(() => bn.forward(tf.zeros([1, 2, 2, 3]) as tf.Tensor4D, { training: false })).toThrow(/expected NHWC input with 2 channels, got shape \[1,2,2,3\]/);
    expect(() => bn.forward(tf.zeros([1, 1, 1, 2]) as tf.Tensor4D, { training: true })).toThrow(/more than one value per channel/);
    expect(() => bn.forward(x(), {} as { training: boolean })).toThrow(/options.training must be true or false/);
    bn.dispose();
  });
});
