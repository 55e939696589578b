/**
 * The bridge between pixel space and the latent space of latent diffusion (Rombach et al. 2022):
 * the diffusion model trains and samples on z * scalingFactor, whose variance is about 1 (see
 * `computeScalingFactor`), and its samples are divided by the factor before decoding.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Generator } from '../random';
import { type AutoencoderKL, sampleLatent } from './autoencoder';

function checkBatchSize(fn: string, b: number): void {
  if (!Number.isInteger(b) || b <= 0) throw new RangeError(`${fn}: batchSize must be a positive integer, got ${b}`);
}

export interface EncodeToLatentsParams {
  model: AutoencoderKL;
  /** Images [N,H,W,inChannels] in the autoencoder's range (e.g. [-1, 1]). */
  images: tf.Tensor4D;
  /** With a generator, posterior samples (as diffusers' `latent_dist.sample()`); without, the posterior means. */
  generator?: Generator;
  /** Images per encoder pass (default 32). */
  batchSize?: number;
}

/** Scaled latents z * scalingFactor [N,h,w,latentChannels]: what the diffusion model trains on. */
export function encodeToLatents(p: EncodeToLatentsParams): tf.Tensor4D {
  if (!p || !p.model) throw new TypeError('encodeToLatents: params.model is required');
  const { model, images } = p;
  if (!images || images.rank !== 4 || images.shape[0] === 0) {
    throw new Error(`encodeToLatents: images must be a non-empty NHWC batch [N,H,W,${model.config.inChannels}], got [${images?.shape}]`);
  }
  if (p.generator !== undefined && !(p.generator instanceof Generator)) throw new TypeError('encodeToLatents: generator must be a Generator');
  const batchSize = p.batchSize ?? 32;
  checkBatchSize('encodeToLatents', batchSize);
  const sf = model.config.scalingFactor;
  const n = images.shape[0];
  const parts: tf.Tensor4D[] = [];
  try {
    for (let s = 0; s < n; s += batchSize) {
      const m = Math.min(batchSize, n - s);
      parts.push(tf.tidy(() => {
        const x = (m === n ? images : tf.slice(images, [s, 0, 0, 0], [m, -1, -1, -1])) as tf.Tensor4D;
        const { mean, logVar } = model.encode(x);
        const z = p.generator ? sampleLatent({ mean, logVar, generator: p.generator }) : mean;
        return tf.mul(z, sf) as tf.Tensor4D;
      }));
    }
    return parts.length === 1 ? parts.pop() as tf.Tensor4D : tf.concat(parts, 0);
  } finally {
    tf.dispose(parts);
  }
}

export interface DecodeLatentsParams {
  model: AutoencoderKL;
  /** Scaled latents [N,h,w,latentChannels] (e.g. the diffusion model's samples). */
  latents: tf.Tensor4D;
  /** Latents per decoder pass (default 32). */
  batchSize?: number;
}

/** Images decode(latents / scalingFactor) [N,H,W,outChannels], in the autoencoder's range (not clipped). */
export function decodeLatents(p: DecodeLatentsParams): tf.Tensor4D {
  if (!p || !p.model) throw new TypeError('decodeLatents: params.model is required');
  const { model, latents } = p;
  const k = model.config.latentChannels;
  if (!latents || latents.rank !== 4 || latents.shape[0] === 0 || latents.shape[3] !== k) {
    throw new Error(`decodeLatents: latents must be a non-empty NHWC batch [N,h,w,${k}], got [${latents?.shape}]`);
  }
  const batchSize = p.batchSize ?? 32;
  checkBatchSize('decodeLatents', batchSize);
  const sf = model.config.scalingFactor;
  const n = latents.shape[0];
  const parts: tf.Tensor4D[] = [];
  try {
    for (let s = 0; s < n; s += batchSize) {
      const m = Math.min(batchSize, n - s);
      parts.push(tf.tidy(() => {
        const z = (m === n ? latents : tf.slice(latents, [s, 0, 0, 0], [m, -1, -1, -1])) as tf.Tensor4D;
        return model.decode(tf.div(z, sf) as tf.Tensor4D);
      }));
    }
    return parts.length === 1 ? parts.pop() as tf.Tensor4D : tf.concat(parts, 0);
  } finally {
    tf.dispose(parts);
  }
}
