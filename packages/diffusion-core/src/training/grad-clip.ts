import * as tf from '@tensorflow/tfjs-core';

/** The global L2 norm sqrt(sum_i ||g_i||^2) of a list of gradients. */
export function globalNorm(grads: tf.Tensor[]): number {
  return tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))).dataSync()[0]);
}

/**
 * Scales every gradient by min(1, maxNorm / (norm + 1e-6)), as torch.nn.utils.clip_grad_norm_.
 * Returns new tensors (the inputs are left alone) and the norm before clipping.
 */
export function clipByGlobalNorm(grads: tf.Tensor[], maxNorm: number): { grads: tf.Tensor[]; norm: number } {
  if (!(maxNorm > 0)) throw new RangeError(`clipByGlobalNorm: maxNorm must be > 0, got ${maxNorm}`);
  const norm = globalNorm(grads);
  const s = norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
  return { grads: grads.map((g) => tf.mul(g, s)), norm };
}
