/**
 * `fad train --pretrained-diffusers DIR` end to end with the built executable: a tiny diffusers
 * UNet2DConditionModel made with diffusers itself (../shared/reference/diffusers-unet/sd-tiny), given
 * 4 input/output channels like Stable Diffusion's so that the 1-channel toy data needs the paper's
 * surgery (new conv_in/conv_out), class labels through new embeddings, feature alignment at the
 * diffusers tap `down_blocks.1.resnets.0.conv_shortcut`; then fad generate from the model file.
 * Skips, saying why, when the shared reference folder is absent.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors, type SafetensorsTensor } from '@fad/diffusion-core';
import { parseConfig } from './config';
import { diffusionStepKey } from './diffusion';
import { writeDemoData } from './demo';
import { repoRoot } from './testing/paths';
import { runFad } from './testing/run-fad';

const ref = resolve(repoRoot(), '..', 'shared', 'reference', 'diffusers-unet', 'sd-tiny');
const present = existsSync(join(ref, 'config.json'));
if (!present) console.warn(`@fad/cli tests: [SKIPPED: ${ref} not found]`);

const root = mkdtempSync(join(tmpdir(), 'fad-pretrained-diffusers-'));
const data = join(root, 'data');
const unet = join(root, 'sd-tiny-4ch');
const config = join(root, 'config.yaml');
const expert = join(root, 'expert', 'expert.safetensors');

/** sd-tiny with 4 input and output channels (its conv_in/conv_out widened with seeded values). */
function writeFourChannelCopy(): void {
  mkdirSync(unet, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(ref, 'config.json'), 'utf8'));
  writeFileSync(join(unet, 'config.json'), JSON.stringify({ ...cfg, in_channels: 4, out_channels: 4 }, null, 2));
  const f = decodeSafetensors(new Uint8Array(readFileSync(join(ref, 'diffusion_pytorch_model.safetensors'))));
  const tensors: Record<string, SafetensorsTensor> = {};
  const fill = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i * 12.9898) * 0.1);
  for (const [n, t] of Object.entries(f.tensors)) {
    if (n === 'conv_in.weight') tensors[n] = { dtype: 'F32', shape: [32, 4, 3, 3], data: fill(32 * 4 * 9, 1) };
    else if (n === 'conv_out.weight') tensors[n] = { dtype: 'F32', shape: [4, 32, 3, 3], data: fill(4 * 32 * 9, 2) };
    else if (n === 'conv_out.bias') tensors[n] = { dtype: 'F32', shape: [4], data: fill(4, 3) };
    else tensors[n] = t;
  }
  writeFileSync(join(unet, 'diffusion_pytorch_model.safetensors'), encodeSafetensors({ tensors, metadata: { format: 'pt' } }, { keepOrder: true }));
}

describe.skipIf(!present)(`fad train --pretrained-diffusers${present ? '' : ` [SKIPPED: ${ref} not found]`}`, () => {
  beforeAll(async () => {
    await writeDemoData(data, 8, 6);
    writeFourChannelCopy();
    writeFileSync(config, [
      'data: { imageSize: 8, validationFraction: 0.25 }',
      'expert: { preset: resnet18-kather, architecture: { layers: [1, 1], baseWidth: 8 }, epochs: 1, batchSize: 12, augment: false }',
      'diffusion:',
      '  unet: { overrides: { classEmbeddingDim: 8 } }',
      '  steps: 3',
      '  batchSize: 4',
      '  warmupSteps: 0',
      '  logEvery: 1',
      '',
    ].join('\n'));
    const e = await runFad(['--config', config, '--backend', 'cpu', 'expert', 'train', '--data', data, '--out', join(root, 'expert')]);
    if (e.code !== 0) throw new Error(`fad expert train failed:\n${e.stderr}`);
  }, 150_000);

  it('fine-tunes the imported U-Net with feature alignment at a diffusers tap; fad generate samples the saved model', async () => {
    const out = join(root, 'aligned');
    const r = await runFad(['--config', config, '--backend', 'cpu', 'train', '--data', data, '--out', out, '--pretrained-diffusers', unet,
      '--feature-alignment', '--expert', expert, '--tap', 'down_blocks.1.resnets.0.conv_shortcut']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/trained 3 steps/);
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(join(out, 'model.safetensors'))));
    // Surgery: 1-channel conv_in/conv_out, 4 classes + null through 8-wide embeddings mapped to cross_attention_dim 24.
    expect(JSON.parse(metadata.config)).toMatchObject({ inChannels: 1, outChannels: 1, numClasses: 4, nullClass: true, classEmbeddingDim: 8, crossAttentionDim: 24, feedForward: 'geglu', attentionHeads: 8 });
    expect(tensors['conv_in.weight'].shape).toEqual([3, 3, 1, 32]);
    expect(tensors['conv_out.weight'].shape).toEqual([3, 3, 32, 1]);
    expect(tensors['class_emb.weight'].shape).toEqual([5, 8]);
    expect(tensors['class_proj.weight'].shape).toEqual([8, 24]);
    expect(metadata.diffusersSource).toBe(unet);
    expect(JSON.parse(metadata.diffusersConfig)).toMatchObject({ in_channels: 4, block_out_channels: [32, 64] });
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.map((m) => m.step)).toEqual([1, 2, 3]);
    expect(metrics.every((m) => Number.isFinite(m.loss) && Number.isFinite(m.terms['feature_align.align']))).toBe(true);
    expect(decodeSafetensors(new Uint8Array(readFileSync(join(out, 'align.safetensors')))).metadata.tap).toBe('down_blocks.1.resnets.0.conv_shortcut');

    const gen = await runFad(['generate', '-m', out, '-o', join(root, 'gen'), '--backend', 'cpu', '--steps', '2', '-n', '1', '--seeds', '0']);
    expect(gen.code, gen.stderr).toBe(0);
  }, 170_000);

  it('fine-tunes without alignment; the step key covers the pretrained files; a bad folder or a stray override is a clear error', async () => {
    const out = join(root, 'baseline');
    const r = await runFad(['--config', config, '--backend', 'cpu', 'train', '--data', data, '--out', out, '--pretrained-diffusers', unet, '--steps', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/trained 2 steps/);
    const d = { fingerprint: 'fp', indices: [0, 1] } as unknown as Parameters<typeof diffusionStepKey>[1];
    const plain = parseConfig({});
    const withPretrained = parseConfig({ diffusion: { pretrainedDiffusers: unet } });
    expect(diffusionStepKey(withPretrained, d, null)).toBe(diffusionStepKey(plain, d, null)); // the path alone is not in the key...
    expect(diffusionStepKey(withPretrained, d, null, null, 'abc')).not.toBe(diffusionStepKey(plain, d, null)); // ...the files' hash is

    const missing = await runFad(['--backend', 'cpu', 'train', '--data', data, '--out', join(root, 'x'), '--pretrained-diffusers', join(root, 'nope'), '--set', 'data.imageSize=8']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/fad: error: diffusion\.pretrainedDiffusers: .*nope has no config\.json/);
    const stray = await runFad(['--config', config, '--backend', 'cpu', 'train', '--data', data, '--out', join(root, 'y'), '--pretrained-diffusers', unet, '--set', 'diffusion.unet.overrides.normGroups=4']);
    expect(stray.code).toBe(1);
    expect(stray.stderr).toMatch(/diffusion\.unet\.overrides: normGroups do not apply with diffusion\.pretrainedDiffusers/);
  }, 170_000);
});
