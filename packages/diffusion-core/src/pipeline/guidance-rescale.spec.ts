import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { DDIMScheduler } from '../schedulers';
import { useCpuBackend } from '../testing/setup-cpu';
import type { DiffusionModel, UNetForwardParams, UNetForwardResult } from '../unet/unet';
import { checkGuidanceRescale, rescaleGuidance } from './guidance-rescale';
import { sampleImages } from './sample';

beforeAll(async () => {
  await useCpuBackend();
});

/** Population standard deviation, by hand. */
function sd(v: number[]): number {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
}

describe('rescaleGuidance (Lin et al. 2024, section 3.4)', () => {
  const cond = [0.5, -1, 2, 0.25, 1.5, -0.5, 0, 1];
  const guided = [1.5, -3, 5, 0.5, 4, -2, 1, 2.5];

  it('phi = 1: the guided prediction scaled to the conditional one\'s std, per sample', () => {
    const out = tf.tidy(() =>
      Array.from(rescaleGuidance({ guided: tf.tensor4d(guided, [2, 2, 2, 1]), cond: tf.tensor4d(cond, [2, 2, 2, 1]), phi: 1 }).dataSync()),
    );
    for (const s of [0, 1]) {
      const g = guided.slice(4 * s, 4 * s + 4);
      const c = cond.slice(4 * s, 4 * s + 4);
      const k = sd(c) / sd(g);
      for (let i = 0; i < 4; i++) expect(out[4 * s + i]).toBeCloseTo(g[i] * k, 5);
      expect(sd(out.slice(4 * s, 4 * s + 4))).toBeCloseTo(sd(c), 5);
    }
  });

  it('phi mixes linearly: 0.7 rescaled + 0.3 guided; phi = 0 returns the guided prediction', () => {
    const run = (phi: number) =>
      tf.tidy(() => Array.from(rescaleGuidance({ guided: tf.tensor4d(guided, [1, 2, 4, 1]), cond: tf.tensor4d(cond, [1, 2, 4, 1]), phi }).dataSync()));
    const k = sd(cond) / sd(guided);
    const mixed = run(0.7);
    for (let i = 0; i < 8; i++) expect(mixed[i]).toBeCloseTo(0.7 * guided[i] * k + 0.3 * guided[i], 5);
    expect(run(0)).toEqual(guided);
  });

  it('checks phi, naming the field', () => {
    expect(checkGuidanceRescale('x', undefined)).toBe(0);
    expect(checkGuidanceRescale('x', 0.7)).toBe(0.7);
    for (const bad of [-0.1, 1.5, Number.NaN, '0.5' as never]) expect(() => checkGuidanceRescale('sampleImages', bad)).toThrow(/sampleImages: guidanceRescale must be a number in \[0, 1\]/);
  });

  it('in sampleImages: keeps a bright class bright under strong guidance, where plain guidance over-shoots; no leaks', async () => {
    // A toy "model" predicting x_0 (sample prediction): the conditional output is a bright constant
    // image with a little texture, the unconditional one mid-gray. Guidance w = 4 extrapolates the
    // prediction's spread 4x; phi = 1 brings it back to the conditional spread.
    const numClasses = 1;
    const model: DiffusionModel = {
      config: { sampleSize: 4, inChannels: 1, numClasses, nullClass: true },
      trainableVariables: () => [],
      forward: (p: UNetForwardParams): UNetForwardResult => {
        const labels = Array.from(p.classLabels as ArrayLike<number>);
        const tex = tf.tidy(() => tf.mul(tf.sin(tf.reshape(tf.range(0, 16), [1, 4, 4, 1])), 0.05));
        const sample = tf.tidy(() =>
          tf.concat(labels.map((l) => (l === numClasses ? tf.zerosLike(tex) : tf.add(tex, 0.8))), 0),
        ) as tf.Tensor4D;
        tex.dispose();
        return { sample, activations: {} };
      },
    };
    const scheduler = () => new DDIMScheduler({ predictionType: 'sample', clipSample: false });
    const before = tf.memory().numTensors;
    const run = async (phi: number) => {
      const x = await sampleImages({ model, scheduler: scheduler(), numInferenceSteps: 5, classLabels: [0, 0], guidanceScale: 4, guidanceRescale: phi, seed: 1 });
      const v = Array.from(x.dataSync()).slice(0, 16);
      x.dispose();
      return v;
    };
    // Plain guidance: x_0 = 4 (0.8 + tex) = 3.2 + 4 tex, far outside [-1, 1]: the image saturates to
    // white and its texture is lost. Rescaled (phi = 1): (3.2 + 4 tex) * std(tex) / std(4 tex) is
    // exactly the conditional 0.8 + tex, i.e. (1.8 + tex) / 2 in [0, 1].
    const plain = await run(0);
    expect(plain.every((v) => v === 1)).toBe(true);
    const rescaled = await run(1);
    for (let i = 0; i < 16; i++) expect(rescaled[i]).toBeCloseTo((1.8 + 0.05 * Math.sin(i)) / 2, 4);
    expect(tf.memory().numTensors).toBe(before);
    await expect(sampleImages({ model, scheduler: scheduler(), numInferenceSteps: 2, classLabels: [0], guidanceScale: 2, guidanceRescale: 2 })).rejects.toThrow(/guidanceRescale/);
  });
});
