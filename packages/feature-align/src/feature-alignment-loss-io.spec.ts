import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadModuleWeights, moduleToSafetensors } from '@fad/diffusion-core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FeatureAlignmentLoss, type FeatureAlignmentLossParams } from './feature-alignment-loss';
import {
  deserializeFeatureAlignmentLoss,
  FEATURE_ALIGN_FORMAT,
  serializeFeatureAlignmentLoss,
} from './feature-alignment-loss-io';
import { loadFeatureAlignmentLoss, saveFeatureAlignmentLoss } from './node';
import { randomTensor, useCpuBackend } from './test-support/setup';

beforeAll(useCpuBackend);
const dir = mkdtempSync(path.join(tmpdir(), 'feature-align-io-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const value = (loss: FeatureAlignmentLoss, seed: number) =>
  tf.tidy(() => loss.forward({ diffusionFeatures: randomTensor([3, 2, 2, 6], seed) as tf.Tensor4D, expertFeatures: randomTensor([3, 10], seed + 1) as tf.Tensor2D }).dataSync()[0]);

describe('FeatureAlignmentLoss safetensors I/O', () => {
  it('round-trips config and weights through bytes', () => {
    const loss = new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 10, projection: 'mlp', hiddenDim: 5, projectionSide: 'diffusion', seed: 4 });
    const bytes = serializeFeatureAlignmentLoss({ loss, metadata: { expert: 'resnet50', tap: 'down_out' } });
    const { loss: back, metadata } = deserializeFeatureAlignmentLoss({ bytes });
    expect(back.config).toEqual(loss.config);
    expect(metadata).toMatchObject({ format: FEATURE_ALIGN_FORMAT, expert: 'resnet50', tap: 'down_out', layout: 'NHWC; Linear [in,out]; Conv2d [kh,kw,in,out]' });
    // The default centering ('none') is left out of the file: older files have no such key.
    expect({ centering: 'none', ...JSON.parse(metadata.config) }).toEqual(loss.config);
    expect(metadata.config).not.toContain('centering');
    const a = loss.stateDict();
    const b = back.stateDict();
    expect(Object.keys(b)).toEqual(Object.keys(a));
    for (const k of Object.keys(a)) expect(Array.from(b[k].data)).toEqual(Array.from(a[k].data));
    expect(value(back, 1)).toBe(value(loss, 1));
    loss.dispose();
    back.dispose();
  });

  it("round-trips centering 'batch' (stored only when not the default)", () => {
    const loss = new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 10, centering: 'batch', seed: 5 });
    const { loss: back, metadata } = deserializeFeatureAlignmentLoss({ bytes: serializeFeatureAlignmentLoss({ loss }) });
    expect(JSON.parse(metadata.config).centering).toBe('batch');
    expect(back.config).toEqual(loss.config);
    expect(value(back, 7)).toBe(value(loss, 7));
    loss.dispose();
    back.dispose();
  });

  it('writes byte for byte the files of the first release (seeded initialisation and format unchanged)', () => {
    // sha256 prefixes of files written before the loss became a diffusion-core Module.
    const golden: Array<[FeatureAlignmentLossParams, string]> = [
      [{ diffusionDim: 6, expertDim: 10, seed: 1 }, '4588d85a2dd69b45'],
      [{ diffusionDim: 6, expertDim: 10, projection: 'mlp', hiddenDim: 5, projectionSide: 'diffusion', seed: 4 }, '78de58c7f153fa6f'],
      [{ diffusionDim: 3, expertDim: 4, projection: 'mlp' }, '6fffbe54a67dbbce'],
    ];
    for (const [params, hash] of golden) {
      const loss = new FeatureAlignmentLoss(params);
      const bytes = serializeFeatureAlignmentLoss({ loss });
      expect(createHash('sha256').update(bytes).digest('hex').slice(0, 16), JSON.stringify(params)).toBe(hash);
      loss.dispose();
    }
  });

  it('saves to and loads from a file (Node), atomically', async () => {
    const loss = new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 10, seed: 9 });
    const file = path.join(dir, 'align.safetensors');
    await saveFeatureAlignmentLoss({ loss, path: file });
    const { loss: back } = await loadFeatureAlignmentLoss({ path: file });
    expect(value(back, 2)).toBe(value(loss, 2));
    await expect(loadFeatureAlignmentLoss({ path: path.join(dir, 'missing.safetensors') })).rejects.toThrow(/loadFeatureAlignmentLoss: cannot read .*missing.safetensors/);
    await expect(saveFeatureAlignmentLoss({ loss, path: path.join(dir, 'no', 'such', 'dir.safetensors') })).rejects.toThrow(/saveFeatureAlignmentLoss: cannot write/);
    loss.dispose();
    back.dispose();
  });

  it("interoperates with diffusion-core's moduleToSafetensors / loadModuleWeights", () => {
    const loss = new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 10, seed: 1 });
    const other = new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 10, seed: 2 });
    expect(value(other, 3)).not.toBe(value(loss, 3));
    // The loss is a diffusion-core Module: our bytes load with loadModuleWeights, and
    // moduleToSafetensors with our metadata writes exactly our bytes.
    loadModuleWeights(other, serializeFeatureAlignmentLoss({ loss }));
    expect(value(other, 3)).toBe(value(loss, 3));
    const theirs = moduleToSafetensors(loss, { format: FEATURE_ALIGN_FORMAT, config: JSON.stringify({ ...loss.config, centering: undefined }) });
    expect(Buffer.from(theirs).equals(Buffer.from(serializeFeatureAlignmentLoss({ loss })))).toBe(true);
    const { loss: back } = deserializeFeatureAlignmentLoss({ bytes: theirs });
    expect(value(back, 3)).toBe(value(loss, 3));
    [loss, other, back].forEach((l) => l.dispose());
  });

  it('rejects other files and mismatched weights with a message', async () => {
    const loss = new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 10 });
    const bytes = serializeFeatureAlignmentLoss({ loss });
    const notOurs = moduleToSafetensors(loss, { format: 'fad-unet/1' });
    expect(() => deserializeFeatureAlignmentLoss({ bytes: notOurs })).toThrow('deserializeFeatureAlignmentLoss: metadata.format is "fad-unet/1", expected "fad-feature-align/1"');
    // Weights of a different width under a config that claims another.
    const wrong = new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 12 });
    const forged = moduleToSafetensors(wrong, { format: FEATURE_ALIGN_FORMAT, config: JSON.stringify(loss.config) });
    expect(() => deserializeFeatureAlignmentLoss({ bytes: forged })).toThrow(/"projection.weight": shape \[12,6\] does not match the model's \[10,6\]/);
    const file = path.join(dir, 'truncated.safetensors');
    writeFileSync(file, bytes.subarray(0, 20));
    await expect(loadFeatureAlignmentLoss({ path: file })).rejects.toThrow(/truncated.safetensors: .*header length/);
    expect(readFileSync(file).length).toBe(20);
    expect(() => serializeFeatureAlignmentLoss({ loss, metadata: { n: 3 as never } })).toThrow('serializeFeatureAlignmentLoss: metadata "n" must be a string, got 3');
    loss.dispose();
    wrong.dispose();
  });
});
