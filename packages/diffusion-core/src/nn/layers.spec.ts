import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { leakedTensors, relMaxError, useCpuBackend } from '../testing/setup-cpu';
import { Conv2d, Embedding, GroupNorm, LayerNorm, Linear, silu } from './layers';

beforeAll(useCpuBackend);

/** Direct-loop convolution reference, NHWC / HWIO, symmetric padding. */
function convRef(x: Float32Array, [b, h, w, ci]: number[], wt: Float32Array, k: number, co: number, stride: number, pad: number, bias: Float32Array) {
  const ho = Math.floor((h + 2 * pad - k) / stride) + 1;
  const wo = Math.floor((w + 2 * pad - k) / stride) + 1;
  const out = new Float64Array(b * ho * wo * co);
  for (let n = 0; n < b; n++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++)
        for (let o = 0; o < co; o++) {
          let s = bias[o];
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++) {
              const iy = oy * stride + ky - pad;
              const ix = ox * stride + kx - pad;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              for (let c = 0; c < ci; c++) s += x[((n * h + iy) * w + ix) * ci + c] * wt[((ky * k + kx) * ci + c) * co + o];
            }
          out[((n * ho + oy) * wo + ox) * co + o] = s;
        }
  return { out, shape: [b, ho, wo, co] };
}

describe('Linear', () => {
  it('computes x W + b against a hand-computed case', () => {
    const lin = new Linear({ inFeatures: 2, outFeatures: 3, generator: new Generator(0) });
    lin.weight.assign(tf.tensor2d([[1, 2, 3], [4, 5, 6]]));
    lin.bias!.assign(tf.tensor1d([0.5, -1, 0]));
    const y = lin.forward(tf.tensor2d([[1, 1], [2, -1]]));
    // [1,1]·W = [5,7,9] + b = [5.5,6,9];  [2,-1]·W = [-2,-1,0] + b = [-1.5,-2,0]
    expect(Array.from(y.dataSync())).toEqual([5.5, 6, 9, -1.5, -2, 0]);
    lin.dispose();
  });

  it('maps leading dimensions and initialises U(-1/sqrt(in), 1/sqrt(in)) from the seed', () => {
    const a = new Linear({ inFeatures: 16, outFeatures: 4, generator: new Generator(3) });
    const b = new Linear({ inFeatures: 16, outFeatures: 4, generator: new Generator(3) });
    expect(Array.from(a.weight.dataSync())).toEqual(Array.from(b.weight.dataSync()));
    const wmax = Math.max(...Array.from(a.weight.dataSync()).map(Math.abs));
    expect(wmax).toBeLessThanOrEqual(0.25);
    expect(wmax).toBeGreaterThan(0.15);
    expect(a.forward(tf.zeros([2, 5, 16])).shape).toEqual([2, 5, 4]);
    expect(() => a.forward(tf.zeros([2, 15]))).toThrow(/expected last dimension 16/);
    a.dispose();
    b.dispose();
  });
});

describe('Conv2d', () => {
  for (const [k, stride, h, w] of [[3, 1, 5, 6], [3, 2, 8, 8], [1, 1, 4, 3], [3, 2, 7, 5]]) {
    it(`matches a direct loop for k=${k} stride=${stride} on ${h}x${w}`, () => {
      const g = new Generator(k * 10 + stride);
      const conv = new Conv2d({ inChannels: 3, outChannels: 4, kernelSize: k, stride, generator: g });
      const x = g.normal([2, h, w, 3]) as tf.Tensor4D;
      const ref = convRef(x.dataSync() as Float32Array, x.shape, conv.weight.dataSync() as Float32Array, k, 4, stride, (k - 1) / 2, conv.bias!.dataSync() as Float32Array);
      const y = conv.forward(x);
      expect(y.shape).toEqual(ref.shape);
      expect(relMaxError(y.dataSync(), ref.out)).toBeLessThan(1e-5);
      conv.dispose();
    });
  }
});

describe('GroupNorm', () => {
  it('normalises each (sample, group) to zero mean and unit variance, then applies the affine map', () => {
    const g = new Generator(5);
    const gn = new GroupNorm({ numGroups: 2, numChannels: 4 });
    gn.weight.assign(tf.tensor1d([1, 2, 3, 4]));
    gn.bias.assign(tf.tensor1d([0, 1, 0, -1]));
    const x = g.normal([2, 3, 3, 4]) as tf.Tensor4D;
    const xs = x.dataSync();
    const y = gn.forward(x).dataSync();
    const wv = [1, 2, 3, 4];
    const bv = [0, 1, 0, -1];
    const ref = new Float64Array(xs.length);
    for (let n = 0; n < 2; n++)
      for (let grp = 0; grp < 2; grp++) {
        const idx: number[] = [];
        for (let p = 0; p < 9; p++) for (let c = grp * 2; c < grp * 2 + 2; c++) idx.push((n * 9 + p) * 4 + c);
        const mean = idx.reduce((s, i) => s + xs[i], 0) / idx.length;
        const v = idx.reduce((s, i) => s + (xs[i] - mean) ** 2, 0) / idx.length;
        for (const i of idx) ref[i] = ((xs[i] - mean) / Math.sqrt(v + 1e-5)) * wv[i % 4] + bv[i % 4];
      }
    expect(relMaxError(y, ref)).toBeLessThan(1e-5);
    gn.dispose();
  });

  it('rejects channels that do not divide by the group count', () => {
    expect(() => new GroupNorm({ numGroups: 3, numChannels: 8 })).toThrow(/numChannels \(8\) must be divisible by numGroups \(3\)/);
  });
});

describe('LayerNorm, Embedding, silu', () => {
  it('LayerNorm of [1,2,3,4] is (x-2.5)/sqrt(1.25+eps)', () => {
    const ln = new LayerNorm({ dim: 4 });
    const y = ln.forward(tf.tensor2d([[1, 2, 3, 4]])).dataSync();
    const s = Math.sqrt(1.25 + 1e-5);
    expect(relMaxError(y, [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s])).toBeLessThan(1e-6);
    ln.dispose();
  });

  it('Embedding gathers rows; silu(x) = x sigmoid(x)', () => {
    const e = new Embedding({ numEmbeddings: 3, dim: 2, generator: new Generator(1) });
    e.weight.assign(tf.tensor2d([[0, 1], [2, 3], [4, 5]]));
    expect(Array.from(e.forward(tf.tensor1d([2, 0], 'int32')).dataSync())).toEqual([4, 5, 0, 1]);
    const y = silu(tf.tensor1d([-2, 0, 3])).dataSync();
    expect(relMaxError(y, [-2 / (1 + Math.exp(2)), 0, 3 / (1 + Math.exp(-3))])).toBeLessThan(1e-6);
    e.dispose();
  });

  it('leaves no tensors behind', () => {
    const g = new Generator(2);
    const conv = new Conv2d({ inChannels: 2, outChannels: 4, kernelSize: 3, generator: g });
    const gn = new GroupNorm({ numGroups: 2, numChannels: 4 });
    const lin = new Linear({ inFeatures: 4, outFeatures: 4, generator: g });
    const x = tf.zeros([1, 4, 4, 2]) as tf.Tensor4D;
    expect(leakedTensors(() => tf.tidy(() => { lin.forward(gn.forward(conv.forward(x))); }))).toBe(0);
    // Each layer frees its own intermediates; the two un-disposed outputs of conv and norm remain.
    expect(leakedTensors(() => { lin.forward(gn.forward(conv.forward(x))).dispose(); })).toBe(2);
    x.dispose();
    const before = tf.memory().numTensors;
    conv.dispose();
    gn.dispose();
    lin.dispose();
    expect(tf.memory().numTensors).toBe(before - 2 - 2 - 2);
  });
});

describe('Module state', () => {
  it('round-trips a state dict and reports every mismatch by name', () => {
    const a = new Linear({ inFeatures: 3, outFeatures: 2, generator: new Generator(1) });
    const b = new Linear({ inFeatures: 3, outFeatures: 2, generator: new Generator(2) });
    b.loadStateDict(a.stateDict());
    expect(Array.from(b.weight.dataSync())).toEqual(Array.from(a.weight.dataSync()));
    const sd = a.stateDict();
    expect(() => b.loadStateDict({ weight: sd.weight })).toThrow(/missing "bias"/);
    expect(() => b.loadStateDict({ ...sd, extra: sd.bias })).toThrow(/unexpected "extra"/);
    expect(() => b.loadStateDict({ ...sd, weight: { shape: [2, 3], data: sd.weight.data } })).toThrow(/"weight": shape \[2,3\] does not match the model's \[3,2\]/);
    a.dispose();
    b.dispose();
  });
});
