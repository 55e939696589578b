/** Sampling in latent space: the reverse process on latents, decoded to pixel images in [0, 1]. */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AutoencoderKL } from '../autoencoder/autoencoder';
import { AUTOENCODER_PRESETS } from '../autoencoder/autoencoder-config';
import { Generator } from '../random';
import { DDIMScheduler, DPMSolverMultistepScheduler } from '../schedulers';
import { relMaxError, useCpuBackend } from '../testing/setup-cpu';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { sampleImages } from './sample';
import { sampleClassGrid } from './sample-class-grid';

beforeAll(useCpuBackend);
const disposables: Array<{ dispose(): void }> = [];
afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));

const latentUNet = { ...UNET_PRESETS.tiny, sampleSize: 4, inChannels: 4, outChannels: 4, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };

function setup() {
  const ae = new AutoencoderKL(AUTOENCODER_PRESETS.tiny, { seed: 5 });
  ae.setScalingFactor(0.6);
  const model = new UNet2DConditional(latentUNet, { seed: 2 });
  disposables.push(ae, model);
  return { ae, model };
}

describe('sampleImages in latent space (autoencoder)', () => {
  it('runs the reverse process on latents and returns decoder(z_0 / scalingFactor) mapped from [-1, 1] to [0, 1], clipped', async () => {
    const { ae, model } = setup();
    const labels = [0, 1, 2];
    const images = await sampleImages({ model, scheduler: new DDIMScheduler({ clipSample: false }), classLabels: labels, numInferenceSteps: 4, seed: 11, autoencoder: ae });
    expect(images.shape).toEqual([3, 16, 16, 1]);
    // Independent reference: the DDIM loop by hand on latents, then the decoder.
    const s = new DDIMScheduler({ clipSample: false });
    s.setTimesteps(4);
    const g = new Generator(11);
    let z = g.normal([3, 4, 4, 4]) as tf.Tensor4D;
    for (const t of Array.from(s.timesteps)) {
      const next = tf.tidy(() => {
        const eps = model.forward({ sample: z, timesteps: [t, t, t], classLabels: labels }).sample;
        const out = s.step(eps, t, z, { generator: g });
        out.predOriginalSample.dispose();
        return out.prevSample as tf.Tensor4D;
      });
      z.dispose();
      z = next;
    }
    const want = tf.tidy(() => tf.clipByValue(tf.div(tf.add(ae.decode(tf.div(z, 0.6) as tf.Tensor4D), 1), 2), 0, 1));
    expect(relMaxError(images.dataSync(), want.dataSync())).toBeLessThan(1e-5);
    const v = images.dataSync();
    expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v)).toBeLessThanOrEqual(1);
    tf.dispose([images, z, want]);
  });

  it('leaks no tensors', async () => {
    const { ae, model } = setup();
    const before = tf.memory().numTensors;
    const x = await sampleImages({ model, scheduler: new DPMSolverMultistepScheduler(), batchSize: 2, classLabels: [0, 3], numInferenceSteps: 3, autoencoder: ae });
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('sampleClassGrid returns a grid of decoded pixel images', async () => {
    const { ae, model } = setup();
    const grid = await sampleClassGrid({ model, scheduler: new DDIMScheduler({ clipSample: false }), classLabels: [0, 1], imagesPerClass: 2, numInferenceSteps: 2, seed: 3, autoencoder: ae });
    expect(grid.images.shape).toEqual([4, 16, 16, 1]);
    const direct = await sampleImages({ model, scheduler: new DDIMScheduler({ clipSample: false }), classLabels: [0, 0, 1, 1], numInferenceSteps: 2, seed: 3, autoencoder: ae });
    expect(Array.from(grid.images.dataSync())).toEqual(Array.from(direct.dataSync()));
    tf.dispose([grid.images, direct]);
  });

  it('refuses x_0 clipping, guidance and a model whose channels are not the latent channels', async () => {
    const { ae, model } = setup();
    await expect(sampleImages({ model, scheduler: new DDIMScheduler(), classLabels: [0], numInferenceSteps: 2, autoencoder: ae })).rejects.toThrow(
      'sampleImages: in latent space the scheduler must not clip or threshold x_0',
    );
    await expect(sampleImages({ model, scheduler: new DDIMScheduler({ clipSample: false }), classLabels: [0], numInferenceSteps: 2, autoencoder: ae, guidance: () => null })).rejects.toThrow(
      'gradient guidance is not available in latent space',
    );
    const pixel = new UNet2DConditional({ ...latentUNet, inChannels: 1, outChannels: 1 }, { seed: 1 });
    disposables.push(pixel);
    await expect(sampleImages({ model: pixel, scheduler: new DDIMScheduler({ clipSample: false }), classLabels: [0], numInferenceSteps: 2, autoencoder: ae })).rejects.toThrow(
      "the model's inChannels (1) must equal autoencoder.config.latentChannels (4)",
    );
  });
});
