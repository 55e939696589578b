// Every native kernel against the reference cpu kernel, on many shapes, plus gradients of a
// small conv net and tensor-leak checks. Skips (with a message) when the addon is not built.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core registers no gradients by itself (the tfjs umbrella package does).
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { beforeAll, describe, expect, it } from 'vitest';

import { loadNativeAddon, NATIVE_BACKEND_NAME, nativeInfo, registerNativeBackend } from './index';
import { makeRng, nativeCalls, randomFloats, relMaxError, runOn } from './test-utils';

const TOL = 1e-4;
const loaded = loadNativeAddon();
if (!loaded.ok) {
  console.warn(`[@fad/tfjs-native] SKIPPING native kernel tests: ${loaded.reason}`);
}
const addon = loaded.ok ? loaded.addon : undefined;

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
interface ConvCase {
  n: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  kh: number;
  kw: number;
  stride: [number, number];
  dilation: [number, number];
  pad: Pad;
  rounding?: 'floor' | 'round' | 'ceil';
}

const label = (c: ConvCase) =>
  `x[${c.n},${c.h},${c.w},${c.ci}] f[${c.kh},${c.kw},${c.ci},${c.co}] s${c.stride} d${c.dilation} pad=${JSON.stringify(c.pad)}${c.rounding ? ` ${c.rounding}` : ''}`;

/** Hand-picked cases plus seeded random ones covering the brief's grid. */
function convCases(): ConvCase[] {
  const fixed: ConvCase[] = [
    { n: 1, h: 7, w: 9, ci: 3, co: 8, kh: 3, kw: 3, stride: [1, 1], dilation: [1, 1], pad: 'same' },
    { n: 3, h: 7, w: 9, ci: 8, co: 3, kh: 3, kw: 3, stride: [2, 2], dilation: [1, 1], pad: 'same' },
    { n: 3, h: 7, w: 9, ci: 1, co: 8, kh: 3, kw: 3, stride: [2, 2], dilation: [1, 1], pad: 'valid' },
    { n: 1, h: 9, w: 7, ci: 8, co: 8, kh: 3, kw: 3, stride: [1, 1], dilation: [2, 2], pad: 'same' },
    { n: 3, h: 9, w: 9, ci: 3, co: 1, kh: 3, kw: 3, stride: [1, 1], dilation: [2, 2], pad: 'valid' },
    { n: 1, h: 8, w: 8, ci: 8, co: 8, kh: 1, kw: 1, stride: [1, 1], dilation: [1, 1], pad: 'valid' },
    { n: 3, h: 8, w: 8, ci: 8, co: 3, kh: 1, kw: 1, stride: [2, 2], dilation: [1, 1], pad: 'same' },
    { n: 1, h: 7, w: 9, ci: 3, co: 8, kh: 2, kw: 3, stride: [2, 1], dilation: [1, 1], pad: 1 },
    { n: 3, h: 7, w: 9, ci: 3, co: 8, kh: 3, kw: 3, stride: [2, 2], dilation: [1, 1], pad: 1, rounding: 'ceil' },
    { n: 1, h: 7, w: 9, ci: 3, co: 3, kh: 3, kw: 3, stride: [1, 1], dilation: [1, 1], pad: [[0, 0], [0, 2], [1, 0], [0, 0]] },
    { n: 3, h: 7, w: 9, ci: 8, co: 8, kh: 3, kw: 3, stride: [2, 2], dilation: [1, 1], pad: [[0, 0], [2, 1], [0, 3], [0, 0]] },
    { n: 1, h: 1, w: 1, ci: 1, co: 1, kh: 1, kw: 1, stride: [1, 1], dilation: [1, 1], pad: 'valid' },
    { n: 2, h: 16, w: 16, ci: 32, co: 16, kh: 3, kw: 3, stride: [1, 1], dilation: [1, 1], pad: 'same' },
    // Padding wider than the filter, and a filter larger than the input.
    { n: 1, h: 5, w: 5, ci: 3, co: 3, kh: 3, kw: 3, stride: [1, 1], dilation: [1, 1], pad: [[0, 0], [4, 3], [3, 4], [0, 0]] },
    { n: 2, h: 5, w: 6, ci: 3, co: 8, kh: 3, kw: 3, stride: [2, 2], dilation: [1, 1], pad: 3, rounding: 'ceil' },
    { n: 2, h: 2, w: 3, ci: 3, co: 8, kh: 3, kw: 3, stride: [1, 1], dilation: [1, 1], pad: 'same' },
    { n: 1, h: 3, w: 3, ci: 8, co: 8, kh: 3, kw: 3, stride: [2, 2], dilation: [1, 1], pad: 'same' },
  ];
  const rnd = makeRng(20240611);
  const pick = <T>(xs: readonly T[]): T => xs[rnd(0, xs.length - 1)];
  const random: ConvCase[] = [];
  while (random.length < 40) {
    const kh = pick([1, 2, 3]);
    const kw = pick([1, 3]);
    const dilated = rnd(0, 4) === 0;
    const dilation: [number, number] = dilated ? [2, 2] : [1, 1];
    const stride: [number, number] = dilated ? [1, 1] : [pick([1, 2]), pick([1, 2])];
    const padKind = pick(['same', 'valid', 'num', 'explicit'] as const);
    const pad: Pad =
      padKind === 'num'
        ? rnd(0, 2)
        : padKind === 'explicit'
          ? [[0, 0], [rnd(0, 2), rnd(0, 2)], [rnd(0, 2), rnd(0, 2)], [0, 0]]
          : padKind;
    const c: ConvCase = {
      n: pick([1, 3]),
      h: pick([5, 7, 8, 9]),
      w: pick([5, 7, 9, 12]),
      ci: pick([1, 3, 8]),
      co: pick([1, 3, 8]),
      kh,
      kw,
      stride,
      dilation,
      pad,
    };
    // tfjs rejects a numeric pad with fractional output unless a rounding mode is given.
    if (padKind === 'num') c.rounding = pick(['floor', 'round', 'ceil'] as const);
    random.push(c);
  }
  return [...fixed, ...random];
}

function convTensors(c: ConvCase, seed: number) {
  const x = tf.tensor4d(randomFloats(c.n * c.h * c.w * c.ci, seed), [c.n, c.h, c.w, c.ci]);
  const f = tf.tensor4d(randomFloats(c.kh * c.kw * c.ci * c.co, seed + 1), [c.kh, c.kw, c.ci, c.co]);
  return { x, f };
}

/** Output shape of the forward conv (computed on cpu). */
function convOutShape(c: ConvCase): number[] {
  return tf.backend_util.computeConv2DInfo(
    [c.n, c.h, c.w, c.ci],
    [c.kh, c.kw, c.ci, c.co],
    c.stride,
    c.dilation,
    c.pad,
    c.rounding,
  ).outShape;
}

/**
 * Whether the native kernel handles this geometry. It does not when tfjs's output size
 * leaves more than a stride of trailing input unused, which happens only with a numeric pad
 * and a non-square filter/stride (tfjs then sizes the width with the height's filter and
 * stride): oneDNN cannot express that, so the cpu kernel runs.
 */
function nativeSupported(c: ConvCase): boolean {
  const i = tf.backend_util.computeConv2DInfo([c.n, c.h, c.w, c.ci], [c.kh, c.kw, c.ci, c.co], c.stride, c.dilation, c.pad, c.rounding);
  const padBottom = (i.outHeight - 1) * i.strideHeight + (i.filterHeight - 1) * i.dilationHeight + 1 - i.inHeight - i.padInfo.top;
  const padRight = (i.outWidth - 1) * i.strideWidth + (i.filterWidth - 1) * i.dilationWidth + 1 - i.inWidth - i.padInfo.left;
  return padBottom > -i.strideHeight && padRight > -i.strideWidth;
}

/** Compares `fn` on cpu and native; asserts whether the native path was taken. */
async function expectSame(what: string, fn: () => tf.Tensor | tf.Tensor[], expectNative = true): Promise<void> {
  const ref = await runOn('cpu', fn);
  const before = nativeCalls(addon!);
  const got = await runOn(NATIVE_BACKEND_NAME, fn);
  const ran = nativeCalls(addon!) > before;
  expect(ran, `${what}: native kernel ${expectNative ? 'not used' : 'used unexpectedly'}`).toBe(expectNative);
  expect(got.shape, what).toEqual(ref.shape);
  for (let i = 0; i < ref.values.length; i++) {
    const err = relMaxError(got.values[i], ref.values[i]);
    expect(err, `${what} [output ${i}] rel. max error ${err}`).toBeLessThanOrEqual(TOL);
  }
}

describe.skipIf(!loaded.ok)('native backend: kernels vs cpu', () => {
  beforeAll(() => {
    expect(registerNativeBackend()).toBe(true);
    const info = nativeInfo();
    console.log(
      `[@fad/tfjs-native] oneDNN ${info.addon?.dnnlVersion} isa=${info.addon?.isa} threads=${info.addon?.threads}`,
    );
  });

  const cases = convCases();

  it('covers the grid mostly natively', () => {
    const native = cases.filter(nativeSupported).length;
    console.log(`[@fad/tfjs-native] ${cases.length} conv cases, ${native} on the native path`);
    expect(native).toBeGreaterThanOrEqual(cases.length * 0.8);
  });

  it('Conv2D forward', async () => {
    for (const [i, c] of cases.entries()) {
      await expectSame(`conv2d ${label(c)}`, () => {
        const { x, f } = convTensors(c, 100 + i);
        return tf.conv2d(x, f, c.stride, c.pad as never, 'NHWC', c.dilation, c.rounding);
      }, nativeSupported(c));
    }
  });

  it('Conv2DBackpropInput (kernel called directly, and via conv2dTranspose)', async () => {
    for (const [i, c] of cases.entries()) {
      if (c.dilation[0] !== 1) continue; // tfjs has no dilated conv gradients
      const outShape = convOutShape(c);
      await expectSame(`conv2dBackpropInput ${label(c)}`, () => {
        const { f } = convTensors(c, 200 + i);
        const dy = tf.tensor(randomFloats(outShape.reduce((a, b) => a * b, 1), 300 + i), outShape);
        return tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: f }, {
          inputShape: [c.n, c.h, c.w, c.ci],
          strides: c.stride,
          pad: c.pad,
          dataFormat: 'NHWC',
          dimRoundingMode: c.rounding,
        } as never) as tf.Tensor;
      }, nativeSupported(c));
    }
    await expectSame('conv2dTranspose', () => {
      const dy = tf.tensor4d(randomFloats(2 * 4 * 5 * 8, 7), [2, 4, 5, 8]);
      const f = tf.tensor4d(randomFloats(3 * 3 * 3 * 8, 8), [3, 3, 3, 8]);
      return tf.conv2dTranspose(dy, f, [2, 7, 9, 3], 2, 'same');
    });
  });

  it('Conv2DBackpropFilter', async () => {
    for (const [i, c] of cases.entries()) {
      if (c.dilation[0] !== 1) continue;
      const outShape = convOutShape(c);
      await expectSame(`conv2dBackpropFilter ${label(c)}`, () => {
        const { x } = convTensors(c, 400 + i);
        const dy = tf.tensor(randomFloats(outShape.reduce((a, b) => a * b, 1), 500 + i), outShape);
        return tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
          strides: c.stride,
          pad: c.pad,
          dataFormat: 'NHWC',
          dimRoundingMode: c.rounding,
          filterShape: [c.kh, c.kw, c.ci, c.co],
        } as never) as tf.Tensor;
      }, nativeSupported(c));
    }
  });

  it('pointwise (1x1, stride 1) convolutions run as matmuls: forward with bias + ReLU, both gradients', async () => {
    // A ResNet bottleneck's 1x1 shape: [2, 4, 4, 64] -> 32 channels. Grads through tf.grads
    // exercise Conv2DBackpropInput (dy x W^T) and Conv2DBackpropFilter (x^T dy).
    const mm = () => addon!.cacheInfo().matmul.hits + addon!.cacheInfo().matmul.misses;
    const before = mm();
    await expectSame('pointwise conv: value and gradients', () => {
      const x = tf.tensor4d(randomFloats(2 * 4 * 4 * 64, 801), [2, 4, 4, 64]);
      const f = tf.tensor4d(randomFloats(64 * 32, 802), [1, 1, 64, 32]);
      const bias = tf.tensor1d(randomFloats(32, 803));
      const w = tf.tensor4d(randomFloats(2 * 4 * 4 * 32, 804), [2, 4, 4, 32]);
      const y = tf.fused.conv2d({ x, filter: f, strides: 1, pad: 'valid', bias, activation: 'relu' });
      const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), w)))([x, f]);
      return [y, dx, df];
    });
    expect(mm() - before, 'matmul primitive calls').toBeGreaterThanOrEqual(4);
  });

  it('weight-dominated convolutions (4 x output pixels <= out channels) run as im2col + matmul', async () => {
    // ResNet50's last stage in miniature: few output pixels, many channels; 'same' and explicit
    // padding, stride 2 and dilation 2 (padding and window offsets in im2col/col2im).
    const shapes: Array<{ x: [number, number, number, number]; f: [number, number, number, number]; stride: number; pad: 'same' | 'valid' | number; dilation?: number }> = [
      { x: [2, 2, 2, 24], f: [3, 3, 24, 40], stride: 1, pad: 'same' },
      { x: [2, 4, 4, 16], f: [3, 3, 16, 48], stride: 2, pad: 'same' },
      { x: [1, 5, 4, 8], f: [2, 3, 8, 64], stride: 2, pad: 1 },
      { x: [1, 5, 5, 8], f: [3, 3, 8, 64], stride: 1, pad: 'valid', dilation: 2 },
    ];
    const mm = () => addon!.cacheInfo().matmul.hits + addon!.cacheInfo().matmul.misses;
    for (const [i, c] of shapes.entries()) {
      const before = mm();
      await expectSame(`im2col conv x[${c.x}] f[${c.f}] s${c.stride} pad=${c.pad} d${c.dilation ?? 1}: value and gradients`, () => {
        const x = tf.tensor4d(randomFloats(c.x.reduce((a, b) => a * b, 1), 900 + i), c.x);
        const f = tf.tensor4d(randomFloats(c.f.reduce((a, b) => a * b, 1), 910 + i), c.f);
        const bias = tf.tensor1d(randomFloats(c.f[3], 920 + i));
        const conv = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad, 'NHWC', c.dilation ?? 1);
        const y = conv(x, f);
        const w = tf.tensor(randomFloats(y.size, 930 + i), y.shape);
        const fused = tf.fused.conv2d({ x, filter: f, strides: c.stride, pad: c.pad, dilations: c.dilation ?? 1, bias, activation: 'relu' });
        // tfjs has no gradients for dilated convolutions: forward only there.
        if (c.dilation) return [y, fused];
        const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a, b), w)))([x, f]);
        return [y, fused, dx, df];
      });
      expect(mm() - before, 'matmul primitive calls').toBeGreaterThanOrEqual(c.dilation ? 2 : 4);
    }
  });

  it('FusedConv2D: bias + activations; prelu and odd bias shapes fall back', async () => {
    const c = cases[1];
    const acts = ['linear', 'relu', 'relu6', 'leakyrelu', 'sigmoid', 'elu'] as const;
    for (const [i, activation] of acts.entries()) {
      await expectSame(`fused conv2d ${activation}`, () => {
        const { x, f } = convTensors(c, 600 + i);
        const bias = tf.tensor1d(randomFloats(c.co, 700 + i));
        return tf.fused.conv2d({ x: tf.mul(x, 3) as tf.Tensor4D, filter: f, strides: c.stride, pad: c.pad as never, bias, activation, leakyreluAlpha: 0.3 });
      });
    }
    await expectSame('fused conv2d relu, no bias', () => {
      const { x, f } = convTensors(c, 610);
      return tf.fused.conv2d({ x, filter: f, strides: c.stride, pad: c.pad as never, activation: 'relu' });
    });
    await expectSame('fused conv2d scalar bias', () => {
      const { x, f } = convTensors(c, 611);
      return tf.fused.conv2d({ x, filter: f, strides: c.stride, pad: c.pad as never, bias: tf.scalar(0.5) });
    });
    await expectSame(
      'fused conv2d prelu (cpu fallback)',
      () => {
        const { x, f } = convTensors(c, 612);
        const alpha = tf.fill([c.co], 0.25);
        return tf.fused.conv2d({ x, filter: f, strides: c.stride, pad: c.pad as never, activation: 'prelu', preluActivationWeights: alpha });
      },
      false,
    );
    await expectSame(
      'fused conv2d full-shape bias (cpu fallback)',
      () => {
        const { x, f } = convTensors(c, 613);
        const out = convOutShape(c);
        return tf.fused.conv2d({ x, filter: f, strides: c.stride, pad: c.pad as never, bias: tf.tensor(randomFloats(out.reduce((a, b) => a * b, 1), 3), out) });
      },
      false,
    );
  });

  it('BatchMatMul: all transpose combinations, batching and broadcasting', async () => {
    const shapes: Array<{ a: number[]; b: number[]; native?: boolean }> = [
      { a: [1, 1], b: [1, 1] },
      { a: [7, 9], b: [9, 5] },
      { a: [16, 33], b: [33, 8] },
      { a: [3, 7, 9], b: [3, 9, 5] },
      { a: [7, 9], b: [4, 9, 5] }, // a broadcast over b's batch
      { a: [4, 7, 9], b: [9, 5] }, // b broadcast (folded into one GEMM when A is not transposed)
      { a: [2, 3, 7, 9], b: [2, 3, 9, 5] },
      { a: [1, 3, 7, 9], b: [2, 1, 9, 5], native: false }, // batches 3 vs 2: cpu fallback
    ];
    for (const s of shapes) {
      for (const transposeA of [false, true]) {
        for (const transposeB of [false, true]) {
          const tr = (shape: number[], t: boolean) => (t ? [...shape.slice(0, -2), shape[shape.length - 1], shape[shape.length - 2]] : shape);
          const aShape = tr(s.a, transposeA);
          const bShape = tr(s.b, transposeB);
          if (s.native === false && (transposeA || transposeB)) continue;
          await expectSame(
            `matMul a${JSON.stringify(aShape)} b${JSON.stringify(bShape)} tA=${transposeA} tB=${transposeB}`,
            () => {
              const a = tf.tensor(randomFloats(aShape.reduce((x, y) => x * y, 1), 11), aShape);
              const b = tf.tensor(randomFloats(bShape.reduce((x, y) => x * y, 1), 12), bShape);
              return tf.matMul(a, b, transposeA, transposeB);
            },
            s.native !== false,
          );
        }
      }
    }
  });

  it('_FusedMatMul: bias + activations in all transpose combinations; prelu falls back', async () => {
    const acts = ['linear', 'relu', 'relu6', 'leakyrelu', 'sigmoid', 'elu'] as const;
    for (const [i, activation] of acts.entries()) {
      for (const transposeA of [false, true]) {
        for (const transposeB of [false, true]) {
          await expectSame(`fused matMul ${activation} tA=${transposeA} tB=${transposeB}`, () => {
            const a = tf.mul(tf.tensor(randomFloats(3 * 7 * 9, 20 + i), transposeA ? [3, 9, 7] : [3, 7, 9]), 3);
            const b = tf.tensor(randomFloats(3 * 9 * 5, 30 + i), transposeB ? [3, 5, 9] : [3, 9, 5]);
            const bias = tf.tensor1d(randomFloats(5, 40 + i));
            return tf.fused.matMul({ a, b, transposeA, transposeB, bias, activation, leakyreluAlpha: 0.1 });
          });
        }
      }
    }
    await expectSame('fused matMul 2-D with [1, N] bias', () =>
      tf.fused.matMul({ a: tf.tensor2d(randomFloats(6 * 4, 1), [6, 4]), b: tf.tensor2d(randomFloats(4 * 3, 2), [4, 3]), bias: tf.tensor2d([[1, 2, 3]]), activation: 'relu' }),
    );
    await expectSame(
      'fused matMul prelu (cpu fallback)',
      () =>
        tf.fused.matMul({
          a: tf.tensor2d(randomFloats(6 * 4, 1), [6, 4]),
          b: tf.tensor2d(randomFloats(4 * 3, 2), [4, 3]),
          activation: 'prelu',
          preluActivationWeights: tf.fill([3], 0.2),
        }),
      false,
    );
    await expectSame(
      'fused matMul [M, N] bias (cpu fallback)',
      () =>
        tf.fused.matMul({
          a: tf.tensor2d(randomFloats(6 * 4, 1), [6, 4]),
          b: tf.tensor2d(randomFloats(4 * 3, 2), [4, 3]),
          bias: tf.tensor2d(randomFloats(6 * 3, 3), [6, 3]),
        }),
      false,
    );
  });

  it('tf.grad of a small conv net matches cpu', async () => {
    const net = () => {
      const x = tf.tensor4d(randomFloats(3 * 9 * 7 * 3, 51), [3, 9, 7, 3]);
      const w1 = tf.tensor4d(randomFloats(3 * 3 * 3 * 8, 52), [3, 3, 3, 8]);
      const b1 = tf.tensor1d(randomFloats(8, 53));
      const w2 = tf.tensor4d(randomFloats(3 * 3 * 8 * 4, 54), [3, 3, 8, 4]);
      const w3 = tf.tensor2d(randomFloats(5 * 4 * 4 * 6, 55), [5 * 4 * 4, 6]);
      const loss = (x_: tf.Tensor, w1_: tf.Tensor, b1_: tf.Tensor, w2_: tf.Tensor, w3_: tf.Tensor) => {
        const h1 = tf.fused.conv2d({ x: x_ as tf.Tensor4D, filter: w1_ as tf.Tensor4D, strides: 1, pad: 'same', bias: b1_, activation: 'relu' });
        const h2 = tf.conv2d(h1, w2_ as tf.Tensor4D, 2, 'same');
        const h3 = tf.matMul(tf.reshape(tf.sigmoid(h2), [3, -1]), w3_ as tf.Tensor2D);
        return tf.sum(tf.square(h3));
      };
      const grads = tf.grads(loss)([x, w1, b1, w2, w3]);
      return [loss(x, w1, b1, w2, w3), ...grads];
    };
    await expectSame('grads of conv net (loss, dx, dw1, db1, dw2, dw3)', net);
  });

  it('does not leak tensors across kernel calls', async () => {
    await tf.setBackend(NATIVE_BACKEND_NAME);
    const x = tf.tensor4d(randomFloats(2 * 7 * 9 * 3, 1), [2, 7, 9, 3]);
    const f = tf.tensor4d(randomFloats(3 * 3 * 3 * 8, 2), [3, 3, 3, 8]);
    const dy = tf.tensor4d(randomFloats(2 * 7 * 9 * 8, 3), [2, 7, 9, 8]);
    const bias = tf.tensor1d(randomFloats(8, 4));
    const alpha = tf.scalar(0.1);
    const a = tf.tensor3d(randomFloats(2 * 5 * 6, 5), [2, 5, 6]);
    const b = tf.tensor3d(randomFloats(2 * 6 * 4, 6), [2, 6, 4]);
    const mmBias = tf.tensor1d([1, 2, 3, 4]);
    const v = tf.tensor2d(randomFloats(160, 7), [160, 1]);
    const backend = tf.backend();
    // Each op must add exactly its output (one tensor, one backend data id), and nothing
    // may remain once that output is disposed; native and fallback paths alike.
    const ops: Array<[string, () => tf.Tensor]> = [
      ['conv2d', () => tf.conv2d(x, f, 1, 'same')],
      ['fused conv2d', () => tf.fused.conv2d({ x, filter: f, strides: 2, pad: 'valid', bias, activation: 'relu' })],
      ['fused conv2d prelu (fallback)', () => tf.fused.conv2d({ x, filter: f, strides: 1, pad: 'same', activation: 'prelu', preluActivationWeights: alpha })],
      ['conv2dTranspose', () => tf.conv2dTranspose(dy, f, [2, 7, 9, 3], 1, 'same')],
      ['conv2dBackpropFilter', () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 3, 8] } as never) as tf.Tensor],
      ['matMul', () => tf.matMul(a, b)],
      ['fused matMul', () => tf.fused.matMul({ a, b, bias: mmBias, activation: 'elu' })],
    ];
    for (let round = 0; round < 3; round++) {
      for (const [name, op] of ops) {
        const t0 = tf.memory().numTensors;
        const d0 = backend.numDataIds();
        const y = op();
        expect(tf.memory().numTensors - t0, name).toBe(1);
        expect(backend.numDataIds() - d0, name).toBe(1);
        y.dispose();
        expect(tf.memory().numTensors, name).toBe(t0);
        expect(backend.numDataIds(), name).toBe(d0);
      }
    }
    // Gradients (both conv backward kernels + matmul backward) inside tidy leave nothing behind.
    const t0 = tf.memory().numTensors;
    for (let round = 0; round < 3; round++) {
      tf.tidy(() => {
        // (returns nothing: tidy would keep returned tensors)
        const loss = (x_: tf.Tensor, f_: tf.Tensor, v_: tf.Tensor) =>
          tf.sum(tf.matMul(tf.reshape(tf.conv2d(x_ as tf.Tensor4D, f_ as tf.Tensor4D, 2, 'same'), [2, 160]), v_ as tf.Tensor2D));
        tf.grads(loss)([x, f, v]);
      });
    }
    expect(tf.memory().numTensors).toBe(t0);
    tf.dispose([x, f, dy, bias, alpha, a, b, mmBias, v]);
  });

  it('caches primitives and reports the implementations oneDNN chose', () => {
    const stats = addon!.cacheInfo();
    expect(stats.conv.size).toBeGreaterThan(0);
    expect(stats.conv.hits).toBeGreaterThan(0);
    expect(stats.matmul.size).toBeGreaterThan(0);
    for (const e of [...stats.conv.entries, ...stats.matmul.entries]) expect(e.impl).toMatch(/\w/);
  });

  it('thread count is settable', () => {
    const n = addon!.getThreads();
    expect(addon!.setThreads(1)).toBe(1);
    expect(addon!.setThreads(n)).toBe(n);
    expect(() => addon!.setThreads(0)).toThrow(/threads/);
  });

  it('rejects malformed arguments with JS errors instead of crashing', () => {
    const p = Int32Array.of(1, 4, 4, 2, 3, 3, 2, 4, 4, 1, 1, 1, 1, 1, 1);
    const x = new Float32Array(32);
    const w = new Float32Array(36);
    expect(() => addon!.conv2d(x, w, null, new Float32Array(31), p, 0, 0)).toThrow(/expected 32/);
    expect(() => addon!.conv2d(x, w, null, new Float32Array(32), new Int32Array(3), 0, 0)).toThrow(/Int32Array/);
    expect(() => addon!.conv2d(x, w, null, new Float32Array(32), p, 99, 0)).toThrow(/activation/);
    expect(() => addon!.matmul(x, w, null, new Float32Array(8), Int32Array.of(2, 3, 2, 2, 8, 0, 0), 0, 0)).toThrow(/batch/);
    expect(() => addon!.conv2d([] as unknown as Float32Array, w, null, x, p, 0, 0)).toThrow(/Float32Array/);
  });
});
