import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { kernelInceptionDistance, mmd2Unbiased } from './kernel-inception-distance';
import { createSeededRandom, sampleWithoutReplacement } from './seeded-random';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function gaussianRows(n: number, d: number, seed: number, shift = 0): number[][] {
  const r = createSeededRandom(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - r.nextFloat())) * Math.cos(2 * Math.PI * r.nextFloat());
  return Array.from({ length: n }, () => Array.from({ length: d }, (_, j) => normal() + (j === 0 ? shift : 0)));
}

/** Direct double loops over the definition. */
function directMmd2(x: number[][], y: number[][]): number {
  const d = x[0].length;
  const k = (a: number[], b: number[]) => (a.reduce((s, v, i) => s + v * b[i], 0) / d + 1) ** 3;
  const m = x.length;
  const n = y.length;
  let kxx = 0;
  let kyy = 0;
  let kxy = 0;
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) if (i !== j) kxx += k(x[i], x[j]);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) kyy += k(y[i], y[j]);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) kxy += k(x[i], y[j]);
  return kxx / (m * (m - 1)) + kyy / (n * (n - 1)) - (2 * kxy) / (m * n);
}

describe('mmd2Unbiased', () => {
  it('matches a direct double loop on tiny data (unequal set sizes, ragged 4x4 tiles)', () => {
    const x = gaussianRows(7, 5, 1);
    const y = gaussianRows(10, 5, 2, 0.8);
    expect(mmd2Unbiased({ features1: x, features2: y })).toBeCloseTo(directMmd2(x, y), 12);
    // Hand case, D = 1: x = {0, 1}, y = {2}... needs two rows each: y = {2, -1}.
    // k(a,b) = (ab + 1)^3: kxx = 2 k(0,1) = 2; kyy = 2 k(2,-1) = 2 (-1)^3 = -2;
    // kxy = k(0,2) + k(0,-1) + k(1,2) + k(1,-1) = 1 + 1 + 27 + 0 = 29; MMD^2 = 2/2 + -2/2 - 2*29/4 = -14.5
    expect(mmd2Unbiased({ features1: [[0], [1]], features2: [[2], [-1]] })).toBeCloseTo(-14.5, 13);
  });
});

describe('kernelInceptionDistance', () => {
  it('averages direct MMD^2 over the documented seeded subsets (with and without the kernel cache)', () => {
    const x = gaussianRows(30, 6, 3);
    const y = gaussianRows(25, 6, 4, 0.5);
    const seed = 11;
    const r = createSeededRandom(seed);
    const expected: number[] = [];
    for (let s = 0; s < 4; s++) {
      const ix = sampleWithoutReplacement({ n: 30, k: 12, random: r });
      const iy = sampleWithoutReplacement({ n: 25, k: 12, random: r });
      expected.push(directMmd2(ix.map((i) => x[i]), iy.map((i) => y[i])));
    }
    const mean = expected.reduce((a, b) => a + b, 0) / 4;
    const std = Math.sqrt(expected.reduce((a, v) => a + (v - mean) ** 2, 0) / 4);
    for (const cacheKernel of [true, false]) {
      const kid = kernelInceptionDistance({ features1: x, features2: y, numSubsets: 4, subsetSize: 12, seed, cacheKernel });
      expect(kid.values).toEqual(expected.map((v) => expect.closeTo(v, 12)));
      expect(kid.mean).toBeCloseTo(mean, 12);
      expect(kid.std).toBeCloseTo(std, 12);
      expect(kid.subsetSize).toBe(12);
    }
  });

  it('equals the whole-set MMD^2 when a subset is the whole set (subsetSize clamped), with std 0', () => {
    const x = gaussianRows(9, 4, 5);
    const y = gaussianRows(9, 4, 6, 1);
    const kid = kernelInceptionDistance({ features1: x, features2: y, numSubsets: 3, subsetSize: 1000 });
    expect(kid.subsetSize).toBe(9);
    expect(kid.mean).toBeCloseTo(directMmd2(x, y), 12);
    expect(kid.std).toBeLessThan(1e-12);
  });

  it('is ~0 for two samples of one distribution and clearly positive for shifted ones', () => {
    const d = 16;
    const a = gaussianRows(300, d, 7);
    const b = gaussianRows(300, d, 8);
    const c = gaussianRows(300, d, 9, 1.5);
    const same = kernelInceptionDistance({ features1: a, features2: b, numSubsets: 20, subsetSize: 100 });
    const diff = kernelInceptionDistance({ features1: a, features2: c, numSubsets: 20, subsetSize: 100 });
    expect(Math.abs(same.mean)).toBeLessThan(3 * same.std);
    expect(Math.abs(same.mean)).toBeLessThan(0.02);
    expect(diff.mean).toBeGreaterThan(10 * Math.max(Math.abs(same.mean), same.std));
    // Seeded: same seed, same values.
    expect(kernelInceptionDistance({ features1: a, features2: b, numSubsets: 20, subsetSize: 100 }).values).toEqual(same.values);
  });

  it('accepts tensors and leaks none', () => {
    const a = tf.tensor2d(gaussianRows(12, 3, 1));
    const b = tf.tensor2d(gaussianRows(10, 3, 2));
    const before = tf.memory().numTensors;
    kernelInceptionDistance({ features1: a, features2: b, numSubsets: 2, subsetSize: 5 });
    mmd2Unbiased({ features1: a, features2: b });
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b]);
  });

  it('rejects bad inputs naming the argument', () => {
    const x = gaussianRows(5, 3, 1);
    expect(() => kernelInceptionDistance({ features1: x, features2: gaussianRows(5, 4, 2) })).toThrow(/argument "features2" has shape \[5,4\], expected \[N2,3\]/);
    expect(() => kernelInceptionDistance({ features1: x, features2: x, subsetSize: 1 })).toThrow(/"subsetSize"/);
    expect(() => kernelInceptionDistance({ features1: x, features2: x, numSubsets: 0 })).toThrow(/"numSubsets"/);
    expect(() => mmd2Unbiased({ features1: [[1, 2, 3]], features2: x })).toThrow(/argument "features1" has shape \[1,3\]/);
  });
});
