import { describe, expect, it } from 'vitest';
import { createSeededRandom, sampleWithoutReplacement } from './seeded-random';

describe('seeded random', () => {
  it('is reproducible per seed and different across seeds', () => {
    const take = (seed: number) => {
      const r = createSeededRandom(seed);
      return Array.from({ length: 8 }, () => r.nextFloat());
    };
    expect(take(5)).toEqual(take(5));
    expect(take(5)).not.toEqual(take(6));
    expect(() => createSeededRandom(-1)).toThrow(/seed must be an integer/);
  });

  it('gives uniform floats in [0,1) and integers in [0,n)', () => {
    const r = createSeededRandom(1);
    const n = 100_000;
    let s = 0;
    const counts = new Array(10).fill(0);
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const u = r.nextFloat();
      if (!(u >= 0 && u < 1)) outside++;
      s += u;
      counts[r.nextInt(10)]++;
    }
    expect(outside).toBe(0);
    expect(Math.abs(s / n - 0.5)).toBeLessThan(0.005); // sd of the mean ~0.0009
    for (const c of counts) expect(Math.abs(c - n / 10)).toBeLessThan(500); // sd ~95
  });

  it('samples k distinct sorted indices, each index about equally often', () => {
    const r = createSeededRandom(2);
    const hits = new Array(20).fill(0);
    for (let t = 0; t < 4000; t++) {
      const s = sampleWithoutReplacement({ n: 20, k: 5, random: r });
      expect(new Set(s).size).toBe(5);
      expect(s).toEqual([...s].sort((a, b) => a - b));
      for (const i of s) hits[i]++;
    }
    // Each index is chosen with probability 1/4: 1000 expected, sd ~27.
    for (const h of hits) expect(Math.abs(h - 1000)).toBeLessThan(150);
    expect(sampleWithoutReplacement({ n: 3, k: 3, random: r })).toEqual([0, 1, 2]);
    expect(() => sampleWithoutReplacement({ n: 3, k: 4, random: r })).toThrow(/need 0 <= k <= n/);
  });
});
