import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { combinedLoss } from './combined-loss';
import { useCpuBackend } from './test-support/setup';

beforeAll(useCpuBackend);

describe('combinedLoss', () => {
  it('is lambda1 * diffusion + lambda2 * align, with both lambdas defaulting to 1', () => {
    const d = tf.scalar(0.5);
    const a = tf.scalar(0.25);
    expect(tf.tidy(() => combinedLoss({ diffusionLoss: d, alignLoss: a }).dataSync()[0])).toBeCloseTo(0.75, 7);
    expect(tf.tidy(() => combinedLoss({ diffusionLoss: d, alignLoss: a, lambda1: 2, lambda2: 0.1 }).dataSync()[0])).toBeCloseTo(1.025, 7);
    expect(() => combinedLoss({ diffusionLoss: d, alignLoss: a, lambda2: -1 })).toThrow('combinedLoss: lambda2 must be a finite number >= 0, got -1');
    expect(() => combinedLoss({ diffusionLoss: tf.ones([2]) as tf.Scalar, alignLoss: a })).toThrow(/diffusionLoss must be a scalar, got shape \[2\]/);
    tf.dispose([d, a]);
  });

  it('takes tf.losses.meanSquaredError(...) as it is (typed Tensor<Rank>), and still checks the rank', () => {
    const a = tf.tensor2d([[1, 2]]);
    const b = tf.tensor2d([[0, 0]]);
    const diffusionLoss = tf.losses.meanSquaredError(a, b); // Tensor<Rank>: must type-check
    const out = combinedLoss({ diffusionLoss, alignLoss: tf.scalar(1), lambda1: 2 });
    expect(out.dataSync()[0]).toBeCloseTo(2 * 2.5 + 1, 6);
    expect(() => combinedLoss({ diffusionLoss: a, alignLoss: tf.scalar(1) })).toThrow(/diffusionLoss/);
    tf.dispose([a, b, diffusionLoss, out]);
  });
});
