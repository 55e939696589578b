/** Contrast and brightness changes of NHWC image batches, with one value per image or one for all. */
import * as tf from '@tensorflow/tfjs-core';
import { assertNumber, formatShape, show } from './validate';

function perImage(fn: string, field: string, value: number | readonly number[], batch: number, bounds: { min?: number }): tf.Tensor4D {
  const values = typeof value === 'number' ? new Array<number>(batch).fill(value) : value;
  if (!Array.isArray(values) || values.length !== batch) {
    throw new RangeError(`${fn}: ${field} must be a number or an array of ${batch} numbers (one per image), got ${show(value)}`);
  }
  values.forEach((v, i) => assertNumber(fn, typeof value === 'number' ? field : `${field}[${i}]`, v, bounds));
  return tf.tensor4d(values, [batch, 1, 1, 1]);
}

function checkImages(fn: string, images: tf.Tensor): void {
  if (!(images instanceof tf.Tensor) || images.rank !== 4) {
    throw new RangeError(`${fn}: images must be a [B,H,W,C] tensor, got ${images instanceof tf.Tensor ? formatShape(images.shape) : String(images)}`);
  }
}

/** Parameters of {@link adjustContrast}. */
export interface AdjustContrastParams {
  /** Images [B,H,W,C]. */
  images: tf.Tensor4D;
  /** Contrast factor c >= 0 (1 = unchanged, 0 = flat grey at the mean), per image or for all. */
  factor: number | readonly number[];
}

/**
 * `out = (x - m) * c + m`, with m the mean of the image over all its pixels and channels (as
 * torchvision's `adjust_contrast` on a grayscale image). The image mean is unchanged. No clipping.
 */
export function adjustContrast(params: AdjustContrastParams): tf.Tensor4D {
  const { images, factor } = params;
  checkImages('adjustContrast', images);
  return tf.tidy(() => {
    const c = perImage('adjustContrast', 'factor', factor, images.shape[0], { min: 0 });
    const m = tf.mean(images, [1, 2, 3], true);
    return tf.add(tf.mul(tf.sub(images, m), c), m) as tf.Tensor4D;
  });
}

/** Parameters of {@link adjustBrightness}. */
export interface AdjustBrightnessParams {
  /** Images [B,H,W,C]. */
  images: tf.Tensor4D;
  /** Value added to every pixel, per image or for all (in the images' units). */
  delta: number | readonly number[];
}

/** `out = x + delta`. No clipping. */
export function adjustBrightness(params: AdjustBrightnessParams): tf.Tensor4D {
  const { images, delta } = params;
  checkImages('adjustBrightness', images);
  return tf.tidy(() => tf.add(images, perImage('adjustBrightness', 'delta', delta, images.shape[0], {})) as tf.Tensor4D);
}
