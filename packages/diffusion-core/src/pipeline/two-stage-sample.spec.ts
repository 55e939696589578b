import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DDIMScheduler, DDPMScheduler } from '../schedulers';
import { gaussianModel } from '../testing/gaussian-model';
import { relMaxError, useCpuBackend } from '../testing/setup-cpu';
import { energyGuidance, type GuidanceParams } from './guidance';
import { sampleImages } from './sample';
import { sampleTwoStage } from './two-stage-sample';

beforeAll(useCpuBackend);

describe('sampleTwoStage', () => {
  const mu = tf.tidy(() => tf.reshape(tf.mul(tf.cos(tf.linspace(0, 3, 64)), 0.3), [1, 8, 8, 1])) as tf.Tensor4D;
  afterAll(() => mu.dispose());
  const sched = () => new DDIMScheduler({ clipSample: false });
  const model = gaussianModel(mu, 0.4, sched().alphasCumprod, 2);

  it('stage 1 is plain sampling; a zero guidance decodes back to it; a real guidance moves it; nothing leaks', async () => {
    const before = tf.memory().numTensors;
    const common = { model, classLabels: [0, 1], numInferenceSteps: 60, seed: 4 };
    const plain = await sampleImages({ ...common, scheduler: sched() });
    const stages: string[] = [];
    const zero = await sampleTwoStage({ ...common, scheduler: sched(), guidance: (p) => tf.zerosLike(p.x), onProgress: (p) => { if (!stages.includes(p.stage)) stages.push(p.stage); } });
    expect(stages).toEqual(['sample', 'invert', 'decode']);
    expect(Array.from(zero.unguided.dataSync())).toEqual(Array.from(plain.dataSync()));
    const roundTrip = relMaxError(zero.images.dataSync(), plain.dataSync());
    expect(roundTrip).toBeLessThan(5e-2); // first-order inversion error at 60 steps
    // Brighten: E = mean(x), so g = s / (H W C) at every pixel.
    const energy = (p: GuidanceParams) => tf.mean(tf.reshape(p.x, [p.x.shape[0], -1]), 1) as tf.Tensor1D;
    const bright = await sampleTwoStage({ ...common, scheduler: sched(), guidance: energyGuidance({ energy, scale: 4 }) });
    const meanOf = (t: tf.Tensor) => tf.tidy(() => tf.mean(t).dataSync()[0]);
    console.log(`two-stage: round trip ${roundTrip.toExponential(2)}, mean ${meanOf(zero.images).toFixed(3)} -> ${meanOf(bright.images).toFixed(3)} with guidance`);
    expect(meanOf(bright.images)).toBeGreaterThan(meanOf(zero.images) + 0.03);
    tf.dispose([plain, zero.images, zero.unguided, bright.images, bright.unguided]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('validates its arguments', async () => {
    await expect(sampleTwoStage({ model, scheduler: new DDPMScheduler() as never, classLabels: [0], numInferenceSteps: 2, guidance: () => null })).rejects.toThrow(/sampleTwoStage: scheduler must be a DDIMScheduler/);
    await expect(sampleTwoStage({ model, scheduler: sched(), classLabels: [0], numInferenceSteps: 2, guidance: undefined as never })).rejects.toThrow(/sampleTwoStage: guidance must be a GuidanceFn/);
  });
});
