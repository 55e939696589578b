/**
 * `fad expert train --pretrained FILE`: fine-tuning from a torchvision ResNet state dict (the shared
 * torchvision reference file), in process through `main`, on toy data for one epoch. The backbone
 * comes from the file, conv1 is summed to the data's one channel, the head is new.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import { decodeSafetensors } from '@fad/diffusion-core';
import { decodeTorchStateDict } from '@fad/expert-models';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from './cli';
import { parseConfig } from './config';
import { writeDemoData } from './demo';
import { expertStepKey } from './expert';
import { repoRoot } from './testing/paths';

const REF = resolve(repoRoot(), '..', 'shared', 'reference', 'torchvision-resnet', 'bottleneck-1111-w16-3ch-10cls', 'weights.safetensors');
const present = existsSync(REF);
if (!present) console.warn(`expert-pretrained.spec: [SKIPPED: reference ${REF} not found]`);

const root = mkdtempSync(join(tmpdir(), 'fad-pretrained-'));
const data = join(root, 'data');
const config = join(root, 'config.yaml');

async function fad(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'fad', ...args, '--backend', 'cpu', '--quiet'], { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

describe.skipIf(!present)(`fad expert train --pretrained (torchvision reference file)${present ? '' : ' [SKIPPED: ../shared/reference/torchvision-resnet not found]'}`, () => {
  beforeAll(async () => {
    await writeDemoData(data, 16, 6);
    // A learning rate of 1e-12 leaves the weights where the file put them (BatchNorm statistics still move).
    writeFileSync(config, ['data: { imageSize: 16, validationFraction: 0.25 }', 'expert: { preset: resnet18-kather, epochs: 1, batchSize: 8, learningRate: 1.0e-12, augment: false }', ''].join('\n'));
  });

  it('fine-tunes from the file: its backbone, conv1 summed to 1 channel, a new head for the data\'s 4 classes', async () => {
    const out = join(root, 'a');
    const r = await fad(['--config', config, 'expert', 'train', '--data', data, '--out', out, '--pretrained', REF]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/expert accuracy on \d+ held-out images/);
    const ckpt = decodeSafetensors(new Uint8Array(readFileSync(join(out, 'expert.safetensors'))));
    expect(JSON.parse(ckpt.metadata.config)).toMatchObject({ block: 'bottleneck', layers: [1, 1, 1, 1], baseWidth: 64, widthPerGroup: 16, numClasses: 4, input: { size: 16, channels: 1, mean: [0.5], std: [0.5] } });
    const file = decodeTorchStateDict({ bytes: new Uint8Array(readFileSync(REF)) }).tensors;
    // layer2.0.conv2: OIHW [o,i,h,w] in the file, HWIO [h,w,i,o] in the checkpoint.
    const f = file['layer2.0.conv2.weight'];
    const [O, I, H, W] = f.shape;
    const c = ckpt.tensors['layer2.0.conv2.weight'];
    expect(c.shape).toEqual([H, W, I, O]);
    let diff = 0;
    for (let o = 0; o < O; o += 7) for (let i = 0; i < I; i += 5) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) {
      diff = Math.max(diff, Math.abs((c.data as Float32Array)[((h * W + w) * I + i) * O + o] - f.data![((o * I + i) * H + h) * W + w]));
    }
    expect(diff).toBeLessThan(1e-6);
    // conv1: the sum of the file's RGB kernels.
    const k = file['conv1.weight'];
    const c1 = ckpt.tensors['conv1.weight'];
    expect(c1.shape).toEqual([7, 7, 1, 64]);
    const sum = (o: number, h: number, w: number) => [0, 1, 2].reduce((a, i) => a + k.data![((o * 3 + i) * 7 + h) * 7 + w], 0);
    expect(Math.abs((c1.data as Float32Array)[(2 * 7 + 4) * 64 + 9] - sum(9, 2, 4))).toBeLessThan(1e-6);
    expect(ckpt.tensors['fc.weight'].shape).toEqual([2048, 4]);
  }, 240_000);

  it('keys the run by the file\'s content and the conv1 option; ordinary runs keep their key', () => {
    const split = { train: [0], validation: [1] };
    const plain = parseConfig({});
    const a = parseConfig({ expert: { pretrained: REF } });
    const b = parseConfig({ expert: { pretrained: REF, pretrainedConv1: 'new' } });
    const c = parseConfig({ expert: { pretrainedConv1: 'new' } });
    expect(expertStepKey(a, 'fp', split)).not.toBe(expertStepKey(plain, 'fp', split));
    expect(expertStepKey(b, 'fp', split)).not.toBe(expertStepKey(a, 'fp', split));
    expect(expertStepKey(c, 'fp', split)).toBe(expertStepKey(plain, 'fp', split));
  });

  it('says what is wrong: a ViT, backbone fields, a missing file, a fad checkpoint', async () => {
    const run = async (extra: string[]) => fad(['--config', config, 'expert', 'train', '--data', data, '--out', join(root, 'bad'), ...extra]);
    expect((await run(['--pretrained', REF, '--arch', 'vit'])).err).toMatch(/expert\.pretrained needs a ResNet expert \(torchvision weights\), but expert\.arch is vit/);
    expect((await run(['--pretrained', REF, '--set', 'expert.architecture.layers=[1,1]'])).err).toMatch(/expert\.architecture\.layers cannot be set with expert\.pretrained: the backbone \(block, layers, baseWidth, widthPerGroup\) comes from/);
    expect((await run(['--pretrained', join(root, 'nope.safetensors')])).err).toMatch(/expert\.pretrained: cannot read .*nope\.safetensors: no such file/);
    // A fad expert checkpoint is not a torchvision state dict (HWIO convolutions).
    expect((await run(['--pretrained', join(root, 'a', 'expert.safetensors')])).err).toMatch(/"conv1\.weight" has shape \[7,7,1,64\], expected \[out, in, 7, 7\]/);
  }, 60_000);
});
