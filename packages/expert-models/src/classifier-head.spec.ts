import * as tf from '@tensorflow/tfjs-core';
import { Generator } from '@fad/diffusion-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ClassifierHead } from './classifier-head';
import { useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

describe('ClassifierHead', () => {
  it('linear: weight/bias on the head itself, x W + b', () => {
    const head = new ClassifierHead({ head: { type: 'linear' }, inFeatures: 2, numClasses: 3, generator: new Generator(0) });
    expect(head.namedParameters().map(([n, v]) => [n, v.shape])).toEqual([['weight', [2, 3]], ['bias', [3]]]);
    head.loadStateDict({ weight: { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }, bias: { shape: [3], data: new Float32Array([0, 1, -1]) } });
    expect(Array.from(head.forward(tf.tensor2d([[1, -1]])).dataSync())).toEqual([-3, -2, -4]);
    head.dispose();
  });

  it('mlp: Linear -> ReLU -> Linear named 0 and 2 (the paper: 2048 -> 256 -> classes)', () => {
    const head = new ClassifierHead({ head: { type: 'mlp', hiddenDim: 256 }, inFeatures: 2048, numClasses: 8, generator: new Generator(0) });
    expect(head.namedParameters().map(([n, v]) => [n, v.shape])).toEqual([['0.weight', [2048, 256]], ['0.bias', [256]], ['2.weight', [256, 8]], ['2.bias', [8]]]);
    expect(head.numParameters()).toBe(2048 * 256 + 256 + 256 * 8 + 8);
    const small = new ClassifierHead({ head: { type: 'mlp', hiddenDim: 2 }, inFeatures: 1, numClasses: 1, generator: new Generator(0) });
    small.loadStateDict({
      '0.weight': { shape: [1, 2], data: new Float32Array([1, -1]) }, '0.bias': { shape: [2], data: new Float32Array([0, 0]) },
      '2.weight': { shape: [2, 1], data: new Float32Array([1, 1]) }, '2.bias': { shape: [1], data: new Float32Array([0]) },
    });
    // relu([x, -x]) summed = |x|.
    expect(Array.from(small.forward(tf.tensor2d([[3], [-2]])).dataSync())).toEqual([3, 2]);
    expect(() => small.forward(tf.zeros([1, 2]) as tf.Tensor2D)).toThrow(/expected features \[B,1\], got shape \[1,2\]/);
    head.dispose();
    small.dispose();
  });
});
