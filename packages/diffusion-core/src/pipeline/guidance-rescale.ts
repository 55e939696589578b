/**
 * Rescaled classifier-free guidance (Lin et al. 2024, section 3.4), used by the samplers through
 * `guidanceRescale`.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Checks a guidance rescale factor: a number in [0, 1]; `owner` names the caller. */
export function checkGuidanceRescale(owner: string, phi: number | undefined): number {
  if (phi === undefined) return 0;
  if (typeof phi !== 'number' || !Number.isFinite(phi) || phi < 0 || phi > 1) {
    throw new RangeError(`${owner}: guidanceRescale must be a number in [0, 1] (0 = plain classifier-free guidance; Lin et al. use 0.7), got ${String(phi)}`);
  }
  return phi;
}

/**
 * Rescaled classifier-free guidance (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample
 * Steps are Flawed", section 3.4; diffusers' `guidance_rescale`). A large guidance scale inflates
 * the guided prediction's standard deviation, which with zero terminal SNR over-exposes images:
 *   1. x_cfg = x_uncond + w (x_cond - x_uncond)                      (classifier-free guidance)
 *   2. x_rescaled = x_cfg * std(x_cond) / std(x_cfg)                (per sample, over H, W, C; Eq. 15)
 *   3. x_final = phi x_rescaled + (1 - phi) x_cfg                    (Eq. 16)
 * Returns x_final for `guided` = x_cfg and `cond` = x_cond. Call inside a `tf.tidy`.
 */
export function rescaleGuidance(p: { guided: tf.Tensor4D; cond: tf.Tensor4D; phi: number }): tf.Tensor4D {
  const { guided, cond, phi } = p;
  if (phi === 0) return guided;
  const std = (t: tf.Tensor4D) => tf.sqrt(tf.moments(t, [1, 2, 3], true).variance);
  const rescaled = tf.mul(guided, tf.div(std(cond), tf.maximum(std(guided), 1e-12)));
  return tf.add(tf.mul(rescaled, phi), tf.mul(guided, 1 - phi)) as tf.Tensor4D;
}
