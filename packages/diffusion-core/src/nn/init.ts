/** Seeded parameter initialisers (PyTorch's defaults, so that models start alike). */
import * as tf from '@tensorflow/tfjs-core';
import type { Generator } from '../random';

/** U(-bound, bound) from a seeded generator. */
export function uniformInit(gen: Generator, shape: number[], bound: number): tf.Tensor {
  return gen.uniform(shape, -bound, bound);
}

/**
 * PyTorch's default for Linear and Conv2d weights and biases: kaiming_uniform(a=sqrt(5)), which
 * comes to U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
 */
export function fanInUniform(gen: Generator, shape: number[], fanIn: number): tf.Tensor {
  return uniformInit(gen, shape, 1 / Math.sqrt(fanIn));
}
