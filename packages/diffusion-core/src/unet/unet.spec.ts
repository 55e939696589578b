import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { leakedTensors, relMaxError, useCpuBackend } from '../testing/setup-cpu';
import { timestepEmbedding } from './timestep-embedding';
import { UNet2DConditional } from './unet';
import { UNET_PRESETS, resolveUNetConfig } from './unet-config';

beforeAll(useCpuBackend);

const tiny = UNET_PRESETS.tiny;

describe('UNet2DConditional', () => {
  let model: UNet2DConditional;
  beforeAll(() => {
    model = new UNet2DConditional(tiny, { seed: 1 });
  });
  afterAll(() => model.dispose());

  it('has the reference workload parameter count (6,161,473, from shared/bench/reference_workload.py)', () => {
    const ref = new UNet2DConditional(UNET_PRESETS.reference);
    expect(ref.numParameters()).toBe(6_161_473);
    // The null class for classifier-free guidance adds one 128-d embedding row.
    const withNull = new UNet2DConditional({ ...UNET_PRESETS.reference, nullClass: true });
    expect(withNull.numParameters()).toBe(6_161_473 + 128);
    ref.dispose();
    withNull.dispose();
  });

  it('returns the prediction and every named activation in one pass, with the documented shapes', () => {
    const x = new Generator(0).normal([2, 16, 16, 1]) as tf.Tensor4D;
    const r = model.forward({ sample: x, timesteps: [3, 700], classLabels: [0, 3], returnActivations: true });
    expect(r.sample.shape).toEqual([2, 16, 16, 1]);
    const shapes = Object.fromEntries(Object.entries(r.activations).map(([k, v]) => [k, v.shape]));
    const short = {
      conv_in: [2, 16, 16, 8],
      'down.0': [2, 8, 8, 8],
      'down.1': [2, 8, 8, 16],
      down_out: [2, 8, 8, 16],
      mid: [2, 8, 8, 16],
      'up.0': [2, 16, 16, 16],
      'up.1': [2, 16, 16, 8],
    };
    expect(shapes).toMatchObject(short);
    // The short names first, then diffusers' module paths (same structure, same tensors).
    expect(model.activationNames().slice(0, 7)).toEqual(Object.keys(short));
    expect([...model.activationNames()].sort()).toEqual(Object.keys(shapes).sort());
    expect(shapes['down_blocks.1.resnets.0.conv_shortcut']).toEqual([2, 8, 8, 16]);
    expect(r.activations['down_blocks.1']).toBe(r.activations['down.1']);
    expect(r.activations.conv_out).toBe(r.sample);
    tf.dispose([x, r.sample, ...Object.values(r.activations)]);
  });

  it('gives the same output with or without tapping activations', () => {
    const x = new Generator(4).normal([1, 16, 16, 1]) as tf.Tensor4D;
    const a = model.forward({ sample: x, timesteps: [10], classLabels: [1] });
    const b = model.forward({ sample: x, timesteps: [10], classLabels: [1], returnActivations: ['down_out'] });
    expect(Array.from(b.sample.dataSync())).toEqual(Array.from(a.sample.dataSync()));
    expect(Object.keys(b.activations)).toEqual(['down_out']);
    tf.dispose([x, a.sample, b.sample, b.activations.down_out]);
  });

  it('conditions on class labels, and on an equivalent user-supplied token sequence', () => {
    const x = new Generator(5).normal([2, 16, 16, 1]) as tf.Tensor4D;
    const byLabel = model.forward({ sample: x, timesteps: [50, 50], classLabels: [2, 2] }).sample;
    const other = model.forward({ sample: x, timesteps: [50, 50], classLabels: [1, 1] }).sample;
    const emb = model.namedParameters().find(([n]) => n === 'class_emb.weight')![1];
    const tokens = tf.reshape(tf.gather(emb, tf.tensor1d([2, 2], 'int32')), [2, 1, tiny.crossAttentionDim]) as tf.Tensor3D;
    const byTokens = model.forward({ sample: x, timesteps: [50, 50], encoderHiddenStates: tokens }).sample;
    expect(relMaxError(byTokens.dataSync(), byLabel.dataSync())).toBeLessThan(1e-6);
    expect(relMaxError(other.dataSync(), byLabel.dataSync())).toBeGreaterThan(1e-4);
    tf.dispose([x, byLabel, other, tokens, byTokens]);
  });

  it('accepts the null class (index numClasses) and rejects labels out of range', () => {
    const x = tf.zeros([1, 16, 16, 1]) as tf.Tensor4D;
    tf.dispose(model.forward({ sample: x, timesteps: [1], classLabels: [tiny.numClasses] }).sample);
    expect(() => model.forward({ sample: x, timesteps: [1], classLabels: [tiny.numClasses + 1] })).toThrow(/class label 5 out of range 0\.\.4 \(4 is the null class\)/);
    expect(() => model.forward({ sample: x, timesteps: [1, 2], classLabels: [0] })).toThrow(/timesteps has 2 entries for a batch of 1/);
    expect(() => model.forward({ sample: tf.zeros([1, 16, 16, 3]) as tf.Tensor4D, timesteps: [1] })).toThrow(/3 channels, the config's inChannels is 1/);
    expect(() => model.forward({ sample: tf.zeros([1, 15, 16, 1]) as tf.Tensor4D, timesteps: [1] })).toThrow(/15x16 must be divisible by 2/);
    expect(() => model.forward({ sample: x, timesteps: [1], returnActivations: ['nope'] })).toThrow(/unknown activation "nope"; available: conv_in/);
    x.dispose();
  });

  it('handles grayscale and multi-channel images, and any size divisible by 2^(levels-1)', () => {
    const m = new UNet2DConditional({ ...tiny, inChannels: 3, outChannels: 3, sampleSize: 8 });
    const y = m.forward({ sample: tf.zeros([1, 24, 8, 3]) as tf.Tensor4D, timesteps: [0], classLabels: [0] }).sample;
    expect(y.shape).toEqual([1, 24, 8, 3]);
    y.dispose();
    m.dispose();
  });

  it('conditions an attention-free model through the timestep embedding', () => {
    const m = new UNet2DConditional({ ...tiny, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' });
    const x = new Generator(8).normal([1, 16, 16, 1]) as tf.Tensor4D;
    const a = m.forward({ sample: x, timesteps: [10], classLabels: [0] }).sample;
    const b = m.forward({ sample: x, timesteps: [10], classLabels: [1] }).sample;
    expect(relMaxError(a.dataSync(), b.dataSync())).toBeGreaterThan(1e-4);
    expect(m.namedParameters().some(([n]) => n === 'class_to_time.weight')).toBe(true);
    tf.dispose([x, a, b]);
    m.dispose();
  });

  it('initialises identically from the same seed, differently from another', () => {
    const a = new UNet2DConditional(tiny, { seed: 9 });
    const b = new UNet2DConditional(tiny, { seed: 9 });
    const c = new UNet2DConditional(tiny, { seed: 10 });
    const w = (m: UNet2DConditional) => Array.from(m.namedParameters()[5][1].dataSync());
    expect(w(a)).toEqual(w(b));
    expect(w(a)).not.toEqual(w(c));
    [a, b, c].forEach((m) => m.dispose());
  });

  it('leaks no tensors in forward, with or without activations, and frees all weights on dispose', () => {
    const x = tf.zeros([2, 16, 16, 1]) as tf.Tensor4D;
    expect(leakedTensors(() => tf.dispose(model.forward({ sample: x, timesteps: [1, 2], classLabels: [0, 1] }).sample))).toBe(0);
    expect(
      leakedTensors(() => {
        const r = model.forward({ sample: x, timesteps: [1, 2], classLabels: [0, 1], returnActivations: true });
        tf.dispose([r.sample, ...Object.values(r.activations)]);
      }),
    ).toBe(0);
    x.dispose();
    const before = tf.memory().numTensors;
    const m = new UNet2DConditional(tiny);
    const n = m.namedParameters().length;
    expect(tf.memory().numTensors - before).toBe(n);
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('UNet config validation', () => {
  it('names the field and the accepted values', () => {
    expect(() => resolveUNetConfig({ blockChannels: [8, 12], normGroups: 8 })).toThrow(/UNetConfig.blockChannels\[1\] must be divisible by normGroups \(8\), got 12/);
    expect(() => resolveUNetConfig({ sampleSize: 62 })).toThrow(/UNetConfig.sampleSize must be divisible by 2\^\(levels-1\) = 4 for 3 levels, got 62/);
    expect(() => resolveUNetConfig({ attentionLevels: [3] })).toThrow(/attentionLevels\[0\] must be a level index in 0\.\.2/);
    expect(() => resolveUNetConfig({ attentionHeads: 3 })).toThrow(/attentionHeads must be a divisor of blockChannels\[2\]/);
    expect(() => resolveUNetConfig({ channels: [8] } as never)).toThrow(/unknown field "channels"; accepted fields: sampleSize/);
    expect(() => resolveUNetConfig({ layersPerBlock: 0 })).toThrow(/layersPerBlock must be a positive integer, got 0/);
    expect(() => resolveUNetConfig({ timeEmbeddingDim: 7 })).toThrow(/timeEmbeddingDim must be an even integer/);
    expect(() => new UNet2DConditional({ normGroups: 5 })).toThrow(/blockChannels\[0\] must be divisible by normGroups \(5\)/);
    expect(() => resolveUNetConfig({ attentionLevels: [], midAttention: false })).toThrow(/classConditioning must be "time-embedding" or "both" when the config has no attention layer/);
    expect(() => resolveUNetConfig({ classConditioning: 'film' as never })).toThrow(/classConditioning must be one of cross-attention, time-embedding, both/);
  });

  it('round-trips through JSON', () => {
    const c = resolveUNetConfig(tiny);
    expect(resolveUNetConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
  });
});

describe('timestepEmbedding', () => {
  it('is [cos(t f_i), sin(t f_i)] with f_i = 10000^(-i/half)', () => {
    const e = timestepEmbedding([0, 2], 4).arraySync();
    // half = 2: f = [1, 0.01]
    expect(relMaxError(e[0], [1, 1, 0, 0])).toBeLessThan(1e-7);
    expect(relMaxError(e[1], [Math.cos(2), Math.cos(0.02), Math.sin(2), Math.sin(0.02)])).toBeLessThan(1e-7);
  });
});
