/**
 * Latent diffusion in the trainer: a frozen autoencoder turns pixel batches into scaled latents
 * (or pre-encoded latents are taken as they are), the U-Net trains on them, and objectives see the
 * pixel side of the step in `ctx.latent`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AutoencoderKL } from '../autoencoder/autoencoder';
import { AUTOENCODER_PRESETS } from '../autoencoder/autoencoder-config';
import { decodeLatents, encodeToLatents } from '../autoencoder/latents';
import { Generator } from '../random';
import { DDPMScheduler } from '../schedulers';
import { leakedTensors, relMaxError, useCpuBackend } from '../testing/setup-cpu';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { type ObjectiveContext, type TrainingObjective, DiffusionTrainer } from './trainer';

beforeAll(useCpuBackend);

/** The tiny autoencoder maps 16x16x1 to 4x4x4 (3 levels, factor 4). */
const ae = () => {
  const m = new AutoencoderKL(AUTOENCODER_PRESETS.tiny, { seed: 5 });
  m.setScalingFactor(0.7);
  return m;
};
/** An attention-free U-Net on 4x4x4 latents. */
const latentUNet = { ...UNET_PRESETS.tiny, sampleSize: 4, inChannels: 4, outChannels: 4, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };
const scheduler = () => new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2' });

/** Eight smooth 16x16 patterns in [-0.8, 0.8]. */
function patterns(s = 16): tf.Tensor4D {
  const d = new Float32Array(8 * s * s);
  for (let n = 0; n < 8; n++)
    for (let y = 0; y < s; y++)
      for (let x = 0; x < s; x++)
        d[(n * s + y) * s + x] = 0.8 * Math.sin((((n % 4) + 1) * x * Math.PI) / s + n) * Math.cos(((Math.floor(n / 4) + 1) * y * Math.PI) / s);
  return tf.tensor4d(d, [8, s, s, 1]);
}
const labels = [0, 1, 2, 3, 0, 1, 2, 3];

const disposables: Array<{ dispose(): void }> = [];
afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));

/** An objective that records what it was given (copies) and adds nothing to the loss. */
function spyObjective(needsPixelNoise: boolean): TrainingObjective & { seen: Array<Record<string, unknown>> } {
  const seen: Array<Record<string, unknown>> = [];
  return {
    name: 'spy',
    activations: [],
    needsPixelNoise,
    seen,
    trainableVariables: () => [],
    loss: (ctx: ObjectiveContext) => {
      const l = ctx.latent;
      seen.push({
        x0: Array.from(ctx.x0.dataSync()),
        x0Shape: ctx.x0.shape,
        noisy: Array.from(ctx.noisy.dataSync()),
        timesteps: ctx.timesteps.slice(),
        pixelX0: l ? Array.from(l.pixelX0.dataSync()) : null,
        pixelNoiseShape: l?.pixelNoise ? l.pixelNoise.shape : null,
        alphaBars: l ? l.alphaBars.slice() : null,
        decoded: l ? Array.from(tf.tidy(() => l.decode(ctx.noisy)).dataSync()) : null,
      });
      const zero = tf.scalar(0) as tf.Scalar;
      return { total: zero, terms: {} };
    },
  };
}

describe('DiffusionTrainer in latent space (autoencoder)', () => {
  it('trains the U-Net on the scaled latents: the latent loss on a fixed noise draw drops in 40 steps', () => {
    const a = ae();
    const model = new UNet2DConditional(latentUNet, { seed: 1 });
    const sched = scheduler();
    const trainer = new DiffusionTrainer({ model, scheduler: sched, seed: 1, autoencoder: a, optimizer: { learningRate: 1e-2 }, lrSchedule: { type: 'constant', warmupSteps: 5 } });
    disposables.push(a, model, trainer);
    const x0 = patterns();
    const z0 = encodeToLatents({ model: a, images: x0 });
    const g = new Generator(7);
    const ze = tf.concat([z0, z0, z0, z0]) as tf.Tensor4D;
    const le = [...labels, ...labels, ...labels, ...labels];
    const noise = g.normal([32, 4, 4, 4]);
    const t = g.integers(32, 0, 1000);
    const evalLoss = () =>
      tf.tidy(() => {
        const zt = sched.addNoise(ze, noise, t) as tf.Tensor4D;
        return tf.mean(tf.squaredDifference(model.forward({ sample: zt, timesteps: t, classLabels: le }).sample, noise)).dataSync()[0];
      });
    const before = evalLoss();
    for (let i = 0; i < 40; i++) trainer.step({ x0, classLabels: labels });
    const after = evalLoss();
    expect(after).toBeLessThan(before / 2); // measured: 1.09 -> 0.38
    // The autoencoder stayed frozen: its latents of x0 are unchanged.
    const z1 = encodeToLatents({ model: a, images: x0 });
    expect(Array.from(z1.dataSync())).toEqual(Array.from(z0.dataSync()));
    tf.dispose([x0, z0, z1, ze, noise]);
  }, 300_000);

  it('leaks no tensors in a latent step (encoding on the fly, pre-encoded, micro-batches, pixel noise)', () => {
    const a = ae();
    const model = new UNet2DConditional(latentUNet, { seed: 2 });
    const spy = spyObjective(true);
    const trainer = new DiffusionTrainer({ model, scheduler: scheduler(), autoencoder: a, emaDecay: 0.99, gradClipNorm: 1, microBatchSize: 3, objectives: [spy] });
    disposables.push(a, model, trainer);
    const x0 = patterns();
    const z0 = encodeToLatents({ model: a, images: x0 });
    trainer.step({ x0, classLabels: labels });
    expect(leakedTensors(() => trainer.step({ x0, classLabels: labels }))).toBe(0);
    expect(leakedTensors(() => trainer.step({ x0, latents: z0, classLabels: labels }))).toBe(0);
    tf.dispose([x0, z0]);
  });

  it('gives exactly the same step with pre-encoded latents (encodeToLatents) as encoding each batch', () => {
    const x0 = patterns();
    const run = (preEncoded: boolean) => {
      const a = ae();
      const model = new UNet2DConditional(latentUNet, { seed: 3 });
      const trainer = new DiffusionTrainer({ model, scheduler: scheduler(), seed: 4, autoencoder: a, optimizer: { learningRate: 1e-3 } });
      const z0 = preEncoded ? encodeToLatents({ model: a, images: x0 }) : undefined;
      const losses = [0, 1].map(() => trainer.step({ x0, classLabels: labels, ...(z0 ? { latents: z0 } : {}) }).loss);
      const w = model.trainableVariables().map((v) => Array.from(v.dataSync()));
      z0?.dispose();
      trainer.dispose();
      model.dispose();
      a.dispose();
      return { losses, w };
    };
    const onTheFly = run(false);
    const pre = run(true);
    expect(pre.losses).toEqual(onTheFly.losses);
    pre.w.forEach((w, i) => expect(w).toEqual(onTheFly.w[i]));
    x0.dispose();
  });

  it('gives objectives the latents as x0/x_t and the pixel side in ctx.latent (pixels, alpha-bar_t, decode, pixel noise on request)', () => {
    const a = ae();
    const sched = scheduler();
    const x0 = patterns();
    const z0 = encodeToLatents({ model: a, images: x0 });
    for (const needsPixelNoise of [false, true]) {
      const model = new UNet2DConditional(latentUNet, { seed: 2 });
      const spy = spyObjective(needsPixelNoise);
      const trainer = new DiffusionTrainer({ model, scheduler: sched, autoencoder: a, objectives: [spy], seed: 9 });
      trainer.step({ x0, classLabels: labels });
      const s = spy.seen[0];
      expect(s.x0Shape).toEqual([8, 4, 4, 4]);
      expect(relMaxError(s.x0 as number[], z0.dataSync())).toBeLessThan(1e-6);
      expect(s.pixelX0).toEqual(Array.from(x0.dataSync()));
      expect(s.alphaBars).toEqual((s.timesteps as number[]).map((t) => sched.alphasCumprod[t]));
      expect(s.pixelNoiseShape).toEqual(needsPixelNoise ? [8, 16, 16, 1] : null);
      // decode is decodeLatents of the frozen autoencoder (decoder(z / scalingFactor)).
      const noisy = tf.tensor4d(s.noisy as number[], [8, 4, 4, 4]);
      const want = decodeLatents({ model: a, latents: noisy });
      expect(relMaxError(s.decoded as number[], want.dataSync())).toBeLessThan(1e-6);
      tf.dispose([noisy, want]);
      trainer.dispose();
      model.dispose();
    }
    a.dispose();
    tf.dispose([x0, z0]);
  });

  it('keeps the random stream of a latent step unchanged when no objective asks for pixel noise', () => {
    const x0 = patterns();
    const run = (objectives: TrainingObjective[]) => {
      const a = ae();
      const model = new UNet2DConditional(latentUNet, { seed: 3 });
      const trainer = new DiffusionTrainer({ model, scheduler: scheduler(), seed: 4, autoencoder: a, objectives });
      const losses = [0, 1, 2].map(() => trainer.step({ x0, classLabels: labels }).terms.diffusion);
      trainer.dispose();
      model.dispose();
      a.dispose();
      return losses;
    };
    const plain = run([]);
    expect(run([spyObjective(false)])).toEqual(plain);
    // Pixel noise is drawn after the step's draws: the first step is the same, later steps differ.
    const withNoise = run([spyObjective(true)]);
    expect(withNoise[0]).toEqual(plain[0]);
    expect(withNoise[1]).not.toEqual(plain[1]);
    x0.dispose();
  });

  it('validates the latent setup, naming the field', () => {
    const a = ae();
    const pixelModel = new UNet2DConditional({ ...latentUNet, inChannels: 1, outChannels: 1 }, { seed: 1 });
    const model = new UNet2DConditional(latentUNet, { seed: 1 });
    disposables.push(a, pixelModel, model);
    expect(() => new DiffusionTrainer({ model: pixelModel, scheduler: scheduler(), autoencoder: a })).toThrow(
      "DiffusionTrainer: with an autoencoder the model's inChannels must equal autoencoder.config.latentChannels (4), got 1",
    );
    expect(() => new DiffusionTrainer({ model, scheduler: scheduler(), autoencoder: {} as AutoencoderKL })).toThrow('autoencoder must be an AutoencoderKL');
    const trainer = new DiffusionTrainer({ model, scheduler: scheduler(), autoencoder: a });
    disposables.push(trainer);
    const small = tf.zeros([2, 8, 8, 1]) as tf.Tensor4D;
    expect(() => trainer.step({ x0: small, classLabels: [0, 1] })).toThrow('x0 must be pixel images [B,16,16,1]');
    const x0 = tf.zeros([2, 16, 16, 1]) as tf.Tensor4D;
    const badLatents = tf.zeros([2, 4, 4, 1]) as tf.Tensor4D;
    expect(() => trainer.step({ x0, latents: badLatents, classLabels: [0, 1] })).toThrow('latents must be [2,4,4,4]');
    const pixelTrainer = new DiffusionTrainer({ model: pixelModel, scheduler: scheduler() });
    disposables.push(pixelTrainer);
    expect(() => pixelTrainer.step({ x0: small, latents: badLatents, classLabels: [0, 1] })).toThrow('latents are only taken by a trainer with an autoencoder');
    tf.dispose([small, x0, badLatents]);
  });
});
