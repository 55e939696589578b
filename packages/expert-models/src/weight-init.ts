/**
 * Weight initialisation helpers (internal): a generator that draws zeros, for building a model
 * whose weights are about to be overwritten (checkpoint loading) without paying for random numbers,
 * and torchvision's Kaiming-normal convolution init.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Generator } from '@fad/diffusion-core';

/** A Generator whose tensors are all zeros (layers built with it start at 0 instead of random). */
class ZeroGenerator extends Generator {
  constructor() {
    super(0);
  }
  override normal(shape: number[]): tf.Tensor {
    return tf.zeros(shape);
  }
  override uniform(shape: number[]): tf.Tensor {
    return tf.zeros(shape);
  }
}

/** Shared zero generator. */
export const ZERO_GENERATOR: Generator = new ZeroGenerator();

/** Kaiming-normal weights for a conv of shape [k, k, in, out]: N(0, 2 / (k * k * out)) (fan_out, ReLU gain). */
export function kaimingNormalFanOut(generator: Generator, shape: [number, number, number, number]): tf.Tensor {
  const std = Math.sqrt(2 / (shape[0] * shape[1] * shape[3]));
  return tf.tidy(() => tf.mul(generator.normal(shape), std));
}
