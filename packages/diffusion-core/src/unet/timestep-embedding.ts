import * as tf from '@tensorflow/tfjs-core';

/**
 * Sinusoidal timestep embedding (Vaswani et al. 2017; Ho et al. 2020), cosines first:
 * emb[i] = cos(t * f_i), emb[half + i] = sin(t * f_i), f_i = exp(-ln(10000) * i / half).
 * Computed in float64 on the host, so it is the same on every backend.
 */
export function timestepEmbedding(timesteps: ArrayLike<number>, dim: number): tf.Tensor2D {
  const half = dim / 2;
  const b = timesteps.length;
  const out = new Float32Array(b * dim);
  for (let j = 0; j < b; j++) {
    const t = timesteps[j];
    for (let i = 0; i < half; i++) {
      const a = t * Math.exp((-Math.log(10000) * i) / half);
      out[j * dim + i] = Math.cos(a);
      out[j * dim + half + i] = Math.sin(a);
    }
  }
  return tf.tensor2d(out, [b, dim]);
}
