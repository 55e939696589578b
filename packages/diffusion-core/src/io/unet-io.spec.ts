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
import { deserializeUNet, loadUNet, saveUNet, serializeUNet } from './unet-io';

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
});
