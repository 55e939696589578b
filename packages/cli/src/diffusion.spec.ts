import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from './config';
import { DataOrder, makeBatch } from './diffusion';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

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

describe('makeBatch', () => {
  const s = 5;
  const c = 3;
  const n = 6;
  const images = Float32Array.from({ length: n * s * s * c }, (_, i) => ((i * 7919) % 1000) / 999);
  const data = { images, imageSize: s, channels: c };

  for (const [hflip, vflip] of [[true, true], [true, false], [false, true], [false, false]] as const) {
    it(`maps to [-1, 1] and flips per image exactly as before, drawing the same coins (hflip ${hflip}, vflip ${vflip})`, () => {
      const d = parseConfig({ data: { hflip, vflip } }).data;
      const order = new DataOrder([0, 1, 2, 3, 4, 5], 11);
      const ref = new DataOrder([0, 1, 2, 3, 4, 5], 11);
      for (let step = 0; step < 4; step++) {
        const idx = order.next(4);
        expect(ref.next(4)).toEqual(idx);
        const before = tf.memory().numTensors;
        const batch = makeBatch(data, idx, order, d);
        expect(tf.memory().numTensors - before).toBe(1);
        expect(batch.shape).toEqual([4, s, s, c]);
        expect(Array.from(batch.dataSync())).toEqual(Array.from(referenceBatch(images, s, c, idx, ref, hflip, vflip)));
        expect(order.getState()).toEqual(ref.getState());
        batch.dispose();
      }
    });
  }
});
