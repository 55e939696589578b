import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { areaMatrix, resampleDownUp, resizeImageData, resizeImages } from './resize-images';
import { leakedTensors, useCpuBackend } from '../testing/setup-cpu';

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

beforeAll(useCpuBackend);

describe('areaMatrix', () => {
  it('weights input pixels by overlap; rows sum to 1', () => {
    // 3 -> 2: output 0 covers [0, 1.5): pixel 0 fully, pixel 1 half -> [2/3, 1/3, 0].
    const m = Array.from(areaMatrix(3, 2));
    [2 / 3, 1 / 3, 0, 0, 1 / 3, 2 / 3].forEach((e, i) => expect(m[i]).toBeCloseTo(e, 6));
    const m2 = areaMatrix(7, 3);
    for (let r = 0; r < 3; r++) expect(m2.slice(r * 7, r * 7 + 7).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });
});

describe('resizeImages', () => {
  it("'area' by an integer factor is average pooling", () => {
    const x = tf.randomUniform([2, 8, 6, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const y = resizeImages({ images: x, height: 4, width: 3, method: 'area' });
    expect(y.shape).toEqual([2, 4, 3, 3]);
    expect(maxAbsDiff(y.dataSync(), tf.avgPool(x, 2, 2, 'valid').dataSync())).toBeLessThan(1e-6);
  });

  it("'area' matches a hand case with fractional overlaps", () => {
    // Row [0, 3, 6] -> 2 pixels: [2/3*0 + 1/3*3, 1/3*3 + 2/3*6] = [1, 5].
    const y = resizeImages({ images: tf.tensor4d([0, 3, 6], [1, 1, 3, 1]), height: 1, width: 2, method: 'area' });
    expect(Array.from(y.dataSync()).map((v) => +v.toFixed(5))).toEqual([1, 5]);
  });

  it("'bilinear' and 'nearest' use half-pixel centres", () => {
    // 2 -> 4 bilinear, half-pixel: positions -0.25, 0.25, 0.75, 1.25 clamped -> [0, 0.25, 0.75, 1] of [0, 1].
    const y = resizeImages({ images: tf.tensor4d([0, 1], [1, 1, 2, 1]), height: 1, width: 4, method: 'bilinear' });
    expect(Array.from(y.dataSync())).toEqual([0, 0.25, 0.75, 1]);
    const n = resizeImages({ images: tf.tensor4d([0, 1, 2, 3], [1, 1, 4, 1]), height: 1, width: 2, method: 'nearest' });
    expect(Array.from(n.dataSync())).toEqual([1, 3]);
    expect(() => resizeImages({ images: tf.zeros([1, 2, 2, 1]) as tf.Tensor4D, height: 0, width: 2, method: 'area' })).toThrow(/height must be an integer >= 1, got 0/);
    expect(() => resizeImages({ images: tf.zeros([1, 2, 2, 1]) as tf.Tensor4D, height: 2, width: 2, method: 'cubic' as never })).toThrow(/method must be one of "bilinear", "area", "nearest", got "cubic"/);
  });
});

describe('resampleDownUp', () => {
  it('keeps the size, is the identity at scale 1, keeps constants, loses detail otherwise', () => {
    const x = tf.randomUniform([1, 16, 16, 1], 0, 1, 'float32', 2) as tf.Tensor4D;
    expect(maxAbsDiff(resampleDownUp({ images: x, scale: 1, downMethod: 'area' }).dataSync(), x.dataSync())).toBe(0);
    for (const downMethod of ['bilinear', 'area', 'nearest'] as const) {
      const y = resampleDownUp({ images: x, scale: 0.5, downMethod });
      expect(y.shape).toEqual([1, 16, 16, 1]);
      expect(maxAbsDiff(y.dataSync(), x.dataSync())).toBeGreaterThan(0.05);
      const c = tf.fill([1, 16, 16, 1], 0.4) as tf.Tensor4D;
      expect(maxAbsDiff(resampleDownUp({ images: c, scale: 0.37, downMethod }).dataSync(), c.dataSync())).toBeLessThan(1e-6);
    }
    expect(leakedTensors(() => resampleDownUp({ images: x, scale: 0.6, downMethod: 'area' }).dispose())).toBe(0);
    expect(() => resampleDownUp({ images: x, scale: 1.5, downMethod: 'area' })).toThrow(/scale must be a finite number > 0 and <= 1, got 1.5/);
  });
});

/** Deterministic values in [0, 1) (an LCG, independent of the code under test). */
function lcgImage(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s >>> 8) / 16777216;
  }
  return a;
}

/** FNV-1a over the float32 bit patterns: equal hashes mean bit-identical outputs. */
function bitsHash(f: Float32Array): string {
  let h = 0x811c9dc5;
  for (const x of new Uint32Array(f.buffer, f.byteOffset, f.length)) {
    for (let k = 0; k < 4; k++) h = Math.imul(h ^ ((x >>> (8 * k)) & 255), 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

describe('resizeImageData', () => {
  const run = (h: number, w: number, c: number, outHeight: number, outWidth: number, method: 'area' | 'bilinear') =>
    resizeImageData({ pixels: lcgImage(h * w * c, h * 1000 + w), height: h, width: w, channels: c, outHeight, outWidth, method });

  it('matches hand cases: fractional area overlaps, half-pixel bilinear, a copy at the same size', () => {
    // Row [0, 3, 6] -> 2 pixels: [2/3*0 + 1/3*3, 1/3*3 + 2/3*6] = [1, 5].
    expect(Array.from(resizeImageData({ pixels: Float32Array.from([0, 3, 6]), height: 1, width: 3, channels: 1, outHeight: 1, outWidth: 2, method: 'area' }))).toEqual([1, 5]);
    // 4x4 -> 2x2 area is 2x2 average pooling; channels stay apart.
    const px = Float32Array.from({ length: 32 }, (_, i) => (i % 2 === 0 ? i : -i));
    const pooled = resizeImageData({ pixels: px, height: 4, width: 4, channels: 2, outHeight: 2, outWidth: 2, method: 'area' });
    const ref = [0, 1].flatMap((oy) => [0, 1].flatMap((ox) => [0, 1].map((k) => [0, 1].flatMap((dy) => [0, 1].map((dx) => px[((2 * oy + dy) * 4 + 2 * ox + dx) * 2 + k])).reduce((a, b) => a + b) / 4)));
    expect(Array.from(pooled)).toEqual(ref);
    // 2 -> 4 bilinear, half-pixel: positions -0.25, 0.25, 0.75, 1.25 clamped -> [0, 0.25, 0.75, 1] of [0, 1].
    expect(Array.from(resizeImageData({ pixels: Float32Array.from([0, 1]), height: 1, width: 2, channels: 1, outHeight: 1, outWidth: 4, method: 'bilinear' }))).toEqual([0, 0.25, 0.75, 1]);
    const same = Float32Array.from([1, 2, 3, 4]);
    const copy = resizeImageData({ pixels: same, height: 2, width: 2, channels: 1, outHeight: 2, outWidth: 2, method: 'area' });
    expect(copy).not.toBe(same);
    expect(Array.from(copy)).toEqual([1, 2, 3, 4]);
  });

  it('is bit-identical to the loader it came from (float64 weights and sums; hashes of the pre-move CLI resizeImage)', () => {
    // Hashes computed with `resizeImage` of packages/cli/src/data.ts before it moved here, on the same inputs.
    expect(bitsHash(run(150, 150, 1, 64, 64, 'area'))).toBe('4ae55b70');
    expect(bitsHash(run(150, 150, 1, 64, 64, 'bilinear'))).toBe('3a7f3792');
    expect(bitsHash(run(7, 5, 3, 3, 4, 'area'))).toBe('08863a5d');
    expect(bitsHash(run(7, 5, 3, 3, 4, 'bilinear'))).toBe('eeb078d2');
    // 2 -> 98 has overlaps of 1.1e-16 that the loader drops (and areaMatrix keeps).
    expect(bitsHash(run(2, 2, 1, 98, 98, 'area'))).toBe('2fa4d76f');
    expect(bitsHash(run(224, 224, 3, 100, 100, 'area'))).toBe('47d23a60');
    expect(bitsHash(run(10, 10, 1, 23, 23, 'bilinear'))).toBe('e294ced9');
  });

  it('agrees with the tensor form resizeImages to float32 precision', () => {
    for (const method of ['area', 'bilinear'] as const) {
      const px = lcgImage(9 * 7 * 2, 5);
      const js = resizeImageData({ pixels: px, height: 9, width: 7, channels: 2, outHeight: 4, outWidth: 5, method });
      const t = tf.tensor4d(px, [1, 9, 7, 2]);
      const y = resizeImages({ images: t, height: 4, width: 5, method });
      expect(maxAbsDiff(js, y.dataSync())).toBeLessThan(1e-6);
      tf.dispose([t, y]);
    }
  });

  it('rejects bad arguments, naming the field', () => {
    const base = { pixels: new Float32Array(4), height: 2, width: 2, channels: 1, outHeight: 1, outWidth: 1, method: 'area' as const };
    expect(() => resizeImageData({ ...base, outHeight: 0 })).toThrow('resizeImageData: outHeight must be an integer >= 1, got 0');
    expect(() => resizeImageData({ ...base, method: 'nearest' as never })).toThrow('resizeImageData: method must be one of "area", "bilinear", got "nearest"');
    expect(() => resizeImageData({ ...base, pixels: new Float32Array(3) })).toThrow('resizeImageData: pixels must be a Float32Array of height*width*channels = 4 values, got 3 values');
    expect(() => resizeImageData(null as never)).toThrow('resizeImageData: expected one params object, got null');
  });
});
