/**
 * An autoencoder's reconstructions of images held as one flat array in [0, 1]: each image mapped to
 * [-1, 1], encoded to its posterior mean, decoded and mapped back, clipped to [0, 1]. The fidelity
 * check of latent diffusion (`autoencoderFidelity` of @fad/expert-models) compares them with the
 * originals.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AutoencoderKL } from './autoencoder';

/** Parameters of {@link reconstructImages}. */
export interface ReconstructImagesParams {
  model: AutoencoderKL;
  /** Images [n, imageSize, imageSize, channels] in [0, 1], row-major. */
  images: Float32Array;
  n: number;
  imageSize: number;
  /** The autoencoder's `inChannels` (and `outChannels`). */
  channels: number;
  /** Images per encoder/decoder pass (default 32). */
  batchSize?: number;
}

const isInt = (v: unknown, min: number): v is number => Number.isInteger(v) && (v as number) >= min;

/**
 * Reconstructions of `images` (see the file comment), same layout, in [0, 1]; leaves no tensors behind.
 * @throws TypeError / RangeError for bad params, naming the field.
 */
export function reconstructImages(p: ReconstructImagesParams): Float32Array {
  const fn = 'reconstructImages';
  if (p === null || typeof p !== 'object') throw new TypeError(`${fn}: expected one params object, got ${String(p)}`);
  if (!p.model || typeof p.model.encode !== 'function' || typeof p.model.decode !== 'function') throw new TypeError(`${fn}: model must be an AutoencoderKL`);
  if (!(p.images instanceof Float32Array)) throw new TypeError(`${fn}: images must be a Float32Array [n, imageSize, imageSize, channels] in [0, 1]`);
  if (!isInt(p.n, 0)) throw new RangeError(`${fn}: n must be an integer >= 0, got ${String(p.n)}`);
  if (!isInt(p.imageSize, 1)) throw new RangeError(`${fn}: imageSize must be an integer >= 1, got ${String(p.imageSize)}`);
  if (p.channels !== p.model.config.inChannels) throw new RangeError(`${fn}: channels must be ${p.model.config.inChannels} (the autoencoder's inChannels), got ${String(p.channels)}`);
  const bs = p.batchSize ?? 32;
  if (!isInt(bs, 1)) throw new RangeError(`${fn}: batchSize must be an integer >= 1, got ${String(bs)}`);
  const per = p.imageSize * p.imageSize * p.channels;
  if (p.images.length !== p.n * per) throw new RangeError(`${fn}: images holds ${p.images.length} values; ${p.n} images of ${p.imageSize}x${p.imageSize}x${p.channels} need ${p.n * per}`);
  const out = new Float32Array(p.n * per);
  for (let s = 0; s < p.n; s += bs) {
    const m = Math.min(bs, p.n - s);
    const y = tf.tidy(() => {
      const x = tf.sub(tf.mul(tf.tensor4d(p.images.subarray(s * per, (s + m) * per), [m, p.imageSize, p.imageSize, p.channels]), 2), 1) as tf.Tensor4D;
      const { mean, logVar } = p.model.encode(x);
      logVar.dispose();
      return tf.clipByValue(tf.div(tf.add(p.model.decode(mean), 1), 2), 0, 1);
    });
    out.set(y.dataSync(), s * per);
    y.dispose();
  }
  return out;
}
