import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { extractExpertFeatures } from './expert-features';
import { featureExtractorFromFunction } from './feature-extractor';
import { featureExtractorFromLayersModel } from './tap-layers-model';
import { randomTensor, useCpuBackend } from './test-support/setup';
import { SpyExpert } from './test-support/toy-experts';

beforeAll(useCpuBackend);

const disposables: Array<{ dispose(): void }> = [];
afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));

describe('extractExpertFeatures', () => {
  it('runs the expert in inference mode: a BatchNorm-style running mean is not updated', () => {
    const spy = new SpyExpert({ pixels: 16, featureDim: 3 });
    disposables.push(spy);
    const x = randomTensor([2, 4, 4, 1], 1) as tf.Tensor4D;
    for (let i = 0; i < 3; i++) extractExpertFeatures({ expert: spy, images: x }).dispose();
    expect(spy.calls.map((c) => c.options)).toEqual([{ training: false }, { training: false }, { training: false }]);
    expect(Array.from(spy.runningMean.dataSync())).toEqual([0, 0, 0]);
    // The toy does update in training mode (so the check above can fail).
    tf.tidy(() => spy.features(x, { training: true }));
    expect(Array.from(spy.runningMean.dataSync()).some((v) => v !== 0)).toBe(true);
    x.dispose();
  });

  it("keeps a tfjs-layers BatchNormalization's moving statistics", () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [6, 6, 1], filters: 4, kernelSize: 3 }),
        tfl.layers.batchNormalization({ name: 'bn' }),
        tfl.layers.globalAveragePooling2d({}),
      ],
    });
    disposables.push({ dispose: () => model.dispose() });
    const bn = model.getLayer('bn');
    const stats = () => bn.getWeights().slice(2).map((w) => Array.from(w.dataSync()));
    const before = stats();
    const expert = featureExtractorFromLayersModel({ model });
    const x = randomTensor([3, 6, 6, 1], 2) as tf.Tensor4D;
    const probe = tf.variable(tf.ones([4]));
    for (let i = 0; i < 3; i++) {
      // Inside a gradient tape, as in training.
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(extractExpertFeatures({ expert, images: x }), probe)) as tf.Scalar);
      tf.dispose([value, ...Object.values(grads)]);
    }
    probe.dispose();
    expect(stats()).toEqual(before);
    tf.tidy(() => model.apply(x, { training: true }) as tf.Tensor);
    expect(stats()).not.toEqual(before);
    x.dispose();
  });

  it('adapts the input to the inputSpec and pools feature maps to [B,D]', () => {
    const seen: number[][] = [];
    const expert = featureExtractorFromFunction({
      fn: (x) => {
        seen.push(x.shape.slice());
        return tf.tile(tf.mean(x, [1, 2], true), [1, 2, 2, 1]);
      },
      inputSpec: { size: 8, channels: 3, range: [0, 1] },
    });
    const x = tf.fill([2, 4, 4, 1], -1) as tf.Tensor4D;
    const f = extractExpertFeatures({ expert, images: x });
    expect(seen).toEqual([[2, 8, 8, 3]]);
    expect(f.shape).toEqual([2, 3]);
    expect(Array.from(f.dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
    const raw = extractExpertFeatures({ expert, images: x, adaptation: 'raw' });
    expect(seen[1]).toEqual([2, 4, 4, 1]);
    expect(Array.from(raw.dataSync())).toEqual([-1, -1]);
    tf.dispose([x, f, raw]);
  });

  it('rejects expert outputs of the wrong shape, naming both shapes', () => {
    const x = tf.zeros([2, 4, 4, 1]) as tf.Tensor4D;
    const bad = featureExtractorFromFunction({ fn: () => tf.zeros([3, 5]) });
    expect(() => extractExpertFeatures({ expert: bad, images: x })).toThrow(
      'extractExpertFeatures: expert.features returned a float32 tensor of shape [3,5] for input [2,4,4,1]; expected [2,D] or [2,H\',W\',D]',
    );
    const wrongDim = featureExtractorFromFunction({ fn: () => tf.zeros([2, 5]), featureDim: 4 });
    expect(() => extractExpertFeatures({ expert: wrongDim, images: x })).toThrow(/returned shape \[2,5\], but expert.featureDim is 4/);
    expect(() => extractExpertFeatures({ expert: bad, images: tf.zeros([4, 4]) as never })).toThrow(/images must be \[B,H,W,C\], got shape \[4,4\]/);
    x.dispose();
  });
});
