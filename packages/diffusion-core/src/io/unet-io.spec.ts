import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { useCpuBackend } from '../testing/setup-cpu';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { decodeSafetensors } from './safetensors';
import { loadUNet, saveUNet } from '../node';
import { deserializeUNet, serializeUNet } from './unet-io';
import { AutoencoderKL } from '../autoencoder/autoencoder';
import { AUTOENCODER_PRESETS } from '../autoencoder/autoencoder-config';
import { DDIMScheduler } from '../schedulers';
import { sampleImages } from '../pipeline/sample';

beforeAll(useCpuBackend);

describe('U-Net save and load', () => {
  it('round-trips weights and config; the loaded model gives identical outputs', async () => {
    const m = new UNet2DConditional(UNET_PRESETS.tiny, { seed: 3 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fad-unet-'));
    const file = path.join(dir, 'model.safetensors');
    await saveUNet(m, file, { note: 'test' });
    expect(fs.readdirSync(dir)).toEqual(['model.safetensors']); // no temp file left behind
    const { model: back, metadata } = await loadUNet(file);
    expect(metadata.note).toBe('test');
    expect(metadata.format).toBe('fad-unet/1');
    expect(back.config).toEqual(m.config);
    const x = new Generator(1).normal([1, 16, 16, 1]) as tf.Tensor4D;
    const a = m.forward({ sample: x, timesteps: [5], classLabels: [1] }).sample;
    const b = back.forward({ sample: x, timesteps: [5], classLabels: [1] }).sample;
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([x, a, b]);
    m.dispose();
    back.dispose();
    fs.rmSync(dir, { recursive: true });
  });

  it('stores every parameter under its dotted name with the model shape', () => {
    const m = new UNet2DConditional(UNET_PRESETS.tiny);
    const f = decodeSafetensors(serializeUNet(m));
    const names = m.namedParameters().map(([n]) => n).sort();
    expect(Object.keys(f.tensors).sort()).toEqual(names);
    expect(f.tensors['conv_in.weight'].shape).toEqual([3, 3, 1, 8]);
    m.dispose();
  });

  it('refuses files that are not U-Nets, or whose weights do not fit, naming the problem', async () => {
    const m = new UNet2DConditional(UNET_PRESETS.tiny);
    const bytes = serializeUNet(m);
    const f = decodeSafetensors(bytes);
    const cfg = JSON.parse(f.metadata.config);
    cfg.blockChannels = [8, 24];
    cfg.attentionLevels = [];
    const { encodeSafetensors } = await import('./safetensors');
    const wrong = encodeSafetensors({ tensors: f.tensors, metadata: { ...f.metadata, config: JSON.stringify(cfg) } });
    const before = tf.memory().numTensors;
    expect(() => deserializeUNet(wrong)).toThrow(/shape \[.*\] does not match the model's/);
    expect(tf.memory().numTensors).toBe(before); // the half-built model was freed
    const notUnet = encodeSafetensors({ tensors: f.tensors, metadata: { format: 'other' } });
    expect(() => deserializeUNet(notUnet)).toThrow(/metadata.format is "other", expected "fad-unet\/1"/);
    await expect(loadUNet('/nonexistent/x.safetensors')).rejects.toThrow(/cannot read \/nonexistent\/x.safetensors/);
    m.dispose();
  });

  it('round-trips a latent U-Net with its embedded autoencoder: same samples at a fixed seed from the file alone', async () => {
    const latentUNet = { ...UNET_PRESETS.tiny, sampleSize: 4, inChannels: 4, outChannels: 4, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };
    const m = new UNet2DConditional(latentUNet, { seed: 3 });
    const ae = new AutoencoderKL(AUTOENCODER_PRESETS.tiny, { seed: 4 });
    ae.setScalingFactor(0.8);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fad-unet-'));
    const file = path.join(dir, 'model.safetensors');
    await saveUNet(m, file, { note: 'latent' }, { autoencoder: ae });
    const f = decodeSafetensors(new Uint8Array(fs.readFileSync(file)));
    expect(f.metadata.space).toBe('latent');
    expect(JSON.parse(f.metadata.autoencoderConfig)).toEqual(ae.config);
    expect(Object.keys(f.tensors).filter((n) => n.startsWith('autoencoder.')).length).toBe(ae.namedParameters().length);
    const { model: back, autoencoder, metadata } = await loadUNet(file);
    expect(metadata.note).toBe('latent');
    expect(autoencoder).toBeInstanceOf(AutoencoderKL);
    expect(autoencoder!.config.scalingFactor).toBe(0.8);
    const sample = (model: UNet2DConditional, a: AutoencoderKL) =>
      sampleImages({ model, scheduler: new DDIMScheduler({ clipSample: false }), classLabels: [0, 2], numInferenceSteps: 3, seed: 7, autoencoder: a });
    const x = await sample(m, ae);
    const y = await sample(back, autoencoder!);
    expect(y.shape).toEqual([2, 16, 16, 1]);
    expect(Array.from(y.dataSync())).toEqual(Array.from(x.dataSync()));
    tf.dispose([x, y]);
    [m, ae, back, autoencoder!].forEach((d) => d.dispose());
    fs.rmSync(dir, { recursive: true });
  });

  it('loads a pixel U-Net without an autoencoder, and refuses a latent file without autoencoderConfig', async () => {
    const m = new UNet2DConditional(UNET_PRESETS.tiny);
    const r = deserializeUNet(serializeUNet(m, { space: 'latent' }));
    expect(r.autoencoder).toBeUndefined();
    expect(r.metadata.space).toBeUndefined(); // a pixel file never claims to be latent
    r.model.dispose();
    const f = decodeSafetensors(serializeUNet(m));
    const { encodeSafetensors } = await import('./safetensors');
    const broken = encodeSafetensors({ tensors: f.tensors, metadata: { ...f.metadata, space: 'latent' } });
    const before = tf.memory().numTensors;
    expect(() => deserializeUNet(broken)).toThrow('deserializeUNet: metadata.space is "latent" but metadata.autoencoderConfig is missing');
    expect(tf.memory().numTensors).toBe(before);
    const odd = encodeSafetensors({ tensors: f.tensors, metadata: { ...f.metadata, space: 'voxel' } });
    expect(() => deserializeUNet(odd)).toThrow('metadata.space is "voxel", expected "latent" or "pixel"');
    const ae = new AutoencoderKL(AUTOENCODER_PRESETS.tiny);
    expect(() => serializeUNet(m, {}, { autoencoder: ae })).toThrow("the U-Net's inChannels (1) must equal options.autoencoder.config.latentChannels (4)");
    m.dispose();
    ae.dispose();
  });
});
