import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { leakedTensors, useCpuBackend } from '../testing/setup-cpu';
import { Adam } from './adam';

beforeAll(useCpuBackend);

/** Adam by the book (Kingma & Ba 2015, Algorithm 1), in doubles, on one scalar. */
function adamRef(x: number, grads: number[], lr: number, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0): number[] {
  let m = 0;
  let v = 0;
  const xs: number[] = [];
  grads.forEach((g, i) => {
    const t = i + 1;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const mh = m / (1 - b1 ** t);
    const vh = v / (1 - b2 ** t);
    x = x - lr * mh / (Math.sqrt(vh) + eps) - lr * wd * x;
    xs.push(x);
  });
  return xs;
}

describe('Adam', () => {
  it('follows Algorithm 1 of Kingma & Ba (first step moves by lr * sign(g))', () => {
    const x = tf.variable(tf.scalar(1));
    const opt = new Adam([x], { learningRate: 0.1 });
    const grads = [2, -1, 0.5, 3];
    const ref = adamRef(1, grads, 0.1);
    grads.forEach((g, i) => {
      opt.apply([tf.scalar(g)]);
      expect(x.dataSync()[0]).toBeCloseTo(ref[i], 6);
    });
    expect(ref[0]).toBeCloseTo(0.9, 6);
    opt.dispose();
    x.dispose();
  });

  it('applies decoupled weight decay (AdamW) and a per-step learning rate', () => {
    const x = tf.variable(tf.scalar(2));
    const opt = new Adam([x], { learningRate: 0.01, weightDecay: 0.1 });
    opt.apply([tf.scalar(1)]);
    expect(x.dataSync()[0]).toBeCloseTo(adamRef(2, [1], 0.01, 0.9, 0.999, 1e-8, 0.1)[0], 6);
    opt.apply([tf.scalar(1)], 0);
    expect(x.dataSync()[0]).toBeCloseTo(adamRef(2, [1], 0.01, 0.9, 0.999, 1e-8, 0.1)[0], 6);
    opt.dispose();
    x.dispose();
  });

  it('restores its state so the next update is identical, and leaks nothing', () => {
    const a = tf.variable(tf.tensor1d([1, 2]));
    const opt = new Adam([a], { learningRate: 0.1 });
    opt.apply([tf.tensor1d([0.3, -0.2])]);
    const st = opt.getState();
    const saved = a.dataSync().slice();
    opt.apply([tf.tensor1d([0.1, 0.1])]);
    const after = Array.from(a.dataSync());
    a.assign(tf.tensor1d(saved));
    opt.setState(st);
    opt.apply([tf.tensor1d([0.1, 0.1])]);
    expect(Array.from(a.dataSync())).toEqual(after);
    const g = tf.tensor1d([1, 1]);
    expect(leakedTensors(() => opt.apply([g]))).toBe(0);
    expect(() => opt.apply([])).toThrow(/0 gradients for 1 variables/);
    expect(() => new Adam([a], { beta1: 1 })).toThrow(/AdamConfig.beta1 must be in \[0, 1\)/);
    expect(() => new Adam([a], { lr: 1 } as never)).toThrow(/unknown field "lr"/);
    // Construction holds exactly two moment tensors per variable; dispose frees them.
    expect(leakedTensors(() => new Adam([a]).dispose())).toBe(0);
    const before = tf.memory().numTensors;
    const held = new Adam([a]);
    expect(tf.memory().numTensors - before).toBe(2);
    held.dispose();
    opt.dispose();
    a.dispose();
  });
});
