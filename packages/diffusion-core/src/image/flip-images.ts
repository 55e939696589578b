/**
 * Mirror flips and quarter turns of NHWC image batches: the one home of flips in fad (the expert's
 * augmentation in `@fad/expert-models` and the CLI's diffusion training batches both use these).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkChoice, checkImageBatch, checkInteger, checkParamsObject, fail, valueText } from './image-checks';

/** Parameters of {@link flipImages}. */
export interface FlipImagesParams {
  /** Images [B,H,W,C]. */
  images: tf.Tensor4D;
  /** `'horizontal'`: mirror left-right (reverse the width axis); `'vertical'`: top-bottom. */
  direction: 'horizontal' | 'vertical';
  /**
   * Which images to flip, one boolean per image (default all): image b is flipped where
   * `which[b]` is true and copied as it is otherwise (per-image random flips of a batch).
   */
  which?: readonly boolean[];
}

/** Mirrors every image (or those `which` names): `out[b, y, x] = in[b, y, W-1-x]` (horizontal) or `in[b, H-1-y, x]` (vertical). */
export function flipImages(params: FlipImagesParams): tf.Tensor4D {
  checkParamsObject('flipImages', params);
  const { images, direction, which } = params;
  checkImageBatch('flipImages', images);
  checkChoice('flipImages', 'direction', direction, ['horizontal', 'vertical'] as const);
  const axis = direction === 'horizontal' ? 2 : 1;
  if (which === undefined) return tf.reverse(images, axis);
  if (!Array.isArray(which) || which.length !== images.shape[0] || !which.every((w) => typeof w === 'boolean')) {
    fail('flipImages', `which must be an array of ${images.shape[0]} booleans (one per image), got ${valueText(which)}`, RangeError);
  }
  if (!which.some(Boolean)) return tf.clone(images);
  return tf.tidy(() => tf.where(tf.tensor4d(which.map((w) => (w ? 1 : 0)), [which.length, 1, 1, 1], 'bool'), tf.reverse(images, axis), images));
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
  checkParamsObject('rotate90', params);
  const { images, turns } = params;
  checkImageBatch('rotate90', images);
  checkInteger('rotate90', 'turns', turns, 0, 3);
  return tf.tidy(() => {
    let x = images;
    for (let t = 0; t < turns; t++) x = tf.reverse(tf.transpose(x, [0, 2, 1, 3]), 2);
    return turns === 0 ? tf.clone(x) : x;
  });
}
