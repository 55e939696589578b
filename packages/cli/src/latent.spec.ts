/**
 * Latent diffusion end to end with the built `fad` executable on a tiny synthetic data set:
 * `fad autoencoder train` (tiny preset, a few steps), then `fad train` with
 * `diffusion.space=latent` (and a validation grid), then `fad generate` from the model file alone;
 * plus the config errors that name the key.
 */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors } from '@fad/diffusion-core';
import { parseConfig } from './config';
import { diffusionStepKey } from './diffusion';
import { writeDemoData } from './demo';
import { runFad } from './testing/run-fad';

const root = mkdtempSync(join(tmpdir(), 'fad-latent-'));
const data = join(root, 'data');
const aeDir = join(root, 'ae');
const trainDir = join(root, 'train');
const genDir = join(root, 'gen');
const common = ['--backend', 'cpu', '--set', 'data.imageSize=16', '--set', 'data.validationFraction=0.25'];

beforeAll(async () => {
  await writeDemoData(data, 16, 4);
}, 60_000);

describe('latent diffusion with the fad CLI', () => {
  it('fad autoencoder train, fad train --set diffusion.space=latent, fad generate: decoded 16x16 images from the model file alone', async () => {
    const ae = await runFad(['autoencoder', 'train', '-d', data, '-o', aeDir, ...common, '--set', 'autoencoder.preset=tiny', '--steps', '3', '--batch-size', '4', '--set', 'autoencoder.scalingImages=8']);
    if (ae.code !== 0) throw new Error(`fad autoencoder train failed (${ae.code}):\n${ae.stderr}\n${ae.stdout}`);
    const aePath = join(aeDir, 'autoencoder.safetensors');

    const tr = await runFad([
      'train', '-d', data, '-o', trainDir, ...common, '--steps', '3', '--batch-size', '4',
      '--set', 'diffusion.space=latent', '--set', `diffusion.autoencoder=${aePath}`, '--set', 'diffusion.unet.preset=tiny',
      '--set', 'diffusion.warmupSteps=0', '--set', 'diffusion.logEvery=1',
      '--set', 'diffusion.validation.every=3', '--set', 'diffusion.validation.steps=2', '--set', 'diffusion.validation.imagesPerClass=1',
    ]);
    if (tr.code !== 0) throw new Error(`fad train failed (${tr.code}):\n${tr.stderr}\n${tr.stdout}`);
    // The model file: a 4x4x4 latent U-Net with the autoencoder embedded.
    const f = decodeSafetensors(new Uint8Array(readFileSync(join(trainDir, 'model.safetensors'))));
    expect(f.metadata.space).toBe('latent');
    expect(f.metadata.autoencoderSource).toBe(aePath);
    expect(f.metadata.autoencoderSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.parse(f.metadata.config)).toMatchObject({ sampleSize: 4, inChannels: 4, outChannels: 4 });
    expect(Object.keys(f.tensors).some((n) => n.startsWith('autoencoder.decoder.'))).toBe(true);
    const metrics = readFileSync(join(trainDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const losses = metrics.filter((m) => m.loss !== undefined);
    expect(losses.map((m) => m.step)).toEqual([1, 2, 3]);
    expect(losses.every((m) => Number.isFinite(m.loss))).toBe(true);
    // The validation grid is decoded: one 16x16 tile per class (4 classes, 1 column).
    const grids = readdirSync(join(trainDir, 'validation')).filter((n) => n.endsWith('.png'));
    expect(grids).toHaveLength(1);
    const gm = await sharp(join(trainDir, 'validation', grids[0])).metadata();
    expect([gm.width, gm.height]).toEqual([16, 64]);

    const gen = await runFad(['generate', '-m', trainDir, '-o', genDir, '--backend', 'cpu', '--steps', '2', '-n', '1', '--seeds', '0', '--sampler', 'dpm-solver++']);
    if (gen.code !== 0) throw new Error(`fad generate failed (${gen.code}):\n${gen.stderr}\n${gen.stdout}`);
    const manifest = JSON.parse(readFileSync(join(genDir, 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ imageSize: 16, channels: 1 });
    expect(manifest.samplerConfig.clipSample).toBe(false);
    expect(manifest.images).toHaveLength(4);
    for (const img of manifest.images) {
      const m = await sharp(join(genDir, img.file)).metadata();
      expect([m.width, m.height, m.channels]).toEqual([16, 16, 1]);
      expect(img.mean).toBeGreaterThanOrEqual(0);
      expect(img.mean).toBeLessThanOrEqual(1);
    }
  }, 300_000);

  it('names diffusion.autoencoder when diffusion.space is latent without it, or when the file is missing', async () => {
    expect(() => parseConfig({ diffusion: { space: 'latent' } })).toThrow(/diffusion\.autoencoder: is required when diffusion\.space is latent/);
    expect(() => parseConfig({ diffusion: { space: 'voxel' } })).toThrow(/diffusion\.space/);
    expect(() => parseConfig({ alignment: { latentExpertInput: 'latent' } })).toThrow(/alignment\.latentExpertInput/);
    expect(parseConfig({}).diffusion).toMatchObject({ space: 'pixel', autoencoder: null });
    expect(parseConfig({}).alignment.latentExpertInput).toBe('decoded');
    const r = await runFad(['train', '-d', data, '-o', join(root, 'bad'), ...common, '--steps', '1', '--set', 'diffusion.space=latent', '--set', `diffusion.autoencoder=${join(root, 'none.safetensors')}`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/diffusion\.autoencoder: cannot read .*none\.safetensors: no such file/);
  }, 120_000);

  it('keys latent runs apart by the autoencoder content and latentExpertInput; pixel keys ignore both', () => {
    const data = { fingerprint: 'fp', indices: [0, 1, 2] } as unknown as Parameters<typeof diffusionStepKey>[1];
    const pixel = parseConfig({ alignment: { enabled: true } });
    expect(diffusionStepKey(parseConfig({ alignment: { enabled: true, latentExpertInput: 'pixel-noised' } }), data, 'e')).toBe(diffusionStepKey(pixel, data, 'e'));
    const latent = (extra: Record<string, unknown> = {}, path = '/a/ae.safetensors') =>
      parseConfig({ diffusion: { space: 'latent', autoencoder: path }, alignment: { enabled: true, ...extra } });
    const k = diffusionStepKey(latent(), data, 'e', 'aaaa');
    expect(k).not.toBe(diffusionStepKey(pixel, data, 'e'));
    expect(diffusionStepKey(latent({}, '/elsewhere/ae.safetensors'), data, 'e', 'aaaa')).toBe(k); // the path is not in the key
    expect(diffusionStepKey(latent(), data, 'e', 'bbbb')).not.toBe(k);
    expect(diffusionStepKey(latent({ latentExpertInput: 'pixel-noised' }), data, 'e', 'aaaa')).not.toBe(k);
  });
});
