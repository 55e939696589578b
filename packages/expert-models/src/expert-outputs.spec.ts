import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Expert } from './expert-model';
import { argMax, expertOutputs } from './expert-outputs';
import { leakedTensors, useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

/**
 * A stand-in expert on 2x2x1 inputs in [0, 10]: its feature is the image mean, its logits are
 * (mean, 2 * mean, -mean). Images in [0, 1] reach it scaled by 10 (the range map).
 */
function stubExpert(): Expert {
  const features = (x: tf.Tensor4D) => tf.mean(x, [1, 2]) as tf.Tensor2D;
  const logits = (x: tf.Tensor4D) => tf.tidy(() => tf.matMul(features(x), tf.tensor2d([[1, 2, -1]])) as tf.Tensor2D);
  return {
    config: {} as never, featureDim: 1, numClasses: 3, classNames: ['a', 'b', 'c'], frozen: true,
    inputSpec: { size: 2, channels: 1, mean: [0], std: [1], range: [0, 10] },
    features,
    logits,
    forward: (x) => ({ features: features(x), logits: logits(x) }),
    predict: (x) => tf.argMax(logits(x), 1),
    freeze: () => {},
    unfreeze: () => {},
    dispose: () => {},
  };
}

describe('expertOutputs', () => {
  it('gives each image its features and logits in order, across batch boundaries, after the range map', () => {
    const means = [0, 0.1, 0.25, 0.5, 0.7, 0.9, 1];
    const images = new Float32Array(means.flatMap((m) => [m - 0.05 * (m > 0 ? 1 : 0), m + 0.05 * (m > 0 ? 1 : 0), m, m]));
    const before = tf.memory().numTensors;
    const r = expertOutputs({ expert: stubExpert(), images, n: 7, size: 2, channels: 1, batchSize: 3 });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.features).toHaveLength(7);
    means.forEach((m, i) => {
      expect(r.features[i][0]).toBeCloseTo(10 * m, 5);
      expect(r.logits[i][0]).toBeCloseTo(10 * m, 5);
      expect(r.logits[i][1]).toBeCloseTo(20 * m, 5);
      expect(r.logits[i][2]).toBeCloseTo(-10 * m, 5);
    });
  });

  it('maps another data range and resizes to the expert size (a constant image stays constant)', () => {
    const images = new Float32Array(16).fill(0); // one 4x4 image at -1 .. 1 midpoint -> 5 in [0, 10]
    const r = expertOutputs({ expert: stubExpert(), images, n: 1, size: 4, channels: 1, dataRange: [-1, 1] });
    expect(r.features[0][0]).toBeCloseTo(5, 5);
  });

  it('leaks no tensors and handles n = 0', () => {
    const leaked = leakedTensors(() => expertOutputs({ expert: stubExpert(), images: new Float32Array(5 * 4).fill(0.5), n: 5, size: 2, channels: 1, batchSize: 2 }));
    expect(leaked).toBe(0);
    expect(expertOutputs({ expert: stubExpert(), images: new Float32Array(0), n: 0, size: 2, channels: 1 })).toEqual({ features: [], logits: [] });
  });

  it('refuses bad input with the field named', () => {
    const expert = stubExpert();
    expect(() => expertOutputs({ expert, images: new Float32Array(7), n: 2, size: 2, channels: 1 })).toThrow(/images holds 7 values; 2 images of 2x2x1 need 8/);
    expect(() => expertOutputs({ expert, images: [0, 0, 0, 0] as never, n: 1, size: 2, channels: 1 })).toThrow(/images must be a Float32Array/);
    expect(() => expertOutputs({ expert, images: new Float32Array(4), n: 1, size: 2, channels: 1, batchSize: 0 })).toThrow(/batchSize/);
    expect(() => expertOutputs({ expert: {} as never, images: new Float32Array(4), n: 1, size: 2, channels: 1 })).toThrow(/expert must be an expert model/);
    expect(() => expertOutputs({ expert, images: new Float32Array(12), n: 1, size: 2, channels: 3 })).toThrow(/3 channels/);
  });
});

describe('argMax', () => {
  it('is the first index of the largest value', () => {
    expect(argMax([1, 3, 3, 2])).toBe(1);
    expect(argMax([-5])).toBe(0);
    expect(argMax(new Float32Array([0.1, 0.2, 0.9]))).toBe(2);
    expect(argMax([])).toBe(-1);
  });
});
