import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCpuBackend } from '../testing/setup-cpu';
import { clipByGlobalNorm, globalNorm } from './grad-clip';

beforeAll(useCpuBackend);

describe('clipByGlobalNorm', () => {
  it('scales a (3,4) pair with norm 5 down to norm 1, and leaves small gradients alone', () => {
    const g = [tf.scalar(3), tf.tensor1d([4])];
    expect(globalNorm(g)).toBeCloseTo(5, 6);
    const c = clipByGlobalNorm(g, 1);
    expect(c.norm).toBeCloseTo(5, 6);
    expect(c.grads[0].dataSync()[0]).toBeCloseTo(0.6, 5);
    expect(c.grads[1].dataSync()[0]).toBeCloseTo(0.8, 5);
    const k = clipByGlobalNorm(g, 10);
    expect(k.grads[0].dataSync()[0]).toBe(3);
    expect(() => clipByGlobalNorm(g, 0)).toThrow(/maxNorm must be > 0/);
    tf.dispose([...g, ...c.grads, ...k.grads]);
  });
});
