import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCpuBackend } from '../testing/setup-cpu';
import { composeDreamBoothBatch } from './dreambooth-batch';

beforeAll(useCpuBackend);

describe('composeDreamBoothBatch', () => {
  it('puts instance then prior images together with token / class labels and weights 1/N and w/M', () => {
    const inst = tf.fill([2, 4, 4, 1], 1) as tf.Tensor4D;
    const prior = tf.fill([4, 4, 4, 1], -1) as tf.Tensor4D;
    const b = composeDreamBoothBatch({ instanceImages: inst, instanceLabel: 5, priorImages: prior, priorLabel: 2, priorLossWeight: 0.5 });
    expect(b.x0.shape).toEqual([6, 4, 4, 1]);
    expect(Array.from(tf.tidy(() => tf.mean(b.x0, [1, 2, 3])).dataSync())).toEqual([1, 1, -1, -1, -1, -1]);
    expect(b.classLabels).toEqual([5, 5, 2, 2, 2, 2]);
    expect(b.lossWeights).toEqual([0.5, 0.5, 0.125, 0.125, 0.125, 0.125]);
    expect(b.numInstance).toBe(2);
    const only = composeDreamBoothBatch({ instanceImages: inst, instanceLabel: 5 });
    expect(only.classLabels).toEqual([5, 5]);
    expect(only.lossWeights).toEqual([0.5, 0.5]);
    // A copy, not the caller's tensor.
    expect(only.x0).not.toBe(inst);
    tf.dispose([inst, prior, b.x0, only.x0]);
  });

  it('validates its arguments', () => {
    const inst = tf.zeros([2, 4, 4, 1]) as tf.Tensor4D;
    const wrong = tf.zeros([2, 8, 8, 1]) as tf.Tensor4D;
    expect(() => composeDreamBoothBatch({ instanceImages: tf.zeros([4, 4]) as never, instanceLabel: 1 })).toThrow(/params\.instanceImages must be a \[N,H,W,C\] tensor/);
    expect(() => composeDreamBoothBatch({ instanceImages: inst, instanceLabel: -1 })).toThrow(/params\.instanceLabel must be an integer label >= 0, got -1/);
    expect(() => composeDreamBoothBatch({ instanceImages: inst, instanceLabel: 5, priorImages: wrong, priorLabel: 1 })).toThrow(/params\.priorImages \[2,8,8,1\] must have the image shape/);
    expect(() => composeDreamBoothBatch({ instanceImages: inst, instanceLabel: 5, priorImages: inst })).toThrow(/params\.priorLabel .* is required/);
    expect(() => composeDreamBoothBatch({ instanceImages: inst, instanceLabel: 5, priorImages: inst, priorLabel: 5 })).toThrow(/must differ/);
    expect(() => composeDreamBoothBatch({ instanceImages: inst, instanceLabel: 5, priorImages: inst, priorLabel: 1, priorLossWeight: -1 })).toThrow(/params\.priorLossWeight must be a finite number >= 0, got -1/);
    tf.dispose([inst, wrong]);
  });
});
