// Test helpers (not part of the package API): experts that record what they were given.
import * as tf from '@tensorflow/tfjs-core';
import type { ExpertInputSpec, FeatureExtractor, FeatureOptions } from '../feature-extractor';

/**
 * A linear expert with a BatchNorm-style running mean: features(x) = flatten(x) W - runningMean.
 * Like a real BatchNorm layer it updates its running mean when called with `training: true`
 * (what the reference implementation did by accident). Records every input and option.
 */
export class SpyExpert implements FeatureExtractor {
  readonly featureDim: number;
  readonly inputSpec?: ExpertInputSpec;
  readonly weight: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly calls: Array<{ input: Float32Array; shape: number[]; options: FeatureOptions | undefined }> = [];

  constructor(p: { pixels: number; featureDim: number; seed?: number; inputSpec?: ExpertInputSpec }) {
    this.featureDim = p.featureDim;
    if (p.inputSpec) this.inputSpec = p.inputSpec;
    // Trainable on purpose: the alignment must still leave it alone.
    this.weight = tf.variable(tf.randomNormal([p.pixels, p.featureDim], 0, 1 / Math.sqrt(p.pixels), 'float32', p.seed ?? 1), true);
    this.runningMean = tf.variable(tf.zeros([p.featureDim]), false);
  }

  features(x: tf.Tensor4D, options?: FeatureOptions): tf.Tensor2D {
    this.calls.push({ input: x.dataSync() as Float32Array, shape: x.shape.slice(), options });
    return tf.tidy(() => {
      const y = tf.matMul(tf.reshape(x, [x.shape[0], -1]) as tf.Tensor2D, this.weight as tf.Tensor2D);
      if (options?.training) this.runningMean.assign(tf.add(tf.mul(this.runningMean, 0.9), tf.mul(tf.mean(y, 0), 0.1)));
      return tf.sub(y, this.runningMean) as tf.Tensor2D;
    });
  }

  dispose(): void {
    this.weight.dispose();
    this.runningMean.dispose();
  }
}
