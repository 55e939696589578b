import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors } from '../io/safetensors';
import { deserializeUNet, serializeUNet } from '../io/unet-io';
import { sampleImages } from '../pipeline/sample';
import { Generator } from '../random';
import { DDIMScheduler } from '../schedulers';
import { useCpuBackend } from '../testing/setup-cpu';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS, conditioningLabelCount, conditioningTokenLabel, resolveUNetConfig } from '../unet/unet-config';
import { addConditioningToken } from './conditioning-token';

beforeAll(useCpuBackend);

const tiny = { ...UNET_PRESETS.tiny, sampleSize: 8 };
const disposables: Array<{ dispose(): void }> = [];
afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));

function outputFor(model: UNet2DConditional, label: number, x: tf.Tensor4D): number[] {
  return tf.tidy(() => Array.from(model.forward({ sample: x, timesteps: [17, 640], classLabels: [label, label] }).sample.dataSync()));
}

describe('addConditioningToken', () => {
  it('works with class embeddings mapped to crossAttentionDim (classEmbeddingDim, as imported diffusers U-Nets use)', () => {
    const base = new UNet2DConditional({ ...tiny, classEmbeddingDim: 5 }, { seed: 4 });
    const { model, label } = addConditioningToken({ model: base, fromClass: 1, name: 'sks' });
    disposables.push(base, model);
    expect(model.conditioningEmbeddings().tokens?.shape).toEqual([1, 5]);
    const x = new Generator(9).normal([2, 8, 8, 1]) as tf.Tensor4D;
    disposables.push(x);
    expect(outputFor(model, label, x)).toEqual(outputFor(base, 1, x));
  });

  it('creates a token whose embedding equals the class embedding, and the same model output as the class', () => {
    const base = new UNet2DConditional(tiny, { seed: 4 });
    const { model, label } = addConditioningToken({ model: base, fromClass: 2, name: 'sks' });
    disposables.push(base, model);
    // Label after the 4 classes and the null class (4).
    expect(label).toBe(5);
    expect(model.config.conditioningTokens).toEqual([{ name: 'sks', fromClass: 2 }]);
    expect(conditioningLabelCount(model.config)).toBe(6);
    const { classes, tokens } = model.conditioningEmbeddings();
    const dim = tiny.crossAttentionDim;
    expect(tokens?.shape).toEqual([1, dim]);
    expect(Array.from(tokens!.dataSync())).toEqual(Array.from(classes!.dataSync().subarray(2 * dim, 3 * dim)));
    const x = new Generator(9).normal([2, 8, 8, 1]) as tf.Tensor4D;
    disposables.push(x);
    const forToken = outputFor(model, label, x);
    expect(forToken).toEqual(outputFor(model, 2, x));
    expect(forToken).toEqual(outputFor(base, 2, x));
    // A different class gives a different output (so the equality above is not vacuous).
    expect(outputFor(model, 1, x)).not.toEqual(forToken);
    // Existing labels, the null class included, are unchanged.
    for (const l of [0, 3, 4]) expect(outputFor(model, l, x)).toEqual(outputFor(base, l, x));
    // The input model is untouched.
    expect(base.config.conditioningTokens).toBeUndefined();
    expect(base.conditioningEmbeddings().tokens).toBeNull();
  });

  it('adds a second token after the first, keeping the first one\'s row', () => {
    const base = new UNet2DConditional(tiny, { seed: 4 });
    const a = addConditioningToken({ model: base, fromClass: 1, name: 'sks' });
    a.model.conditioningEmbeddings().tokens!.assign(tf.fill([1, tiny.crossAttentionDim], 0.25));
    const b = addConditioningToken({ model: a.model, fromClass: 3, name: 'xyz' });
    disposables.push(base, a.model, b.model);
    expect(b.label).toBe(6);
    expect(conditioningTokenLabel({ config: b.model.config, name: 'sks' })).toBe(5);
    const rows = b.model.conditioningEmbeddings().tokens!.arraySync() as number[][];
    expect(rows[0].every((v) => v === 0.25)).toBe(true);
    const cls = base.conditioningEmbeddings().classes!.arraySync() as number[][];
    expect(rows[1]).toEqual(cls[3]);
  });

  it('round-trips through safetensors with the token (config and weights), giving identical outputs', () => {
    const base = new UNet2DConditional(tiny, { seed: 5 });
    const { model, label } = addConditioningToken({ model: base, fromClass: 0, name: 'tumor-sks' });
    // Change the token row, as training would, so the round-trip is tested on its own values.
    model.conditioningEmbeddings().tokens!.assign(new Generator(3).normal([1, tiny.crossAttentionDim]));
    const bytes = serializeUNet(model, { note: 'db' });
    const file = decodeSafetensors(bytes);
    expect(file.tensors['token_emb.weight'].shape).toEqual([1, tiny.crossAttentionDim]);
    expect(JSON.parse(file.metadata.config).conditioningTokens).toEqual([{ name: 'tumor-sks', fromClass: 0 }]);
    const { model: back } = deserializeUNet(bytes);
    disposables.push(base, model, back);
    expect(back.config).toEqual(model.config);
    expect(Array.from(back.conditioningEmbeddings().tokens!.dataSync())).toEqual(Array.from(model.conditioningEmbeddings().tokens!.dataSync()));
    const x = new Generator(1).normal([2, 8, 8, 1]) as tf.Tensor4D;
    disposables.push(x);
    expect(outputFor(back, label, x)).toEqual(outputFor(model, label, x));
    // An ordinary model's config (and so its saved file) has no token key at all.
    expect('conditioningTokens' in JSON.parse(decodeSafetensors(serializeUNet(base)).metadata.config)).toBe(false);
  });

  it('samples with the token label; labels past the tokens are rejected', async () => {
    const base = new UNet2DConditional(tiny, { seed: 6 });
    const { model, label } = addConditioningToken({ model: base, fromClass: 2, name: 'sks' });
    disposables.push(base, model);
    const a = await sampleImages({ model, scheduler: new DDIMScheduler(), classLabels: [label], numInferenceSteps: 2, guidanceScale: 2, seed: 1 });
    const b = await sampleImages({ model: base, scheduler: new DDIMScheduler(), classLabels: [2], numInferenceSteps: 2, guidanceScale: 2, seed: 1 });
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    tf.dispose([a, b]);
    await expect(sampleImages({ model, scheduler: new DDIMScheduler(), classLabels: [6], numInferenceSteps: 1 })).rejects.toThrow(/class label 6 out of range 0\.\.5/);
    const x = tf.zeros([1, 8, 8, 1]) as tf.Tensor4D;
    disposables.push(x);
    expect(() => model.forward({ sample: x, timesteps: [1], classLabels: [6] })).toThrow(/out of range 0\.\.5 .*5\.\. are the conditioning tokens/);
  });

  it('validates its arguments, naming the field and what was expected', () => {
    const base = new UNet2DConditional(tiny, { seed: 7 });
    const uncond = new UNet2DConditional({ ...tiny, numClasses: 0, nullClass: false });
    disposables.push(base, uncond);
    expect(() => addConditioningToken({ model: base, fromClass: 4, name: 'a' })).toThrow(/params\.fromClass must be a class index in 0\.\.3, got 4/);
    expect(() => addConditioningToken({ model: base, fromClass: 1.5, name: 'a' })).toThrow(/params\.fromClass/);
    expect(() => addConditioningToken({ model: base, fromClass: 1, name: '' })).toThrow(/params\.name must be a non-empty string/);
    expect(() => addConditioningToken({ model: {} as UNet2DConditional, fromClass: 1, name: 'a' })).toThrow(/params\.model must be a UNet2DConditional/);
    expect(() => addConditioningToken({ model: uncond, fromClass: 0, name: 'a' })).toThrow(/unconditional/);
    const { model } = addConditioningToken({ model: base, fromClass: 1, name: 'a' });
    disposables.push(model);
    expect(() => addConditioningToken({ model, fromClass: 1, name: 'a' })).toThrow(/"a" is already a token/);
    expect(() => conditioningTokenLabel({ config: model.config, name: 'b' })).toThrow(/no conditioning token "b" \(its tokens: a\)/);
  });

  it('UNetConfig.conditioningTokens is validated', () => {
    expect(() => resolveUNetConfig({ ...tiny, conditioningTokens: [{ name: 'a', fromClass: 9 }] })).toThrow(/conditioningTokens\[0\]\.fromClass must be a class index in 0\.\.3, got 9/);
    expect(() => resolveUNetConfig({ ...tiny, conditioningTokens: [{ name: 'a', fromClass: 0 }, { name: 'a', fromClass: 1 }] })).toThrow(/conditioningTokens\[1\]\.name must be unique/);
    expect(() => resolveUNetConfig({ ...tiny, conditioningTokens: 'a' as never })).toThrow(/conditioningTokens must be an array/);
    expect(() => resolveUNetConfig({ ...tiny, conditioningTokens: [{ name: 'a', fromClass: 0, extra: 1 } as never] })).toThrow(/conditioningTokens\[0\] must be an object with only the fields name and fromClass/);
    expect(resolveUNetConfig({ ...tiny, conditioningTokens: [] })).not.toHaveProperty('conditioningTokens');
  });
});
