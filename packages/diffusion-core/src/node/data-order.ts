/**
 * The data order of a resumable training run (Node only: part of `@fad/diffusion-core/node`):
 * epoch-wise permutations of the training indices and the flip coins, drawn from one seeded
 * `Generator` whose state a checkpoint stores, so that a resumed run sees the same batches as an
 * uninterrupted one. `makeBatch` turns drawn indices into a tensor in [-1, 1] with the flips.
 */
import * as tf from '@tensorflow/tfjs-core';
import { flipImages, Generator, type GeneratorState } from '@fad/diffusion-core';

/** What a checkpoint stores of a {@link DataOrder} (the `data` field of its state). */
export interface DataOrderState {
  gen: { s: GeneratorState; spare: number | null };
  perm: number[];
  cursor: number;
}

/** Parameters of {@link DataOrder}. */
export interface DataOrderParams {
  /** The training indices (rows of the image array) to draw from: integers >= 0 (`next` needs at least one). */
  indices: readonly number[];
  /** Seed of the order and the flip coins (an integer in [0, 2^32-1]). */
  seed: number;
}

/** Draws the next batch of indices (epoch-wise permutations of the training indices) and flip coins. */
export class DataOrder {
  private readonly indices: number[];
  private readonly gen: Generator;
  private perm: number[] = [];
  private cursor = 0;
  constructor(params: DataOrderParams) {
    if (params === null || typeof params !== 'object') throw new TypeError(`DataOrder: expected one params object { indices, seed }, got ${String(params)}`);
    const { indices, seed } = params;
    if (!Array.isArray(indices) || !indices.every((k) => Number.isInteger(k) && k >= 0)) {
      throw new RangeError(`DataOrder: indices must be an array of integers >= 0, got ${Array.isArray(indices) ? 'other values' : String(indices)}`);
    }
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`DataOrder: seed must be an integer in [0, 2^32-1], got ${String(seed)}`);
    this.indices = indices.slice();
    this.gen = new Generator(seed);
  }
  /** The next `batch` indices: the rest of the current permutation, then a new one. */
  next(batch: number): number[] {
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`DataOrder.next: batch must be an integer >= 1, got ${String(batch)}`);
    if (this.indices.length === 0) throw new RangeError('DataOrder.next: there are no indices to draw from (params.indices was empty)');
    const out: number[] = [];
    while (out.length < batch) {
      if (this.cursor >= this.perm.length) {
        this.perm = this.gen.permutation(this.indices.length).map((i) => this.indices[i]);
        this.cursor = 0;
      }
      out.push(this.perm[this.cursor++]);
    }
    return out;
  }
  /** A fair coin from the same stream (the flips). */
  coin(): boolean {
    return this.gen.nextFloat() < 0.5;
  }
  getState(): DataOrderState {
    return { gen: this.gen.getState(), perm: this.perm.slice(), cursor: this.cursor };
  }
  /** Restores a state of `getState`; the permutation must hold training indices only. */
  setState(s: DataOrderState): void {
    const train = new Set(this.indices);
    if (!s || !Array.isArray(s.perm) || s.perm.some((k) => !train.has(k))) throw new RangeError('DataOrder.setState: state.perm holds indices that are not training images');
    if (!Number.isInteger(s.cursor) || s.cursor < 0 || s.cursor > s.perm.length) throw new RangeError(`DataOrder.setState: state.cursor must be an integer in 0..${s.perm.length}, got ${String(s.cursor)}`);
    this.gen.setState(s.gen);
    this.perm = s.perm.slice();
    this.cursor = s.cursor;
  }
}

/** Parameters of {@link makeBatch}. */
export interface MakeBatchParams {
  /** [N, S, S, C] in [0, 1], row-major. */
  images: Float32Array;
  imageSize: number;
  channels: number;
  /** Rows of `images` to put in the batch (from `order.next`). */
  indices: readonly number[];
  /** Draws the flip coins. */
  order: DataOrder;
  /** Flip each image left-right with probability 1/2. */
  hflip?: boolean;
  /** Flip each image upside down with probability 1/2. */
  vflip?: boolean;
}

/**
 * A batch as a tensor [B, S, S, C] in [-1, 1] with optional random flips (`flipImages`, chosen per
 * image by a mask). The coins are drawn per image in order, horizontal then vertical, only for the
 * flips that are on, so the data order of a run (and its resume) does not depend on the pixels.
 */
export function makeBatch(params: MakeBatchParams): tf.Tensor4D {
  if (params === null || typeof params !== 'object') throw new TypeError(`makeBatch: expected one params object, got ${String(params)}`);
  const { images, imageSize: s, channels: c, indices: idx, order } = params;
  if (!(images instanceof Float32Array)) throw new TypeError('makeBatch: images must be a Float32Array [N, S, S, C]');
  if (!Number.isInteger(s) || s < 1) throw new RangeError(`makeBatch: imageSize must be an integer >= 1, got ${String(s)}`);
  if (!Number.isInteger(c) || c < 1) throw new RangeError(`makeBatch: channels must be an integer >= 1, got ${String(c)}`);
  const per = s * s * c;
  const n = images.length / per;
  if (!Number.isInteger(n)) throw new RangeError(`makeBatch: images.length ${images.length} is not a multiple of imageSize*imageSize*channels (${per})`);
  if (!Array.isArray(idx) || idx.length === 0 || !idx.every((k) => Number.isInteger(k) && k >= 0 && k < n)) throw new RangeError(`makeBatch: indices must be a non-empty array of rows in 0..${n - 1}`);
  if (!(order instanceof DataOrder)) throw new TypeError('makeBatch: order must be a DataOrder');
  const out = new Float32Array(idx.length * per);
  const flips = idx.map((k, b) => {
    const src = images.subarray(k * per, (k + 1) * per);
    for (let i = 0; i < per; i++) out[b * per + i] = src[i] * 2 - 1;
    const horizontal = Boolean(params.hflip) && order.coin();
    const vertical = Boolean(params.vflip) && order.coin();
    return { horizontal, vertical };
  });
  return tf.tidy(() => {
    let x = tf.tensor4d(out, [idx.length, s, s, c]);
    for (const direction of ['horizontal', 'vertical'] as const) {
      if (flips.some((f) => f[direction])) x = flipImages({ images: x, direction, which: flips.map((f) => f[direction]) });
    }
    return x;
  });
}
