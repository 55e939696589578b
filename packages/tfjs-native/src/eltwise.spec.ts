// The C++ elementwise, reduction, softmax and data-movement kernels against the reference cpu
// kernels: broadcasting patterns, odd sizes, size-1 dims, batch 1, sizes large enough to take
// the multi-threaded paths, and every reduction-axes pattern. Criterion: max |native - cpu| /
// max |cpu| <= 1e-4. Each case also checks that the native code really ran.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core registers no gradients by itself (the tfjs umbrella package does).
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { NativeAddon } from './addon';
import { loadNativeAddon, NATIVE_BACKEND_NAME, registerNativeBackend } from './index';
import { randomFloats, relMaxError, runOn } from './test-utils';

const TOL = 1e-4;
const loaded = loadNativeAddon();
if (!loaded.ok) console.warn(`[@fad/tfjs-native] SKIPPING elementwise kernel tests: ${loaded.reason}`);

// Counts calls into the addon's elementwise entry points (the kernels look them up per call).
const ELTWISE_FNS = ['binary', 'unary', 'reduce', 'softmax', 'transpose', 'slice', 'concat', 'tile', 'addN', 'batchNorm', 'maxPool', 'maxPoolGrad', 'fill'] as const;
let calls = 0;
const originals: Partial<Record<(typeof ELTWISE_FNS)[number], unknown>> = {};

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const rand = (shape: number[], seed: number, lo = -1, hi = 1) =>
  tf.tensor(randomFloats(size(shape), seed).map((v) => lo + ((v + 1) / 2) * (hi - lo)), shape);

async function expectSame(what: string, fn: () => tf.Tensor | tf.Tensor[], expectNative = true): Promise<void> {
  const ref = await runOn('cpu', fn);
  const before = calls;
  const got = await runOn(NATIVE_BACKEND_NAME, fn);
  expect(calls > before, `${what}: native kernel ${expectNative ? 'not used' : 'used unexpectedly'}`).toBe(expectNative);
  expect(got.shape, what).toEqual(ref.shape);
  for (let i = 0; i < ref.values.length; i++) {
    const err = relMaxError(got.values[i], ref.values[i]);
    expect(err, `${what} [output ${i}] rel. max error ${err}`).toBeLessThanOrEqual(TOL);
  }
}

describe.skipIf(!loaded.ok)('native backend: elementwise kernels vs cpu', () => {
  beforeAll(() => {
    expect(registerNativeBackend()).toBe(true);
    const addon = (loaded as { addon: NativeAddon }).addon as unknown as Record<string, (...a: unknown[]) => unknown>;
    for (const name of ELTWISE_FNS) {
      const f = addon[name];
      originals[name] = f;
      addon[name] = (...args: unknown[]) => {
        calls++;
        return f.apply(addon, args);
      };
    }
  });
  afterAll(() => {
    const addon = (loaded as { addon: NativeAddon }).addon as unknown as Record<string, unknown>;
    for (const name of ELTWISE_FNS) addon[name] = originals[name];
  });

  const broadcastPairs: Array<[number[], number[]]> = [
    [[2, 3, 4], [2, 3, 4]],
    [[2, 3, 4], [4]],
    [[4], [2, 3, 4]],
    [[2, 3, 4], [3, 1]],
    [[1], [5, 7]],
    [[], [3, 3]],
    [[3, 3], []],
    [[2, 1, 4], [1, 3, 1]],
    [[1, 7, 1], [5, 1, 3]],
    [[5, 1, 7, 1, 3], [1, 4, 1, 6, 1]],
    [[1, 1], [1, 1]],
    [[3, 333, 17], [333, 1]],
    [[16, 8, 8, 32], [16, 1, 1, 32]],
    [[8, 64, 64], [64]],
    [[2, 40000], [2, 1]],
    [[70000], [70000]],
    [[70000], [1]],
  ];
  const binaryOps: Array<[string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, number]> = [
    ['add', tf.add, -1],
    ['sub', tf.sub, -1],
    ['mul', tf.mul, -1],
    ['div', tf.div, 0.5],
    ['squaredDifference', tf.squaredDifference, -1],
    ['maximum', tf.maximum, -1],
    ['minimum', tf.minimum, -1],
    ['pow', tf.pow, 0.2],
  ];

  it('binary ops with broadcasting', async () => {
    let seed = 1;
    for (const [name, op, lo] of binaryOps) {
      for (const [sa, sb] of broadcastPairs) {
        const s = seed++;
        // div and pow draw b (and pow a) from positive ranges, away from 0.
        await expectSame(`${name} [${sa}] x [${sb}]`, () =>
          op(rand(sa, s, name === 'pow' ? 0.2 : -1, 2), rand(sb, s + 1000, lo, name === 'pow' ? 2 : 1)),
        );
      }
    }
  });

  it('binary ops keep tfjs semantics for NaN (maximum/minimum) and fall back for int32', async () => {
    await expectSame('maximum with NaN', () => tf.maximum(tf.tensor([1, NaN, 3, -1]), tf.tensor([NaN, 2, 1, 0])));
    await expectSame('minimum with NaN', () => tf.minimum(tf.tensor([1, NaN, 3, -1]), tf.tensor([NaN, 2, 1, 0])));
    await expectSame('int32 add', () => tf.add(tf.tensor([1, 2, 3], undefined, 'int32'), tf.tensor([4, 5, 6], undefined, 'int32')), false);
  });

  it('unary ops', async () => {
    const shapes = [[1], [7], [3, 5, 7], [130001]];
    const ops: Array<[string, (x: tf.Tensor) => tf.Tensor, number, number]> = [
      ['sigmoid', tf.sigmoid, -30, 30],
      ['exp', tf.exp, -20, 20],
      ['log', tf.log, 0.01, 100],
      ['sqrt', tf.sqrt, 0, 100],
      ['rsqrt', tf.rsqrt, 0.01, 100],
      ['square', tf.square, -10, 10],
      ['neg', tf.neg, -10, 10],
      ['relu', tf.relu, -10, 10],
      ['abs', tf.abs, -10, 10],
      ['tanh', tf.tanh, -10, 10],
      ['reciprocal', tf.reciprocal, 0.1, 10],
      ['relu6', tf.relu6, -10, 10],
      ['step', (x) => tf.step(x, 0.3), -10, 10],
    ];
    let seed = 100;
    for (const [name, op, lo, hi] of ops) {
      for (const s of shapes) {
        const sd = seed++;
        await expectSame(`${name} [${s}]`, () => op(rand(s, sd, lo, hi)));
      }
    }
    await expectSame('exp near the float range ends', () => tf.exp(tf.tensor([0, 88, -87, -100, 1e-3])));
    await tf.setBackend(NATIVE_BACKEND_NAME);
    const special = tf.tidy(() => tf.exp(tf.tensor([100, NaN, Infinity, -Infinity])).arraySync() as number[]);
    expect(special[0]).toBe(Infinity);
    expect(special[1]).toBeNaN();
    expect(special[2]).toBe(Infinity);
    expect(special[3]).toBe(0);
    await expectSame('sigmoid extremes', () => tf.sigmoid(tf.tensor([-1000, 1000, 0, NaN])));
  });

  it('reductions over every axes pattern', async () => {
    const cases: Array<[number[], number[]]> = [
      [[4, 5, 6], [0]],
      [[4, 5, 6], [1]],
      [[4, 5, 6], [2]],
      [[4, 5, 6], [0, 1]],
      [[4, 5, 6], [1, 2]],
      [[4, 5, 6], [0, 2]],
      [[4, 5, 6], [0, 1, 2]],
      [[2, 3, 4, 5, 6], [0, 2, 4]],
      [[3, 1, 5], [0, 1]],
      [[1, 1, 1], [1]],
      [[7], [0]],
      [[16, 64, 64, 8], [0, 1, 2]],
      [[2, 256, 8, 4], [1, 3]],
      [[1, 100003], [1]],
      [[100003], [0]],
      [[3, 40000], [0]],
      [[40000, 3], [0]],
    ];
    let seed = 200;
    for (const [shape, axes] of cases) {
      for (const keepDims of [false, true]) {
        const s = seed++;
        await expectSame(`sum [${shape}] ${axes} ${keepDims}`, () => tf.sum(rand(shape, s), axes, keepDims));
        await expectSame(`mean [${shape}] ${axes} ${keepDims}`, () => tf.mean(rand(shape, s), axes, keepDims));
        await expectSame(`max [${shape}] ${axes} ${keepDims}`, () => tf.max(rand(shape, s), axes, keepDims));
        await expectSame(`min [${shape}] ${axes} ${keepDims}`, () => tf.min(rand(shape, s), axes, keepDims));
      }
    }
    await expectSame('sum of a scalar', () => tf.sum(tf.scalar(3)));
    await expectSame('max with NaN', () => tf.max(tf.tensor([[1, NaN, 3], [4, 5, 6]]), 1));
  });

  it('softmax over the last axis', async () => {
    let seed = 300;
    for (const shape of [[1, 1], [4, 7], [2, 3, 256], [64, 256, 1], [5, 1000]]) {
      const sd = seed++;
      await expectSame(`softmax [${shape}]`, () => tf.softmax(rand(shape, sd, -20, 20)));
    }
  });

  it('transpose', async () => {
    const cases: Array<[number[], number[]]> = [
      [[2, 3, 4, 5], [0, 2, 1, 3]],
      [[2, 3, 4, 5], [3, 2, 1, 0]],
      [[2, 3, 4, 5], [1, 0, 2, 3]],
      [[2, 3, 4, 5], [0, 1, 3, 2]],
      [[2, 3, 4, 5], [2, 0, 3, 1]],
      [[1, 5, 1, 3], [3, 2, 1, 0]],
      [[16, 256, 4, 32], [0, 2, 1, 3]],
      [[64, 33, 65], [2, 1, 0]],
      [[100, 200], [1, 0]],
      [[7, 9], [0, 1]],
      [[3, 4, 5, 6, 7], [4, 0, 3, 1, 2]],
    ];
    let seed = 400;
    for (const [shape, perm] of cases) {
      const sd = seed++;
      await expectSame(`transpose [${shape}] ${perm}`, () => tf.transpose(rand(shape, sd), perm));
    }
  });

  it('slice, split and concat', async () => {
    await expectSame('slice middle box', () => tf.slice(rand([4, 5, 6], 1), [1, 0, 2], [2, 5, 3]));
    await expectSame('slice channels', () => tf.slice(rand([16, 8, 8, 96], 2), [0, 0, 0, 32], [-1, -1, -1, 64]));
    await expectSame('slice rows of two batches', () => tf.slice(rand([3, 7, 9, 5], 3), [0, 2, 0, 0], [2, 3, -1, -1]));
    // A contiguous slice stays the cpu kernel's zero-copy view.
    await expectSame('contiguous slice', () => tf.slice(rand([4, 5, 6], 4), [1, 0, 0], [2, 5, 6]), false);
    await expectSame('split channels [3, 5]', () => tf.split(rand([2, 3, 8], 5), [3, 5], 2));
    await expectSame('split in 2 along axis 1', () => tf.split(rand([2, 6, 8], 6), 2, 1));
    await expectSame('split [128, 64] of NHWC', () => tf.split(rand([16, 16, 16, 192], 7), [128, 64], 3));
    await expectSame('concat axis 3', () => tf.concat([rand([2, 4, 4, 3], 8), rand([2, 4, 4, 5], 9)], 3));
    await expectSame('concat axis 0', () => tf.concat([rand([2, 3], 10), rand([4, 3], 11)], 0));
    await expectSame('concat 3 inputs axis 1', () => tf.concat([rand([2, 1, 3], 12), rand([2, 4, 3], 13), rand([2, 2, 3], 14)], 1));
    await expectSame('concat NHWC skip', () => tf.concat([rand([16, 32, 32, 64], 15), rand([16, 32, 32, 32], 16)], 3));
  });

  it('tile, addN, batchNorm', async () => {
    await expectSame('tile 2d', () => tf.tile(rand([2, 3], 1), [2, 3]));
    await expectSame('tile upsample', () => tf.tile(rand([16, 32, 1, 64], 2), [1, 1, 2, 1]));
    await expectSame('tile 3d', () => tf.tile(rand([2, 1, 3], 3), [3, 4, 1]));
    await expectSame('zerosLike', () => tf.zerosLike(rand([300, 500], 20)));
    await expectSame('onesLike', () => tf.onesLike(rand([3, 5], 21)));
    await expectSame('zerosLike int32 (cpu)', () => tf.zerosLike(tf.tensor([1, 2], undefined, 'int32')), false);
    await expectSame('addN', () => tf.addN([rand([3, 5], 4), rand([3, 5], 5), rand([3, 5], 6)]));
    await expectSame('addN large', () => tf.addN([rand([300, 500], 7), rand([300, 500], 8)]));
    await expectSame('batchNorm [C] params', () =>
      tf.batchNorm(rand([2, 4, 4, 8], 9), rand([8], 10), rand([8], 11, 0.5, 2), rand([8], 12), rand([8], 13), 1e-3),
    );
    await expectSame('batchNorm rank-4 params, no offset/scale', () =>
      tf.batchNorm(rand([16, 8, 8, 64], 14), rand([1, 1, 1, 64], 15), rand([1, 1, 1, 64], 16, 0.5, 2)),
    );
    await expectSame('batchNorm scalar params', () => tf.batchNorm(rand([3, 5], 17), tf.scalar(0.1), tf.scalar(2), tf.scalar(1), tf.scalar(3)));
  });

  it('max pooling and its gradient', async () => {
    const cases: Array<[number[], number, number, 'valid' | 'same' | number]> = [
      [[2, 8, 8, 3], 2, 2, 'valid'],
      [[16, 32, 32, 64], 3, 2, 1], // the ResNet stem's pool
      [[1, 7, 9, 5], 3, 2, 'same'],
      [[3, 5, 5, 4], 3, 1, 'same'],
      [[2, 6, 6, 2], 2, 1, 'valid'],
    ];
    let seed = 500;
    for (const [shape, k, s, pad] of cases) {
      const sd = seed++;
      await expectSame(`maxPool [${shape}] k${k} s${s} ${pad}`, () => tf.maxPool(rand(shape, sd) as tf.Tensor4D, k, s, pad as never));
      await expectSame(`maxPool grad [${shape}] k${k} s${s} ${pad}`, () =>
        tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(x as tf.Tensor4D, k, s, pad as never), 1.5)))(rand(shape, sd)),
      );
    }
    // Ties: the gradient goes to the first maximum, as tfjs's cpu kernel does.
    await expectSame('maxPool grad with ties', () => tf.grad((x: tf.Tensor) => tf.sum(tf.maxPool(x as tf.Tensor4D, 2, 1, 'valid')))(tf.ones([1, 3, 3, 2])));
  });

  it('gradients through native elementwise kernels match cpu', async () => {
    await expectSame('grad of a broadcasting expression', () => {
      const a = rand([4, 6, 6, 8], 1);
      const b = rand([4, 1, 1, 8], 2);
      const f = (x: tf.Tensor, y: tf.Tensor) =>
        tf.sum(tf.mul(tf.softmax(tf.sub(tf.mul(x, y), tf.mean(x, [1, 2], true))), tf.sigmoid(tf.add(x, y))));
      return tf.grads(f)([a, b]);
    });
  });

  it('leaks no tensors', async () => {
    await tf.setBackend(NATIVE_BACKEND_NAME);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const a = rand([4, 6], 1);
      tf.dispose([tf.add(a, 1), tf.sum(a, 0), tf.transpose(a), tf.split(a, 2, 1), tf.concat([a, a], 1), tf.softmax(a)]);
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});
