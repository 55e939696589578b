/**
 * Gaussian blur and unsharp-mask sharpening of NHWC image batches: separable convolution with a
 * normalised Gaussian kernel, borders mirrored without repeating the edge pixel (`d c b | a b c d`,
 * numpy / PyTorch "reflect"), each channel on its own.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, assertNumber, formatShape } from './validate';

/** Parameters of {@link gaussianKernel1d}. */
export interface GaussianKernel1dParams {
  /** Standard deviation in pixels, > 0. */
  sigma: number;
  /** Half-width; the kernel has 2 * radius + 1 taps. Default `max(1, ceil(3 * sigma))`. */
  radius?: number;
}

/** The normalised 1-D Gaussian `k[i] ∝ exp(-(i - r)^2 / (2 sigma^2))`, i = 0..2r, summing to 1. */
export function gaussianKernel1d(params: GaussianKernel1dParams): Float32Array {
  const { sigma } = params;
  assertNumber('gaussianKernel1d', 'sigma', sigma, { min: 0, minExclusive: true });
  const radius = params.radius ?? Math.max(1, Math.ceil(3 * sigma));
  assertInt('gaussianKernel1d', 'radius', radius, 0);
  const k = new Float64Array(2 * radius + 1);
  let s = 0;
  for (let i = -radius; i <= radius; i++) s += k[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
  return Float32Array.from(k, (v) => v / s);
}

/** Parameters of {@link gaussianBlur}. */
export interface GaussianBlurParams {
  /** Images [B,H,W,C]. */
  images: tf.Tensor4D;
  /** Standard deviation in pixels, > 0. */
  sigma: number;
  /**
   * Kernel half-width, default `max(1, ceil(3 * sigma))`; limited to `min(H, W) - 1` (the most
   * that mirror padding allows).
   */
  radius?: number;
}

function checkImages(fn: string, images: tf.Tensor): void {
  if (!(images instanceof tf.Tensor) || images.rank !== 4) {
    throw new RangeError(`${fn}: images must be a [B,H,W,C] tensor, got ${images instanceof tf.Tensor ? formatShape(images.shape) : String(images)}`);
  }
}

/** Blurs every channel of every image with a separable Gaussian (see the file comment). */
export function gaussianBlur(params: GaussianBlurParams): tf.Tensor4D {
  const { images, sigma } = params;
  checkImages('gaussianBlur', images);
  assertNumber('gaussianBlur', 'sigma', sigma, { min: 0, minExclusive: true });
  const [, h, w, c] = images.shape;
  const wanted = params.radius ?? Math.max(1, Math.ceil(3 * sigma));
  assertInt('gaussianBlur', 'radius', wanted, 0);
  const radius = Math.min(wanted, h - 1, w - 1);
  if (radius === 0) return tf.clone(images);
  const k = gaussianKernel1d({ sigma, radius });
  const taps = k.length;
  return tf.tidy(() => {
    const padded = tf.mirrorPad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], 'reflect');
    const kc = new Float32Array(taps * c);
    for (let i = 0; i < taps; i++) kc.fill(k[i], i * c, (i + 1) * c);
    const horizontal = tf.tensor4d(kc, [1, taps, c, 1]);
    const vertical = tf.tensor4d(kc, [taps, 1, c, 1]);
    const rows = tf.depthwiseConv2d(padded, horizontal, 1, 'valid');
    return tf.depthwiseConv2d(rows, vertical, 1, 'valid');
  });
}

/** Parameters of {@link unsharpMask}. */
export interface UnsharpMaskParams {
  /** Images [B,H,W,C]. */
  images: tf.Tensor4D;
  /** Standard deviation of the blur that defines the detail, > 0. */
  sigma: number;
  /** Strength: `out = x + amount * (x - blur(x))`; 0 returns the input, >= 0. */
  amount: number;
}

/** Sharpens by adding back the detail a Gaussian blur removes: `x + amount * (x - gaussianBlur(x))`. */
export function unsharpMask(params: UnsharpMaskParams): tf.Tensor4D {
  const { images, sigma, amount } = params;
  checkImages('unsharpMask', images);
  assertNumber('unsharpMask', 'sigma', sigma, { min: 0, minExclusive: true });
  assertNumber('unsharpMask', 'amount', amount, { min: 0 });
  return tf.tidy(() => {
    const blurred = gaussianBlur({ images, sigma });
    return tf.add(images, tf.mul(tf.sub(images, blurred), amount));
  });
}
