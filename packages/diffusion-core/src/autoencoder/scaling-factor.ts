/**
 * The latent scaling factor of latent diffusion: 1 / std(z) over training images, so that the
 * scaled latents z * scalingFactor have unit variance (Rombach et al. 2022, section G: "we rescale
 * the latents by the component-wise standard deviation", computed once from a batch of data).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Generator } from '../random';
import type { AutoencoderKL } from './autoencoder';
import { sampleLatent } from './autoencoder';

export interface ComputeScalingFactorParams {
  model: AutoencoderKL;
  /** Training images [N,H,W,C] in the model's range (e.g. [-1, 1]). */
  images: tf.Tensor4D;
  /** Images per encoder pass (default 32). */
  batchSize?: number;
  /**
   * With a generator, the std of posterior samples z ~ q(z|x) (what LDM's first batch measures);
   * without, of the posterior means (the mode).
   */
  generator?: Generator;
}

/**
 * 1 / std of every latent element over `images` (the std about the mean, population form,
 * accumulated in float64). Does not change the model: store it with `model.setScalingFactor`.
 */
export function computeScalingFactor(p: ComputeScalingFactorParams): number {
  if (!p || !p.model) throw new TypeError('computeScalingFactor: params.model is required');
  const { model, images } = p;
  if (!images || images.rank !== 4 || images.shape[0] === 0) {
    throw new Error(`computeScalingFactor: images must be a non-empty NHWC batch [N,H,W,${model.config.inChannels}], got [${images?.shape}]`);
  }
  const batchSize = p.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new RangeError(`computeScalingFactor: batchSize must be a positive integer, got ${batchSize}`);
  if (p.generator !== undefined && !(p.generator instanceof Generator)) throw new TypeError('computeScalingFactor: generator must be a Generator');
  const n = images.shape[0];
  let count = 0;
  let sum = 0;
  let sumSq = 0;
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    const z = tf.tidy(() => {
      const x = tf.slice(images, [s, 0, 0, 0], [m, -1, -1, -1]) as tf.Tensor4D;
      const { mean, logVar } = model.encode(x);
      return p.generator ? sampleLatent({ mean, logVar, generator: p.generator }) : mean;
    });
    const d = z.dataSync();
    z.dispose();
    for (let i = 0; i < d.length; i++) {
      sum += d[i];
      sumSq += d[i] * d[i];
    }
    count += d.length;
  }
  const mean = sum / count;
  const variance = Math.max(0, sumSq / count - mean * mean);
  if (!(variance > 0) || !Number.isFinite(variance)) {
    throw new Error(`computeScalingFactor: the latents have variance ${variance}; cannot scale them to unit variance`);
  }
  return 1 / Math.sqrt(variance);
}
