// bf16 mixed precision (setNativePrecision / FAD_TFJS_NATIVE_PRECISION): convolutions and
// matmuls read bf16-rounded inputs and weights, accumulate in fp32 and write fp32.
//
// The reference for a bf16 kernel is the cpu kernel run on inputs rounded to bf16 in JS (round to
// nearest even, hand-written below): that is exactly the computation bf16 mode promises, up to
// fp32 summation order (criterion 1e-5 of the output's max-abs). Against the exact fp32 result the
// error is bf16's: each rounded operand has relative error <= 2^-9, a product <= ~2^-8, so a sum
// of K products is off by at most 2^-8 * sum|a_k b_k| and in practice by a random walk of
// ~2^-9 * sqrt(K) terms: we require <= 1e-2 of the output's max-abs, and > 1e-4 (fp32 mode is
// within ~1e-6), which proves that bf16 really ran. Skips when the addon is not built.
import { spawnSync } from 'node:child_process';

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { DDPMScheduler, UNET_PRESETS, UNet2DConditional } from '@fad/diffusion-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import {
  getNativePrecision,
  loadNativeAddon,
  NATIVE_BACKEND_NAME,
  nativeInfo,
  registerNativeBackend,
  setNativePrecision,
} from './index';
import { randomFloats, relMaxError } from './test-utils';

const loaded = loadNativeAddon();
if (!loaded.ok) console.warn(`[@fad/tfjs-native] SKIPPING bf16 tests: ${loaded.reason}`);
const addon = loaded.ok ? loaded.addon : undefined;
const bf16Here = addon?.info().bf16Supported ?? false;
if (addon && !bf16Here) console.warn('[@fad/tfjs-native] SKIPPING bf16 numerics: this CPU has no AVX512-BF16');

/** float32 -> bfloat16 (round to nearest, ties to even) -> float32, bit by bit. */
function roundBf16(x: Float32Array): Float32Array {
  const out = Float32Array.from(x);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < u.length; i++) {
    const v = u[i];
    if ((v & 0x7fffffff) > 0x7f800000) continue; // NaN
    const lsb = (v >>> 16) & 1;
    u[i] = (((v + 0x7fff + lsb) >>> 16) << 16) >>> 0;
  }
  return out;
}

const T = (v: Float32Array, shape: number[]) => tf.tensor(v, shape);
const vals = (ts: tf.Tensor[]) => ts.map((t) => Float32Array.from(t.dataSync()));

/** Runs fn(inputs) on `backend`, returns its outputs' values; disposes everything it made. */
async function on(backend: string, inputs: Array<[Float32Array, number[]]>, fn: (xs: tf.Tensor[]) => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  return tf.tidy(() => vals(fn(inputs.map(([v, s]) => T(v, s)))));
}

interface Check {
  /** bf16 native against cpu on bf16-rounded inputs (only `rounded` inputs are rounded). */
  vsRounded: number;
  /** bf16 native against exact fp32 cpu. */
  vsExact: number;
  /** fp32 native against exact fp32 cpu. */
  fp32VsExact: number;
}

/**
 * Runs fn on native in bf16 and in fp32, and on cpu with exact and bf16-rounded inputs (inputs
 * whose index is in `rounded`: the ones bf16 mode rounds; e.g. not a bias). Returns the worst
 * relative errors over fn's outputs.
 */
async function compare(inputs: Array<[Float32Array, number[]]>, rounded: number[], fn: (xs: tf.Tensor[]) => tf.Tensor[]): Promise<Check> {
  const roundedInputs = inputs.map(([v, s], i): [Float32Array, number[]] => [rounded.includes(i) ? roundBf16(v) : v, s]);
  const exact = await on('cpu', inputs, fn);
  const ref = await on('cpu', roundedInputs, fn);
  setNativePrecision('bf16');
  const got = await on(NATIVE_BACKEND_NAME, inputs, fn);
  setNativePrecision('fp32');
  const fp32 = await on(NATIVE_BACKEND_NAME, inputs, fn);
  const worst = (a: Float32Array[], b: Float32Array[]) => Math.max(...a.map((x, i) => relMaxError(x, b[i])));
  return { vsRounded: worst(got, ref), vsExact: worst(got, exact), fp32VsExact: worst(fp32, exact) };
}

function expectBf16(c: Check, what: string): void {
  expect(c.vsRounded, `${what}: bf16 vs cpu on rounded inputs`).toBeLessThanOrEqual(1e-5);
  expect(c.vsExact, `${what}: bf16 vs exact fp32`).toBeLessThanOrEqual(1e-2);
  expect(c.vsExact, `${what}: bf16 must differ from fp32 (else bf16 did not run)`).toBeGreaterThan(1e-4);
  expect(c.fp32VsExact, `${what}: fp32 mode vs exact`).toBeLessThanOrEqual(1e-5);
}

describe.skipIf(!loaded.ok)('precision setting', () => {
  // Runs first in this file, before anything in it registers the backend: the variable is read
  // at the first registration only.
  it('FAD_TFJS_NATIVE_PRECISION: a bad value throws before registering; bf16 is applied at registration', async () => {
    if (tf.findBackendFactory(NATIVE_BACKEND_NAME) !== null) {
      console.warn('[@fad/tfjs-native] env-variable test skipped: backend already registered in this process');
      return;
    }
    try {
      vi.resetModules();
      process.env.FAD_TFJS_NATIVE_PRECISION = 'half';
      const bad = await import('./index');
      expect(() => bad.registerNativeBackend()).toThrow(/FAD_TFJS_NATIVE_PRECISION must be one of fp32, bf16, got "half"/);
      expect(tf.findBackendFactory(NATIVE_BACKEND_NAME)).toBeNull();
      if (bf16Here) {
        vi.resetModules();
        process.env.FAD_TFJS_NATIVE_PRECISION = 'bf16';
        const good = await import('./index');
        expect(good.registerNativeBackend()).toBe(true);
        expect(good.getNativePrecision()).toBe('bf16');
        expect(good.nativeInfo().addon?.precision).toBe('bf16');
      }
    } finally {
      delete process.env.FAD_TFJS_NATIVE_PRECISION;
      setNativePrecision('fp32');
    }
  });

  it('defaults to fp32; bf16 round trip; invalid values are rejected by name', () => {
    expect(registerNativeBackend()).toBe(true);
    expect(getNativePrecision()).toBe('fp32');
    expect(nativeInfo().addon?.precision).toBe('fp32');
    expect(() => setNativePrecision('fp16' as never)).toThrow(/precision must be one of fp32, bf16, got "fp16"/);
    expect(getNativePrecision()).toBe('fp32');
    if (bf16Here) {
      expect(setNativePrecision('bf16')).toBe('bf16');
      expect(getNativePrecision()).toBe('bf16');
      expect(nativeInfo().addon?.precision).toBe('bf16');
    } else {
      expect(() => setNativePrecision('bf16')).toThrow(/AVX512-BF16/);
    }
    expect(setNativePrecision('fp32')).toBe('fp32');
    expect(getNativePrecision()).toBe('fp32');
  });

  it('bf16 fails loudly where oneDNN may not use AVX512-BF16 (ONEDNN_MAX_CPU_ISA=AVX512_CORE)', () => {
    // The cap is oneDNN's to honour; whatever ISA it then reports, setPrecision(1) must agree with
    // info().bf16Supported: refuse loudly (naming the ISA) and stay fp32, or succeed.
    const path = (loaded as { path: string }).path;
    const script = `const a = require(${JSON.stringify(path)});
      let error = null;
      try { a.setPrecision(1); } catch (e) { error = e.message; }
      console.log(JSON.stringify({ error, precision: a.getPrecision(), info: a.info() }));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ONEDNN_MAX_CPU_ISA: 'AVX512_CORE', OMP_NUM_THREADS: '1' } });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() as string) as {
      error: string | null;
      precision: number;
      info: { isa: string; bf16Supported: boolean };
    };
    if (out.info.bf16Supported) {
      expect(out.error).toBeNull();
      expect(out.precision).toBe(1);
    } else {
      expect(out.error).toBe(
        `tfjs-native: bf16 precision needs a CPU with AVX512-BF16 (oneDNN ISA avx512_core_bf16 or newer); oneDNN reports ${out.info.isa}`,
      );
      expect(out.precision).toBe(0);
    }
  });
});

describe.skipIf(!loaded.ok || !bf16Here)('bf16 kernels against cpu', () => {
  beforeAll(() => {
    expect(registerNativeBackend()).toBe(true);
  });
  afterAll(() => {
    setNativePrecision('fp32');
  });

  const convCases = [
    { name: '3x3 same, 3 input channels', x: [2, 8, 8, 3] as [number, number, number, number], f: [3, 3, 3, 8] as [number, number, number, number], stride: 1, pad: 'same' as const },
    { name: '3x3 stride 2', x: [2, 8, 8, 16] as [number, number, number, number], f: [3, 3, 16, 16] as [number, number, number, number], stride: 2, pad: 'same' as const },
    { name: '3x3 valid, 1 input channel', x: [2, 7, 9, 1] as [number, number, number, number], f: [3, 3, 1, 8] as [number, number, number, number], stride: 1, pad: 'valid' as const },
    { name: '1x1 (pointwise: a matmul)', x: [2, 6, 6, 8] as [number, number, number, number], f: [1, 1, 8, 16] as [number, number, number, number], stride: 1, pad: 'valid' as const },
    { name: 'weight-dominated (im2col + matmul)', x: [1, 2, 2, 16] as [number, number, number, number], f: [3, 3, 16, 64] as [number, number, number, number], stride: 1, pad: 'same' as const },
  ];

  for (const [i, c] of convCases.entries()) {
    it(`conv2d ${c.name}: forward, backprop-input and backprop-filter`, async () => {
      const n = (s: number[]) => s.reduce((a, b) => a * b, 1);
      const dyShape = tf.tidy(() => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(c.f) as tf.Tensor4D, c.stride, c.pad).shape);
      const inputs: Array<[Float32Array, number[]]> = [
        [randomFloats(n(c.x), 100 + i), c.x],
        [randomFloats(n(c.f), 200 + i), c.f],
        [randomFloats(n(dyShape), 300 + i), dyShape],
      ];
      const check = await compare(inputs, [0, 1, 2], ([x, f, dy]) => {
        const y = tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad);
        const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad))([x, f], dy);
        return [y, dx, df];
      });
      expectBf16(check, c.name);
    });
  }

  it('fused conv2d with bias and relu: the bias stays fp32', async () => {
    const inputs: Array<[Float32Array, number[]]> = [
      [randomFloats(2 * 8 * 8 * 8, 1), [2, 8, 8, 8]],
      [randomFloats(3 * 3 * 8 * 16, 2), [3, 3, 8, 16]],
      [randomFloats(16, 3).map((v) => v * 3 + 1e-3), [16]],
    ];
    const check = await compare(inputs, [0, 1], ([x, f, b]) => [
      tf.fused.conv2d({ x: x as tf.Tensor4D, filter: f as tf.Tensor4D, strides: 1, pad: 'same', bias: b, activation: 'relu' }),
    ]);
    expectBf16(check, 'fused conv2d');
  });

  const mmCases = [
    { name: 'batched', a: [3, 5, 40], b: [3, 40, 7], tA: false, tB: false },
    { name: 'transposeA + transposeB', a: [3, 40, 5], b: [3, 7, 40], tA: true, tB: true },
    { name: 'broadcast batch of b (forward only: tfjs has no broadcast matMul gradient)', a: [4, 6, 24], b: [1, 24, 9], tA: false, tB: false, forwardOnly: true },
    { name: '2-D, transposeB', a: [33, 64], b: [17, 64], tA: false, tB: true },
  ];
  for (const c of mmCases) {
    it(`matMul ${c.name}`, async () => {
      const size = (s: number[]) => s.reduce((p, q) => p * q, 1);
      const outShape = tf.tidy(() => tf.matMul(tf.zeros(c.a), tf.zeros(c.b), c.tA, c.tB).shape);
      const inputs: Array<[Float32Array, number[]]> = [
        [randomFloats(size(c.a), 7), c.a],
        [randomFloats(size(c.b), 8), c.b],
        [randomFloats(size(outShape), 9), outShape],
      ];
      const check = await compare(inputs, [0, 1, 2], ([a, b, dy]) => {
        const y = tf.matMul(a, b, c.tA, c.tB);
        if ('forwardOnly' in c) return [y];
        const [da, db] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.matMul(p, q, c.tA, c.tB))([a, b], dy);
        return [y, da, db];
      });
      expectBf16(check, c.name);
    });
  }

  it('fused matMul with bias and relu', async () => {
    const inputs: Array<[Float32Array, number[]]> = [
      [randomFloats(9 * 48, 4), [9, 48]],
      [randomFloats(48 * 20, 5), [48, 20]],
      [randomFloats(20, 6).map((v) => v * 2), [20]],
    ];
    const check = await compare(inputs, [0, 1], ([a, b, bias]) => [tf.fused.matMul({ a, b, bias, activation: 'relu' })]);
    expectBf16(check, 'fused matMul');
  });

  it('the bf16 primitives really are oneDNN bf16 kernels, and fp32 mode uses none', async () => {
    setNativePrecision('bf16');
    await tf.setBackend(NATIVE_BACKEND_NAME);
    tf.tidy(() => tf.conv2d(tf.ones([1, 5, 5, 4]) as tf.Tensor4D, tf.ones([3, 3, 4, 4]) as tf.Tensor4D, 1, 'same').dataSync());
    setNativePrecision('fp32');
    const info = addon!.cacheInfo();
    const conv = info.conv.entries.filter((e) => e.key.startsWith('F|1,5,5,4,3,3,4,'));
    expect(conv.some((e) => e.bf16)).toBe(true);
    for (const e of [...info.conv.entries, ...info.matmul.entries, ...info.attention.entries]) {
      if (e.bf16) expect(e.impl, e.key).toMatch(/bf16/);
      else expect(e.impl, e.key).not.toMatch(/bf16/);
    }
    // The precision is the last field of a matmul key: an fp32-mode entry never holds bf16.
    for (const e of info.matmul.entries) if (e.key.endsWith('0,')) expect(e.bf16, e.key).toBe(false);
    expect(info.conv.entries.some((e) => e.bf16)).toBe(true);
    expect(info.matmul.entries.some((e) => e.bf16)).toBe(true);
  });

  it('attention (FadAttention): bf16 matmuls, fp32 softmax; close to fp32, not identical', () => {
    const [B, L, S, D, H] = [2, 16, 12, 32, 4];
    const q = randomFloats(B * L * D, 31);
    const k = randomFloats(B * S * D, 32);
    const v = randomFloats(B * S * D, 33);
    const params = new Int32Array([B, L, S, D, H]);
    const run = (precision: 'fp32' | 'bf16') => {
      setNativePrecision(precision);
      const out = new Float32Array(B * L * D);
      const probs = new Float32Array(B * H * L * S);
      addon!.attention(q, k, v, out, probs, params, 0.35);
      const dy = randomFloats(B * L * D, 34);
      const [dq, dk, dv] = [new Float32Array(q.length), new Float32Array(k.length), new Float32Array(v.length)];
      addon!.attentionGrad(dy, q, k, v, probs, dq, dk, dv, params, 0.35);
      setNativePrecision('fp32');
      return { out, probs, dq, dk, dv };
    };
    const a = run('fp32');
    const b = run('bf16');
    for (const key of ['out', 'probs', 'dq', 'dk', 'dv'] as const) {
      const e = relMaxError(b[key], a[key]);
      expect(e, key).toBeLessThanOrEqual(2e-2);
      expect(e, key).toBeGreaterThan(1e-4);
    }
    // Softmax rows still sum to 1 in fp32.
    for (let r = 0; r < B * H * L; r++) {
      let s = 0;
      for (let j = 0; j < S; j++) s += b.probs[r * S + j];
      expect(Math.abs(s - 1)).toBeLessThan(1e-5);
    }
    expect(addon!.cacheInfo().attention.entries.some((e) => e.bf16)).toBe(true);
  });

  it('fp32 mode is unchanged by a bf16 round trip (bit-identical results)', async () => {
    const inputs: Array<[Float32Array, number[]]> = [
      [randomFloats(2 * 8 * 8 * 8, 41), [2, 8, 8, 8]],
      [randomFloats(3 * 3 * 8 * 8, 42), [3, 3, 8, 8]],
    ];
    const fn = ([x, f]: tf.Tensor[]) => {
      const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'))([x, f]);
      return [tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same'), dx, df, tf.matMul(tf.reshape(x, [16, 64]), tf.reshape(f, [64, 9]))];
    };
    setNativePrecision('fp32');
    const before = await on(NATIVE_BACKEND_NAME, inputs, fn);
    setNativePrecision('bf16');
    const during = await on(NATIVE_BACKEND_NAME, inputs, fn);
    setNativePrecision('fp32');
    const after = await on(NATIVE_BACKEND_NAME, inputs, fn);
    before.forEach((v, i) => {
      expect(Buffer.from(after[i].buffer).equals(Buffer.from(v.buffer)), `output ${i}`).toBe(true);
      expect(Buffer.from(during[i].buffer).equals(Buffer.from(v.buffer)), `output ${i} in bf16`).toBe(false);
    });
  });

  it('no tensor leaks across bf16 kernels and their gradients', async () => {
    await tf.setBackend(NATIVE_BACKEND_NAME);
    setNativePrecision('bf16');
    const x = tf.tensor4d(randomFloats(2 * 6 * 6 * 4, 51), [2, 6, 6, 4]);
    const f = tf.tensor4d(randomFloats(3 * 3 * 4 * 4, 52), [3, 3, 4, 4]);
    const before = tf.memory().numTensors;
    for (let r = 0; r < 2; r++) {
      const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.matMul(tf.reshape(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), [72, 4]), tf.reshape(b, [36, 4]), false, true)))([x, f]);
      tf.dispose([dx, df]);
    }
    expect(tf.memory().numTensors).toBe(before);
    setNativePrecision('fp32');
    tf.dispose([x, f]);
  });
});

describe.skipIf(!loaded.ok || !bf16Here)('U-Net train step: bf16 against fp32', () => {
  const B = 3;
  const labels = [0, 2, 4];
  const timesteps = [10, 500, 990];

  async function step(precision: 'fp32' | 'bf16') {
    setNativePrecision(precision);
    await tf.setBackend(NATIVE_BACKEND_NAME);
    const model = new UNet2DConditional({ ...UNET_PRESETS.tiny }, { seed: 3 });
    const sched = new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2' });
    const x0 = tf.tensor4d(randomFloats(B * 16 * 16, 11), [B, 16, 16, 1]);
    const noise = tf.tensor4d(randomFloats(B * 16 * 16, 12).map((v) => v * 1.7), [B, 16, 16, 1]);
    const named = model.namedParameters();
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => {
      const xt = sched.addNoise(x0, noise, timesteps) as tf.Tensor4D;
      const out = model.forward({ sample: xt, timesteps, classLabels: labels }).sample;
      return tf.mean(tf.squaredDifference(out, noise)) as tf.Scalar;
    }, named.map(([, v]) => v));
    const loss = value.dataSync()[0];
    const g = named.map(([n, v]) => [n, Float32Array.from(grads[v.name].dataSync())] as const);
    tf.dispose([value, ...Object.values(grads)]);
    const leaked = tf.memory().numTensors - before;
    model.dispose();
    tf.dispose([x0, noise]);
    setNativePrecision('fp32');
    return { loss, grads: g, leaked };
  }

  it('loss within 1e-2 (relative), gradients within 5e-2 of each tensor\'s max-abs and 0.999 cosine overall', async () => {
    const ref = await step('fp32');
    const got = await step('bf16');
    expect(ref.leaked).toBe(0);
    expect(got.leaked).toBe(0);
    const lossErr = Math.abs(got.loss - ref.loss) / ref.loss;
    expect(lossErr).toBeLessThanOrEqual(1e-2);
    expect(lossErr, 'bf16 changed the loss at all').toBeGreaterThan(0);
    const errs = got.grads.map(([n, g], i) => [n, relMaxError(g, ref.grads[i][1])] as const).sort((a, b) => b[1] - a[1]);
    expect(errs[0][1], `worst gradient: ${errs[0][0]}`).toBeLessThanOrEqual(5e-2);
    let dot = 0;
    let na = 0;
    let nb = 0;
    got.grads.forEach(([, g], i) => {
      const r = ref.grads[i][1];
      for (let j = 0; j < g.length; j++) {
        dot += g[j] * r[j];
        na += g[j] * g[j];
        nb += r[j] * r[j];
      }
    });
    const cosine = dot / Math.sqrt(na * nb);
    console.info(`[bf16] U-Net tiny: loss rel. diff ${lossErr.toExponential(2)}, worst gradient ${errs[0][0]} ${errs[0][1].toExponential(2)}, cosine ${cosine.toFixed(6)}`);
    expect(cosine).toBeGreaterThanOrEqual(0.999);
  }, 120_000);
});
