// diffusers UNet2DConditionModel import/export against the reference folders made with diffusers
// v0.16.1 itself (../shared/reference/diffusers-unet, see its README): outputs and named
// activations to 1e-4 in float32, bit-exact export, the errors, and the surgery options.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { sharedReferencePath, skipReason } from '@fad/test-utils/shared-reference';
import { leakedTensors, useCpuBackend } from '../testing/setup-cpu';
import { timestepEmbedding } from '../unet/timestep-embedding';
import { UNet2DConditional } from '../unet/unet';
import { diffusersConfigFromUNet, unetConfigFromDiffusers } from '../unet/diffusers-config';
import { decodeSafetensors, encodeSafetensors, type SafetensorsFile } from './safetensors';
import {
  diffusersUNetFromFiles,
  diffusersWeightNames,
  serializeDiffusersUNet,
} from './diffusers-unet-io';
import { loadDiffusersUNet, saveDiffusersUNet } from '../node/diffusers-files';

beforeAll(useCpuBackend);

const REF = 'diffusers-unet';
const skip = skipReason(REF, '@fad/diffusion-core tests');
const CONFIGS = ['sd-tiny', 'sd-tiny-linear-proj', 'sd-tiny-segmind-arch'];

const read = (cfg: string, f: string) => new Uint8Array(fs.readFileSync(sharedReferencePath(`${REF}/${cfg}/${f}`)));
const readConfig = (cfg: string) => JSON.parse(fs.readFileSync(sharedReferencePath(`${REF}/${cfg}/config.json`), 'utf8')) as Record<string, unknown>;

/** NCHW data -> NHWC tensor. */
function nhwc(t: { shape: number[]; data: ArrayLike<number> }): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.tensor4d(Float32Array.from(t.data), t.shape as [number, number, number, number]), [0, 2, 3, 1]));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** The activation as the reference's NCHW float array. */
function asNchw(t: tf.Tensor): Float32Array {
  return tf.tidy(() => (t.rank === 4 ? tf.transpose(t, [0, 3, 1, 2]) : t.clone())).dataSync() as Float32Array;
}

describe.each(CONFIGS)(`diffusers reference %s${skip}`, (name) => {
  const run = skip ? it.skip : it;
  let model: UNet2DConditional;
  let inputs: SafetensorsFile;
  let f32: SafetensorsFile;
  let f64: SafetensorsFile;
  beforeAll(async () => {
    if (skip) return;
    model = (await loadDiffusersUNet({ dir: sharedReferencePath(`${REF}/${name}`) })).model;
    inputs = decodeSafetensors(read(name, 'inputs.safetensors'));
    f32 = decodeSafetensors(read(name, 'outputs.f32.safetensors'));
    f64 = decodeSafetensors(read(name, 'outputs.f64.safetensors'));
  });
  afterAll(() => model?.dispose());

  const forward = (returnActivations: string[]) => {
    const sample = nhwc(inputs.tensors['input.sample']);
    const e = inputs.tensors['input.encoder_hidden_states'];
    const ehs = tf.tensor3d(Float32Array.from(e.data), e.shape as [number, number, number]);
    const r = model.forward({ sample, timesteps: Array.from(inputs.tensors['input.timestep'].data), encoderHiddenStates: ehs, returnActivations });
    tf.dispose([sample, ehs]);
    return r;
  };

  run('matches output.sample to 1e-4 (float32 reference) and to 1e-5 x max(1, max|ref|) (float64 reference)', () => {
    const r = forward([]);
    const out = asNchw(r.sample);
    expect(r.sample.shape).toEqual([2, 16, 16, 1]);
    expect(maxAbsDiff(out, f32.tensors['output.sample'].data)).toBeLessThanOrEqual(1e-4);
    const ref64 = f64.tensors['output.sample_fp64_time_proj'].data;
    expect(maxAbsDiff(out, ref64)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(ref64)));
    r.sample.dispose();
  });

  run('matches every recorded activation (act.*) to 1e-4, tapped by its diffusers module path', () => {
    const acts = Object.keys(f32.tensors).filter((k) => k.startsWith('act.')).map((k) => k.slice(4));
    const blockActs = acts.filter((a) => a !== 'time_proj' && a !== 'time_embedding');
    expect(blockActs).toContain('down_blocks.1.resnets.0.conv_shortcut');
    const r = forward(blockActs);
    expect(Object.keys(r.activations).sort()).toEqual([...blockActs].sort());
    for (const a of blockActs) {
      const ref = f32.tensors[`act.${a}`];
      const got = r.activations[a];
      expect([got.shape[0], got.shape[3], got.shape[1], got.shape[2]], a).toEqual(ref.shape);
      expect(maxAbsDiff(asNchw(got), ref.data), a).toBeLessThanOrEqual(1e-4);
    }
    tf.dispose([r.sample, ...Object.values(r.activations)]);
    // The timestep path: the sinusoid (cos first) and the time MLP.
    const ts = Array.from(inputs.tensors['input.timestep'].data);
    const c = model.config;
    const tp = timestepEmbedding(ts, c.timeEmbeddingDim, { flipSinToCos: c.flipSinToCos, freqShift: c.freqShift });
    expect(maxAbsDiff(tp.dataSync(), f32.tensors['act.time_proj'].data)).toBeLessThanOrEqual(1e-5);
    const te = model.timeEmbedding(ts);
    expect(maxAbsDiff(te.dataSync(), f32.tensors['act.time_embedding'].data)).toBeLessThanOrEqual(1e-4);
    tf.dispose([tp, te]);
  });

  run('exports config.json and safetensors that re-import bit-exactly (the same weight bytes as diffusers wrote)', async () => {
    const s = serializeDiffusersUNet({ model });
    const original = read(name, 'diffusion_pytorch_model.safetensors');
    // Same names, state-dict order, shapes, dtype and float bits: the very same file.
    expect(s.weights.length).toBe(original.length);
    expect(Buffer.compare(Buffer.from(s.weights), Buffer.from(original))).toBe(0);
    expect(s.config).toEqual(readConfig(name));
    expect(Object.keys(s.config)).toEqual([...Object.keys(s.config)].sort());
    expect(s.conditioning).toBeNull();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fad-diffusers-'));
    await saveDiffusersUNet({ model, dir });
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'diffusion_pytorch_model.safetensors']);
    const back = (await loadDiffusersUNet({ dir })).model;
    expect(back.config).toEqual(model.config);
    const a = model.namedParameters();
    const b = back.namedParameters();
    expect(b.map(([n]) => n)).toEqual(a.map(([n]) => n));
    a.forEach(([n, v], i) => expect(Buffer.compare(Buffer.from((b[i][1].dataSync() as Float32Array).buffer), Buffer.from((v.dataSync() as Float32Array).buffer)), n).toBe(0));
    back.dispose();
    fs.rmSync(dir, { recursive: true });
  });

  run('maps each of the file tensors once, in state-dict order', () => {
    const keys = fs.readFileSync(sharedReferencePath(`${REF}/${name}/keys.txt`), 'utf8').trim().split('\n').map((l) => l.split('\t')[0]);
    const names = diffusersWeightNames(model.config);
    expect(names.map((w) => w.diffusers)).toEqual(keys);
    expect(new Set(names.map((w) => w.fad)).size).toBe(names.length);
    expect(names.length).toBe(model.namedParameters().length);
  });
});

describe(`diffusers import errors and surgery${skip}`, () => {
  const run = skip ? it.skip : it;
  const name = 'sd-tiny';
  let config: Record<string, unknown>;
  let weights: SafetensorsFile;
  beforeAll(() => {
    if (skip) return;
    config = readConfig(name);
    weights = decodeSafetensors(read(name, 'diffusion_pytorch_model.safetensors'));
  });
  const without = (drop: string): SafetensorsFile => {
    const tensors = { ...weights.tensors };
    delete tensors[drop];
    return { tensors, metadata: weights.metadata };
  };

  run('rejects an unsupported key or value, naming it and what is supported', () => {
    expect(() => unetConfigFromDiffusers({ ...config, attention_slicing: true })).toThrow(/unsupported key "attention_slicing".*supported keys are UNet2DConditionModel's arguments in diffusers 0\.16\.1: sample_size, in_channels/);
    expect(() => unetConfigFromDiffusers({ ...config, class_embed_type: 'timestep' })).toThrow(/class_embed_type = "timestep" is not supported; supported: null/);
    expect(() => unetConfigFromDiffusers({ ...config, down_block_types: ['SimpleCrossAttnDownBlock2D', 'DownBlock2D'] })).toThrow(/down_block_types\[0\] = "SimpleCrossAttnDownBlock2D" is not supported; supported: CrossAttnDownBlock2D, DownBlock2D/);
    expect(() => unetConfigFromDiffusers({ ...config, mid_block_type: 'UNetMidBlock2DSimpleCrossAttn' })).toThrow(/mid_block_type = "UNetMidBlock2DSimpleCrossAttn" is not supported; supported: UNetMidBlock2DCrossAttn or null/);
    expect(() => unetConfigFromDiffusers({ ...config, attention_head_dim: 5 })).toThrow(/attention_head_dim = 5 is not supported.*number of heads/);
    expect(() => unetConfigFromDiffusers({ ...config, act_fn: 'mish' })).toThrow(/act_fn = "mish" is not supported; supported: "silu"/);
    expect(() => unetConfigFromDiffusers({ ...config, _class_name: 'UNet2DModel' })).toThrow(/_class_name = "UNet2DModel" is not supported; supported: "UNet2DConditionModel"/);
    expect(() => unetConfigFromDiffusers({ ...config, transformer_layers_per_block: 2 })).toThrow(/transformer_layers_per_block = 2 is not supported; supported: 1/);
    // Keys of later diffusers versions at their neutral values, and no-effect keys, are accepted.
    expect(() => unetConfigFromDiffusers({ ...config, transformer_layers_per_block: 1, dropout: 0.0, attention_type: 'default', num_attention_heads: null, upcast_attention: true, resnet_skip_time_act: true })).not.toThrow();
  });

  run('names a missing, an extra and a wrongly shaped tensor with both shapes', () => {
    const before = tf.memory().numTensors;
    expect(() => diffusersUNetFromFiles({ config, weights: without('down_blocks.1.resnets.0.conv_shortcut.weight') })).toThrow(
      /missing tensor "down_blocks\.1\.resnets\.0\.conv_shortcut\.weight" \(shape \[64, 32, 1, 1\] expected from config\.json\)/,
    );
    const extra = { tensors: { ...weights.tensors, 'down_blocks.0.extra.weight': { dtype: 'F32' as const, shape: [2, 3], data: new Float32Array(6) } }, metadata: {} };
    expect(() => diffusersUNetFromFiles({ config, weights: extra })).toThrow(/unexpected tensor "down_blocks\.0\.extra\.weight" \(shape \[2, 3\]\)/);
    const bad = without('mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight');
    bad.tensors['mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight'] = { dtype: 'F32', shape: [64, 32], data: new Float32Array(64 * 32) };
    expect(() => diffusersUNetFromFiles({ config, weights: bad })).toThrow(
      /tensor "mid_block\.attentions\.0\.transformer_blocks\.0\.attn2\.to_k\.weight" has shape \[64, 32\] in the weights, but config\.json implies \[64, 24\]/,
    );
    // A config whose architecture differs from the weights: every mismatch is named.
    expect(() => diffusersUNetFromFiles({ config: { ...config, layers_per_block: 2 }, weights })).toThrow(/missing tensor "down_blocks\.0\.attentions\.1\.norm\.weight" \(shape \[32\] expected from config\.json\).*\(\+90 more\)/);
    expect(() => diffusersUNetFromFiles({ config: { ...config, use_linear_projection: true }, weights })).toThrow(/"down_blocks\.0\.attentions\.0\.proj_in\.weight" has shape \[32, 32, 1, 1\] in the weights, but config\.json implies \[32, 32\]/);
    expect(tf.memory().numTensors).toBe(before); // failed loads free their model
  });

  run('replaces conv_in/conv_out by new seeded convs and keeps every other weight', () => {
    const plain = diffusersUNetFromFiles({ config, weights }).model;
    const a = diffusersUNetFromFiles({ config, weights, inChannels: 3, outChannels: 3, seed: 7 });
    const b = diffusersUNetFromFiles({ config, weights, inChannels: 3, outChannels: 3, seed: 7 });
    const c = diffusersUNetFromFiles({ config, weights, inChannels: 3, outChannels: 3, seed: 8 });
    expect(a.initialized).toEqual(['conv_in.weight', 'conv_in.bias', 'conv_out.weight', 'conv_out.bias']);
    expect(a.model.config.inChannels).toBe(3);
    const get = (m: UNet2DConditional, n: string) => Array.from(m.namedParameters().find(([k]) => k === n)![1].dataSync());
    expect(get(a.model, 'conv_in.weight')).toHaveLength(3 * 3 * 3 * 32);
    expect(get(a.model, 'conv_in.weight')).toEqual(get(b.model, 'conv_in.weight'));
    expect(get(a.model, 'conv_in.weight')).not.toEqual(get(c.model, 'conv_in.weight'));
    for (const [n] of plain.namedParameters()) if (!n.startsWith('conv_in') && !n.startsWith('conv_out')) expect(get(a.model, n), n).toEqual(get(plain, n));
    const x = new Generator(1).normal([1, 16, 16, 3]) as tf.Tensor4D;
    const y = a.model.forward({ sample: x, timesteps: [5] }).sample;
    expect(y.shape).toEqual([1, 16, 16, 3]);
    tf.dispose([x, y]);
    [plain, a.model, b.model, c.model].forEach((m) => m.dispose());
  });

  run('class-label conditioning: learned embeddings mapped to cross_attention_dim, fed as encoder_hidden_states', () => {
    const { model, initialized } = diffusersUNetFromFiles({ config, weights, numClasses: 3, classEmbeddingDim: 8, seed: 1 });
    expect(initialized).toEqual(['class_emb.weight', 'class_proj.weight', 'class_proj.bias']);
    expect(model.config).toMatchObject({ numClasses: 3, nullClass: true, classEmbeddingDim: 8, crossAttentionDim: 24 });
    const p = Object.fromEntries(model.namedParameters());
    expect(p['class_emb.weight'].shape).toEqual([4, 8]);
    const x = new Generator(2).normal([2, 16, 16, 1]) as tf.Tensor4D;
    const byLabel = model.forward({ sample: x, timesteps: [10, 500], classLabels: [2, 3] }).sample;
    const tokens = tf.tidy(() => {
      const e = tf.gather(p['class_emb.weight'], tf.tensor1d([2, 3], 'int32'));
      return tf.reshape(tf.add(tf.matMul(e, p['class_proj.weight']), p['class_proj.bias']), [2, 1, 24]) as tf.Tensor3D;
    });
    const byStates = model.forward({ sample: x, timesteps: [10, 500], encoderHiddenStates: tokens }).sample;
    expect(maxAbsDiff(byLabel.dataSync(), byStates.dataSync())).toBeLessThan(1e-5);
    tf.dispose([x, byLabel, tokens, byStates]);
    model.dispose();
  });

  run('exports a class-conditional model with its embeddings beside the U-Net, and reads them back', async () => {
    const { model } = diffusersUNetFromFiles({ config, weights, numClasses: 2, classEmbeddingDim: 8, seed: 3 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fad-diffusers-'));
    await saveDiffusersUNet({ model, dir });
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'diffusion_pytorch_model.safetensors', 'fad_conditioning.safetensors']);
    const back = (await loadDiffusersUNet({ dir })).model;
    expect(back.config).toEqual(model.config);
    const a = Object.fromEntries(model.namedParameters());
    for (const [n, v] of back.namedParameters()) expect(Array.from(v.dataSync()), n).toEqual(Array.from(a[n].dataSync()));
    back.dispose();
    model.dispose();
    fs.rmSync(dir, { recursive: true });
  });

  run('reads a whole pipeline folder (its unet/ subfolder) and F16 weights', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fad-pipeline-'));
    fs.mkdirSync(path.join(dir, 'unet'));
    fs.writeFileSync(path.join(dir, 'unet', 'config.json'), JSON.stringify(config));
    // Weights rounded to float16 (as diffusers' fp16 variants): loaded as the same halves in float32.
    const half: SafetensorsFile = { tensors: {}, metadata: { format: 'pt' } };
    const rounded: SafetensorsFile = { tensors: {}, metadata: { format: 'pt' } };
    for (const [n, t] of Object.entries(weights.tensors)) {
      const h = new Uint16Array(t.data.length);
      const r = new Float32Array(t.data.length);
      for (let i = 0; i < h.length; i++) [h[i], r[i]] = toHalf(t.data[i]);
      half.tensors[n] = { dtype: 'F16', shape: t.shape, data: h };
      rounded.tensors[n] = { dtype: 'F32', shape: t.shape, data: r };
    }
    fs.writeFileSync(path.join(dir, 'unet', 'diffusion_pytorch_model.safetensors'), encodeSafetensors(half, { keepOrder: true }));
    const loaded = await loadDiffusersUNet({ dir });
    expect(loaded.dir).toBe(path.join(dir, 'unet'));
    const ref = diffusersUNetFromFiles({ config, weights: rounded }).model;
    const a = Object.fromEntries(ref.namedParameters());
    for (const [n, v] of loaded.model.namedParameters()) expect(Array.from(v.dataSync()), n).toEqual(Array.from(a[n].dataSync()));
    ref.dispose();
    loaded.model.dispose();
    await expect(loadDiffusersUNet({ dir: path.join(dir, 'nope') })).rejects.toThrow(/does not exist/);
    fs.rmSync(dir, { recursive: true });
  });

  run('leaks no tensors: load, forward with taps, export, dispose', () => {
    const leaked = leakedTensors(() => {
      const { model } = diffusersUNetFromFiles({ config, weights, numClasses: 2, inChannels: 2 });
      const x = tf.zeros([1, 16, 16, 2]) as tf.Tensor4D;
      const r = model.forward({ sample: x, timesteps: [3], classLabels: [1], returnActivations: ['down_blocks.1.resnets.0.conv_shortcut', 'mid_block', 'conv_norm_out'] });
      tf.dispose([x, r.sample, ...Object.values(r.activations)]);
      const t = model.timeEmbedding([1, 2]);
      t.dispose();
      serializeDiffusersUNet({ model });
      model.dispose();
    });
    expect(leaked).toBe(0);
  });
});

describe('diffusers config export', () => {
  it('refuses models diffusers cannot express, naming the field', () => {
    const m = new UNet2DConditional({ sampleSize: 8, blockChannels: [8, 16], layersPerBlock: 1, normGroups: 4, attentionLevels: [1], attentionHeads: 2, timeEmbeddingDim: 8, timeEmbeddingHiddenDim: 32, numClasses: 0, nullClass: false, crossAttentionDim: 8 });
    expect(() => diffusersConfigFromUNet(m.config)).toThrow(/UNetConfig\.feedForward = "silu" has no UNet2DConditionModel equivalent/);
    expect(() => diffusersConfigFromUNet({ ...m.config, feedForward: 'geglu' })).toThrow(/transformerNormEps = 0\.00001/);
    const ok = { ...m.config, feedForward: 'geglu' as const, transformerNormEps: 1e-6 };
    const d = diffusersConfigFromUNet(ok);
    expect(d).toMatchObject({ down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D'], up_block_types: ['CrossAttnUpBlock2D', 'UpBlock2D'], attention_head_dim: 2, time_embedding_dim: null });
    // ... and the config reads back as the same model config.
    expect(unetConfigFromDiffusers(d)).toEqual({ ...ok, flipSinToCos: true, freqShift: 0, linearProjection: false });
    m.dispose();
  });

  it('supports per-level layers and heads, asymmetric attention and the scale-shift time embedding (structure and function)', () => {
    const d = {
      block_out_channels: [8, 16, 16], down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D', 'CrossAttnDownBlock2D'],
      up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'], layers_per_block: [1, 2, 1], attention_head_dim: [2, 4, 8],
      norm_num_groups: 4, cross_attention_dim: 6, in_channels: 1, out_channels: 2, sample_size: 8, resnet_time_scale_shift: 'scale_shift',
      mid_block_scale_factor: 2, downsample_padding: 0, center_input_sample: true, conv_in_kernel: 1, time_embedding_dim: 24,
    };
    const c = unetConfigFromDiffusers(d);
    const m = new UNet2DConditional(c, { seed: 1 });
    const names = diffusersWeightNames(c).map((w) => w.diffusers);
    expect(names).toContain('down_blocks.1.resnets.1.conv2.weight');
    expect(names).toContain('up_blocks.1.resnets.2.conv_shortcut.weight');
    expect(names).toContain('up_blocks.1.attentions.0.proj_in.weight');
    expect(names.some((n) => n.startsWith('up_blocks.2.attentions'))).toBe(false);
    const shapes = Object.fromEntries(m.namedParameters().map(([n, v]) => [n, v.shape]));
    expect(shapes['down_res.0.temb.weight']).toEqual([24, 16]); // scale and shift
    expect(shapes['conv_in.weight']).toEqual([1, 1, 1, 8]);
    const x = new Generator(3).normal([1, 8, 8, 1]) as tf.Tensor4D;
    const e = new Generator(4).normal([1, 2, 6]) as tf.Tensor3D;
    const r = m.forward({ sample: x, timesteps: [7], encoderHiddenStates: e, returnActivations: ['down_blocks.0.downsamplers.0'] });
    expect(r.sample.shape).toEqual([1, 8, 8, 2]);
    expect(r.activations['down_blocks.0.downsamplers.0'].shape).toEqual([1, 4, 4, 8]);
    tf.dispose([x, e, r.sample, ...Object.values(r.activations)]);
    // The export writes the same semantics back.
    expect(diffusersConfigFromUNet(c)).toMatchObject({ ...d, sample_size: 8 });
    m.dispose();
  });
});

/** float -> [IEEE half bits, the half's value] (round to nearest even; test inputs are normal). */
function toHalf(x: number): [number, number] {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  let mant = u & 0x7fffff;
  if (exp <= 0) return [sign, sign ? -0 : 0];
  let h = sign | (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  mant = h & 0x3ff;
  const e = (h >> 10) & 0x1f;
  const v = (h & 0x8000 ? -1 : 1) * (1 + mant / 1024) * 2 ** (e - 15);
  return [h, v];
}

// A config using every optional key the importer supports (per-level layers and heads, asymmetric
// attention, linear projections, sines first with freq_shift 1, scale-shift time embedding,
// time_embedding_dim, mid_block_scale_factor, downsample_padding 0, center_input_sample, 5x5
// conv_in, 1x1 conv_out), against an independent float64 numpy forward written from diffusers'
// source (test/fixtures/diffusers-extended/make_ref.py; the files are committed, so it always runs).
describe('diffusers semantics beyond the shipped references (numpy forward)', () => {
  const dir = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'test', 'fixtures', 'diffusers-extended');
  it('matches output.sample and every block output to 1e-4', async () => {
    const { model } = await loadDiffusersUNet({ dir });
    expect(model.config).toMatchObject({ layersPerBlock: [1, 2, 1], attentionHeads: [2, 2, 4], attentionLevels: [0, 2], upAttentionLevels: [1, 2], timeScaleShift: true, flipSinToCos: false, freqShift: 1, downsamplePadding: 0 });
    const io = decodeSafetensors(new Uint8Array(fs.readFileSync(path.join(dir, 'io.safetensors')))).tensors;
    const sample = nhwc(io['input.sample']);
    const e = io['input.encoder_hidden_states'];
    const ehs = tf.tensor3d(Float32Array.from(e.data), e.shape as [number, number, number]);
    const names = Object.keys(io).filter((k) => k.startsWith('act.')).map((k) => k.slice(4));
    expect(names).toHaveLength(7);
    const r = model.forward({ sample, timesteps: Array.from(io['input.timestep'].data), encoderHiddenStates: ehs, returnActivations: names });
    expect(maxAbsDiff(asNchw(r.sample), io['output.sample'].data)).toBeLessThanOrEqual(1e-4);
    for (const n of names) expect(maxAbsDiff(asNchw(r.activations[n]), io[`act.${n}`].data), n).toBeLessThanOrEqual(1e-4);
    tf.dispose([sample, ehs, r.sample, ...Object.values(r.activations)]);
    model.dispose();
  });
});
