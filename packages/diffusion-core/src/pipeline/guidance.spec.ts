import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { leakedTensors, useCpuBackend } from '../testing/setup-cpu';
import { energyGuidance, type GuidanceParams } from './guidance';

beforeAll(useCpuBackend);

const D = 8; // 2x2x2 images
const K = 3;
/** Fixed weights of a linear "classifier": logits = flatten(x) W. */
const W = Array.from({ length: D * K }, (_, i) => Math.sin(1.3 * i + 0.2) * 0.8);
const X = [
  [0.3, -0.5, 0.9, 0.1, -0.7, 0.4, 0.2, -0.1],
  [-0.2, 0.6, -0.4, 0.8, 0.5, -0.9, 0.0, 0.3],
];

/** log p(y | x) of the linear classifier, per image. */
function logLikelihood(p: GuidanceParams): tf.Tensor1D {
  const b = p.x.shape[0];
  const logits = tf.matMul(tf.reshape(p.x, [b, D]), tf.tensor2d(W, [D, K]));
  const y = tf.oneHot(tf.tensor1d(p.classLabels as number[], 'int32'), K);
  return tf.sum(tf.mul(tf.logSoftmax(logits), y), 1) as tf.Tensor1D;
}

/** Hand-computed: grad_x log softmax(x W)_y = W (e_y - p), in float64. */
function expectedGrad(x: number[], y: number): number[] {
  const z = Array.from({ length: K }, (_, k) => x.reduce((s, xd, d) => s + xd * W[d * K + k], 0));
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const sum = e.reduce((a, b) => a + b, 0);
  const p = e.map((v) => v / sum);
  return x.map((_, d) => W.slice(d * K, d * K + K).reduce((s, w, k) => s + w * ((k === y ? 1 : 0) - p[k]), 0));
}

describe('energyGuidance', () => {
  it('returns scale * grad_x E per image, matching the analytic gradient of a linear classifier', () => {
    const x = tf.tensor4d(X.flat(), [2, 2, 2, 2]);
    const guide = energyGuidance({ energy: logLikelihood, scale: 2.5 });
    const g = guide({ x, timestep: 10, alphaBar: 0.5, classLabels: [2, 0] })!;
    const got = Array.from(g.dataSync());
    const want = [...expectedGrad(X[0], 2), ...expectedGrad(X[1], 0)].map((v) => 2.5 * v);
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
    // Images are independent: the batch gives what each image gives alone.
    const g1 = guide({ x: tf.slice(x, [1, 0, 0, 0], [1, 2, 2, 2]), timestep: 10, alphaBar: 0.5, classLabels: [0] })!;
    expect(Array.from(g1.dataSync())).toEqual(got.slice(D).map((v) => Math.fround(v)));
    tf.dispose([x, g, g1]);
  });

  it('scale 0 returns null without evaluating the energy; minTimestep skips the late steps', () => {
    let calls = 0;
    const energy = (p: GuidanceParams) => {
      calls++;
      return logLikelihood(p);
    };
    const x = tf.tensor4d(X.flat(), [2, 2, 2, 2]);
    expect(energyGuidance({ energy, scale: 0 })({ x, timestep: 500, alphaBar: 0.5, classLabels: [0, 1] })).toBeNull();
    const late = energyGuidance({ energy, scale: 1, minTimestep: 100 });
    expect(late({ x, timestep: 99, alphaBar: 0.9, classLabels: [0, 1] })).toBeNull();
    expect(calls).toBe(0);
    const g = late({ x, timestep: 100, alphaBar: 0.9, classLabels: [0, 1] })!;
    expect(calls).toBe(1);
    tf.dispose([x, g]);
  });

  it('leaks no tensors besides g', () => {
    const x = tf.tensor4d(X.flat(), [2, 2, 2, 2]);
    const guide = energyGuidance({ energy: logLikelihood, scale: 1 });
    expect(leakedTensors(() => guide({ x, timestep: 1, alphaBar: 0.5, classLabels: [0, 1] })!.dispose())).toBe(0);
    x.dispose();
  });

  it('validates its arguments, naming the field', () => {
    expect(() => energyGuidance({ energy: 3 as never, scale: 1 })).toThrow(/energyGuidance: energy must be a function/);
    expect(() => energyGuidance({ energy: logLikelihood, scale: -1 })).toThrow(/energyGuidance: scale must be a finite number >= 0, got -1/);
    expect(() => energyGuidance({ energy: logLikelihood, scale: 1, minTimestep: 1.5 })).toThrow(/minTimestep must be an integer >= 0/);
    const bad = energyGuidance({ energy: (p) => tf.sum(p.x) as unknown as tf.Tensor1D, scale: 1 });
    const x = tf.zeros([2, 2, 2, 2]) as tf.Tensor4D;
    expect(() => bad({ x, timestep: 1, alphaBar: 0.5 })).toThrow(/energy must return one value per image, shape \[2\]/);
    x.dispose();
  });
});
