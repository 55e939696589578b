import { Generator } from '@fad/diffusion-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCpuBackend } from './testing/setup-cpu';
import { ZERO_GENERATOR, kaimingNormalFanOut } from './weight-init';

beforeAll(useCpuBackend);

describe('weight init', () => {
  it('ZERO_GENERATOR draws zeros; Kaiming normal has std sqrt(2 / (k k out))', () => {
    expect(Array.from(ZERO_GENERATOR.normal([3]).dataSync())).toEqual([0, 0, 0]);
    expect(Array.from(ZERO_GENERATOR.uniform([2], -1, 1).dataSync())).toEqual([0, 0]);
    const w = kaimingNormalFanOut(new Generator(1), [3, 3, 16, 32]).dataSync() as Float32Array;
    const std = Math.sqrt(w.reduce((s, x) => s + x * x, 0) / w.length);
    expect(std).toBeGreaterThan(0.95 * Math.sqrt(2 / 288));
    expect(std).toBeLessThan(1.05 * Math.sqrt(2 / 288));
  });
});
