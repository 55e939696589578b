// The fused GroupNorm(+SiLU) and SiLU kernels (value and gradients, through tfjs's tape)
// against the same math composed from tfjs ops on the reference cpu backend: batch 1 and
// larger batches, odd sizes, one group, one channel per group, the LayerNorm form [rows,1,C],
// and sizes that take both parallel paths (whole samples per thread, rows of one sample
// split across threads). Criterion: max |native - cpu| / max |cpu| <= 1e-4.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { beforeAll, describe, expect, it } from 'vitest';

import { FUSED_ADAM, FUSED_ATTENTION, FUSED_BATCH_NORM, FUSED_GROUP_NORM, FUSED_SILU, loadNativeAddon, NATIVE_BACKEND_NAME, registerNativeBackend } from './index';
import { randomFloats, relMaxError, runOn } from './test-utils';

const TOL = 1e-4;
const loaded = loadNativeAddon();
if (!loaded.ok) console.warn(`[@fad/tfjs-native] SKIPPING fused op tests: ${loaded.reason}`);

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const rand = (shape: number[], seed: number, scale = 1, shift = 0) =>
  tf.tensor(randomFloats(size(shape), seed).map((v) => v * scale + shift), shape);

/** GroupNorm(+SiLU) from tfjs ops, as @fad/diffusion-core composes it. */
function composedGroupNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, groups: number, eps: number, silu: boolean | 'relu'): tf.Tensor {
  const n = x.shape[0];
  const c = x.shape[x.shape.length - 1];
  const s = size(x.shape.slice(1, -1));
  const xg = tf.reshape(x, [n, s, groups, c / groups]);
  const { mean, variance } = tf.moments(xg, [1, 3], true);
  const xn = tf.reshape(tf.mul(tf.sub(xg, mean), tf.rsqrt(tf.add(variance, eps))), x.shape);
  const y = tf.add(tf.mul(xn, gamma), beta);
  if (silu === 'relu') return tf.relu(y);
  return silu ? tf.mul(y, tf.sigmoid(y)) : y;
}

function fusedGroupNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, groups: number, eps: number, silu: boolean | 'relu'): tf.Tensor {
  const attrs = { groups, epsilon: eps, silu: silu === true, relu: silu === 'relu' };
  const outs = tf.engine().runKernel(FUSED_GROUP_NORM, { x, gamma, beta }, attrs as never) as tf.Tensor[];
  return outs[0];
}

describe.skipIf(!loaded.ok)('native backend: fused ops vs composed tfjs ops on cpu', () => {
  beforeAll(() => {
    expect(registerNativeBackend()).toBe(true);
  });

  const cases: Array<{ shape: number[]; groups: number }> = [
    { shape: [2, 5, 3, 8], groups: 4 },
    { shape: [1, 4, 4, 6], groups: 3 },
    { shape: [3, 1, 7, 4], groups: 1 },
    { shape: [2, 3, 3, 5], groups: 5 },
    { shape: [1, 1, 1, 8], groups: 2 },
    { shape: [5, 9, 16], groups: 4 },
    { shape: [16, 32, 32, 32], groups: 8 }, // whole samples per thread
    { shape: [1, 64, 64, 32], groups: 8 }, // one sample, rows split across threads
    { shape: [2, 32, 32, 96], groups: 8 },
    { shape: [4096, 1, 128], groups: 1 }, // LayerNorm form
    { shape: [1, 16 * 8 * 8, 64], groups: 64 }, // training-mode BatchNorm form
    { shape: [1, 7 * 3, 5], groups: 5 },
  ];

  for (const { shape, groups } of cases) {
    for (const silu of [false, true, 'relu'] as const) {
      it(`GroupNorm${silu === 'relu' ? '+ReLU' : silu ? '+SiLU' : ''} [${shape}] groups=${groups}: value and gradients`, async () => {
        const c = shape[shape.length - 1];
        const seed = size(shape) + groups;
        const run = (impl: typeof composedGroupNorm) => () => {
          const x = rand(shape, seed, 2, 0.5);
          const gamma = rand([c], seed + 1, 0.5, 1);
          const beta = rand([c], seed + 2, 0.5);
          const w = rand(shape, seed + 3);
          const f = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(impl(xx, g, b, groups, 1e-5, silu), w));
          const y = impl(x, gamma, beta, groups, 1e-5, silu);
          return [y, ...tf.grads(f)([x, gamma, beta])];
        };
        const ref = await runOn('cpu', run(composedGroupNorm));
        const got = await runOn(NATIVE_BACKEND_NAME, run(fusedGroupNorm));
        expect(got.shape).toEqual(ref.shape);
        ['y', 'dx', 'dgamma', 'dbeta'].forEach((name, i) => {
          const err = relMaxError(got.values[i], ref.values[i]);
          expect(err, `${name}: rel. max error ${err}`).toBeLessThanOrEqual(TOL);
        });
      });
    }
  }

  // FadBatchNorm against PyTorch's BatchNorm2d training step composed from tfjs ops: output,
  // running averages (momentum 0.1, unbiased variance) and gradients, at the ResNet50 expert's
  // shapes (rows split across threads, and small enough to stay on one thread).
  for (const shape of [[16, 16, 16, 64], [16, 2, 2, 2048], [2, 3, 5], [4, 1, 1, 3]]) {
    for (const relu of [false, true]) {
      it(`BatchNorm${relu ? '+ReLU' : ''} [${shape}]: value, running averages and gradients`, async () => {
        const c = shape[shape.length - 1];
        const n = size(shape) / c;
        const seed = size(shape) + (relu ? 1 : 0);
        const axes = shape.slice(0, -1).map((_, i) => i);
        const run = (fused: boolean) => () => {
          const x = rand(shape, seed, 2, 0.5);
          const gamma = rand([c], seed + 1, 0.5, 1);
          const beta = rand([c], seed + 2, 0.5);
          const rm = rand([c], seed + 3);
          const rv = rand([c], seed + 4, 0.5, 1);
          const w = rand(shape, seed + 5);
          const bn = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor[] => {
            if (fused) {
              const [y, mean, rstd, rm2, rv2] = tf.engine().runKernel(FUSED_BATCH_NORM, { x: xx, gamma: g, beta: b, runningMean: rm, runningVar: rv }, { epsilon: 1e-5, momentum: 0.1, relu } as never) as tf.Tensor[];
              tf.dispose([mean, rstd]);
              return [y, rm2, rv2];
            }
            const { mean, variance } = tf.moments(xx, axes);
            const y = tf.add(tf.mul(tf.mul(tf.sub(xx, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
            return [relu ? tf.relu(y) : y, tf.add(tf.mul(rm, 0.9), tf.mul(mean, 0.1)), tf.add(tf.mul(rv, 0.9), tf.mul(variance, (0.1 * n) / (n - 1)))];
          };
          const f = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(bn(xx, g, b)[0], w));
          return [...bn(x, gamma, beta), ...tf.grads(f)([x, gamma, beta])];
        };
        const ref = await runOn('cpu', run(false));
        const before = (await tf.setBackend(NATIVE_BACKEND_NAME), tf.memory().numTensors);
        const got = await runOn(NATIVE_BACKEND_NAME, run(true));
        expect(tf.memory().numTensors, 'leaked tensors').toBe(before);
        ['y', 'runningMean', 'runningVar', 'dx', 'dgamma', 'dbeta'].forEach((name, i) => {
          const err = relMaxError(got.values[i], ref.values[i]);
          expect(err, `${name}: rel. max error ${err}`).toBeLessThanOrEqual(TOL);
        });
      });
    }
  }

  it('BatchNorm rejects a single value per channel and a bad momentum', async () => {
    await tf.setBackend(NATIVE_BACKEND_NAME);
    const bn = (x: tf.Tensor, momentum: number) => () =>
      tf.tidy(() => tf.engine().runKernel(FUSED_BATCH_NORM, { x, gamma: tf.ones([3]), beta: tf.zeros([3]), runningMean: tf.zeros([3]), runningVar: tf.ones([3]) }, { epsilon: 1e-5, momentum } as never));
    expect(bn(tf.ones([1, 1, 1, 3]), 0.1)).toThrow(/at least 2 values per channel, got \[1,1,1,3\]/);
    expect(bn(tf.ones([2, 3]), 1.5)).toThrow(/momentum must be in \[0, 1\], got 1.5/);
    expect(bn(tf.ones([2, 4]), 0.1)).toThrow(/runningMean: expected 4 values/);
  });

  it('GroupNorm of a constant group (zero variance) stays finite', async () => {
    const got = await runOn(NATIVE_BACKEND_NAME, () => fusedGroupNorm(tf.ones([2, 3, 3, 4]), tf.ones([4]), tf.zeros([4]), 2, 1e-5, true));
    expect(Array.from(got.values[0]).every(Number.isFinite)).toBe(true);
  });

  it('GroupNorm rejects channels not divisible by the groups', async () => {
    await tf.setBackend(NATIVE_BACKEND_NAME);
    expect(() => tf.tidy(() => fusedGroupNorm(tf.ones([1, 2, 2, 6]), tf.ones([6]), tf.zeros([6]), 4, 1e-5, false))).toThrow(
      /groups \(4\) must divide/,
    );
  });

  for (const shape of [[7], [3, 5, 11], [200003]]) {
    it(`SiLU [${shape}]: value and gradient`, async () => {
      const run = (fused: boolean) => () => {
        const x = rand(shape, size(shape), 8);
        const w = rand(shape, size(shape) + 1);
        const silu = (t: tf.Tensor) => (fused ? (tf.engine().runKernel(FUSED_SILU, { x: t }) as tf.Tensor) : tf.mul(t, tf.sigmoid(t)));
        return [silu(x), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(silu(t), w)))(x)];
      };
      const ref = await runOn('cpu', run(false));
      const got = await runOn(NATIVE_BACKEND_NAME, run(true));
      ['y', 'dx'].forEach((name, i) => {
        const err = relMaxError(got.values[i], ref.values[i]);
        expect(err, `${name}: rel. max error ${err}`).toBeLessThanOrEqual(TOL);
      });
    });
  }

  for (const [shape, decay] of [[[7], 0], [[3, 3, 16, 8], 1e-6], [[300007], 0]] as Array<[number[], number]>) {
    it(`Adam step [${shape}] decay=${decay}: x', m', v' as composed tfjs ops`, async () => {
      const attrs = { beta1: 0.9, beta2: 0.999, stepSize: 1e-3 * Math.sqrt(1 - 0.999 ** 3) / (1 - 0.9 ** 3), epsHat: 1e-8 * Math.sqrt(1 - 0.999 ** 3), decay };
      const inputs = () => ({
        x: rand(shape, 1),
        g: rand(shape, 2, 0.1),
        m: rand(shape, 3, 0.01),
        v: tf.abs(rand(shape, 4, 1e-4)),
      });
      const ref = await runOn('cpu', () => {
        const { x, g, m, v } = inputs();
        const m2 = tf.add(tf.mul(m, attrs.beta1), tf.mul(g, 1 - attrs.beta1));
        const v2 = tf.add(tf.mul(v, attrs.beta2), tf.mul(tf.square(g), 1 - attrs.beta2));
        const upd = tf.add(tf.div(tf.mul(m2, attrs.stepSize), tf.add(tf.sqrt(v2), attrs.epsHat)), tf.mul(x, decay));
        return [tf.sub(x, upd), m2, v2];
      });
      const got = await runOn(NATIVE_BACKEND_NAME, () => tf.engine().runKernel(FUSED_ADAM, inputs(), attrs as never) as tf.Tensor[]);
      ['x', 'm', 'v'].forEach((name, i) => {
        const err = relMaxError(got.values[i], ref.values[i]);
        expect(err, `${name}: rel. max error ${err}`).toBeLessThanOrEqual(TOL);
      });
      // The update itself (x' - x, ~1e-3 of x): float32 rounding of x' limits it to ~1e-4 of its size.
      const x0 = randomFloats(size(shape), 1);
      const err = relMaxError(got.values[0].map((v, i) => v - x0[i]), ref.values[0].map((v, i) => v - x0[i]));
      expect(err, `update: rel. max error ${err}`).toBeLessThanOrEqual(1e-3);
    });
  }

  /** Multi-head attention composed from tfjs ops, as @fad/diffusion-core's Attention. */
  function composedAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number, scale: number): tf.Tensor {
    const [b, l, d] = q.shape as [number, number, number];
    const s = k.shape[1] as number;
    const split = (t: tf.Tensor, len: number) => tf.reshape(tf.transpose(tf.reshape(t, [b, len, heads, d / heads]), [0, 2, 1, 3]), [b * heads, len, d / heads]);
    const attn = tf.softmax(tf.matMul(tf.mul(split(q, l), scale), split(k, s), false, true));
    return tf.reshape(tf.transpose(tf.reshape(tf.matMul(attn, split(v, s)), [b, heads, l, d / heads]), [0, 2, 1, 3]), [b, l, d]);
  }
  const fusedAttention = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number, scale: number) =>
    (tf.engine().runKernel(FUSED_ATTENTION, { q, k, v }, { heads, scale } as never) as tf.Tensor[])[0];

  const attnCases: Array<[number, number, number, number, number]> = [
    // [B, L, S, D, heads]
    [2, 5, 5, 8, 2],
    [1, 7, 7, 12, 3],
    [3, 6, 1, 8, 4], // cross-attention on one token
    [2, 4, 3, 6, 1],
    [1, 1, 1, 4, 2],
    [16, 256, 256, 128, 4], // the U-Net's self-attention at 16x16
    [16, 256, 1, 128, 4], // and its cross-attention
  ];
  for (const [b, l, s, d, heads] of attnCases) {
    it(`attention B=${b} L=${l} S=${s} D=${d} heads=${heads}: value and gradients`, async () => {
      const scale = 1 / Math.sqrt(d / heads);
      const run = (impl: typeof composedAttention) => () => {
        const q = rand([b, l, d], 1, 1.5);
        const k = rand([b, s, d], 2, 1.5);
        const v = rand([b, s, d], 3);
        const w = rand([b, l, d], 4);
        const f = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => tf.sum(tf.mul(impl(qq, kk, vv, heads, scale), w));
        return [impl(q, k, v, heads, scale), ...tf.grads(f)([q, k, v])];
      };
      const ref = await runOn('cpu', run(composedAttention));
      const got = await runOn(NATIVE_BACKEND_NAME, run(fusedAttention));
      expect(got.shape).toEqual(ref.shape);
      ['out', 'dq', 'dk', 'dv'].forEach((name, i) => {
        const err = relMaxError(got.values[i], ref.values[i]);
        expect(err, `${name}: rel. max error ${err}`).toBeLessThanOrEqual(TOL);
      });
    });
  }

  it('attention runs on optimised oneDNN matmuls (no reference implementation)', () => {
    const impls = (loaded as { addon: { cacheInfo(): { attention: { entries: Array<{ key: string; impl: string }> } } } }).addon
      .cacheInfo().attention.entries;
    expect(impls.length).toBeGreaterThan(0);
    for (const e of impls) expect(e.impl, e.key).not.toMatch(/^ref/);
  });

  it('leaks no tensors through forward and backward', async () => {
    await tf.setBackend(NATIVE_BACKEND_NAME);
    const x = rand([2, 4, 4, 8], 1);
    const g = tf.ones([8]);
    const b = tf.zeros([8]);
    const before = tf.memory().numTensors;
    tf.dispose(tf.tidy(() => tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(fusedGroupNorm(xx, gg, bb, 4, 1e-5, true)))([x, g, b])));
    tf.dispose(tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.engine().runKernel(FUSED_SILU, { x: t }) as tf.Tensor))(x)));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, g, b]);
  });
});
