/**
 * Noise-aware expert training: show the expert the noisy images x_t a diffusion sampler produces,
 * x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps with t uniform over the diffusion model's training
 * timesteps (a_t its alpha-bar), so that its gradients with respect to x_t mean something when it
 * guides sampling (Dhariwal & Nichol 2021 train their guidance classifier this way). The noise is
 * added in the diffusion model's space (`dataRange`, [-1, 1] by default) and mapped back to the
 * expert's input range, exactly the map `expertGuidance` uses. Labels stay those of x_0.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Generator } from '@fad/diffusion-core';
import { checkRange } from './expert-input';
import { assertNumber, formatShape, show } from './validate';

/** What `trainExpert({ noiseAware })` and {@link noisyExpertBatch} need to know about the diffusion. */
export interface NoiseAwareConfig {
  /** alpha-bar_t for t = 0..T-1 of the diffusion model's scheduler (e.g. `new DDPMScheduler(cfg).alphasCumprod`). */
  alphasCumprod: ArrayLike<number>;
  /** The diffusion model's data range; default [-1, 1]. */
  dataRange?: readonly [number, number];
  /** Share of the images that are noised, in [0, 1]; default 1 (the rest stay clean). */
  probability?: number;
}

/** Parameters of {@link noisyExpertBatch}. */
export interface NoisyExpertBatchParams extends NoiseAwareConfig {
  /** Images [B,H,W,C] in the expert's input range `range`. */
  images: tf.Tensor4D;
  /** The expert's input range, e.g. [0, 1]. */
  range: readonly [number, number];
  /** Seeded source of t and eps; advanced by the call. */
  generator: Generator;
}

/** Result of {@link noisyExpertBatch}. */
export interface NoisyExpertBatch {
  /** x_t in the expert's range (not clipped), a new tensor the caller disposes. */
  images: tf.Tensor4D;
  /** t per image, -1 for an image left clean. */
  timesteps: number[];
}

/** Checks a {@link NoiseAwareConfig}. Internal. */
export function checkNoiseAwareConfig(fn: string, field: string, c: unknown): void {
  if (typeof c !== 'object' || c === null) throw new TypeError(`${fn}: ${field} must be an object {alphasCumprod, dataRange?, probability?}, got ${show(c)}`);
  const { alphasCumprod, dataRange, probability } = c as NoiseAwareConfig;
  const ok = alphasCumprod !== undefined && alphasCumprod !== null && typeof (alphasCumprod as ArrayLike<number>).length === 'number' && alphasCumprod.length > 0
    && Array.prototype.every.call(alphasCumprod, (a: number) => typeof a === 'number' && a > 0 && a <= 1);
  if (!ok) throw new RangeError(`${fn}: ${field}.alphasCumprod must be a non-empty array of alpha-bars in (0, 1], got ${show(alphasCumprod)}`);
  if (dataRange !== undefined) checkRange(fn, `${field}.dataRange`, dataRange);
  if (probability !== undefined) assertNumber(fn, `${field}.probability`, probability, { min: 0, max: 1 });
}

/** Noises a batch as the sampler would see it at random timesteps (see the file comment). */
export function noisyExpertBatch(params: NoisyExpertBatchParams): NoisyExpertBatch {
  const fn = 'noisyExpertBatch';
  if (typeof params !== 'object' || params === null) throw new TypeError(`${fn}: params must be an object, got ${show(params)}`);
  const { images, range, generator, alphasCumprod } = params;
  if (!(images instanceof tf.Tensor) || images.rank !== 4) throw new TypeError(`${fn}: images must be a [B,H,W,C] tensor, got ${images instanceof tf.Tensor ? formatShape(images.shape) : show(images)}`);
  checkRange(fn, 'range', range);
  if (!generator || typeof (generator as Generator).normal !== 'function') throw new TypeError(`${fn}: generator must be a Generator, got ${show(generator)}`);
  checkNoiseAwareConfig(fn, 'params', params);
  const [lo, hi] = params.dataRange ?? [-1, 1];
  const probability = params.probability ?? 1;
  const [r0, r1] = range;
  const b = images.shape[0];
  const T = alphasCumprod.length;
  const timesteps: number[] = [];
  const signal: number[] = [];
  const noise: number[] = [];
  for (let i = 0; i < b; i++) {
    const t = probability >= 1 || generator.nextFloat() < probability ? generator.nextInt(0, T) : -1;
    const a = t < 0 ? 1 : alphasCumprod[t];
    timesteps.push(t);
    signal.push(Math.sqrt(a));
    noise.push(Math.sqrt(1 - a));
  }
  const eps = generator.normal(images.shape);
  const out = tf.tidy(() => {
    const col = (v: number[]) => tf.tensor4d(v, [b, 1, 1, 1]);
    const toModel = tf.add(tf.mul(tf.sub(images, r0), (hi - lo) / (r1 - r0)), lo);
    const xt = tf.add(tf.mul(toModel, col(signal)), tf.mul(eps, col(noise)));
    return tf.add(tf.mul(tf.sub(xt, lo), (r1 - r0) / (hi - lo)), r0) as tf.Tensor4D;
  });
  eps.dispose();
  return { images: out, timesteps };
}
