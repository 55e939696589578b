/**
 * Feature alignment when the U-Net trains in latent space: the expert sees pixels, either the
 * decoded noisy latent D(z_t) or the pixel image noised to the same alpha-bar_t (and x_0 for
 * alignTo 'clean').
 */
import {
  AUTOENCODER_PRESETS,
  AutoencoderKL,
  DDPMScheduler,
  DiffusionTrainer,
  type ObjectiveContext,
  UNET_PRESETS,
  UNet2DConditional,
  decodeLatents,
} from '@fad/diffusion-core';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FeatureAlignmentLoss } from './feature-alignment-loss';
import { featureAlignmentObjective, latentExpertImages } from './feature-alignment-objective';
import { randomTensor, randomValues, useCpuBackend } from './test-support/setup';
import { SpyExpert } from './test-support/toy-experts';

beforeAll(useCpuBackend);

const disposables: Array<{ dispose(): void }> = [];
afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));
function own<T extends { dispose(): void }>(x: T): T {
  disposables.push(x);
  return x;
}

/** A latent step context: 4x4x4 latents of 16x16x1 pixels, with known pixel noise and alpha-bars. */
function latentContext(ae: AutoencoderKL): ObjectiveContext {
  const b = 2;
  const x0 = randomTensor([b, 4, 4, 4], 1) as tf.Tensor4D;
  const noisy = randomTensor([b, 4, 4, 4], 2) as tf.Tensor4D;
  const pixelX0 = randomTensor([b, 16, 16, 1], 3) as tf.Tensor4D;
  const pixelNoise = randomTensor([b, 16, 16, 1], 4) as tf.Tensor4D;
  const h = randomTensor([b, 2, 2, 6], 5) as tf.Tensor4D;
  own({ dispose: () => tf.dispose([x0, noisy, pixelX0, pixelNoise, h]) });
  return {
    x0, noisy, noise: x0, timesteps: [100, 700], modelOutput: x0, activations: { down_out: h },
    latent: { pixelX0, pixelNoise, alphaBars: [0.81, 0.25], decode: (z) => decodeLatents({ model: ae, latents: z }) },
  };
}

function tinyAutoencoder(): AutoencoderKL {
  const ae = own(new AutoencoderKL(AUTOENCODER_PRESETS.tiny, { seed: 3 }));
  ae.setScalingFactor(0.5);
  return ae;
}

describe('featureAlignmentObjective in latent space (ctx.latent)', () => {
  it("'pixel-noised': the expert sees sqrt(ab) x_0 + sqrt(1 - ab) eps in pixel space, per sample", () => {
    const ae = tinyAutoencoder();
    const spy = own(new SpyExpert({ pixels: 256, featureDim: 5 }));
    const loss = own(new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 5 }));
    const objective = featureAlignmentObjective({ loss, expert: spy, latentExpertInput: 'pixel-noised' });
    expect(objective.needsPixelNoise).toBe(true);
    const ctx = latentContext(ae);
    const r = objective.loss(ctx);
    // Hand computation from the same seeded values (plain JS, float64).
    const x0 = randomValues(2 * 256, 3);
    const eps = randomValues(2 * 256, 4);
    const ab = [0.81, 0.25];
    const want = x0.map((v, i) => {
      const a = ab[Math.floor(i / 256)];
      return Math.sqrt(a) * v + Math.sqrt(1 - a) * eps[i];
    });
    expect(spy.calls).toHaveLength(1);
    expect(spy.calls[0].shape).toEqual([2, 16, 16, 1]);
    Array.from(spy.calls[0].input).forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
    tf.dispose([r.total, ...Object.values(r.terms)]);
  });

  it("'decoded' (the default): the expert sees D(z_t) = decodeLatents(z_t)", () => {
    const ae = tinyAutoencoder();
    const spy = own(new SpyExpert({ pixels: 256, featureDim: 5 }));
    const loss = own(new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 5 }));
    const objective = featureAlignmentObjective({ loss, expert: spy });
    expect(objective.latentExpertInput).toBe('decoded');
    expect(objective.needsPixelNoise).toBe(false);
    const ctx = latentContext(ae);
    const r = objective.loss(ctx);
    // Reference: the decoder by hand on z_t / scalingFactor.
    const want = tf.tidy(() => ae.decode(tf.div(ctx.noisy, 0.5) as tf.Tensor4D).dataSync());
    const got = spy.calls[0].input;
    expect(got.length).toBe(want.length);
    let err = 0;
    for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
    expect(err).toBeLessThan(1e-5);
    tf.dispose([r.total, ...Object.values(r.terms)]);
  });

  it("alignTo 'clean': the expert sees the pixel x_0 whatever latentExpertInput says", () => {
    const ae = tinyAutoencoder();
    for (const latentExpertInput of ['decoded', 'pixel-noised'] as const) {
      const spy = own(new SpyExpert({ pixels: 256, featureDim: 5 }));
      const loss = own(new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 5 }));
      const objective = featureAlignmentObjective({ loss, expert: spy, alignTo: 'clean', latentExpertInput });
      expect(objective.needsPixelNoise).toBe(false);
      const ctx = latentContext(ae);
      const r = objective.loss(ctx);
      expect(Array.from(spy.calls[0].input)).toEqual(Array.from(ctx.latent!.pixelX0.dataSync()));
      tf.dispose([r.total, ...Object.values(r.terms)]);
    }
  });

  it('leaves no tensors behind, and names what is missing or wrong', () => {
    const ae = tinyAutoencoder();
    const spy = own(new SpyExpert({ pixels: 256, featureDim: 5 }));
    const loss = own(new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 5 }));
    const ctx = latentContext(ae);
    for (const latentExpertInput of ['decoded', 'pixel-noised'] as const) {
      const objective = featureAlignmentObjective({ loss, expert: spy, latentExpertInput });
      objective.loss(ctx); // warm-up
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) {
        const r = objective.loss(ctx);
        tf.dispose([r.total, ...Object.values(r.terms)]);
      }
      expect(tf.memory().numTensors).toBe(before);
    }
    expect(() => featureAlignmentObjective({ loss, expert: spy, latentExpertInput: 'latent' as 'decoded' })).toThrow(
      /latentExpertInput must be one of 'decoded', 'pixel-noised', got "latent"/,
    );
    const noNoise = { ...ctx, latent: { ...ctx.latent!, pixelNoise: undefined } };
    expect(() => latentExpertImages({ ctx: noNoise, alignTo: 'noisy', latentExpertInput: 'pixel-noised' })).toThrow(/needs ctx.latent.pixelNoise/);
  });
});

describe('featureAlignmentObjective in a latent DiffusionTrainer (end to end)', () => {
  for (const latentExpertInput of ['decoded', 'pixel-noised'] as const) {
    it(`'${latentExpertInput}': the expert sees 16x16 pixels, the projection trains, expert and autoencoder stay frozen, no leak`, () => {
      const ae = tinyAutoencoder();
      const cfg = { ...UNET_PRESETS.tiny, sampleSize: 4, inChannels: 4, outChannels: 4, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };
      const model = own(new UNet2DConditional(cfg, { seed: 1 }));
      const expert = own(new SpyExpert({ pixels: 256, featureDim: 8, seed: 5 }));
      const loss = own(new FeatureAlignmentLoss({ diffusionDim: 16, expertDim: 8, seed: 2 }));
      const trainer = own(new DiffusionTrainer({
        model, scheduler: new DDPMScheduler(), seed: 1, autoencoder: ae, optimizer: { learningRate: 3e-3 },
        objectives: [featureAlignmentObjective({ loss, expert, latentExpertInput })],
      }));
      const x0 = own(tf.tanh(randomTensor([4, 16, 16, 1], 9)) as tf.Tensor4D);
      const labels = [0, 1, 2, 3];
      const aeBefore = ae.trainableVariables().map((v) => Array.from(v.dataSync()));
      const projectionBefore = Array.from(loss.trainableVariables()[0].dataSync());
      const r = trainer.step({ x0, classLabels: labels });
      expect(Object.keys(r.terms).sort()).toEqual(['diffusion', 'feature_align.align']);
      expect(Number.isFinite(r.terms['feature_align.align'])).toBe(true);
      const before = tf.memory().numTensors;
      trainer.step({ x0, classLabels: labels });
      expect(tf.memory().numTensors).toBe(before);
      expect(expert.calls.map((c) => c.shape)).toEqual([[4, 16, 16, 1], [4, 16, 16, 1]]);
      expect(expert.calls.every((c) => c.options?.training === false)).toBe(true);
      ae.trainableVariables().forEach((v, i) => expect(Array.from(v.dataSync())).toEqual(aeBefore[i]));
      expect(Array.from(loss.trainableVariables()[0].dataSync())).not.toEqual(projectionBefore);
    });
  }
});
