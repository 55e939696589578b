import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertFeatureExtractor, type FeatureExtractor, featureExtractorFromFunction, type FeatureOptions } from './feature-extractor';
import { useCpuBackend } from './test-support/setup';

beforeAll(useCpuBackend);

describe('featureExtractorFromFunction', () => {
  it('wraps a function, passing the options through, with featureDim and inputSpec', () => {
    const seen: Array<FeatureOptions | undefined> = [];
    const ex = featureExtractorFromFunction({
      fn: (x, o) => {
        seen.push(o);
        return tf.mean(x, [1, 2]);
      },
      featureDim: 1,
      inputSpec: { size: 224, channels: 3 },
    });
    const x = tf.ones([2, 4, 4, 1]) as tf.Tensor4D;
    const f = ex.features(x, { training: false });
    expect(f.shape).toEqual([2, 1]);
    expect(seen).toEqual([{ training: false }]);
    expect(ex.featureDim).toBe(1);
    expect(ex.inputSpec).toEqual({ size: 224, channels: 3 });
    tf.dispose([x, f]);
  });

  it("accepts @fad/expert-models' Expert shape as is (type-level check)", () => {
    // The sibling package's contract, restated structurally (this package does not depend on it).
    interface ExpertModelsExpert {
      readonly featureDim: number;
      readonly inputSpec: { size: number; channels: number; mean: number[]; std: number[]; range: [number, number] };
      features(x: tf.Tensor4D, options?: { training?: boolean }): tf.Tensor2D;
    }
    const expert: ExpertModelsExpert = {
      featureDim: 2,
      inputSpec: { size: 4, channels: 1, mean: [0.5], std: [0.25], range: [0, 1] },
      features: (x) => tf.tile(tf.mean(x, [1, 2]), [1, 2]) as tf.Tensor2D,
    };
    const asExtractor: FeatureExtractor = expert;
    expect(() => assertFeatureExtractor('test', 'expert', asExtractor)).not.toThrow();
  });

  it('validates its arguments', () => {
    expect(() => featureExtractorFromFunction({ fn: 3 as never })).toThrow(/fn must be a function/);
    expect(() => featureExtractorFromFunction({ fn: (x) => x, featureDim: 0 })).toThrow(/featureDim must be a positive integer, got 0/);
    expect(() => assertFeatureExtractor('f', 'expert', { predict: () => null })).toThrow(/expert must be a FeatureExtractor, an object with features/);
  });
});
