/**
 * Bringing a diffusion sampler's images to an expert: the sampler works in model space (the range
 * its U-Net was trained on, [-1, 1] by default), the expert expects `inputSpec.range` (e.g. [0, 1])
 * at `inputSpec.size` with `inputSpec.channels`. The map is linear and is not clipped, so noisy x_t
 * outside the range reaches the expert as it is, and the whole map is differentiable.
 *
 * The steps themselves are `adaptExpertInput` of `@fad/diffusion-core` (the one home of input
 * adaptation, shared with feature alignment and the CLI); this is the expert-guidance front end.
 */
import { adaptExpertInput } from '@fad/diffusion-core';
import * as tf from '@tensorflow/tfjs-core';
import type { InputSpec } from './expert-config';
import { formatShape, show } from './validate';

/** Parameters of {@link toExpertInput}. */
export interface ToExpertInputParams {
  /** Images [B,H,W,C] in `dataRange`. */
  images: tf.Tensor4D;
  /** The expert's input spec (size, channels, range). */
  inputSpec: Pick<InputSpec, 'size' | 'channels' | 'range'>;
  /** Range of `images` mapped linearly onto `inputSpec.range`; default [-1, 1]. */
  dataRange?: readonly [number, number];
}

/** Checks a `[low, high]` range with high > low. Internal. */
export function checkRange(fn: string, field: string, range: unknown): asserts range is readonly [number, number] {
  if (!Array.isArray(range) || range.length !== 2 || !range.every((v) => typeof v === 'number' && Number.isFinite(v)) || !(range[1] > range[0])) {
    throw new RangeError(`${fn}: ${field} must be [low, high] with finite low < high, got ${show(range)}`);
  }
}

/**
 * Linear range map, then bilinear resize to the expert's size (if different; half-pixel centres)
 * and channel repetition from 1 to the expert's channel count (`adaptExpertInput` without
 * normalisation). Returns a new tensor; differentiable.
 */
export function toExpertInput(params: ToExpertInputParams): tf.Tensor4D {
  const fn = 'toExpertInput';
  if (typeof params !== 'object' || params === null) throw new TypeError(`${fn}: params must be an object, got ${show(params)}`);
  const { images, inputSpec } = params;
  const dataRange = params.dataRange ?? [-1, 1];
  if (!(images instanceof tf.Tensor) || images.rank !== 4) throw new TypeError(`${fn}: images must be a [B,H,W,C] tensor, got ${images instanceof tf.Tensor ? formatShape(images.shape) : show(images)}`);
  checkRange(fn, 'dataRange', dataRange);
  checkRange(fn, 'inputSpec.range', inputSpec?.range);
  const c = images.shape[3];
  if (c !== inputSpec.channels && c !== 1) throw new RangeError(`${fn}: images have ${c} channels; the expert expects ${inputSpec.channels} (only 1 -> N is repeated)`);
  const size: [number, number] = [inputSpec.size, inputSpec.size];
  return adaptExpertInput({ images, adaptation: { dataRange, range: inputSpec.range, size, channels: inputSpec.channels, mean: null, std: null } });
}
