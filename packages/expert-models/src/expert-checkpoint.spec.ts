import * as tf from '@tensorflow/tfjs-core';
import { encodeSafetensors, moduleToSafetensors } from '@fad/diffusion-core';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExpert } from './create-expert';
import { EXPERT_FORMAT, deserializeExpert, serializeExpert } from './expert-checkpoint';
import { loadExpert, saveExpert } from './node';
import type { ExpertConfigInput } from './expert-config';
import { leakedTensors, maxAbsDiff, useCpuBackend } from './testing/setup-cpu';

let dir = '';
beforeAll(async () => {
  await useCpuBackend();
  dir = await mkdtemp(join(tmpdir(), 'expert-ckpt-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const configs: Record<string, ExpertConfigInput> = {
  resnet: { arch: 'resnet', block: 'bottleneck', layers: [1, 1], baseWidth: 4, numClasses: 3, head: { type: 'mlp', hiddenDim: 6 }, input: { size: 16, channels: 3, mean: [0.1, 0.2, 0.3], std: [0.5, 0.6, 0.7] } },
  vit: { arch: 'vit', patchSize: 4, depth: 2, numHeads: 2, width: 8, pooling: 'mean', numClasses: 3, input: { size: 16, channels: 3 } },
};

for (const [arch, config] of Object.entries(configs)) {
  describe(`checkpoint round trip: ${arch}`, () => {
    it('restores config, class names, weights and BN statistics: identical outputs', () => {
      const e = createExpert({ config, seed: 8, classNames: ['x', 'y', 'z'] });
      const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
      // Move the BatchNorm statistics away from their initial values.
      for (let i = 0; i < 3; i++) e.features(x, { training: true }).dispose();
      const bytes = serializeExpert({ expert: e, metadata: { note: 'hello' } });
      const { expert: r, metadata } = deserializeExpert({ bytes });
      expect(metadata).toMatchObject({ format: EXPERT_FORMAT, note: 'hello', classNames: '["x","y","z"]' });
      expect(r.config).toEqual(e.config);
      expect(r.classNames).toEqual(['x', 'y', 'z']);
      const a = e.stateDict();
      const b = r.stateDict();
      expect(Object.keys(b)).toEqual(Object.keys(a));
      for (const k of Object.keys(a)) expect(maxAbsDiff(a[k].data, b[k].data)).toBe(0);
      if (arch === 'resnet') expect(maxAbsDiff(b['bn1.running_var'].data, new Float32Array(4).fill(1))).toBeGreaterThan(0);
      expect(maxAbsDiff(r.features(x).dataSync(), e.features(x).dataSync())).toBe(0);
      expect(maxAbsDiff(r.logits(x).dataSync(), e.logits(x).dataSync())).toBe(0);
      e.dispose();
      r.dispose();
      x.dispose();
    });
  });
}

describe('saveExpert / loadExpert', () => {
  it('writes atomically and reads back; leaves no tensors or temporary files', async () => {
    const e = createExpert({ config: configs.resnet });
    const path = join(dir, 'expert.safetensors');
    await saveExpert({ expert: e, path, metadata: { run: '1' } });
    expect(await readdir(dir)).toEqual(['expert.safetensors']);
    const before = tf.memory().numTensors;
    const { expert: r, metadata } = await loadExpert({ path });
    expect(metadata.run).toBe('1');
    expect(r.numParameters()).toBe(e.numParameters());
    r.dispose();
    expect(tf.memory().numTensors).toBe(before);
    e.dispose();
    await expect(loadExpert({ path: join(dir, 'missing.safetensors') })).rejects.toThrow(/loadExpert: cannot read .*missing.safetensors/);
  });
});

describe('checkpoint errors', () => {
  it('names the problem', () => {
    const e = createExpert({ config: configs.vit });
    expect(() => serializeExpert({ expert: e, metadata: { config: '{}' } })).toThrow(/metadata key "config" is reserved/);
    expect(() => serializeExpert({ expert: e, metadata: { n: 1 as never } })).toThrow(/metadata.n must be a string, got 1/);
    // Not an expert checkpoint.
    expect(() => deserializeExpert({ bytes: moduleToSafetensors(e, { format: 'fad-unet/1' }) })).toThrow(/metadata.format is "fad-unet\/1", expected "fad-expert\/1"/);
    // A missing tensor (strict loading), without leaking the half-built model.
    const full = serializeExpert({ expert: e });
    const meta = { format: EXPERT_FORMAT, config: JSON.stringify(e.config), classNames: JSON.stringify(e.classNames) };
    const partial = encodeSafetensors({ tensors: { head: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }, metadata: meta });
    expect(leakedTensors(() => expect(() => deserializeExpert({ bytes: partial })).toThrow(/deserializeExpert: .*missing "conv_proj.weight"/))).toBe(0);
    expect(() => deserializeExpert({ bytes: full.slice(0, 20) })).toThrow();
    e.dispose();
  });
});
