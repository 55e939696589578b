import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleImages } from '../pipeline/sample';
import { Generator } from '../random';
import { DDIMScheduler } from '../schedulers';
import { useCpuBackend } from '../testing/setup-cpu';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { type GenerateImageSetParams, generateImageSet, prepareGeneratedSet } from './generate-image-set';
import type { GeneratedSetManifest } from './generated-set';
import { GenerationRunError } from './generation-run-error';
import { mergeGeneratedShards } from './merge-generated-shards';

beforeAll(useCpuBackend);

/** A small, attention-free U-Net at 8x8, one channel, 4 classes. */
const small = { ...UNET_PRESETS.tiny, sampleSize: 8, inChannels: 1, outChannels: 1, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };
const classNames = ['a', 'b', 'c', 'd'];
let model: UNet2DConditional;
const root = mkdtempSync(join(tmpdir(), 'fad-gen-'));
beforeAll(() => {
  model = new UNet2DConditional(small, { seed: 3 });
});
afterAll(() => {
  model?.dispose();
  rmSync(root, { recursive: true, force: true });
});

const scheduler = () => new DDIMScheduler({ betaSchedule: 'linear', clipSample: true });
function params(out: string, over: Partial<GenerateImageSetParams> = {}): GenerateImageSetParams {
  return {
    model, scheduler: scheduler(), sampler: 'ddim', classNames, classes: ['b', 'd'], seeds: [7, 11], imagesPerClass: 3, batchSize: 4, steps: 3,
    guidanceScale: 1, eta: 0.5, out, checkpoint: 'm.safetensors', checkpointSha256: 'abc', backend: 'cpu', ...over,
  };
}

/** The 8-bit pixels of a PNG file. */
async function pngBytes(path: string): Promise<Uint8Array> {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  return info.channels === 1 ? new Uint8Array(data) : Uint8Array.from({ length: data.length / info.channels }, (_, i) => data[i * info.channels]);
}

describe('generateImageSet', () => {
  it('writes the images sampleImages makes with one Generator per seed (class-major slots, in batches), and the manifest', async () => {
    const out = join(root, 'set');
    const before = tf.memory().numTensors;
    const { manifest, dir } = await generateImageSet(params(out));
    expect(tf.memory().numTensors).toBe(before);
    expect(dir).toBe(out);
    expect(readdirSync(root).filter((n) => n.includes('.tmp-'))).toEqual([]);
    // Independent reference: sampleImages directly, same seeds, slots (b,0..2),(d,0..2) in batches of 4.
    for (const seed of [7, 11]) {
      const g = new Generator(seed);
      const slots = [1, 3].flatMap((label) => [0, 1, 2].map((index) => ({ label, index })));
      for (let s = 0; s < slots.length; s += 4) {
        const chunk = slots.slice(s, s + 4);
        const x = await sampleImages({ model, scheduler: scheduler(), classLabels: chunk.map((c) => c.label), numInferenceSteps: 3, guidanceScale: 1, eta: 0.5, generator: g });
        const px = x.dataSync() as Float32Array;
        x.dispose();
        for (const [i, slot] of chunk.entries()) {
          const want = Uint8Array.from(px.slice(i * 64, (i + 1) * 64), (v) => Math.max(0, Math.min(255, Math.round(v * 255))));
          const file = `${classNames[slot.label]}/s${seed}-${String(slot.index).padStart(3, '0')}.png`;
          expect(await pngBytes(join(out, file)), file).toEqual(want);
          const img = manifest.images.find((m) => m.file === file)!;
          expect(img.mean).toBeCloseTo(px.slice(i * 64, (i + 1) * 64).reduce((a, b) => a + b, 0) / 64, 6);
          expect(img).toMatchObject({ class: classNames[slot.label], label: slot.label, seed, index: slot.index });
        }
      }
    }
    expect(manifest).toMatchObject({
      format: 'fad-generated/1', checkpoint: 'm.safetensors', checkpointSha256: 'abc', classNames, generatedClasses: ['b', 'd'], sampler: 'ddim', steps: 3, eta: 0.5,
      seeds: [7, 11], imagesPerClass: 3, batchSize: 4, imageSize: 8, channels: 1, matchMean: null, expertGuidance: null, backend: 'cpu',
    });
    expect(manifest.samplerConfig).toEqual(scheduler().toJSON());
    expect(manifest.images).toHaveLength(12);
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))).toEqual(manifest);
    const timing = JSON.parse(readFileSync(join(out, 'timing.json'), 'utf8'));
    expect(timing).toMatchObject({ format: 'fad-generated-timing/1', timing: { steps: 3 * 4, batchSize: 4 } });
  });

  it('shards sampled apart and merged give the unsharded set byte for byte', async () => {
    const whole = join(root, 'whole');
    await generateImageSet(params(whole, { seeds: [5], imagesPerClass: 5, batchSize: 3 }));
    const shards = join(root, 'shards');
    for (const index of [0, 1, 2]) {
      const prepared = prepareGeneratedSet({ out: shards, shard: { index, count: 3 }, checkpointSha256: 'abc', settings: 's' });
      expect(prepared.action).toBe('start');
      await generateImageSet(params(shards, { seeds: [5], imagesPerClass: 5, batchSize: 3, shard: { index, count: 3 }, shardSettings: 's' }));
    }
    // A finished shard of the same model and settings is kept; of another model it is refused.
    expect(prepareGeneratedSet({ out: shards, shard: { index: 1, count: 3 }, checkpointSha256: 'abc', settings: 's' }).action).toBe('reuse');
    expect(() => prepareGeneratedSet({ out: shards, shard: { index: 1, count: 3 }, checkpointSha256: 'other', settings: 's' })).toThrow(expect.objectContaining({ code: 'foreign-shard' }));
    const merged = join(root, 'merged');
    const r = mergeGeneratedShards({ dir: shards, out: merged });
    expect(r.count).toBe(3);
    expect(readFileSync(join(merged, 'manifest.json'), 'utf8')).toBe(readFileSync(join(whole, 'manifest.json'), 'utf8'));
    const m = JSON.parse(readFileSync(join(whole, 'manifest.json'), 'utf8')) as GeneratedSetManifest;
    for (const img of m.images) expect(readFileSync(join(merged, img.file)).equals(readFileSync(join(whole, img.file))), img.file).toBe(true);
  });

  it('matchMean keeps images within k std of the class mean and flags the rest after maxAttempts', async () => {
    const out = join(root, 'mm');
    const realStats = Object.fromEntries(classNames.map((c) => [c, { mean: 0.5, std: 1e-6 }]));
    const { manifest } = await generateImageSet(params(out, { seeds: [1], imagesPerClass: 2, matchMean: { k: 1, maxAttempts: 2, realStats } }));
    expect(manifest.matchMean).toEqual({ enabled: true, k: 1, maxAttempts: 2, realStats });
    // No sample of an untrained model has a mean within 1e-6 of 0.5: every slot is drawn twice and flagged.
    for (const img of manifest.images) expect(img).toMatchObject({ matchMean: 'failed', attempts: 2 });
  });

  it('refuses an existing output without force, and with force a folder that is not a generated set', async () => {
    const out = join(root, 'set');
    await expect(generateImageSet(params(out))).rejects.toMatchObject({ code: 'exists', details: { out } });
    const other = join(root, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'keep');
    await expect(generateImageSet(params(other, { force: true }))).rejects.toMatchObject({ code: 'not-replaceable', details: { entries: 1, isFile: false } });
    expect(existsSync(join(other, 'notes.txt'))).toBe(true);
    await expect(generateImageSet(params(join(root, 'x'), { classes: ['zz'] }))).rejects.toBeInstanceOf(GenerationRunError);
    expect(existsSync(join(root, 'x'))).toBe(false);
  });

  it('validates its params up front, naming the field', async () => {
    await expect(generateImageSet(params(join(root, 'v'), { imagesPerClass: 0 }))).rejects.toThrow(/generateImageSet: imagesPerClass must be an integer >= 1, got 0/);
    await expect(generateImageSet(params(join(root, 'v'), { seeds: [] }))).rejects.toThrow(/seeds must be a non-empty array of integers/);
    await expect(generateImageSet(params(join(root, 'v'), { sampler: 'nope' as 'ddim' }))).rejects.toThrow(/sampler must be one of/);
    await expect(generateImageSet(params(join(root, 'v'), { matchMean: { k: 1, maxAttempts: 1, realStats: {} } }))).rejects.toThrow(/matchMean.realStats\["b"\]/);
    expect(existsSync(join(root, 'v'))).toBe(false);
  });
});
