/**
 * `generateDreamBooth` in process (no build needed): the images are sampled with the token but filed
 * and recorded as its class, the manifest has the token and none of `fad generate`'s class filter,
 * match-mean filter or guidance record. Tiny model (8x8, 2 steps).
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { UNET_PRESETS, UNet2DConditional, addConditioningToken, serializeUNet } from '@fad/diffusion-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from './config';
import { dreamBoothStepKey, generateDreamBooth } from './dreambooth';
import { generateImages } from './generate';

const root = mkdtempSync(join(tmpdir(), 'fad-dreambooth-'));
const modelPath = join(root, 'model.safetensors');
const plainPath = join(root, 'plain.safetensors');
const classes = ['stripes', 'rings', 'checker'];
// The token is bound to "rings" but starts from "checker"'s embedding: its images are checker's.
const info = { class: 'rings', classLabel: 1, token: 'sks', tokenLabel: 4 }; // after the 3 classes and the null class

beforeAll(async () => {
  await tf.setBackend('cpu');
  const unet = new UNet2DConditional({ ...UNET_PRESETS.tiny, sampleSize: 8, numClasses: 3, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' }, { seed: 1 });
  writeFileSync(plainPath, serializeUNet(unet, { classes: JSON.stringify(classes) }));
  const withToken = addConditioningToken({ model: unet, fromClass: 2, name: info.token });
  unet.dispose();
  expect(withToken.label).toBe(info.tokenLabel);
  writeFileSync(modelPath, serializeUNet(withToken.model, { classes: JSON.stringify(classes), dreambooth: JSON.stringify({ ...info, settings: { steps: 1 } }) }));
  withToken.model.dispose();
});

const gen = (extra: Record<string, unknown> = {}) => parseConfig({ generate: { steps: 2, imagesPerClass: 3, seeds: [0, 1], batchSize: 2, ...extra } }).generate;
const pngs = (dir: string) => readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.png')).sort();

describe('generateDreamBooth', () => {
  it('samples with the token into the class folder, with a manifest that records the token', async () => {
    const out = join(root, 'db');
    // Settings of `fad generate` that do not apply to the token's images.
    const extra = { classes: ['stripes'], matchMean: { enabled: true }, expertGuidance: { kind: 'classifier', expert: join(root, 'none.safetensors') } };
    const m = await generateDreamBooth({ checkpoint: modelPath, out, gen: gen(extra), backend: 'cpu', key: 'k1', quiet: true });
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))).toEqual(m);
    expect(Object.keys(m)).toEqual([
      'format', 'checkpoint', 'checkpointSha256', 'classNames', 'generatedClasses', 'sampler', 'samplerConfig', 'steps', 'guidanceScale', 'eta', 'seeds',
      'imagesPerClass', 'batchSize', 'imageSize', 'channels', 'matchMean', 'backend', 'images', 'dreambooth', 'key',
    ]);
    expect(m).toMatchObject({ classNames: classes, generatedClasses: ['rings'], matchMean: null, dreambooth: { ...info, settings: { steps: 1 } }, key: 'k1' });
    expect(m.images.map((i) => [i.file, i.class, i.label, i.seed, i.index])).toEqual([0, 1].flatMap((seed) => [0, 1, 2].map((index) => [`rings/s${seed}-00${index}.png`, 'rings', 1, seed, index])));
    expect(m.images.every((i) => !('matchMean' in i))).toBe(true);
    // The same draws conditioned on "checker" give the same pixels: the images were sampled with the token.
    const plain = join(root, 'plain');
    await generateImages({ checkpoint: plainPath, out: plain, gen: gen({ classes: ['checker'] }), backend: 'cpu', quiet: true, log: () => {} });
    expect(pngs(out)).toHaveLength(6);
    for (const f of pngs(out)) expect(readFileSync(join(out, f)).equals(readFileSync(join(plain, f.replace('rings', 'checker')))), f).toBe(true);
    // An existing folder is replaced.
    await generateDreamBooth({ checkpoint: modelPath, out, gen: gen({ seeds: [2] }), backend: 'cpu', quiet: true });
    expect(pngs(out)).toEqual(['rings/s2-000.png', 'rings/s2-001.png', 'rings/s2-002.png']);
  });

  it('refuses a model without a DreamBooth token and leaves nothing behind', async () => {
    const out = join(root, 'not-db');
    await expect(generateDreamBooth({ checkpoint: plainPath, out, gen: gen(), backend: 'cpu', quiet: true })).rejects.toThrow(`${plainPath} is not a DreamBooth model (no dreambooth metadata); train one with fad train --dreambooth`);
    expect(readdirSync(root).filter((f) => f.startsWith('not-db'))).toEqual([]);
    expect(existsSync(out)).toBe(false);
  });
});

describe('dreamBoothStepKey', () => {
  it('keeps the keys of earlier runs (pinned values: a changed key redoes every DreamBooth run)', () => {
    const data = { fingerprint: 'fp', indices: [0, 1, 2] } as unknown as Parameters<typeof dreamBoothStepKey>[1];
    expect(dreamBoothStepKey(parseConfig({ dreambooth: { class: 'rings' } }), data, 'p', null)).toBe('a039f4752caa6f9c');
    expect(dreamBoothStepKey(parseConfig({ dreambooth: { class: 'rings', withPriorPreservation: false }, alignment: { enabled: true } }), data, 'p', 'e')).toBe('0dac2beea9d09385');
  });
});
