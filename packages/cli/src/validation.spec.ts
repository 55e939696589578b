/**
 * Validation samples while training, in process (no build needed): a tiny run with
 * `diffusion.validation.every: 2` writes one grid PNG per validation (rows = classes), appends its
 * records (per-class intensity that matches the PNG, the judge's accuracy, the seconds) to
 * metrics.jsonl, samples the EMA weights, and ends with exactly the weights of a run without
 * validation; the default config keeps the step key of before.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { decodeSafetensors, deserializeUNet, sampleClassGrid } from '@fad/diffusion-core';
import { createExpert } from '@fad/expert-models';
import { saveExpert } from '@fad/expert-models/node';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from './config';
import { type TrainingData, diffusionStepKey, makeScheduler, pickData, schedulerConfig, trainDiffusion } from './diffusion';
import { stepKey, sha256 } from './fsutil';

const S = 8;
const classNames = ['dark', 'mid', 'bright'];
const root = mkdtempSync(join(tmpdir(), 'fad-validation-'));
const judgePath = join(root, 'judge.safetensors');

function tinyData(): TrainingData {
  const n = 12;
  const images = new Float32Array(n * S * S);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 3;
    for (let k = 0; k < S * S; k++) images[i * S * S + k] = Math.min(1, 0.1 + 0.4 * labels[i] + 0.05 * Math.sin(k + i));
  }
  return { images, labels, imageSize: S, channels: 1, indices: Array.from({ length: n }, (_, i) => i), classNames, fingerprint: 'tiny' };
}

const baseConfig = {
  data: { imageSize: S, channels: 1 },
  diffusion: {
    unet: { preset: 'tiny', overrides: { blockChannels: [8, 16], normGroups: 4, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' } },
    steps: 4, batchSize: 4, learningRate: 0.002, warmupSteps: 1, checkpointEvery: 100, logEvery: 2, emaDecay: 0.9,
  },
};
const validation = { every: 2, seed: 5, imagesPerClass: 2, steps: 2, sampler: 'ddim', guidanceScale: 1 };
const train = (dir: string, diffusionExtra: Record<string, unknown>, logs: string[] = []) =>
  trainDiffusion({ cfg: parseConfig({ ...baseConfig, diffusion: { ...baseConfig.diffusion, ...diffusionExtra } }), data: tinyData(), dir, resume: false, backend: 'cpu', log: (m) => logs.push(m), quiet: true });
const lines = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const weights = (dir: string) => decodeSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors')))).tensors;

beforeAll(async () => {
  await tf.setBackend('cpu');
  const judge = createExpert({ config: { arch: 'resnet', block: 'basic', layers: [1], baseWidth: 4, numClasses: 2, input: { size: S, channels: 1, range: [0, 1] } }, classNames: ['bright', 'dark'], seed: 1 });
  await saveExpert({ expert: judge, path: judgePath });
  judge.dispose();
});

describe('fad train with diffusion.validation', () => {
  it('writes a grid per validation and its records, and trains exactly the weights of a run without it', async () => {
    const before = tf.memory().numTensors;
    const logs: string[] = [];
    const on = join(root, 'on');
    const off = join(root, 'off');
    const a = await train(on, { validation: { ...validation, judge: judgePath } }, logs);
    const b = await train(off, {});
    expect(tf.memory().numTensors).toBe(before);

    // Bit-identical weights (the model files differ only in their step key metadata) and losses.
    const wa = weights(on);
    const wb = weights(off);
    expect(Object.keys(wa).sort()).toEqual(Object.keys(wb).sort());
    for (const k of Object.keys(wb)) expect(Buffer.from(wa[k].data.buffer).equals(Buffer.from(wb[k].data.buffer)), k).toBe(true);
    expect(a.finalLoss).toBe(b.finalLoss);
    expect(a.key).not.toBe(b.key);
    const strip = (l: Record<string, unknown>) => ({ ...l, time: undefined });
    expect(lines(on).filter((l) => !l.validation).map(strip)).toEqual(lines(off).map(strip));
    expect(existsSync(join(off, 'validation'))).toBe(false);

    // Grids at steps 2 and 4: rows = 3 classes, columns = 2 images per class.
    const records = lines(on).filter((l) => l.validation);
    expect(records.map((r) => r.step)).toEqual([2, 4]);
    for (const r of records) {
      const file = join(on, r.validation.file);
      expect(r.validation.file).toBe(`validation/step-00000${r.step}.png`);
      const meta = await sharp(file).metadata();
      expect([meta.width, meta.height, meta.channels, meta.format]).toEqual([2 * S, 3 * S, 1, 'png']);
      expect(r.validation).toMatchObject({ weights: 'ema', seed: 5, imagesPerClass: 2, judge: judgePath });
      expect(r.validation.seconds).toBeGreaterThan(0);
      // The record's per-class mean intensity is that of the PNG's rows (to 8-bit rounding).
      const { data } = await sharp(file).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
      expect(r.validation.perClass.map((c: { class: string }) => c.class)).toEqual(classNames);
      r.validation.perClass.forEach((c: { mean: number; contrast: number }, row: number) => {
        let sum = 0;
        for (let k = row * S * 2 * S; k < (row + 1) * S * 2 * S; k++) sum += data[k] / 255;
        expect(Math.abs(c.mean - sum / (2 * S * S))).toBeLessThan(0.5 / 255 + 1e-6);
        expect(c.contrast).toBeGreaterThanOrEqual(0);
      });
      const m = r.validation.perClass.reduce((x: number, c: { mean: number }) => x + c.mean, 0) / 3;
      expect(r.validation.overall.mean).toBeCloseTo(m, 10);
      // The judge knows "dark" and "bright" only: its accuracy is over those 4 images.
      const pc = r.validation.judgePerClass;
      expect(pc.map((c: { class: string }) => c.class)).toEqual(classNames);
      expect(pc[1].accuracy).toBeNull();
      expect(r.validation.judgeAccuracy).toBeCloseTo((pc[0].accuracy + pc[2].accuracy) / 2, 12);
      expect(r.validation.judgeAccuracy * 4).toBeCloseTo(Math.round(r.validation.judgeAccuracy * 4), 12);
    }
    expect(logs.filter((l) => /^fad: validation at step [24] \(EMA weights, [\d.]+ s\): mean intensity dark [\d.]+, mid [\d.]+, bright [\d.]+; judge accuracy [\d.]+% -> validation\/step-00000[24]\.png$/.test(l))).toHaveLength(2);

    // The last grid is a sample of the saved (EMA) model with the grid's seed.
    const { model } = deserializeUNet(new Uint8Array(readFileSync(join(on, 'model.safetensors'))));
    const cfg = parseConfig(baseConfig);
    const g = await sampleClassGrid({ model, scheduler: makeScheduler('ddim', schedulerConfig(cfg.diffusion)), classLabels: [0, 1, 2], imagesPerClass: 2, numInferenceSteps: 2, seed: 5 });
    const ref = g.images.dataSync();
    const { data: png } = await sharp(join(on, 'validation', 'step-000004.png')).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    // Image r*2+c sits at rows r*S.., columns c*S..
    let maxDiff = 0;
    for (let i = 0; i < 6; i++) {
      const r = Math.floor(i / 2);
      const c = i % 2;
      for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) maxDiff = Math.max(maxDiff, Math.abs(png[(r * S + y) * 2 * S + c * S + x] - Math.round(ref[i * S * S + y * S + x] * 255)));
    }
    expect(maxDiff).toBe(0);
    g.images.dispose();
    model.dispose();
  }, 120_000);

  it('leaves the step key of a config without validation (or with every: 0) as it was', () => {
    const cfg = parseConfig(baseConfig);
    expect('validation' in cfg.diffusion).toBe(false);
    const data = tinyData();
    // The key as computed before diffusion.validation existed.
    const { noiseOffset: _n, snrGamma: _s, space: _sp, autoencoder: _ae, pretrainedDiffusers: _pd, emaWarmup: _ew, scheduler: { rescaleBetasZeroSnr: _r, ...scheduler }, ...diffusion } = cfg.diffusion;
    const before = stepKey('train-diffusion', { data: pickData(cfg.data), diffusion: { ...diffusion, scheduler, checkpointEvery: undefined }, alignment: { enabled: false } }, { data: data.fingerprint, split: sha256(JSON.stringify(data.indices)), expert: '' });
    expect(diffusionStepKey(cfg, data, null)).toBe(before);
    const zero = parseConfig({ ...baseConfig, diffusion: { ...baseConfig.diffusion, validation: { every: 0 } } });
    expect(zero.diffusion.validation).toMatchObject({ every: 0, imagesPerClass: 4, sampler: 'ddim', judge: null });
    expect(diffusionStepKey(zero, data, null)).toBe(before);
    const on = parseConfig({ ...baseConfig, diffusion: { ...baseConfig.diffusion, validation: { every: 2 } } });
    expect(diffusionStepKey(on, data, null)).not.toBe(before);
  });

  it('explains a bad judge and bad settings', async () => {
    const other = join(root, 'other.safetensors');
    const e = createExpert({ config: { arch: 'resnet', block: 'basic', layers: [1], baseWidth: 4, numClasses: 2, input: { size: S, channels: 1, range: [0, 1] } }, classNames: ['x', 'y'] });
    await saveExpert({ expert: e, path: other });
    e.dispose();
    const before = tf.memory().numTensors;
    await expect(train(join(root, 'bad'), { validation: { every: 2, judge: other } })).rejects.toThrow(/diffusion\.validation\.judge .* knows none of the classes \(dark, mid, bright\); its classes: x, y/);
    await expect(train(join(root, 'bad2'), { validation: { every: 2, judge: join(root, 'nope.safetensors') } })).rejects.toThrow(/cannot read the expert checkpoint .*nope\.safetensors: no such file/);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => parseConfig({ diffusion: { validation: { every: -1 } } })).toThrow(/diffusion\.validation\.every/);
    expect(() => parseConfig({ diffusion: { validation: { evry: 2 } } })).toThrow(/unknown key "evry"/);
  });
});
