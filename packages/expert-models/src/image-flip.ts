/** Mirror flips and quarter turns of NHWC image batches. */
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, assertOneOf, formatShape } from './validate';

/** Parameters of {@link flipImages}. */
export interface FlipImagesParams {
  /** Images [B,H,W,C]. */
  images: tf.Tensor4D;
  /** `'horizontal'`: mirror left-right (reverse the width axis); `'vertical'`: top-bottom. */
  direction: 'horizontal' | 'vertical';
}

function checkBatch(fn: string, images: tf.Tensor): void {
  if (!(images instanceof tf.Tensor) || images.rank !== 4) {
    throw new RangeError(`${fn}: images must be a [B,H,W,C] tensor, got ${images instanceof tf.Tensor ? formatShape(images.shape) : String(images)}`);
  }
}

/** Mirrors every image: `out[b, y, x] = in[b, y, W-1-x]` (horizontal) or `in[b, H-1-y, x]` (vertical). */
export function flipImages(params: FlipImagesParams): tf.Tensor4D {
  const { images, direction } = params;
  checkBatch('flipImages', images);
  assertOneOf('flipImages', 'direction', direction, ['horizontal', 'vertical'] as const);
  return tf.reverse(images, direction === 'horizontal' ? 2 : 1);
}

/** Parameters of {@link rotate90}. */
export interface Rotate90Params {
  /** Images [B,H,W,C]. */
  images: tf.Tensor4D;
  /** Number of clockwise quarter turns, 0..3. */
  turns: number;
}

/** Rotates every image clockwise by `turns` x 90 degrees (`out[y, x] = in[H-1-x, y]` per turn). */
export function rotate90(params: Rotate90Params): tf.Tensor4D {
  const { images, turns } = params;
  checkBatch('rotate90', images);
  assertInt('rotate90', 'turns', turns, 0, 3);
  return tf.tidy(() => {
    let x = images;
    for (let t = 0; t < turns; t++) x = tf.reverse(tf.transpose(x, [0, 2, 1, 3]), 2);
    return turns === 0 ? tf.clone(x) : x;
  });
}
