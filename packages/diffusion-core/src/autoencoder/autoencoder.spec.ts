import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors } from '../io/safetensors';
import { deserializeAutoencoder, serializeAutoencoder } from '../io/autoencoder-io';
import { loadAutoencoder, saveAutoencoder } from '../node';
import { Generator } from '../random';
import { leakedTensors, useCpuBackend } from '../testing/setup-cpu';
import { AutoencoderKL, sampleLatent } from './autoencoder';
import { AUTOENCODER_PRESETS, resolveAutoencoderConfig } from './autoencoder-config';
import { autoencoderLoss, klDivergence, ssimTensor } from './autoencoder-loss';
import { AutoencoderTrainer } from './autoencoder-trainer';
import { computeScalingFactor } from './scaling-factor';

beforeAll(useCpuBackend);

const disposables: Array<{ dispose(): void }> = [];
afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));

const tiny = AUTOENCODER_PRESETS.tiny;

/** n smooth s x s patterns in [-0.9, 0.9]: sinusoids of varying frequency, phase and offset. */
function patterns(n = 16, s = 16): tf.Tensor4D {
  const d = new Float32Array(n * s * s);
  for (let k = 0; k < n; k++) {
    const fx = (k % 4) + 1;
    const fy = Math.floor(k / 4) % 4;
    const off = 0.3 * Math.sin(k);
    for (let y = 0; y < s; y++)
      for (let x = 0; x < s; x++) {
        d[(k * s + y) * s + x] = Math.max(-0.9, Math.min(0.9, off + 0.6 * Math.sin((fx * x * Math.PI) / s + k) * Math.cos((fy * y * Math.PI) / s)));
      }
  }
  return tf.tensor4d(d, [n, s, s, 1]);
}

/** Independent SSIM reference in float64: direct 2-D windowed sums over every fully inside window. */
function ssimReference(x: Float32Array, y: Float32Array, h: number, w: number, dataRange: number, sigma = 1.5): number {
  const r = Math.trunc(3.5 * sigma + 0.5);
  const g: number[] = [];
  for (let t = -r; t <= r; t++) g.push(Math.exp((-t * t) / (2 * sigma * sigma)));
  const gs = g.reduce((a, b) => a + b, 0);
  const c1 = (0.01 * dataRange) ** 2;
  const c2 = (0.03 * dataRange) ** 2;
  let total = 0;
  let count = 0;
  for (let cy = r; cy < h - r; cy++)
    for (let cx = r; cx < w - r; cx++) {
      let mx = 0, my = 0, mxx = 0, myy = 0, mxy = 0;
      for (let dy = -r; dy <= r; dy++)
        for (let dx = -r; dx <= r; dx++) {
          const wt = (g[dy + r] * g[dx + r]) / (gs * gs);
          const a = x[(cy + dy) * w + cx + dx];
          const b = y[(cy + dy) * w + cx + dx];
          mx += wt * a; my += wt * b; mxx += wt * a * a; myy += wt * b * b; mxy += wt * a * b;
        }
      const vx = mxx - mx * mx, vy = myy - my * my, vxy = mxy - mx * my;
      total += ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      count++;
    }
  return total / count;
}

describe('AutoencoderKL config', () => {
  it('fills defaults and names the bad field, the value and what is expected', () => {
    expect(resolveAutoencoderConfig({})).toMatchObject({ inChannels: 1, latentChannels: 4, blockChannels: [32, 64, 64], scalingFactor: 1 });
    expect(() => resolveAutoencoderConfig({ latentChannels: 0 })).toThrow(/AutoencoderKLConfig.latentChannels must be a positive integer, got 0/);
    expect(() => resolveAutoencoderConfig({ blockChannels: [32, 60] })).toThrow(/blockChannels\[1\] must be divisible by normGroups \(8\), got 60/);
    expect(() => resolveAutoencoderConfig({ blockChannels: [] })).toThrow(/blockChannels must be a non-empty array/);
    expect(() => resolveAutoencoderConfig({ scalingFactor: -1 })).toThrow(/scalingFactor must be a positive finite number, got -1/);
    expect(() => resolveAutoencoderConfig({ latentChanels: 4 } as never)).toThrow(/unknown field "latentChanels"/);
  });
});

describe('AutoencoderKL', () => {
  it('maps [B,16,16,1] to 4x4x4 latents and back; the default config maps 64x64 to 16x16x4', () => {
    const m = new AutoencoderKL(tiny, { seed: 1 });
    disposables.push(m);
    expect(m.latentShape(16)).toEqual([4, 4, 4]);
    expect(() => m.latentShape(18)).toThrow(/18x18 must be positive and divisible by 4/);
    const x = patterns(2);
    const { mean, logVar } = m.encode(x);
    expect(mean.shape).toEqual([2, 4, 4, 4]);
    expect(logVar.shape).toEqual([2, 4, 4, 4]);
    const y = m.decode(mean);
    expect(y.shape).toEqual([2, 16, 16, 1]);
    expect(() => m.encode(tf.zeros([1, 16, 16, 3]) as tf.Tensor4D)).toThrow(/x must be NHWC \[B,H,W,1\], got shape \[1,16,16,3\]/);
    expect(() => m.decode(tf.zeros([1, 4, 4, 3]) as tf.Tensor4D)).toThrow(/z must be NHWC \[B,H,W,4\]/);
    tf.dispose([x, mean, logVar, y]);
    const big = new AutoencoderKL({}, { seed: 0 });
    disposables.push(big);
    expect(big.latentShape(64)).toEqual([16, 16, 4]);
    const names = big.namedParameters().map(([n]) => n);
    expect(names).toContain('encoder.downsample.1.weight');
    expect(names).toContain('decoder.upsample.1.weight');
    expect(names).not.toContain('encoder.downsample.2.weight');
  });

  it('forward without a generator decodes the mean (mode); with one, mean + exp(logVar/2) * eps of that generator', () => {
    const m = new AutoencoderKL(tiny, { seed: 2 });
    disposables.push(m);
    const x = patterns(2);
    const mode = m.forward({ x });
    expect(Array.from(mode.latent.dataSync())).toEqual(Array.from(mode.mean.dataSync()));
    const s = m.forward({ x, generator: new Generator(9) });
    const eps = new Generator(9).normal([2, 4, 4, 4]);
    const mu = s.mean.dataSync();
    const lv = s.logVar.dataSync();
    const e = eps.dataSync();
    const z = s.latent.dataSync();
    for (let i = 0; i < z.length; i++) expect(z[i]).toBeCloseTo(mu[i] + Math.exp(lv[i] / 2) * e[i], 5);
    const direct = m.decode(s.latent);
    expect(Array.from(direct.dataSync())).toEqual(Array.from(s.reconstruction.dataSync()));
    tf.dispose([x, eps, direct, ...Object.values(mode), ...Object.values(s)]);
  });

  it('sampleLatent draws with the given generator (same seed, same z)', () => {
    const mean = tf.tensor4d([0.5, -1, 2, 0], [1, 2, 2, 1]);
    const logVar = tf.tensor4d([0, Math.log(4), -2, 1], [1, 2, 2, 1]);
    const a = sampleLatent({ mean, logVar, generator: new Generator(3) });
    const b = sampleLatent({ mean, logVar, generator: new Generator(3) });
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    const g = new Generator(3);
    const want = [0.5, -1, 2, 0].map((m, i) => m + Math.exp([0, Math.log(4), -2, 1][i] / 2) * g.nextNormal());
    Array.from(a.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
    tf.dispose([mean, logVar, a, b]);
  });
});

describe('autoencoder loss', () => {
  it('KL equals 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2) per sample, by hand', () => {
    const mu = [0.5, -1, 0, 2, 0, 0, 0, 0];
    const lv = [0, Math.log(2), -1, 0, 0, 0, 0, 0];
    const mean = tf.tensor4d(mu, [2, 2, 1, 2]);
    const logVar = tf.tensor4d(lv, [2, 2, 1, 2]);
    const kl = klDivergence({ mean, logVar }).dataSync();
    // Sample 0: (0.25 + 1 - 1 - 0) + (1 + 2 - 1 - ln2) + (0 + e^-1 - 1 + 1) + (4 + 1 - 1 - 0), halved.
    const k0 = 0.5 * (0.25 + (2 - Math.log(2)) + Math.exp(-1) + 4);
    expect(kl[0]).toBeCloseTo(k0, 5);
    expect(kl[1]).toBeCloseTo(0, 6); // the prior itself
    tf.dispose([mean, logVar]);
  });

  it('ssimTensor matches an independent float64 SSIM (Gaussian 11x11, valid windows), is 1 for equal images and exact for constant images', () => {
    const x = patterns(3, 16);
    const g = new Generator(5);
    const noise = g.normal([3, 16, 16, 1]);
    const y = tf.tidy(() => tf.clipByValue(tf.add(x, tf.mul(noise, 0.2)), -1, 1)) as tf.Tensor4D;
    const s = ssimTensor({ x, y, dataRange: 2 }).dataSync();
    const xd = x.dataSync() as Float32Array;
    const yd = y.dataSync() as Float32Array;
    for (let b = 0; b < 3; b++) {
      const ref = ssimReference(xd.subarray(b * 256, (b + 1) * 256), yd.subarray(b * 256, (b + 1) * 256), 16, 16, 2);
      expect(Math.abs(s[b] - ref)).toBeLessThan(1e-4);
      expect(ref).toBeLessThan(0.95); // the check is not vacuous
    }
    const same = ssimTensor({ x, y: x, dataRange: 2 }).dataSync();
    same.forEach((v) => expect(v).toBeCloseTo(1, 5));
    // Constant images a and b: the variances vanish, SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    const a = tf.fill([1, 12, 12, 1], 0.2) as tf.Tensor4D;
    const c = tf.fill([1, 12, 12, 1], -0.4) as tf.Tensor4D;
    const c1 = (0.01 * 2) ** 2;
    expect(ssimTensor({ x: a, y: c, dataRange: 2 }).dataSync()[0]).toBeCloseTo((2 * 0.2 * -0.4 + c1) / (0.04 + 0.16 + c1), 4);
    expect(() => ssimTensor({ x: tf.zeros([1, 8, 8, 1]) as tf.Tensor4D, y: tf.zeros([1, 8, 8, 1]) as tf.Tensor4D, dataRange: 2 })).toThrow(/8x8 are smaller than the 11x11 window/);
    expect(() => ssimTensor({ x, y, dataRange: 0 })).toThrow(/dataRange must be a positive number/);
    tf.dispose([x, noise, y, a, c]);
  });

  it('adds the weighted terms: l1 + (1 - SSIM) + beta KL + w * perceptual, each checked by hand', () => {
    const x = patterns(2);
    const r = tf.tidy(() => tf.mul(x, 0.5)) as tf.Tensor4D;
    const mean = tf.fill([2, 4, 4, 4], 0.5) as tf.Tensor4D;
    const logVar = tf.zeros([2, 4, 4, 4]) as tf.Tensor4D;
    const pool = (t: tf.Tensor4D) => tf.mean(t, [1, 2]);
    const l = autoencoderLoss({ x, reconstruction: r, mean, logVar, weights: { l1: 2, ssim: 3, kl: 0.1, perceptual: 5 }, perceptual: pool });
    const xd = Array.from(x.dataSync());
    const l1 = xd.reduce((s, v) => s + Math.abs(v - 0.5 * v), 0) / xd.length;
    expect(l.terms.l1.dataSync()[0]).toBeCloseTo(l1, 5);
    const ssimMean = ssimTensor({ x, y: r, dataRange: 2 }).dataSync();
    expect(l.terms.ssim.dataSync()[0]).toBeCloseTo(1 - (ssimMean[0] + ssimMean[1]) / 2, 5);
    expect(l.terms.kl.dataSync()[0]).toBeCloseTo(0.5 * 64 * 0.25, 4); // 64 latent elements of mu = 0.5
    const m0 = xd.slice(0, 256).reduce((s, v) => s + v, 0) / 256;
    const m1 = xd.slice(256).reduce((s, v) => s + v, 0) / 256;
    const perc = ((0.5 * m0) ** 2 + (0.5 * m1) ** 2) / 2;
    expect(l.terms.perceptual?.dataSync()[0]).toBeCloseTo(perc, 5);
    const total = 2 * l1 + 3 * l.terms.ssim.dataSync()[0] + 0.1 * 8 + 5 * perc;
    expect(l.total.dataSync()[0]).toBeCloseTo(total, 4);
    expect(() => autoencoderLoss({ x, reconstruction: r, mean, logVar, weights: { perceptual: 1 } })).toThrow(/weights.perceptual > 0 needs params.perceptual/);
    expect(() => autoencoderLoss({ x, reconstruction: r, mean, logVar, weights: { kl: -1 } })).toThrow(/AutoencoderLossWeights.kl must be a finite number >= 0, got -1/);
    tf.dispose([x, r, mean, logVar, l.total, ...Object.values(l.terms)]);
  });
});

describe('computeScalingFactor', () => {
  it('scales the latents of a synthetic set to unit variance', () => {
    const m = new AutoencoderKL(tiny, { seed: 4 });
    disposables.push(m);
    const x = patterns(16);
    const sf = computeScalingFactor({ model: m, images: x, batchSize: 5 });
    const { mean, logVar } = m.encode(x);
    const z = Array.from(mean.dataSync()).map((v) => v * sf);
    const mu = z.reduce((s, v) => s + v, 0) / z.length;
    const variance = z.reduce((s, v) => s + (v - mu) ** 2, 0) / z.length;
    expect(variance).toBeCloseTo(1, 4);
    expect(Math.abs(sf - 1)).toBeGreaterThan(0.05); // the raw latents were not already unit variance
    m.setScalingFactor(sf);
    expect(m.config.scalingFactor).toBe(sf);
    expect(() => m.setScalingFactor(0)).toThrow(/scalingFactor must be a positive finite number, got 0/);
    // With a generator: the std of posterior samples, deterministic per seed.
    const s1 = computeScalingFactor({ model: m, images: x, generator: new Generator(1) });
    const s2 = computeScalingFactor({ model: m, images: x, generator: new Generator(1) });
    expect(s1).toBe(s2);
    expect(s1).toBeLessThan(sf); // samples add the posterior variance
    tf.dispose([x, mean, logVar]);
  });
});

describe('AutoencoderTrainer', () => {
  it('learns a toy set: reconstruction error ends well below predicting the mean image', () => {
    // 16 smooth 16x16 images, two levels (8x8x2 latents: half as many numbers as pixels) to keep
    // each step cheap on cpu. Measured: mean absolute error 0.14 after 60 steps, baseline 0.33.
    const m = new AutoencoderKL({ blockChannels: [8, 8], latentChannels: 2, normGroups: 4 }, { seed: 1 });
    const trainer = new AutoencoderTrainer({ model: m, optimizer: { learningRate: 5e-3 }, gradClipNorm: 1, seed: 1 });
    disposables.push(m, trainer);
    const x = patterns(16);
    // Baseline: every image predicted by the mean image.
    const baseline = tf.tidy(() => tf.mean(tf.abs(tf.sub(x, tf.mean(x, 0, true)))).dataSync()[0]);
    const err = () => tf.tidy(() => tf.mean(tf.abs(tf.sub(x, m.forward({ x }).reconstruction))).dataSync()[0]);
    const before = err();
    let last = trainer.step({ x });
    for (let i = 1; i < 60; i++) last = trainer.step({ x });
    const after = err();
    expect(after).toBeLessThan(0.5 * baseline);
    expect(after).toBeLessThan(before / 2);
    expect(last.step).toBe(60);
    expect(Object.keys(last.terms).sort()).toEqual(['kl', 'l1', 'ssim']);
    expect(last.terms.ssim).toBeLessThan(0.3);
    tf.dispose(x);
  }, 300_000);

  it('resumes exactly: getState/setState and the weights continue like an uninterrupted run', () => {
    const x = patterns(4);
    const run = (split: boolean) => {
      const m = new AutoencoderKL(tiny, { seed: 3 });
      let t = new AutoencoderTrainer({ model: m, optimizer: { learningRate: 1e-3 }, gradClipNorm: 1, seed: 5 });
      for (let i = 0; i < 3; i++) t.step({ x });
      if (split) {
        const state = t.getState();
        const weights = m.stateDict();
        t.dispose();
        m.loadStateDict(weights);
        t = new AutoencoderTrainer({ model: m, optimizer: { learningRate: 1e-3 }, gradClipNorm: 1, seed: 77 });
        t.setState(state);
      }
      const r = t.step({ x });
      const w = Array.from(m.namedParameters()[0][1].dataSync());
      t.dispose();
      m.dispose();
      return { loss: r.loss, w };
    };
    const a = run(false);
    const b = run(true);
    expect(b.loss).toBe(a.loss);
    expect(b.w).toEqual(a.w);
    tf.dispose(x);
  });

  it('validates its params, naming the field', () => {
    const m = new AutoencoderKL(tiny);
    disposables.push(m);
    expect(() => new AutoencoderTrainer({ model: m, gradClipNorm: 0 })).toThrow(/gradClipNorm must be > 0 or null, got 0/);
    expect(() => new AutoencoderTrainer({ model: m, lossWeights: { perceptual: 1 } })).toThrow(/lossWeights.perceptual > 0 needs params.perceptual/);
    expect(() => new AutoencoderTrainer({ model: m, seed: -1 })).toThrow(/seed must be an integer/);
    const t = new AutoencoderTrainer({ model: m });
    disposables.push(t);
    expect(() => t.step({ x: tf.zeros([1, 16, 16, 2]) as tf.Tensor4D })).toThrow(/x must be \[B,H,W,1\], got \[1,16,16,2\]/);
  });
});

describe('autoencoder save and load', () => {
  it('round-trips weights and config (with the scaling factor) bit-exactly', async () => {
    const m = new AutoencoderKL(tiny, { seed: 6 });
    m.setScalingFactor(0.37);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fad-ae-'));
    const file = path.join(dir, 'autoencoder.safetensors');
    await saveAutoencoder(m, file, { note: 'test' });
    expect(fs.readdirSync(dir)).toEqual(['autoencoder.safetensors']);
    const { model: back, metadata } = await loadAutoencoder(file);
    disposables.push(m, back);
    expect(metadata.note).toBe('test');
    expect(metadata.format).toBe('fad-autoencoder/1');
    expect(back.config).toEqual(m.config);
    expect(back.config.scalingFactor).toBe(0.37);
    const sd1 = m.stateDict();
    const sd2 = back.stateDict();
    for (const k of Object.keys(sd1)) expect(Array.from(sd2[k].data)).toEqual(Array.from(sd1[k].data));
    const x = patterns(2);
    const a = m.forward({ x }).reconstruction;
    const b = back.forward({ x }).reconstruction;
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([x]);
    fs.rmSync(dir, { recursive: true });
  });

  it('refuses bad metadata, naming the field, and frees a half-built model', async () => {
    const m = new AutoencoderKL(tiny);
    disposables.push(m);
    const f = decodeSafetensors(serializeAutoencoder(m));
    const withMeta = (meta: Record<string, string>) => encodeSafetensors({ tensors: f.tensors, metadata: meta });
    expect(() => deserializeAutoencoder(withMeta({ ...f.metadata, format: 'fad-unet/1' }))).toThrow(/metadata.format is "fad-unet\/1", expected "fad-autoencoder\/1"/);
    expect(() => deserializeAutoencoder(withMeta({ format: 'fad-autoencoder/1' }))).toThrow(/metadata.config is missing/);
    expect(() => deserializeAutoencoder(withMeta({ ...f.metadata, config: '{' }))).toThrow(/metadata.config is not valid JSON/);
    const cfg = JSON.parse(f.metadata.config);
    expect(() => deserializeAutoencoder(withMeta({ ...f.metadata, config: JSON.stringify({ ...cfg, latentChannels: 'four' }) }))).toThrow(/metadata.config: AutoencoderKLConfig.latentChannels must be a positive integer, got "four"/);
    const before = tf.memory().numTensors;
    expect(() => deserializeAutoencoder(withMeta({ ...f.metadata, config: JSON.stringify({ ...cfg, latentChannels: 8 }) }))).toThrow(/does not match the model's/);
    expect(tf.memory().numTensors).toBe(before);
    await expect(loadAutoencoder('/nonexistent/ae.safetensors')).rejects.toThrow(/cannot read \/nonexistent\/ae.safetensors/);
  });
});

describe('autoencoder tensor leaks', () => {
  it('forward, encode/decode, the loss and a train step leave no tensor behind', () => {
    const m = new AutoencoderKL(tiny, { seed: 1 });
    const x = patterns(2);
    disposables.push(m);
    expect(leakedTensors(() => {
      const r = m.forward({ x, generator: new Generator(1) });
      tf.dispose(Object.values(r));
    })).toBe(0);
    expect(leakedTensors(() => {
      const l = autoencoderLoss({ x, reconstruction: x, mean: x, logVar: x, perceptual: (t) => tf.mean(t, [1, 2]), weights: { perceptual: 1 } });
      tf.dispose([l.total, ...Object.values(l.terms)]);
    })).toBe(0);
    expect(leakedTensors(() => computeScalingFactor({ model: m, images: x }))).toBe(0);
    const t = new AutoencoderTrainer({ model: m, gradClipNorm: 1, perceptual: (v) => tf.mean(v, [1, 2]), lossWeights: { perceptual: 0.5 } });
    disposables.push(t);
    t.step({ x });
    expect(leakedTensors(() => t.step({ x }))).toBe(0);
    tf.dispose(x);
  });
});
