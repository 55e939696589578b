import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DDIMScheduler, DDPMScheduler } from '../schedulers';
import { relMaxError, useCpuBackend } from '../testing/setup-cpu';
import { gaussianModel } from '../testing/gaussian-model';
import type { DiffusionModel } from '../unet/unet';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { invertDdim } from './ddim-inversion';
import { sampleImages } from './sample';

beforeAll(useCpuBackend);

/** Inverts x0 with n steps, decodes with n deterministic DDIM steps; the max error relative to [0, 1] images. */
async function roundTrip(model: DiffusionModel, sched: DDIMScheduler, x0: tf.Tensor4D, n: number, classLabels?: number[]): Promise<number> {
  const xT = await invertDdim({ model, scheduler: sched, samples: x0, numInferenceSteps: n, classLabels });
  const img = await sampleImages({ model, scheduler: sched, initialNoise: xT, numInferenceSteps: n, batchSize: x0.shape[0], classLabels, eta: 0 });
  const want = tf.tidy(() => tf.div(tf.add(x0, 1), 2));
  const err = relMaxError(img.dataSync(), want.dataSync());
  tf.dispose([xT, img, want]);
  return err;
}

describe('invertDdim', () => {
  const x0 = tf.tidy(() => tf.reshape(tf.mul(tf.sin(tf.linspace(0, 9, 128)), 0.8), [2, 8, 8, 1])) as tf.Tensor4D;
  const mu = tf.tidy(() => tf.reshape(tf.mul(tf.cos(tf.linspace(0, 3, 64)), 0.3), [1, 8, 8, 1])) as tf.Tensor4D;
  afterAll(() => tf.dispose([x0, mu]));

  it('then deterministic DDIM decoding reconstructs the input (analytic Gaussian eps-model: first-order error, < 3e-3 at 250 steps)', async () => {
    const sched = new DDIMScheduler({ betaSchedule: 'linear', clipSample: false });
    const model = gaussianModel(mu, 1, sched.alphasCumprod);
    const before = tf.memory().numTensors;
    const errs = [];
    for (const n of [10, 100, 250]) errs.push(await roundTrip(model, sched, x0, n));
    console.log(`DDIM inversion round trip, Gaussian model: 10/100/250 steps ${errs.map((e) => e.toExponential(2)).join(' / ')}`);
    expect(errs[2]).toBeLessThan(3e-3);
    // The error of the (x_{t'}, t) approximation falls like 1/n.
    expect(errs[1] / errs[2]).toBeGreaterThan(2);
    expect(errs[0] / errs[1]).toBeGreaterThan(5);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('maps x_0 to a latent that is not x_0 and has about unit scale', async () => {
    const sched = new DDIMScheduler({ clipSample: false });
    const xT = await invertDdim({ model: gaussianModel(mu, 0.5, sched.alphasCumprod), scheduler: sched, samples: x0, numInferenceSteps: 20 });
    const v = xT.dataSync();
    const rms = Math.sqrt(v.reduce((s, a) => s + a * a, 0) / v.length);
    expect(rms).toBeGreaterThan(0.3);
    expect(rms).toBeLessThan(3);
    expect(relMaxError(v, x0.dataSync())).toBeGreaterThan(0.1);
    xT.dispose();
  });

  it('round-trips with a tiny U-Net in the model, class labels and classifier-free guidance (looser: < 5e-2 at 100 steps)', async () => {
    // An untrained U-Net alone is no denoiser (its eps is not unit-scale noise consistent with x_t),
    // and inversion through it diverges at high noise; as a perturbation of a real denoiser it checks
    // that labels, the null class and CFG take the same path in inversion and decoding.
    const unet = new UNet2DConditional({ ...UNET_PRESETS.tiny, sampleSize: 8, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding', nullClass: true }, { seed: 3 });
    const sched = new DDIMScheduler({ clipSample: false });
    const gauss = gaussianModel(mu, 1, sched.alphasCumprod);
    const model: DiffusionModel = {
      config: unet.config,
      trainableVariables: () => [],
      forward: (p) => ({ sample: tf.tidy(() => tf.add(gauss.forward(p).sample, tf.mul(unet.forward(p).sample, 0.1))) as tf.Tensor4D, activations: {} }),
    };
    const xT = await invertDdim({ model, scheduler: sched, samples: x0, numInferenceSteps: 100, classLabels: [0, 2], guidanceScale: 2 });
    const img = await sampleImages({ model, scheduler: sched, initialNoise: xT, numInferenceSteps: 100, classLabels: [0, 2], guidanceScale: 2, eta: 0 });
    const want = tf.tidy(() => tf.div(tf.add(x0, 1), 2));
    const err = relMaxError(img.dataSync(), want.dataSync());
    console.log(`DDIM inversion round trip, Gaussian + 0.1 tiny U-Net, CFG 2: 100 steps ${err.toExponential(2)}`);
    expect(err).toBeLessThan(5e-2);
    tf.dispose([xT, img, want]);
    unet.dispose();
  });

  it('validates its arguments, naming the field', async () => {
    const sched = new DDIMScheduler();
    const model = gaussianModel(mu, 0.5, sched.alphasCumprod);
    await expect(invertDdim({ model, scheduler: new DDPMScheduler() as never, samples: x0, numInferenceSteps: 2 })).rejects.toThrow(/invertDdim: scheduler must be a DDIMScheduler, got DDPMScheduler/);
    await expect(invertDdim({ model, scheduler: sched, samples: tf.zeros([1, 4, 4, 1]) as tf.Tensor4D, numInferenceSteps: 2 })).rejects.toThrow(/samples must be a tensor \[B,8,8,1\], got \[1,4,4,1\]/);
    await expect(invertDdim({ model, scheduler: sched, samples: x0, numInferenceSteps: 2, classLabels: [0] })).rejects.toThrow(/class label 0 out of range|classLabels has 1 entries/);
  });
});
