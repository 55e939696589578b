import * as tf from '@tensorflow/tfjs-core';
// Gradients: tf.grad needs tfjs-core's gradient registry (the library gets it through @fad/diffusion-core).
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { classLogLikelihood, uncertaintyEnergy, type UncertaintyKind } from './guidance-energies';
import { leakedTensors, useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

const Z = [
  [1, 2, 0.5, -0.3],
  [0.3, -1, 2, 1.6],
  [-0.5, 0.1, 0.1, 0.2],
];
const softmax = (z: number[]) => {
  const e = z.map(Math.exp);
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const argsort = (p: number[]) => p.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).map(([, i]) => i);

/** Hand-derived value and d/dz of each energy, float64. */
function reference(z: number[], kind: UncertaintyKind | 'classifier', y = 0): { value: number; grad: number[] } {
  const p = softmax(z);
  const d = (i: number, k: number) => (i === k ? 1 : 0);
  const [i1, i2] = argsort(p);
  switch (kind) {
    case 'entropy': {
      const h = -p.reduce((s, v) => s + v * Math.log(v), 0);
      return { value: h, grad: p.map((v) => -v * (Math.log(v) + h)) }; // dH/dz_k = -p_k (log p_k + H)
    }
    case 'least-confidence':
      return { value: -p[i1], grad: p.map((v, k) => -p[i1] * (d(i1, k) - v)) };
    case 'margin':
      return { value: -(p[i1] - p[i2]), grad: p.map((v, k) => -(p[i1] * (d(i1, k) - v) - p[i2] * (d(i2, k) - v))) };
    case 'classifier':
      return { value: Math.log(p[y]), grad: p.map((v, k) => d(y, k) - v) };
  }
}

describe('uncertaintyEnergy', () => {
  it('gives the textbook values on easy cases', () => {
    const e = (kind: UncertaintyKind, z: number[][]) => Array.from(uncertaintyEnergy({ logits: tf.tensor2d(z), kind }).dataSync());
    // Uniform over 2 and over 4 classes: entropy log K, margin 0, least confidence -1/K.
    expect(e('entropy', [[0, 0], [5, 5]])[0]).toBeCloseTo(Math.log(2), 6);
    expect(e('entropy', [[1, 1, 1, 1]])[0]).toBeCloseTo(Math.log(4), 6);
    expect(e('margin', [[0, 0, -50]])[0]).toBeCloseTo(0, 6);
    expect(e('least-confidence', [[0, 0, 0, 0]])[0]).toBeCloseTo(-0.25, 6);
    // logits (log 3, 0): p = (3/4, 1/4): margin -(1/2), least confidence -3/4.
    expect(e('margin', [[Math.log(3), 0]])[0]).toBeCloseTo(-0.5, 6);
    expect(e('least-confidence', [[0, Math.log(3)]])[0]).toBeCloseTo(-0.75, 6);
  });

  for (const kind of ['entropy', 'margin', 'least-confidence'] as const) {
    it(`${kind}: values and gradients match the hand-derived formulas`, () => {
      const logits = tf.tensor2d(Z);
      const value = uncertaintyEnergy({ logits, kind }).dataSync();
      const grad = tf.grad((z: tf.Tensor) => tf.sum(uncertaintyEnergy({ logits: z as tf.Tensor2D, kind })))(logits).dataSync();
      Z.forEach((z, b) => {
        const r = reference(z, kind);
        expect(value[b]).toBeCloseTo(r.value, 5);
        r.grad.forEach((g, k) => expect(grad[b * 4 + k], `image ${b} class ${k}`).toBeCloseTo(g, 5));
      });
    });
  }

  it('validates its arguments and leaks nothing', () => {
    const logits = tf.tensor2d(Z);
    expect(leakedTensors(() => uncertaintyEnergy({ logits, kind: 'margin' }).dispose())).toBe(0);
    expect(() => uncertaintyEnergy({ logits, kind: 'variance' as never })).toThrow(/uncertaintyEnergy: kind must be one of "entropy", "margin", "least-confidence", got "variance"/);
    expect(() => uncertaintyEnergy({ logits: tf.zeros([2]) as never, kind: 'entropy' })).toThrow(/logits must be a \[B, K\] tensor, got shape \[2\]/);
    expect(() => uncertaintyEnergy({ logits: tf.zeros([2, 1]) as tf.Tensor2D, kind: 'entropy' })).toThrow(/at least 2 classes/);
  });
});

describe('classLogLikelihood', () => {
  it('is log p(y | x) with gradient e_y - p', () => {
    const logits = tf.tensor2d(Z);
    const labels = [1, 3, 0];
    const value = classLogLikelihood({ logits, labels }).dataSync();
    const grad = tf.grad((z: tf.Tensor) => tf.sum(classLogLikelihood({ logits: z as tf.Tensor2D, labels })))(logits).dataSync();
    Z.forEach((z, b) => {
      const r = reference(z, 'classifier', labels[b]);
      expect(value[b]).toBeCloseTo(r.value, 5);
      r.grad.forEach((g, k) => expect(grad[b * 4 + k]).toBeCloseTo(g, 5));
    });
    expect(() => classLogLikelihood({ logits, labels: [0, 4, 0] })).toThrow(/labels must be 3 integer class indices in 0\.\.3 \(one per image\), got \[0,4,0\]/);
    expect(() => classLogLikelihood({ logits, labels: [0] })).toThrow(/labels must be 3 integer class indices/);
  });
});
