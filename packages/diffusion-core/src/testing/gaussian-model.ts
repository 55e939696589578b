// Test helper: an analytic denoiser for Gaussian data.
import * as tf from '@tensorflow/tfjs-core';
import type { DiffusionModel, UNetForwardParams, UNetForwardResult } from '../unet/unet';

/**
 * The exact noise prediction for data x_0 ~ N(mu, s^2 I): E[eps | x_t] =
 * sqrt(1-a) (x_t - sqrt(a) mu) / (a s^2 + 1 - a). Deterministic DDIM with it is a discretised,
 * smooth probability-flow ODE, so DDIM inversion is accurate with enough steps.
 */
export function gaussianModel(mu: tf.Tensor4D, s: number, alphasCumprod: Float32Array, numClasses = 0): DiffusionModel {
  return {
    config: { sampleSize: mu.shape[1], inChannels: mu.shape[3], numClasses, nullClass: false },
    trainableVariables: () => [],
    forward: (p: UNetForwardParams): UNetForwardResult => {
      const t = Array.from(p.timesteps as ArrayLike<number>)[0];
      const a = alphasCumprod[t];
      const eps = tf.tidy(() => tf.mul(tf.sub(p.sample, tf.mul(mu, Math.sqrt(a))), Math.sqrt(1 - a) / (a * s * s + 1 - a))) as tf.Tensor4D;
      return { sample: eps, activations: {} };
    },
  };
}
