import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { DDIMScheduler, DDPMScheduler } from '../schedulers';
import { useCpuBackend } from '../testing/setup-cpu';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { sampleImages } from './sample';
import { sampleClassGrid, tileClassGrid } from './sample-class-grid';

beforeAll(useCpuBackend);

describe('sampleClassGrid', () => {
  let model: UNet2DConditional;
  beforeAll(() => {
    model = new UNet2DConditional({ ...UNET_PRESETS.tiny, sampleSize: 8, numClasses: 3, nullClass: true, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' }, { seed: 4 });
  });
  afterAll(() => model.dispose());

  it('is sampleImages on the row-major labels with a fresh generator of the seed, and leaks nothing', async () => {
    const before = tf.memory().numTensors;
    const g = await sampleClassGrid({ model, scheduler: new DDIMScheduler(), classLabels: [2, 0], imagesPerClass: 3, numInferenceSteps: 3, seed: 7, guidanceScale: 1.5 });
    expect(g.labels).toEqual([2, 2, 2, 0, 0, 0]);
    expect([g.rows, g.columns]).toEqual([2, 3]);
    expect(g.images.shape).toEqual([6, 8, 8, 1]);
    const ref = await sampleImages({ model, scheduler: new DDIMScheduler(), classLabels: [2, 2, 2, 0, 0, 0], numInferenceSteps: 3, generator: new Generator(7), guidanceScale: 1.5 });
    expect(Array.from(g.images.dataSync())).toEqual(Array.from(ref.dataSync()));
    tf.dispose([g.images, ref]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gives the same grid for the same seed on every call (stochastic DDPM too), another for another seed', async () => {
    const run = (seed: number) => sampleClassGrid({ model, scheduler: new DDPMScheduler(), classLabels: [0, 1, 2], imagesPerClass: 2, numInferenceSteps: 2, seed });
    const a = await run(1);
    const b = await run(1);
    const c = await run(2);
    expect(Array.from(a.images.dataSync())).toEqual(Array.from(b.images.dataSync()));
    expect(Array.from(a.images.dataSync())).not.toEqual(Array.from(c.images.dataSync()));
    tf.dispose([a.images, b.images, c.images]);
  });

  it('rejects bad arguments naming the field', async () => {
    const base = { model, scheduler: new DDIMScheduler(), classLabels: [0], imagesPerClass: 1, numInferenceSteps: 1, seed: 0 };
    await expect(sampleClassGrid({ ...base, classLabels: [] })).rejects.toThrow(/classLabels must be a non-empty array/);
    await expect(sampleClassGrid({ ...base, imagesPerClass: 0 })).rejects.toThrow(/imagesPerClass must be a positive integer, got 0/);
    await expect(sampleClassGrid({ ...base, numInferenceSteps: 1.5 })).rejects.toThrow(/numInferenceSteps/);
    await expect(sampleClassGrid({ ...base, seed: -1 })).rejects.toThrow(/seed must be an integer/);
  });
});

describe('tileClassGrid', () => {
  it('places image r*columns+c at row block r, column block c (hand-made 2x3 grid of 1x2x2 images)', () => {
    // Image i (of 6) is 1 pixel high, 2 wide, 2 channels: values [10i, 10i+1, 10i+2, 10i+3].
    const data = Array.from({ length: 6 * 4 }, (_, k) => 10 * Math.floor(k / 4) + (k % 4));
    const t = tileClassGrid({ data, rows: 2, columns: 3, height: 1, width: 2, channels: 2 });
    expect(Array.from(t)).toEqual([0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33, 40, 41, 42, 43, 50, 51, 52, 53]);
    // 2 rows x 2 columns of 2x2 grayscale images: the output is 4x4.
    const d2 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
    expect(Array.from(tileClassGrid({ data: d2, rows: 2, columns: 2, height: 2, width: 2, channels: 1 }))).toEqual([1, 2, 5, 6, 3, 4, 7, 8, 9, 10, 13, 14, 11, 12, 15, 16]);
    expect(() => tileClassGrid({ data: d2, rows: 2, columns: 2, height: 2, width: 3, channels: 1 })).toThrow(/data has 16 values, expected .* = 24/);
    expect(() => tileClassGrid({ data: d2, rows: 0, columns: 2, height: 2, width: 2, channels: 1 })).toThrow(/rows must be a positive integer, got 0/);
  });
});
