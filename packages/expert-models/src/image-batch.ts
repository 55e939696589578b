/**
 * Image and label inputs (internal helpers): images are `[N,H,W,C]` float tensors or flat
 * row-major arrays with their shape; labels are integer class indices `[N]`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, show } from './validate';

/** A batch of images `[N,H,W,C]`: a tensor, or a flat row-major array with its shape. */
export type ImageSetInput = tf.Tensor4D | { readonly data: ArrayLike<number>; readonly shape: readonly number[] };

/** Integer class labels `[N]`: a tensor, typed array or plain array. */
export type LabelSetInput = tf.Tensor | ArrayLike<number>;

/** Images read into one Float32Array. */
export interface ImageSet {
  readonly data: Float32Array;
  readonly shape: [number, number, number, number];
}

/** Reads images into a Float32Array (copies unless already a Float32Array of the right length). */
export function readImageSet(fn: string, field: string, input: ImageSetInput): ImageSet {
  let data: ArrayLike<number>;
  let shape: readonly number[];
  if (input instanceof tf.Tensor) {
    shape = input.shape;
    if (input.rank !== 4) throw new RangeError(`${fn}: ${field} must have shape [N,H,W,C], got ${formatShape(shape)}`);
    data = input.dataSync() as Float32Array;
  } else if (typeof input === 'object' && input !== null && 'data' in input && 'shape' in input) {
    ({ data, shape } = input);
    if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new RangeError(`${fn}: ${field}.shape must be [N,H,W,C] (non-negative integers), got ${show(shape)}`);
    }
  } else {
    throw new TypeError(`${fn}: ${field} must be a [N,H,W,C] tensor or {data, shape}, got ${show(input)}`);
  }
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new RangeError(`${fn}: ${field}.data has ${data.length} values, shape ${formatShape(shape)} needs ${n}`);
  const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
  for (let i = 0; i < f32.length; i++) {
    if (!Number.isFinite(f32[i])) throw new RangeError(`${fn}: ${field} has a non-finite value (${f32[i]}) at flat index ${i}`);
  }
  return { data: f32, shape: [shape[0], shape[1], shape[2], shape[3]] };
}

/** Reads labels, checking count, integrality and range [0, numClasses). */
export function readLabelSet(fn: string, field: string, input: LabelSetInput, count: number, numClasses: number): Int32Array {
  let data: ArrayLike<number>;
  if (input instanceof tf.Tensor) {
    if (input.rank !== 1) throw new RangeError(`${fn}: ${field} must be integer labels [N], got shape ${formatShape(input.shape)}`);
    data = input.dataSync();
  } else if (input !== null && typeof input === 'object' && typeof (input as ArrayLike<number>).length === 'number') {
    data = input;
  } else {
    throw new TypeError(`${fn}: ${field} must be integer labels [N] (tensor, typed array or array), got ${show(input)}`);
  }
  if (data.length !== count) throw new RangeError(`${fn}: ${field} has ${data.length} labels, expected ${count} (one per image)`);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const v = data[i];
    if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
      throw new RangeError(`${fn}: ${field}[${i}] must be an integer class index in [0, ${numClasses - 1}], got ${show(v)}`);
    }
    out[i] = v;
  }
  return out;
}

/** The images at `indices` as a new tensor [indices.length, H, W, C]. */
export function gatherImages(set: ImageSet, indices: ArrayLike<number>): tf.Tensor4D {
  const [, h, w, c] = set.shape;
  const per = h * w * c;
  const out = new Float32Array(indices.length * per);
  for (let i = 0; i < indices.length; i++) out.set(set.data.subarray(indices[i] * per, (indices[i] + 1) * per), i * per);
  return tf.tensor4d(out, [indices.length, h, w, c]);
}

/** The labels at `indices`. */
export function gatherLabels(labels: Int32Array, indices: ArrayLike<number>): Int32Array {
  const out = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) out[i] = labels[indices[i]];
  return out;
}
