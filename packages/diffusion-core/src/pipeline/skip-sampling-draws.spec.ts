import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler } from '../schedulers';
import type { NoiseScheduler } from '../schedulers/scheduler';
import { useCpuBackend } from '../testing/setup-cpu';
import type { DiffusionModel, UNetForwardParams, UNetForwardResult } from '../unet/unet';
import { sampleImages } from './sample';
import { skipSamplingDraws } from './skip-sampling-draws';
import { sampleTwoStage } from './two-stage-sample';

beforeAll(useCpuBackend);

/** A stand-in model whose output depends on its input (so a replay that ignored values would still be caught by the images). */
const model: DiffusionModel = {
  config: { sampleSize: 4, inChannels: 2, numClasses: 3, nullClass: true },
  trainableVariables: () => [],
  forward: (p: UNetForwardParams): UNetForwardResult => ({ sample: tf.tidy(() => tf.mul(tf.tanh(p.sample), 0.7)) as tf.Tensor4D, activations: {} }),
};

const cases: Array<[string, () => NoiseScheduler, number]> = [
  ['DDPM', () => new DDPMScheduler(), 0],
  ['DDIM eta 0', () => new DDIMScheduler(), 0],
  ['DDIM eta 0.5', () => new DDIMScheduler(), 0.5],
  ['DPM-Solver++', () => new DPMSolverMultistepScheduler(), 0],
];

describe('skipSamplingDraws', () => {
  for (const [name, make, eta] of cases) {
    it(`${name}: leaves the generator where sampleImages leaves it, so the next batch is identical, and leaks nothing`, async () => {
      const a = new Generator(11);
      const b = new Generator(11);
      // Batch 1 (3 images, classifier-free guidance) sampled on a, skipped on b; then batch 2 on both.
      (await sampleImages({ model, scheduler: make(), classLabels: [0, 1, 2], numInferenceSteps: 4, guidanceScale: 2, eta, generator: a })).dispose();
      const before = tf.memory().numTensors;
      skipSamplingDraws({ scheduler: make(), shape: [3, 4, 4, 2], numInferenceSteps: 4, eta, generator: b });
      expect(tf.memory().numTensors).toBe(before);
      expect(b.getState()).toEqual(a.getState());
      const xa = await sampleImages({ model, scheduler: make(), classLabels: [2, 0], numInferenceSteps: 4, eta, generator: a });
      const xb = await sampleImages({ model, scheduler: make(), classLabels: [2, 0], numInferenceSteps: 4, eta, generator: b });
      expect(Array.from(xb.dataSync())).toEqual(Array.from(xa.dataSync()));
      xa.dispose();
      xb.dispose();
    });
  }

  it('also matches gradient-guided and two-stage sampling (DDIM eta 0.3)', async () => {
    const guidance = ({ x }: { x: tf.Tensor4D }) => tf.mul(x, 0.1) as tf.Tensor4D;
    const a = new Generator(5);
    const b = new Generator(5);
    (await sampleImages({ model, scheduler: new DDIMScheduler(), classLabels: [0, 1], numInferenceSteps: 3, eta: 0.3, generator: a, guidance })).dispose();
    skipSamplingDraws({ scheduler: new DDIMScheduler(), shape: [2, 4, 4, 2], numInferenceSteps: 3, eta: 0.3, generator: b });
    expect(b.getState()).toEqual(a.getState());
    const r = await sampleTwoStage({ model, scheduler: new DDIMScheduler(), classLabels: [0, 1], numInferenceSteps: 3, eta: 0.3, generator: a, guidance });
    r.images.dispose();
    r.unguided.dispose();
    skipSamplingDraws({ scheduler: new DDIMScheduler(), shape: [2, 4, 4, 2], numInferenceSteps: 3, eta: 0.3, generator: b });
    expect(b.getState()).toEqual(a.getState());
  });

  it('differs from not skipping (the test can fail), and validates its arguments', () => {
    const a = new Generator(1);
    const b = new Generator(1);
    skipSamplingDraws({ scheduler: new DDPMScheduler(), shape: [1, 2, 2, 1], numInferenceSteps: 2, generator: b });
    expect(b.getState()).not.toEqual(a.getState());
    expect(() => skipSamplingDraws({ scheduler: new DDPMScheduler(), shape: [1, 2, 2] as never, numInferenceSteps: 2, generator: b })).toThrow(/shape must be \[batch, height, width, channels\]/);
    expect(() => skipSamplingDraws({ scheduler: {} as never, shape: [1, 2, 2, 1], numInferenceSteps: 2, generator: b })).toThrow(/scheduler must be a NoiseScheduler/);
    expect(() => skipSamplingDraws({ scheduler: new DDPMScheduler(), shape: [1, 2, 2, 1], numInferenceSteps: 2, generator: null as never })).toThrow(/generator must be a Generator/);
  });
});
