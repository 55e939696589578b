// The output-buffer pool must never hand out memory that something can still see: live
// tensors, zero-copy views (contiguous slices, reshapes, clones, variables) and arrays returned
// by dataSync() keep their values while released buffers are recycled.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';

import { loadNativeAddon, NATIVE_BACKEND_NAME, poolStats, registerNativeBackend } from './index';

const loaded = loadNativeAddon();
if (!loaded.ok) console.warn(`[@fad/tfjs-native] SKIPPING buffer pool tests: ${loaded.reason}`);

const N = 1 << 15; // 128 KB: above the pooling threshold

/** Churns the pool: many same-size outputs made and freed. */
function churn(times = 20): void {
  for (let i = 0; i < times; i++) {
    tf.tidy(() => {
      const a = tf.fill([N], i + 100);
      tf.add(tf.mul(a, 2), 1).dataSync();
    });
  }
}

describe.skipIf(!loaded.ok)('native backend: output buffer pool', () => {
  beforeAll(async () => {
    expect(registerNativeBackend()).toBe(true);
    await tf.setBackend(NATIVE_BACKEND_NAME);
  });

  it('recycles released outputs', () => {
    const before = poolStats().hits;
    churn();
    expect(poolStats().hits).toBeGreaterThan(before);
  });

  it('never recycles a buffer a live tensor, view or variable still uses', () => {
    const x = tf.add(tf.fill([N], 1), 2); // native output: pooled
    const view = tf.slice(x, [N / 2], [N / 4]); // contiguous: a zero-copy view of x's buffer
    const r = tf.reshape(x, [2, N / 2]); // shares x's data
    const v = tf.variable(tf.mul(tf.fill([N], 1), 7));
    x.dispose();
    churn();
    expect(Array.from(view.dataSync()).every((e) => e === 3)).toBe(true);
    expect(Array.from(r.dataSync()).every((e) => e === 3)).toBe(true);
    expect(Array.from(v.dataSync()).every((e) => e === 7)).toBe(true);
    const old = v.dataSync();
    v.assign(tf.mul(tf.fill([N], 1), 9));
    churn();
    expect(Array.from(old).every((e) => e === 7)).toBe(true);
    expect(Array.from(v.dataSync()).every((e) => e === 9)).toBe(true);
    tf.dispose([view, r, v]);
  });

  it('dataSync() arrays stay valid after their tensor is disposed', () => {
    const t = tf.mul(tf.fill([N], 1), 5);
    const values = t.dataSync();
    t.dispose();
    churn();
    expect(Array.from(values).every((e) => e === 5)).toBe(true);
  });

  it('leaves no tensors behind and keeps the free list bounded', () => {
    const before = tf.memory().numTensors;
    churn(50);
    expect(tf.memory().numTensors).toBe(before);
    expect(poolStats().freeBytes).toBeLessThanOrEqual(1024 * 2 ** 20);
  });
});
