import { Generator, Linear, Module } from '@fad/diffusion-core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ProjectionHead } from './projection-head';
import { randomValues, useCpuBackend } from './test-support/setup';

beforeAll(useCpuBackend);

describe('ProjectionHead', () => {
  it("initialises exactly as diffusion-core's Linear from Generator(seed), within U(-1/sqrt(in), 1/sqrt(in))", () => {
    const head = new ProjectionHead({ inDim: 12, outDim: 5, seed: 7 });
    const ref = new Linear({ inFeatures: 12, outFeatures: 5, generator: new Generator(7) });
    const [[nw, w], [nb, b]] = head.namedParameters();
    expect([nw, nb]).toEqual(['weight', 'bias']);
    expect(w.shape).toEqual([12, 5]);
    expect(Array.from(w.dataSync())).toEqual(Array.from(ref.weight.dataSync()));
    expect(Array.from(b.dataSync())).toEqual(Array.from((ref.bias as tf.Variable).dataSync()));
    const bound = 1 / Math.sqrt(12);
    expect(Array.from(w.dataSync()).every((v) => Math.abs(v) <= bound)).toBe(true);
    const other = new ProjectionHead({ inDim: 12, outDim: 5, seed: 8 });
    expect(Array.from(other.namedParameters()[0][1].dataSync())).not.toEqual(Array.from(w.dataSync()));
    head.dispose();
    ref.dispose();
    other.dispose();
  });

  it('computes x W + b (linear) and SiLU(x W0 + b0) W2 + b2 (mlp) like a float64 reference', () => {
    const x = randomValues(2 * 3, 5);
    const lin = new ProjectionHead({ inDim: 3, outDim: 2, seed: 1 });
    const mlp = new ProjectionHead({ kind: 'mlp', inDim: 3, outDim: 2, hiddenDim: 4, seed: 1 });
    expect(mlp.namedParameters().map(([n, v]) => `${n}:${v.shape}`)).toEqual(['0.weight:3,4', '0.bias:4', '2.weight:4,2', '2.bias:2']);
    const dense = (inp: number[], w: tf.Variable, b: tf.Variable, fin: number, fout: number) => {
      const W = w.dataSync();
      const B = b.dataSync();
      const out: number[] = [];
      for (let r = 0; r < inp.length / fin; r++)
        for (let o = 0; o < fout; o++) {
          let s = B[o];
          for (let i = 0; i < fin; i++) s += inp[r * fin + i] * W[i * fout + o];
          out.push(s);
        }
      return out;
    };
    const [lw, lb] = lin.namedParameters().map(([, v]) => v);
    const [w0, b0, w2, b2] = mlp.namedParameters().map(([, v]) => v);
    const xt = tf.tensor2d(x, [2, 3]);
    const yl = lin.forward(xt);
    const ym = mlp.forward(xt);
    const refL = dense(x, lw, lb, 3, 2);
    const hidden = dense(x, w0, b0, 3, 4).map((v) => v / (1 + Math.exp(-v)));
    const refM = dense(hidden, w2, b2, 4, 2);
    Array.from(yl.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(refL[i], 5));
    Array.from(ym.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(refM[i], 5));
    tf.dispose([xt, yl, ym]);
    lin.dispose();
    mlp.dispose();
  });

  it('defaults the MLP hidden width to outDim and validates its arguments', () => {
    const mlp = new ProjectionHead({ kind: 'mlp', inDim: 6, outDim: 3 });
    expect(mlp.hiddenDim).toBe(3);
    mlp.dispose();
    expect(() => new ProjectionHead({ inDim: 0, outDim: 3 })).toThrow('ProjectionHead: inDim must be a positive integer, got 0');
    expect(() => new ProjectionHead({ inDim: 2, outDim: 3, hiddenDim: 4 })).toThrow(/hiddenDim \(4\) only applies to kind 'mlp'/);
    expect(() => new ProjectionHead({ kind: 'conv' as 'mlp', inDim: 2, outDim: 3 })).toThrow(/kind must be one of 'linear', 'mlp', got "conv"/);
    const h = new ProjectionHead({ inDim: 2, outDim: 3 });
    const x = tf.zeros([4, 5]) as tf.Tensor2D;
    expect(() => h.forward(x)).toThrow('ProjectionHead.forward: x must be [B,2], got [4,5]');
    h.dispose();
    x.dispose();
  });

  it('is a diffusion-core Module (the MLP: Linear children 0 and 2) and refuses to run once disposed', () => {
    const mlp = new ProjectionHead({ kind: 'mlp', inDim: 3, outDim: 2, seed: 4 });
    const copy = new ProjectionHead({ kind: 'mlp', inDim: 3, outDim: 2, seed: 5 });
    expect(mlp).toBeInstanceOf(Module);
    const ref0 = new Linear({ inFeatures: 3, outFeatures: 2, generator: new Generator(4) });
    expect(Array.from(mlp.namedParameters()[0][1].dataSync())).toEqual(Array.from(ref0.weight.dataSync()));
    copy.loadStateDict(mlp.stateDict());
    const x = tf.ones([1, 3]) as tf.Tensor2D;
    const [a, b] = [mlp.forward(x), copy.forward(x)];
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    mlp.dispose();
    expect(() => mlp.forward(x)).toThrow('ProjectionHead.forward: the head has been disposed');
    tf.dispose([x, a, b]);
    copy.dispose();
    ref0.dispose();
  });
});
