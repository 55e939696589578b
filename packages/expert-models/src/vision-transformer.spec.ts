import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { presetConfig } from './expert-config';
import { maxAbsDiff, useCpuBackend } from './testing/setup-cpu';
import { VisionTransformer, gelu } from './vision-transformer';

beforeAll(useCpuBackend);

const tiny = { arch: 'vit', patchSize: 4, depth: 1, numHeads: 2, width: 4, mlpRatio: 2, numClasses: 3, input: { size: 8, channels: 1 } } as const;

describe('VisionTransformer parameter counts', () => {
  it('ViT-B/16 (224, 3 channels, 1000 classes, class token) has 86,567,656 parameters', () => {
    const m = new VisionTransformer({ config: presetConfig({ name: 'vit-b16' }) as never, initialize: false });
    expect(m.numParameters()).toBe(86_567_656);
    const shapes = Object.fromEntries(m.namedParameters().map(([n, v]) => [n, v.shape]));
    expect(shapes['conv_proj.weight']).toEqual([16, 16, 3, 768]);
    expect(shapes.class_token).toEqual([1, 1, 768]);
    expect(shapes['encoder.pos_embedding']).toEqual([1, 197, 768]);
    expect(shapes['encoder.layers.0.self_attention.in_proj.weight']).toEqual([768, 2304]);
    expect(shapes['encoder.layers.11.mlp.0.weight']).toEqual([768, 3072]);
    expect(shapes['encoder.layers.11.mlp.3.weight']).toEqual([3072, 768]);
    expect(shapes['encoder.ln.weight']).toEqual([768]);
    expect(shapes['head.weight']).toEqual([768, 1000]);
    m.dispose();
  });

  it('mean pooling drops the class token and its position; the small Kather ViT has 2,696,264', () => {
    const m = new VisionTransformer({ config: presetConfig({ name: 'vit-b16', overrides: { pooling: 'mean' } }) as never, initialize: false });
    expect(m.numParameters()).toBe(86_567_656 - 768 - 768);
    m.dispose();
    const s = new VisionTransformer({ config: presetConfig({ name: 'vit-small-kather' }) as never, initialize: false });
    expect(s.numParameters()).toBe(2_696_264);
    s.dispose();
  });
});

/** Plain-JS forward of the tiny ViT (class token, depth 1) from its state dict. */
function referenceFeatures(state: Record<string, { shape: number[]; data: Float32Array }>, img: number[], cfg: { size: number; patch: number; width: number; heads: number; eps: number }): number[] {
  const { size, patch, width: d, heads, eps } = cfg;
  const W = (n: string) => state[n].data;
  const g = size / patch;
  const linear = (x: number[], w: Float32Array, b: Float32Array, out: number) =>
    Array.from({ length: out }, (_, o) => x.reduce((s, xi, i) => s + xi * w[i * out + o], b[o]));
  const ln = (x: number[], w: Float32Array, b: Float32Array) => {
    const m = x.reduce((s, v) => s + v, 0) / x.length;
    const v = x.reduce((s, t) => s + (t - m) ** 2, 0) / x.length;
    return x.map((t, i) => ((t - m) / Math.sqrt(v + eps)) * w[i] + b[i]);
  };
  const erf = (x: number) => {
    // Abramowitz-Stegun 7.1.26 is too coarse; use a series/continued form via Math (high precision enough here).
    const t = 1 / (1 + 0.5 * Math.abs(x));
    const y = 1 - t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    return x >= 0 ? y : -y;
  };
  // Patch embedding: conv weight [p, p, 1, d].
  const tokens: number[][] = [Array.from(W('class_token'))];
  for (let py = 0; py < g; py++)
    for (let px = 0; px < g; px++) {
      const v = new Array<number>(patch * patch).fill(0).map((_, i) => img[(py * patch + Math.floor(i / patch)) * size + px * patch + (i % patch)]);
      tokens.push(linear(v, W('conv_proj.weight'), W('conv_proj.bias'), d));
    }
  const pos = W('encoder.pos_embedding');
  let h = tokens.map((t, n) => t.map((v, i) => v + pos[n * d + i]));
  const p = 'encoder.layers.0.';
  const a = h.map((t) => ln(t, W(p + 'ln_1.weight'), W(p + 'ln_1.bias')));
  const qkv = a.map((t) => linear(t, W(p + 'self_attention.in_proj.weight'), W(p + 'self_attention.in_proj.bias'), 3 * d));
  const dh = d / heads;
  const att = h.map(() => new Array<number>(d).fill(0));
  for (let hd = 0; hd < heads; hd++)
    for (let i = 0; i < h.length; i++) {
      const q = qkv[i].slice(hd * dh, hd * dh + dh);
      const scores = qkv.map((r) => r.slice(d + hd * dh, d + hd * dh + dh).reduce((s, k, j) => s + k * q[j], 0) / Math.sqrt(dh));
      const mx = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - mx));
      const z = e.reduce((s, v) => s + v, 0);
      qkv.forEach((r, j) => r.slice(2 * d + hd * dh, 2 * d + hd * dh + dh).forEach((v, k) => (att[i][hd * dh + k] += (e[j] / z) * v)));
    }
  h = h.map((t, i) => linear(att[i], W(p + 'self_attention.out_proj.weight'), W(p + 'self_attention.out_proj.bias'), d).map((v, k) => v + t[k]));
  h = h.map((t) => {
    const m1 = linear(ln(t, W(p + 'ln_2.weight'), W(p + 'ln_2.bias')), W(p + 'mlp.0.weight'), W(p + 'mlp.0.bias'), 2 * d).map((x) => 0.5 * x * (1 + erf(x / Math.SQRT2)));
    return linear(m1, W(p + 'mlp.3.weight'), W(p + 'mlp.3.bias'), d).map((v, k) => v + t[k]);
  });
  return ln(h[0], W('encoder.ln.weight'), W('encoder.ln.bias'));
}

describe('VisionTransformer forward', () => {
  it('matches a plain-JS reference (patches, class token, attention heads, GELU MLP, final LN)', () => {
    const m = new VisionTransformer({ config: tiny, seed: 5 });
    // Non-trivial class token, LayerNorm affine and biases.
    const state = m.stateDict();
    const rnd = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + s) * 0.5);
    for (const [k, v] of Object.entries(state)) if (/bias|class_token|ln.*weight/.test(k)) v.data = rnd(v.data.length, k.length);
    m.loadStateDict(state);
    const img = Array.from({ length: 64 }, (_, i) => Math.cos(i * 0.37));
    const ours = m.features(tf.tensor4d(img, [1, 8, 8, 1])).dataSync();
    const ref = referenceFeatures(m.stateDict(), img, { size: 8, patch: 4, width: 4, heads: 2, eps: 1e-6 });
    expect(maxAbsDiff(ours, ref)).toBeLessThan(1e-4);
    m.dispose();
  });

  it('gives the right shapes for class-token and mean pooling, linear and MLP heads, RGB input', () => {
    for (const pooling of ['cls', 'mean'] as const)
      for (const head of [{ type: 'linear' }, { type: 'mlp', hiddenDim: 5 }] as const) {
        const m = new VisionTransformer({ config: { ...tiny, pooling, head, input: { size: 8, channels: 3 } } });
        const x = tf.randomUniform([3, 8, 8, 3]) as tf.Tensor4D;
        expect(m.features(x).shape).toEqual([3, 4]);
        expect(m.logits(x).shape).toEqual([3, 3]);
        expect(m.numPatches).toBe(4);
        x.dispose();
        m.dispose();
      }
  });

  it('processes each image of a batch independently', () => {
    const m = new VisionTransformer({ config: { ...tiny, depth: 2 } });
    const x = tf.randomUniform([3, 8, 8, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
    const all = m.features(x).dataSync();
    const one = m.features(tf.slice(x, [1, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D).dataSync();
    expect(maxAbsDiff(all.slice(4, 8), one)).toBeLessThan(1e-5);
    m.dispose();
  });
});

describe('gelu', () => {
  it('is the exact (erf) GELU', () => {
    const y = gelu(tf.tensor1d([0, 1, -1, 3])).dataSync();
    [0, 0.8413447, -0.1586553, 2.9959502].forEach((e, i) => expect(y[i]).toBeCloseTo(e, 5));
  });
});
