// The eager-freeing Engine.gradients (active on `native`) against tfjs-core's own: same values
// and gradients on graphs with fan-out, multi-output kernels, custom gradients that return dy
// or a saved tensor as is, a caller-supplied dy, variables, and nested (second-order)
// gradients; no leaked tensors; and a lower memory peak than tfjs-core's.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { loadNativeAddon, NATIVE_BACKEND_NAME, registerNativeBackend } from './index';
import { randomFloats, relMaxError } from './test-utils';

const loaded = loadNativeAddon();
if (!loaded.ok) console.warn(`[@fad/tfjs-native] SKIPPING eager backprop tests: ${loaded.reason}`);

const rand = (shape: number[], seed: number) => tf.tensor(randomFloats(shape.reduce((a, b) => a * b, 1), seed), shape);

/** Runs fn twice on native, with tfjs-core's gradients and with the eager one. */
function both(fn: () => tf.Tensor[]): [Float32Array[], Float32Array[]] {
  const run = (eager: boolean) => {
    process.env.FAD_TFJS_NATIVE_EAGER_BACKPROP = eager ? '1' : '0';
    const outs = tf.tidy(fn);
    const vals = outs.map((t) => Float32Array.from(t.dataSync()));
    tf.dispose(outs);
    return vals;
  };
  return [run(false), run(true)];
}

function expectSameGrads(fn: () => tf.Tensor[]): void {
  const before = tf.memory().numTensors;
  const [ref, got] = both(fn);
  expect(tf.memory().numTensors, 'leaked tensors').toBe(before);
  expect(got.length).toBe(ref.length);
  ref.forEach((r, i) => expect(relMaxError(got[i], r), `output ${i}`).toBeLessThanOrEqual(1e-6));
}

describe.skipIf(!loaded.ok)('eager-freeing backprop on native', () => {
  beforeAll(async () => {
    expect(registerNativeBackend()).toBe(true);
    await tf.setBackend(NATIVE_BACKEND_NAME);
  });
  afterEach(() => {
    delete process.env.FAD_TFJS_NATIVE_EAGER_BACKPROP;
  });

  it('fan-out, broadcasting, reductions and a multi-output kernel (split)', () => {
    expectSameGrads(() => {
      const a = rand([4, 6], 1);
      const b = rand([6], 2);
      const f = (x: tf.Tensor, y: tf.Tensor) => {
        const h = tf.sigmoid(tf.add(tf.mul(x, y), x)); // x used twice
        const [p, q] = tf.split(h, [2, 4], 1);
        return tf.sum(tf.add(tf.mul(tf.sum(p, 1), tf.mean(q, 1)), tf.sum(tf.square(h))));
      };
      const { value, grads } = tf.valueAndGrads(f)([a, b]);
      return [value, ...grads];
    });
  });

  it('custom gradients returning dy and a saved tensor as they are, and a caller dy', () => {
    expectSameGrads(() => {
      const passDy = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
        save([x]);
        return { value: tf.mul(x, 2), gradFunc: (dy: tf.Tensor) => dy };
      }) as never);
      const passSaved = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
        save([x]);
        return { value: tf.square(x), gradFunc: (_dy: tf.Tensor, saved: tf.Tensor[]) => saved[0] };
      }) as never);
      const x = rand([3, 5], 3);
      const f = (t: tf.Tensor) => tf.add(passDy(t) as tf.Tensor, tf.mul(passSaved(t) as tf.Tensor, t));
      const dy = rand([3, 5], 4);
      const g = tf.grad(f)(x, dy);
      expect(dy.isDisposed).toBe(false);
      return [g, tf.grad((t: tf.Tensor) => tf.sum(passDy(t) as tf.Tensor))(x)];
    });
  });

  it('variables (variableGrads) through conv, matmul and the fused GroupNorm', () => {
    const w = tf.variable(rand([3, 3, 4, 8], 5));
    const m = tf.variable(rand([8, 5], 6));
    expectSameGrads(() => {
      const x = rand([2, 6, 6, 4], 7);
      const { value, grads } = tf.variableGrads(() => {
        const h = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same');
        const gn = tf.engine().runKernel('FadGroupNorm', { x: h, gamma: tf.ones([8]), beta: tf.zeros([8]) }, {
          groups: 4, epsilon: 1e-5, silu: true,
        } as never) as tf.Tensor[];
        return tf.mean(tf.matMul(tf.reshape(gn[0], [-1, 8]), m)) as tf.Scalar;
      }, [w, m]);
      return [value, grads[w.name], grads[m.name]];
    });
    tf.dispose([w, m]);
  });

  it('second-order gradients take tfjs-core path and stay correct', () => {
    expectSameGrads(() => {
      const x = rand([5], 8);
      const g2 = tf.grad((t: tf.Tensor) => tf.sum(tf.grad((u: tf.Tensor) => tf.sum(tf.pow(u, tf.scalar(3))))(t)))(x);
      return [g2];
    });
  });

  it('saves tensors for the backward without Identity kernels or tape nodes (first order only)', async () => {
    // Count the kernels tf.grad runs: tfjs-core clones every saved tensor through Identity.
    const identities = async (eager: boolean, second = false) => {
      process.env.FAD_TFJS_NATIVE_EAGER_BACKPROP = eager ? '1' : '0';
      const x = rand([4, 6], 10);
      const f = (t: tf.Tensor) => tf.sum(tf.mul(tf.sigmoid(t), tf.square(t)));
      const info = await tf.profile(() => (second ? tf.grad((t: tf.Tensor) => tf.sum(tf.grad(f)(t)))(x) : tf.grad(f)(x)));
      x.dispose();
      return info.kernels.filter((k) => k.name === 'Identity').length;
    };
    expect(await identities(false)).toBeGreaterThanOrEqual(3); // sigmoid's output, square's and mul's inputs
    expect(await identities(true)).toBe(0);
    // A second-order gradient takes tfjs-core's path and its clones (their tape nodes are needed).
    expect(await identities(true, true)).toBeGreaterThan(0);
  });

  it('keeps the peak of live tensor memory near the forward pass', () => {
    const peakOf = (eager: boolean) => {
      process.env.FAD_TFJS_NATIVE_EAGER_BACKPROP = eager ? '1' : '0';
      const eng = tf.engine() as unknown as { runKernelFunc: (c: unknown) => unknown };
      const orig = eng.runKernelFunc;
      let peak = 0;
      eng.runKernelFunc = function (this: unknown, c: unknown) {
        const r = orig.call(this, c);
        peak = Math.max(peak, tf.memory().numBytes);
        return r;
      };
      try {
        tf.tidy(() => {
          const x = rand([64, 256], 9);
          // A deep chain whose forward keeps one tensor per layer (the sigmoid's output):
          // tfjs-core's backward adds every layer's gradient on top, ours frees them as it goes.
          tf.grad((t: tf.Tensor) => {
            let h = t;
            for (let i = 0; i < 20; i++) {
              const prev = h;
              h = tf.tidy(() => tf.sigmoid(tf.add(prev, 0.1)));
            }
            return tf.sum(h);
          })(x);
        });
      } finally {
        eng.runKernelFunc = orig;
      }
      return peak;
    };
    const ref = peakOf(false);
    const got = peakOf(true);
    expect(got).toBeLessThan(ref * 0.8);
  });
});
