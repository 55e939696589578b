import * as tf from '@tensorflow/tfjs-core';
import { DDPMScheduler, Generator } from '@fad/diffusion-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createExpert } from './create-expert';
import { noisyExpertBatch } from './noise-aware';
import { trainExpert } from './train-expert';
import { leakedTensors, useCpuBackend } from './testing/setup-cpu';
import { toyImages } from './testing/toy-data';

beforeAll(useCpuBackend);

describe('noisyExpertBatch', () => {
  const alphas = new DDPMScheduler().alphasCumprod;
  const x0 = Array.from({ length: 2 * 4 }, (_, i) => (i % 5) / 4); // [0, 1]

  it('returns x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps in model space, mapped back to the expert range (hand-computed)', () => {
    const images = tf.tensor4d(x0, [2, 2, 2, 1]);
    const out = noisyExpertBatch({ images, alphasCumprod: alphas, range: [0, 1], generator: new Generator(5) });
    // The same draws, by hand: one t per image, then the noise for the whole batch.
    const g = new Generator(5);
    const ts = [g.nextInt(0, 1000), g.nextInt(0, 1000)];
    const eps = g.normal([2, 2, 2, 1]).dataSync();
    expect(out.timesteps).toEqual(ts);
    const got = out.images.dataSync();
    x0.forEach((v, i) => {
      const a = alphas[ts[Math.floor(i / 4)]];
      const xt = Math.sqrt(a) * (2 * v - 1) + Math.sqrt(1 - a) * eps[i];
      expect(got[i]).toBeCloseTo((xt + 1) / 2, 5);
    });
    tf.dispose([images, out.images]);
  });

  it('probability 0 leaves images clean (t = -1); leaks nothing; validates its arguments', () => {
    const images = tf.tensor4d(x0, [2, 2, 2, 1]);
    const out = noisyExpertBatch({ images, alphasCumprod: alphas, range: [0, 1], generator: new Generator(1), probability: 0 });
    expect(out.timesteps).toEqual([-1, -1]);
    Array.from(out.images.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(x0[i], 6));
    out.images.dispose();
    expect(leakedTensors(() => noisyExpertBatch({ images, alphasCumprod: alphas, range: [0, 1], generator: new Generator(1), probability: 0.5 }).images.dispose())).toBe(0);
    expect(() => noisyExpertBatch({ images, alphasCumprod: [], range: [0, 1], generator: new Generator(1) })).toThrow(/noisyExpertBatch: params\.alphasCumprod must be a non-empty array of alpha-bars in \(0, 1\]/);
    expect(() => noisyExpertBatch({ images, alphasCumprod: alphas, range: [0, 1], generator: new Generator(1), probability: 2 })).toThrow(/params\.probability must be a finite number >= 0 and <= 1, got 2/);
    expect(() => noisyExpertBatch({ images, alphasCumprod: alphas, range: [1, 0], generator: new Generator(1) })).toThrow(/range must be \[low, high\]/);
    images.dispose();
  });
});

describe('trainExpert({ noiseAware })', () => {
  it('trains on noisy batches (different weights than clean training, same validation protocol) and checks the option', async () => {
    const toy = toyImages({ numClasses: 2, perClass: 4, size: 8, channels: 1 });
    const config = { arch: 'resnet' as const, block: 'basic' as const, layers: [1], baseWidth: 4, numClasses: 2, input: { size: 8 } };
    const train = async (noiseAware?: { alphasCumprod: Float32Array }) => {
      const expert = createExpert({ config, seed: 0 });
      const r = await trainExpert({ expert, images: { data: toy.data, shape: toy.shape }, labels: toy.labels, epochs: 1, batchSize: 4, validationFraction: 0, augment: false, noiseAware });
      const w = expert.namedParameters().find(([n]) => n === 'fc.weight')?.[1].dataSync().slice() ?? expert.namedParameters()[0][1].dataSync().slice();
      expert.dispose();
      return { r, w };
    };
    const clean = await train();
    const noisy = await train({ alphasCumprod: new DDPMScheduler().alphasCumprod });
    expect(noisy.r.steps).toBe(clean.r.steps);
    expect(Array.from(noisy.w)).not.toEqual(Array.from(clean.w));
    const expert = createExpert({ config, seed: 0 });
    await expect(trainExpert({ expert, images: { data: toy.data, shape: toy.shape }, labels: toy.labels, epochs: 1, noiseAware: { alphasCumprod: [2] } })).rejects.toThrow(/trainExpert: noiseAware\.alphasCumprod must be a non-empty array/);
    expert.dispose();
  });
});
