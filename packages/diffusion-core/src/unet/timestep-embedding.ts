import * as tf from '@tensorflow/tfjs-core';

/** Options of {@link timestepEmbedding} (diffusers' `Timesteps` module). */
export interface TimestepEmbeddingOptions {
  /** Cosines first (default true; diffusers' `flip_sin_to_cos`). */
  flipSinToCos?: boolean;
  /** Frequencies exp(-ln(10000) i / (half - freqShift)) (default 0; diffusers' `freq_shift`). */
  freqShift?: number;
}

/**
 * Sinusoidal timestep embedding (Vaswani et al. 2017; Ho et al. 2020), cosines first by default:
 * emb[i] = cos(t * f_i), emb[half + i] = sin(t * f_i), f_i = exp(-ln(10000) * i / (half - freqShift))
 * (sines first when `flipSinToCos` is false). Computed in float64 on the host, so it is the same on
 * every backend (diffusers computes it in float32, which differs by ~1e-6 at t = 999).
 */
export function timestepEmbedding(timesteps: ArrayLike<number>, dim: number, options: TimestepEmbeddingOptions = {}): tf.Tensor2D {
  const half = dim / 2;
  const flip = options.flipSinToCos ?? true;
  const shift = options.freqShift ?? 0;
  const b = timesteps.length;
  const out = new Float32Array(b * dim);
  const [first, second] = flip ? [Math.cos, Math.sin] : [Math.sin, Math.cos];
  for (let j = 0; j < b; j++) {
    const t = timesteps[j];
    for (let i = 0; i < half; i++) {
      const a = t * Math.exp((-Math.log(10000) * i) / (half - shift));
      out[j * dim + i] = first(a);
      out[j * dim + half + i] = second(a);
    }
  }
  return tf.tensor2d(out, [b, dim]);
}
