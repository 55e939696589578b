/**
 * `generateImages` in process (no build needed): expert guidance of every kind, two-stage, the
 * manifest's guidance record and per-step timing, and the errors. Tiny models (8x8, 2-3 steps).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { UNET_PRESETS, UNet2DConditional, serializeUNet } from '@fad/diffusion-core';
import { createExpert } from '@fad/expert-models';
import { saveExpert } from '@fad/expert-models/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from './config';
import { generateImages, readGenerateTiming } from './generate';

const root = mkdtempSync(join(tmpdir(), 'fad-generate-'));
const modelPath = join(root, 'model.safetensors');
const expertPath = join(root, 'expert.safetensors');
const noisyExpertPath = join(root, 'expert-noisy.safetensors');
const classes = ['stripes', 'rings', 'checker'];

beforeAll(async () => {
  await tf.setBackend('cpu');
  const unet = new UNet2DConditional({ ...UNET_PRESETS.tiny, sampleSize: 8, numClasses: 3, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' }, { seed: 1 });
  writeFileSync(modelPath, serializeUNet(unet, { classes: JSON.stringify(classes) }));
  unet.dispose();
  // The expert orders its classes differently: classifier guidance must map them by name.
  const expert = createExpert({ config: { arch: 'resnet', block: 'basic', layers: [1], baseWidth: 4, numClasses: 3, input: { size: 8, channels: 1, range: [0, 1] } }, classNames: ['rings', 'checker', 'stripes'], seed: 2 });
  await saveExpert({ expert, path: expertPath });
  await saveExpert({ expert, path: noisyExpertPath, metadata: { training: JSON.stringify({ epoch: 1, noiseAware: true }) } });
  expert.dispose();
});

const gen = (extra: Record<string, unknown> = {}) => parseConfig({ generate: { steps: 2, imagesPerClass: 2, seeds: [0], batchSize: 4, ...extra } }).generate;
const run = (name: string, extra: Record<string, unknown> = {}, log: (m: string) => void = () => {}) =>
  generateImages({ checkpoint: modelPath, out: join(root, name), gen: gen(extra), backend: 'cpu', quiet: true, log });
const pixels = (name: string, file: string) => readFileSync(join(root, name, file));

describe('generateImages with expert guidance', () => {
  it('without guidance records no guidance and the ms per step', async () => {
    const m = await run('plain');
    expect(m.expertGuidance).toBeNull();
    // Wall times live in timing.json, not in the (reproducible) manifest.
    expect(Object.keys(JSON.parse(readFileSync(join(root, 'plain', 'manifest.json'), 'utf8')))).not.toEqual(expect.arrayContaining(['timing']));
    expect(m).not.toHaveProperty('createdAt');
    const t = readGenerateTiming(join(root, 'plain'))!;
    expect(t.timing).toMatchObject({ steps: 4, guidanceMsPerStep: 0, batchSize: 4 }); // 6 images in batches of 4 and 2, 2 steps each
    expect(t.timing!.msPerStep).toBeGreaterThan(0);
    expect(t.elapsedSeconds).toBeGreaterThan(0);
  });

  it('every kind changes the images, maps classifier labels by name, records kind, scale, expert and guidance ms per step', async () => {
    const before = tf.memory().numTensors;
    const notes: string[] = [];
    for (const kind of ['classifier', 'entropy', 'margin', 'least-confidence'] as const) {
      const m = await run(kind, { expertGuidance: { kind, scale: 200, expert: kind === 'entropy' ? noisyExpertPath : expertPath } }, (s) => notes.push(s));
      expect(m.expertGuidance).toMatchObject({ kind, scale: 200, twoStage: false, expertNoiseAware: kind === 'entropy' });
      expect(m.expertGuidance!.expertSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(m.expertGuidance!.labelMap).toEqual(kind === 'classifier' ? [2, 0, 1] : null);
      const t = readGenerateTiming(join(root, kind))!.timing!;
      expect(t.guidanceMsPerStep).toBeGreaterThan(0);
      expect(t.unguidedMsPerStep).toBeCloseTo(t.msPerStep - t.guidanceMsPerStep, 6);
      expect(pixels(kind, 'rings/s0-000.png').equals(pixels('plain', 'rings/s0-000.png')), kind).toBe(false);
    }
    expect(notes.filter((n) => /not trained noise-aware/.test(n))).toHaveLength(3);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('scale 0 writes the same images as no guidance; two-stage runs with DDIM and is recorded', async () => {
    await run('zero', { expertGuidance: { kind: 'margin', scale: 0, expert: expertPath } });
    expect(pixels('zero', 'checker/s0-001.png').equals(pixels('plain', 'checker/s0-001.png'))).toBe(true);
    const m = await run('two-stage', { steps: 3, expertGuidance: { kind: 'entropy', scale: 100, expert: expertPath, twoStage: true } });
    expect(m.expertGuidance).toMatchObject({ kind: 'entropy', twoStage: true });
    expect(readGenerateTiming(join(root, 'two-stage'))!.timing!.steps).toBe(2 * 2 * 3); // two sampling stages x 2 batches x 3 steps (inversion not counted)
  });

  it('samples with any registered sampler name (dpm-solver++) and records the sampler and its full config', async () => {
    const before = tf.memory().numTensors;
    const m = await run('dpm', { sampler: 'dpm-solver++', steps: 3 });
    expect(m.sampler).toBe('dpm-solver++');
    expect(m.samplerConfig).toMatchObject({ _class: 'DPMSolverMultistepScheduler', algorithmType: 'dpmsolver++', solverOrder: 2, timestepSpacing: 'linspace' });
    expect(readGenerateTiming(join(root, 'dpm'))!.timing!.steps).toBe(2 * 3);
    expect(JSON.parse(readFileSync(join(root, 'dpm', 'manifest.json'), 'utf8')).samplerConfig).toEqual(m.samplerConfig);
    expect(pixels('dpm', 'rings/s0-000.png').equals(pixels('plain', 'rings/s0-000.png'))).toBe(false);
    expect(tf.memory().numTensors).toBe(before);
    const ddim = JSON.parse(readFileSync(join(root, 'plain', 'manifest.json'), 'utf8'));
    expect(ddim).toMatchObject({ sampler: 'ddim', samplerConfig: { _class: 'DDIMScheduler', setAlphaToOne: true } });
    await expect(run('e-dpm', { sampler: 'dpm-solver++', expertGuidance: { kind: 'entropy', expert: expertPath } })).rejects.toThrow(
      /--guidance entropy needs --sampler ddim or ddpm \(the guided update uses their formulas\), got dpm-solver\+\+/,
    );
    expect(() => parseConfig({ generate: { sampler: 'euler' } })).toThrow(/generate\.sampler: must be one of "ddim", "ddpm", "dpm-solver\+\+", "dpm-solver", got "euler"/);
  });

  it('explains what is wrong', async () => {
    await expect(run('e1', { expertGuidance: { kind: 'entropy' } })).rejects.toThrow(/--guidance entropy needs the guiding expert: --guidance-expert FILE/);
    await expect(run('e2', { sampler: 'ddpm', expertGuidance: { kind: 'entropy', expert: expertPath, twoStage: true } })).rejects.toThrow(/--two-stage needs --sampler ddim/);
    const other = join(root, 'other.safetensors');
    const e = createExpert({ config: { arch: 'resnet', block: 'basic', layers: [1], baseWidth: 4, numClasses: 3, input: { size: 8, channels: 1, range: [0, 1] } }, classNames: ['a', 'rings', 'b'] });
    await saveExpert({ expert: e, path: other });
    e.dispose();
    await expect(run('e3', { expertGuidance: { kind: 'classifier', expert: other } })).rejects.toThrow(/--guidance classifier: the expert .* has no class named "stripes", "checker" \(its classes: a, rings, b\)/);
    expect(() => parseConfig({ generate: { expertGuidance: { kind: 'hardness' } } })).toThrow(/generate\.expertGuidance\.kind: must be one of "none", "classifier", "entropy", "margin", "least-confidence", got "hardness"/);
  });
});

describe('generateImages with rescaled classifier-free guidance', () => {
  it('generate.guidanceRescale reaches the sampler (other images than plain guidance), is recorded, and is checked by key', async () => {
    const plain = await run('cfg3', { guidanceScale: 3 });
    expect(plain.guidanceRescale).toBeUndefined();
    const m = await run('cfg3-rescaled', { guidanceScale: 3, guidanceRescale: 0.7 });
    expect(m.guidanceRescale).toBe(0.7);
    expect(pixels('cfg3-rescaled', 'rings/s0-000.png').equals(pixels('cfg3', 'rings/s0-000.png'))).toBe(false);
    expect(() => gen({ guidanceRescale: 1.5 })).toThrow(/generate\.guidanceRescale/);
  });
});
