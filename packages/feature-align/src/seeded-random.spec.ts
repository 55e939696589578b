import { Generator } from '@fad/diffusion-core';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from './seeded-random';

describe('SeededRandom', () => {
  it("draws the same stream as diffusion-core's Generator for the same seed", () => {
    for (const seed of [0, 1, 42, 0xffffffff]) {
      const a = new SeededRandom(seed);
      const b = new Generator(seed);
      for (let i = 0; i < 100; i++) expect(a.nextUint32()).toBe(b.nextUint32());
    }
  });

  it('gives floats in [0, 1) and rejects bad seeds', () => {
    const r = new SeededRandom(3);
    for (let i = 0; i < 1000; i++) {
      const f = r.nextFloat();
      expect(f).toBeGreaterThanOrEqual(0);
      expect(f).toBeLessThan(1);
    }
    expect(() => new SeededRandom(-1)).toThrow(/seed must be an integer/);
    expect(() => new SeededRandom(1.5)).toThrow(/got 1.5/);
  });
});
