/**
 * Resizing of NHWC image batches, and the down-then-up resampling augmentation that imitates images
 * which went through another resize path (a different scale, interpolation or library).
 *
 * - `'bilinear'`, `'nearest'`: tfjs with half-pixel centres (as PyTorch `align_corners=False`,
 *   PIL and OpenCV), no antialiasing;
 * - `'area'`: each output pixel is the mean of the input area it covers, with fractional overlaps
 *   weighted (OpenCV `INTER_AREA` when shrinking, PIL `BOX`); computed as `A X Bᵀ` with
 *   row-stochastic overlap matrices, so an integer factor k equals k x k average pooling.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, assertNumber, assertOneOf, formatShape } from './validate';

/** The interpolation methods. */
export const RESIZE_METHODS = ['bilinear', 'area', 'nearest'] as const;
/** An interpolation method. */
export type ResizeMethod = (typeof RESIZE_METHODS)[number];

/** Parameters of {@link resizeImages}. */
export interface ResizeImagesParams {
  /** Images [B,H,W,C]. */
  images: tf.Tensor4D;
  /** Output height, >= 1. */
  height: number;
  /** Output width, >= 1. */
  width: number;
  /** Interpolation (see the file comment). */
  method: ResizeMethod;
}

/** Row-stochastic [out, in] matrix: weight of input pixel i in output pixel j = overlap / (in / out). */
export function areaMatrix(inSize: number, outSize: number): Float32Array {
  const m = new Float32Array(outSize * inSize);
  const scale = inSize / outSize;
  for (let j = 0; j < outSize; j++) {
    const lo = j * scale;
    const hi = (j + 1) * scale;
    for (let i = Math.floor(lo); i < Math.min(inSize, Math.ceil(hi)); i++) {
      const overlap = Math.min(hi, i + 1) - Math.max(lo, i);
      if (overlap > 0) m[j * inSize + i] = overlap / scale;
    }
  }
  return m;
}

function resizeArea(images: tf.Tensor4D, height: number, width: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, c] = images.shape;
    const a = tf.tensor2d(areaMatrix(h, height), [height, h]);
    const bw = tf.tensor2d(areaMatrix(w, width), [width, w]);
    // Width: [B,H,W,C] -> [B*H, W, C] -> contract W.
    const xw = tf.transpose(tf.reshape(images, [b * h, w, c]), [0, 2, 1]); // [B*H, C, W]
    const yw = tf.matMul(tf.reshape(xw, [b * h * c, w]), bw, false, true); // [B*H*C, width]
    // Height: [B, H, C, width] -> [B, C, width, H] -> contract H.
    const yh = tf.transpose(tf.reshape(yw, [b, h, c, width]), [0, 1, 3, 2]); // [B, H, width, C]
    const t = tf.reshape(tf.transpose(yh, [0, 2, 3, 1]), [b * width * c, h]); // [B*width*C, H]
    const z = tf.matMul(t, a, false, true); // [B*width*C, height]
    return tf.transpose(tf.reshape(z, [b, width, c, height]), [0, 3, 1, 2]) as tf.Tensor4D;
  });
}

/** Resizes every image to height x width (see the file comment for the methods). */
export function resizeImages(params: ResizeImagesParams): tf.Tensor4D {
  const { images, height, width, method } = params;
  if (!(images instanceof tf.Tensor) || images.rank !== 4) {
    throw new RangeError(`resizeImages: images must be a [B,H,W,C] tensor, got ${images instanceof tf.Tensor ? formatShape(images.shape) : String(images)}`);
  }
  assertInt('resizeImages', 'height', height, 1);
  assertInt('resizeImages', 'width', width, 1);
  assertOneOf('resizeImages', 'method', method, RESIZE_METHODS);
  if (method === 'area') return resizeArea(images, height, width);
  if (method === 'nearest') return tf.image.resizeNearestNeighbor(images, [height, width], false, true);
  return tf.image.resizeBilinear(images, [height, width], false, true);
}

/** Parameters of {@link resampleDownUp}. */
export interface ResampleDownUpParams {
  /** Images [B,H,W,C]. */
  images: tf.Tensor4D;
  /** Intermediate size as a fraction of the original, in (0, 1]; sides are `max(1, round(scale * side))`. */
  scale: number;
  /** Interpolation of the reduction. */
  downMethod: ResizeMethod;
  /** Interpolation back to the original size, default `'bilinear'`. */
  upMethod?: ResizeMethod;
}

/** Shrinks to `scale` of the size and back: loses detail the way a coarser acquisition or resize path does. */
export function resampleDownUp(params: ResampleDownUpParams): tf.Tensor4D {
  const { images, scale, downMethod, upMethod = 'bilinear' } = params;
  assertNumber('resampleDownUp', 'scale', scale, { min: 0, max: 1, minExclusive: true });
  assertOneOf('resampleDownUp', 'downMethod', downMethod, RESIZE_METHODS);
  assertOneOf('resampleDownUp', 'upMethod', upMethod, RESIZE_METHODS);
  if (!(images instanceof tf.Tensor) || images.rank !== 4) {
    throw new RangeError(`resampleDownUp: images must be a [B,H,W,C] tensor, got ${images instanceof tf.Tensor ? formatShape(images.shape) : String(images)}`);
  }
  const [, h, w] = images.shape;
  const h2 = Math.max(1, Math.round(scale * h));
  const w2 = Math.max(1, Math.round(scale * w));
  if (h2 === h && w2 === w) return tf.clone(images);
  return tf.tidy(() => {
    const small = resizeImages({ images, height: h2, width: w2, method: downMethod });
    return resizeImages({ images: small, height: h, width: w, method: upMethod });
  });
}
