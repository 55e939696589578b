import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { useCpuBackend } from '../testing/setup-cpu';
import { DataOrder, makeBatch } from './data-order';

beforeAll(useCpuBackend);

/** The batch as makeBatch built it before the flips became `flipImages` calls: a JS loop per image. */
function referenceBatch(images: Float32Array, s: number, c: number, idx: number[], order: DataOrder, hflip: boolean, vflip: boolean): Float32Array {
  const per = s * s * c;
  const out = new Float32Array(idx.length * per);
  idx.forEach((k, b) => {
    const src = images.subarray(k * per, (k + 1) * per);
    const fh = hflip && order.coin();
    const fv = vflip && order.coin();
    for (let y = 0; y < s; y++) {
      const sy = fv ? s - 1 - y : y;
      for (let x = 0; x < s; x++) {
        const sx = fh ? s - 1 - x : x;
        for (let ch = 0; ch < c; ch++) out[b * per + (y * s + x) * c + ch] = src[(sy * s + sx) * c + ch] * 2 - 1;
      }
    }
  });
  return out;
}

describe('DataOrder', () => {
  it('draws epoch-wise permutations of the indices from Generator(seed), as the fad CLI always has', () => {
    const indices = [3, 5, 7, 9, 11];
    const order = new DataOrder({ indices, seed: 42 });
    // Independent reference: the generator's permutations mapped to the indices, one epoch after another.
    const gen = new Generator(42);
    const expected = [...gen.permutation(5), ...gen.permutation(5)].map((i) => indices[i]);
    expect([...order.next(3), ...order.next(3), ...order.next(4)]).toEqual(expected);
    expect(new Set(expected.slice(0, 5))).toEqual(new Set(indices));
  });

  it('continues identically from getState/setState (what a resumed run relies on)', () => {
    const a = new DataOrder({ indices: [0, 1, 2, 3, 4, 5, 6], seed: 9 });
    a.next(4);
    a.coin();
    const saved = JSON.parse(JSON.stringify(a.getState()));
    const b = new DataOrder({ indices: [0, 1, 2, 3, 4, 5, 6], seed: 1 });
    b.setState(saved);
    for (let i = 0; i < 5; i++) {
      expect(b.next(3)).toEqual(a.next(3));
      expect(b.coin()).toBe(a.coin());
    }
  });

  it('validates its params and state, naming the field', () => {
    expect(() => new DataOrder(null as never)).toThrow(/DataOrder: expected one params object/);
    expect(() => new DataOrder({ indices: [0, -1], seed: 1 })).toThrow(/DataOrder: indices must be an array of integers >= 0/);
    expect(() => new DataOrder({ indices: [0], seed: 1.5 })).toThrow(/DataOrder: seed must be an integer/);
    expect(() => new DataOrder({ indices: [], seed: 1 }).next(1)).toThrow(/no indices to draw from/);
    expect(() => new DataOrder({ indices: [0], seed: 1 }).next(0)).toThrow(/batch must be an integer >= 1/);
    const o = new DataOrder({ indices: [0, 1], seed: 1 });
    expect(() => o.setState({ ...o.getState(), perm: [0, 5] })).toThrow(/state.perm holds indices that are not training images/);
  });
});

describe('makeBatch', () => {
  const s = 5;
  const c = 3;
  const n = 6;
  const images = Float32Array.from({ length: n * s * s * c }, (_, i) => ((i * 7919) % 1000) / 999);

  for (const [hflip, vflip] of [[true, true], [true, false], [false, true], [false, false]] as const) {
    it(`maps to [-1, 1] and flips per image exactly as before, drawing the same coins (hflip ${hflip}, vflip ${vflip})`, () => {
      const order = new DataOrder({ indices: [0, 1, 2, 3, 4, 5], seed: 11 });
      const ref = new DataOrder({ indices: [0, 1, 2, 3, 4, 5], seed: 11 });
      for (let step = 0; step < 4; step++) {
        const idx = order.next(4);
        expect(ref.next(4)).toEqual(idx);
        const before = tf.memory().numTensors;
        const batch = makeBatch({ images, imageSize: s, channels: c, indices: idx, order, hflip, vflip });
        expect(tf.memory().numTensors - before).toBe(1);
        expect(batch.shape).toEqual([4, s, s, c]);
        expect(Array.from(batch.dataSync())).toEqual(Array.from(referenceBatch(images, s, c, idx, ref, hflip, vflip)));
        expect(order.getState()).toEqual(ref.getState());
        batch.dispose();
      }
    });
  }

  it('validates its params, naming the field', () => {
    const order = new DataOrder({ indices: [0], seed: 1 });
    expect(() => makeBatch({ images: [] as never, imageSize: s, channels: c, indices: [0], order })).toThrow(/makeBatch: images must be a Float32Array/);
    expect(() => makeBatch({ images, imageSize: 4, channels: c, indices: [0], order })).toThrow(/makeBatch: images.length 450 is not a multiple/);
    expect(() => makeBatch({ images, imageSize: s, channels: c, indices: [6], order })).toThrow(/makeBatch: indices must be a non-empty array of rows in 0..5/);
    expect(() => makeBatch({ images, imageSize: s, channels: c, indices: [0], order: {} as never })).toThrow(/makeBatch: order must be a DataOrder/);
  });
});
