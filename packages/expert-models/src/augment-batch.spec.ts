import * as tf from '@tensorflow/tfjs-core';
import { Generator } from '@fad/diffusion-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_AUGMENT_CONFIG, applyAugmentParams, augmentBatch, resolveAugmentConfig, sampleAugmentParams } from './augment-batch';
import { leakedTensors, maxAbsDiff, useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

const range = [0, 1] as const;

describe('resolveAugmentConfig', () => {
  it('true/undefined = defaults, false = nothing, partials merge', () => {
    expect(resolveAugmentConfig(undefined)).toEqual(DEFAULT_AUGMENT_CONFIG);
    const off = resolveAugmentConfig(false);
    expect([off.horizontalFlip, off.verticalFlip, off.blurSharpen.enabled, off.resample.enabled, off.contrast.enabled, off.brightness.enabled]).toEqual([false, false, false, false, false, false]);
    const c = resolveAugmentConfig({ resample: false, contrast: { maxChange: 0.5 }, verticalFlip: false });
    expect(c.resample.enabled).toBe(false);
    expect(c.contrast).toEqual({ enabled: true, maxChange: 0.5 });
    expect(c.verticalFlip).toBe(false);
    expect(c.blurSharpen).toEqual(DEFAULT_AUGMENT_CONFIG.blurSharpen);
  });

  it('names the bad field and the accepted values', () => {
    expect(() => resolveAugmentConfig({ blur: true } as never)).toThrow(/unknown field augment.blur; accepted: horizontalFlip, verticalFlip, rotate90, blurSharpen/);
    expect(() => resolveAugmentConfig({ resample: { methods: ['cubic'] } as never })).toThrow(/augment.resample.methods\[0\] must be one of "bilinear", "area", "nearest", got "cubic"/);
    expect(() => resolveAugmentConfig({ resample: { minScale: 0.8, maxScale: 0.5 } })).toThrow(/augment.resample.maxScale must be a finite number >= 0.8 and <= 1, got 0.5/);
    expect(() => resolveAugmentConfig({ blurSharpen: { probability: 2 } })).toThrow(/augment.blurSharpen.probability must be a finite number >= 0 and <= 1, got 2/);
    expect(() => resolveAugmentConfig({ contrast: { speed: 1 } } as never)).toThrow(/unknown field augment.contrast.speed; accepted: enabled, maxChange/);
    expect(() => resolveAugmentConfig({ clip: 'yes' } as never)).toThrow(/augment.clip must be true or false, got "yes"/);
  });
});

describe('sampleAugmentParams', () => {
  it('draws within the configured ranges and is reproducible from the seed', () => {
    const config = resolveAugmentConfig({ rotate90: true });
    const a = sampleAugmentParams({ count: 200, config, range, generator: new Generator(1) });
    const b = sampleAugmentParams({ count: 200, config, range, generator: new Generator(1) });
    expect(a).toEqual(b);
    expect(sampleAugmentParams({ count: 200, config, range, generator: new Generator(2) })).not.toEqual(a);
    for (const p of a) {
      expect(p.contrast).toBeGreaterThanOrEqual(0.8);
      expect(p.contrast).toBeLessThanOrEqual(1.2);
      expect(Math.abs(p.brightness)).toBeLessThanOrEqual(0.1);
      expect(p.blurSigma).toBeLessThanOrEqual(1);
      expect(p.sharpenAmount).toBeLessThanOrEqual(1);
      expect(p.blurSigma > 0 && p.sharpenAmount > 0).toBe(false);
      expect(p.resampleScale === 1 || (p.resampleScale >= 0.5 && p.resampleScale < 1)).toBe(true);
    }
    const share = (f: (p: (typeof a)[number]) => boolean) => a.filter(f).length / a.length;
    expect(share((p) => p.horizontalFlip)).toBeGreaterThan(0.35);
    expect(share((p) => p.horizontalFlip)).toBeLessThan(0.65);
    expect(share((p) => p.blurSigma > 0 || p.sharpenAmount > 0)).toBeGreaterThan(0.35);
    expect(share((p) => p.resampleScale !== 1)).toBeLessThan(0.65);
    expect(new Set(a.map((p) => p.turns)).size).toBe(4);
    expect(new Set(a.filter((p) => p.resampleScale !== 1).map((p) => p.resampleMethod)).size).toBe(3);
  });
});

describe('applyAugmentParams / augmentBatch', () => {
  it('applies per-image choices exactly (flip of one image, contrast of the other, clipping)', () => {
    const x = tf.tensor4d([0.1, 0.2, 0.3, 0.4, 0.1, 0.2, 0.3, 0.4], [2, 2, 2, 1]);
    const neutral = { horizontalFlip: false, verticalFlip: false, turns: 0, resampleScale: 1, resampleMethod: 'bilinear', blurSigma: 0, sharpenAmount: 0, contrast: 1, brightness: 0 } as const;
    const y = applyAugmentParams({
      images: x, sharpenSigma: 1, clipRange: range,
      params: [{ ...neutral, horizontalFlip: true }, { ...neutral, contrast: 2, brightness: 0.7 }],
    });
    // Image 1: mean 0.25; (x - 0.25) * 2 + 0.25 + 0.7 = [0.65, 0.85, 1.05, 1.25] -> clipped at 1.
    const expected = [0.2, 0.1, 0.4, 0.3, 0.65, 0.85, 1, 1];
    expect(maxAbsDiff(y.dataSync(), expected)).toBeLessThan(1e-6);
    expect(() => applyAugmentParams({ images: x, params: [neutral], sharpenSigma: 1 })).toThrow(/params must have one entry per image \(2\)/);
  });

  it('is the identity with augmentation off, reproducible with a seed, and leak-free', () => {
    const x = tf.randomUniform([4, 16, 16, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const off = augmentBatch({ images: x, config: resolveAugmentConfig(false), range, generator: new Generator(0) });
    expect(maxAbsDiff(off.dataSync(), x.dataSync())).toBe(0);
    const config = resolveAugmentConfig({ rotate90: true, blurSharpen: { probability: 1 }, resample: { probability: 1 } });
    const a = augmentBatch({ images: x, config, range, generator: new Generator(7) }).dataSync();
    const b = augmentBatch({ images: x, config, range, generator: new Generator(7) }).dataSync();
    const c = augmentBatch({ images: x, config, range, generator: new Generator(8) }).dataSync();
    expect(maxAbsDiff(a, b)).toBe(0);
    expect(maxAbsDiff(a, c)).toBeGreaterThan(0.01);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...a)).toBeLessThanOrEqual(1);
    expect(leakedTensors(() => augmentBatch({ images: x, config, range, generator: new Generator(1) }).dispose())).toBe(0);
    expect(() => augmentBatch({ images: x, config, range: [1, 0], generator: new Generator(1) })).toThrow(/range must be \[min, max\] with min < max, got \[1,0\]/);
  });
});
