/**
 * An expert's outputs on a whole image set held as one flat array: per image its pooled features and
 * its logits, computed in inference mode in batches. Evaluation (generation accuracy, FD/KID on the
 * expert's features), the autoencoder's fidelity check and validation grids all score image sets
 * this way.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Expert } from './expert-model';
import { toExpertInput } from './expert-input';
import { assertInt, assertObject, show } from './validate';

/** Parameters of {@link expertOutputs}. */
export interface ExpertOutputsParams {
  /** The expert (any {@link Expert}); it is run in inference mode. */
  expert: Expert;
  /** Images [n, size, size, channels], row-major, in `dataRange`. */
  images: Float32Array;
  /** Number of images. */
  n: number;
  /** Height and width of the images (resized to the expert's input size when different). */
  size: number;
  /** Channels of the images: the expert's, or 1 (repeated to the expert's). */
  channels: number;
  /** Images per forward pass; default 64. */
  batchSize?: number;
  /** Value range of `images`, mapped linearly onto the expert's input range; default [0, 1]. */
  dataRange?: readonly [number, number];
}

/** Per image, in order: pooled features (length `featureDim`) and logits (length `numClasses`). */
export interface ExpertOutputs {
  features: number[][];
  logits: number[][];
}

/** Features and logits of every image, in batches; leaves no tensors behind. */
export function expertOutputs(params: ExpertOutputsParams): ExpertOutputs {
  const fn = 'expertOutputs';
  assertObject(fn, 'params', params);
  const { expert, images, n, size, channels, batchSize = 64, dataRange = [0, 1] } = params;
  if (!expert || typeof (expert as Expert).forward !== 'function' || typeof (expert as Expert).inputSpec !== 'object') throw new TypeError(`${fn}: expert must be an expert model, got ${show(expert)}`);
  if (!(images instanceof Float32Array)) throw new TypeError(`${fn}: images must be a Float32Array, got ${show(images)}`);
  assertInt(fn, 'n', n, 0);
  assertInt(fn, 'size', size, 1);
  assertInt(fn, 'channels', channels, 1);
  assertInt(fn, 'batchSize', batchSize, 1);
  const per = size * size * channels;
  if (images.length !== n * per) throw new RangeError(`${fn}: images holds ${images.length} values; ${n} images of ${size}x${size}x${channels} need ${n * per}`);
  const features: number[][] = [];
  const logits: number[][] = [];
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    const [f, l] = tf.tidy(() => {
      const x = tf.tensor4d(images.subarray(s * per, (s + m) * per), [m, size, size, channels]);
      const r = expert.forward(toExpertInput({ images: x, inputSpec: expert.inputSpec, dataRange }));
      return [r.features, r.logits];
    });
    const fd = f.dataSync();
    const ld = l.dataSync();
    const D = f.shape[1];
    const K = l.shape[1];
    for (let i = 0; i < m; i++) {
      features.push(Array.from(fd.subarray(i * D, (i + 1) * D)));
      logits.push(Array.from(ld.subarray(i * K, (i + 1) * K)));
    }
    tf.dispose([f, l]);
  }
  return { features, logits };
}

/** Index of the largest value (the first on ties); -1 for an empty row. */
export function argMax(row: ArrayLike<number>): number {
  if (row.length === 0) return -1;
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}
