// The fused GroupNorm(+SiLU) / SiLU path of the layers against the composed-ops path. The cpu
// backend has no fused kernels, so this spec registers plain-JS reference kernels (with the
// contract of ./fused.ts) for it; @fad/tfjs-native tests its C++ kernels against the composed
// ops and a whole U-Net train step on `native` against `cpu`.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leakedTensors, relMaxError, useCpuBackend } from '../testing/setup-cpu';
import { Generator } from '../random';
import { Attention } from '../unet/blocks';
import {
  FUSED_ADAM_KERNEL,
  FUSED_ATTENTION_KERNEL,
  FUSED_BATCH_NORM_KERNEL,
  FUSED_GROUP_NORM_KERNEL,
  FUSED_SILU_KERNEL,
  fusedAdamStep,
  fusedBatchNorm,
  hasFusedKernel,
  setFusedKernelsEnabled,
} from './fused';
import { GroupNorm, LayerNorm, silu } from './layers';

type Backend = { data: { get(id: unknown): { values: Float32Array } }; makeTensorInfo(s: number[], d: string, v: Float32Array): tf.TensorInfo };
const vals = (b: unknown, t: tf.TensorInfo) => (b as Backend).data.get(t.dataId).values;
const sig = (z: number) => 1 / (1 + Math.exp(-z));

function dims(x: tf.TensorInfo, groups: number) {
  const n = x.shape[0];
  const c = x.shape[x.shape.length - 1];
  const s = x.shape.slice(1, -1).reduce((a, b) => a * b, 1);
  return { n, s, c, g: groups, cg: c / groups };
}

function registerReferenceKernels(): void {
  tf.registerKernel({
    kernelName: FUSED_GROUP_NORM_KERNEL,
    backendName: 'cpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, gamma, beta } = inputs as Record<string, tf.TensorInfo>;
      const { groups, epsilon, silu: act, relu } = attrs as unknown as { groups: number; epsilon: number; silu: boolean; relu?: boolean };
      const { n, s, c, g, cg } = dims(x, groups);
      const xv = vals(backend, x), gv = vals(backend, gamma), bv = vals(backend, beta);
      const y = new Float32Array(xv.length), mean = new Float32Array(n * g), rstd = new Float32Array(n * g);
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < g; k++) {
          let sum = 0, sq = 0;
          for (let p = 0; p < s; p++) for (let ch = k * cg; ch < (k + 1) * cg; ch++) { const v = xv[(i * s + p) * c + ch]; sum += v; sq += v * v; }
          const m = sum / (s * cg);
          mean[i * g + k] = m;
          rstd[i * g + k] = 1 / Math.sqrt(sq / (s * cg) - m * m + epsilon);
        }
        for (let p = 0; p < s; p++) {
          for (let ch = 0; ch < c; ch++) {
            const j = (i * s + p) * c + ch, k = i * g + Math.floor(ch / cg);
            const z = (xv[j] - mean[k]) * rstd[k] * gv[ch] + bv[ch];
            y[j] = act ? z * sig(z) : relu ? Math.max(z, 0) : z;
          }
        }
      }
      const b = backend as unknown as Backend;
      return [b.makeTensorInfo(x.shape, 'float32', y), b.makeTensorInfo([n, g], 'float32', mean), b.makeTensorInfo([n, g], 'float32', rstd)];
    },
  });
  tf.registerKernel({
    kernelName: 'FadGroupNormGrad',
    backendName: 'cpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { dy, x, gamma, beta, mean, rstd } = inputs as Record<string, tf.TensorInfo>;
      const { groups, silu: act, relu } = attrs as unknown as { groups: number; silu: boolean; relu?: boolean };
      const { n, s, c, g, cg } = dims(x, groups);
      const dyv = vals(backend, dy), xv = vals(backend, x), gv = vals(backend, gamma), bv = vals(backend, beta);
      const mv = vals(backend, mean), rv = vals(backend, rstd);
      const dx = new Float32Array(xv.length), dgamma = new Float32Array(c), dbeta = new Float32Array(c);
      const M = s * cg;
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < g; k++) {
          const m = mv[i * g + k], r = rv[i * g + k];
          const idx: number[] = [], dxhat: number[] = [], xhat: number[] = [];
          for (let p = 0; p < s; p++) {
            for (let ch = k * cg; ch < (k + 1) * cg; ch++) {
              const j = (i * s + p) * c + ch;
              const xh = (xv[j] - m) * r;
              const z = xh * gv[ch] + bv[ch];
              const dz = act ? dyv[j] * sig(z) * (1 + z * (1 - sig(z))) : relu ? (z > 0 ? dyv[j] : 0) : dyv[j];
              dgamma[ch] += dz * xh;
              dbeta[ch] += dz;
              idx.push(j); dxhat.push(dz * gv[ch]); xhat.push(xh);
            }
          }
          const a = dxhat.reduce((u, v) => u + v, 0) / M;
          const d = dxhat.reduce((u, v, q) => u + v * xhat[q], 0) / M;
          idx.forEach((j, q) => { dx[j] = r * (dxhat[q] - a - xhat[q] * d); });
        }
      }
      const b = backend as unknown as Backend;
      return [b.makeTensorInfo(x.shape, 'float32', dx), b.makeTensorInfo([c], 'float32', dgamma), b.makeTensorInfo([c], 'float32', dbeta)];
    },
  });
  tf.registerKernel({
    kernelName: FUSED_SILU_KERNEL,
    backendName: 'cpu',
    kernelFunc: ({ inputs, backend }) => {
      const { x } = inputs as Record<string, tf.TensorInfo>;
      const xv = vals(backend, x);
      return (backend as unknown as Backend).makeTensorInfo(x.shape, 'float32', xv.map((v) => v * sig(v)));
    },
  });
  // Attention: plain loops over (batch, head, query); probs saved for the gradient.
  const attnDims = (q: tf.TensorInfo, k: tf.TensorInfo, heads: number) => {
    const [b, l, d] = q.shape;
    return { b, l, s: k.shape[1], d, h: heads, dh: d / heads };
  };
  tf.registerKernel({
    kernelName: FUSED_ATTENTION_KERNEL,
    backendName: 'cpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { q, k, v } = inputs as Record<string, tf.TensorInfo>;
      const { heads, scale } = attrs as unknown as { heads: number; scale: number };
      const { b, l, s, d, h, dh } = attnDims(q, k, heads);
      const qv = vals(backend, q), kv = vals(backend, k), vv = vals(backend, v);
      const out = new Float32Array(b * l * d), probs = new Float32Array(b * h * l * s);
      for (let n = 0; n < b; n++) for (let hh = 0; hh < h; hh++) for (let i = 0; i < l; i++) {
        const row = probs.subarray(((n * h + hh) * l + i) * s, ((n * h + hh) * l + i + 1) * s);
        for (let j = 0; j < s; j++) {
          let dot = 0;
          for (let c = 0; c < dh; c++) dot += qv[(n * l + i) * d + hh * dh + c] * kv[(n * s + j) * d + hh * dh + c];
          row[j] = dot * scale;
        }
        const m = Math.max(...row);
        let z = 0;
        for (let j = 0; j < s; j++) z += (row[j] = Math.exp(row[j] - m));
        for (let j = 0; j < s; j++) row[j] /= z;
        for (let c = 0; c < dh; c++) {
          let acc = 0;
          for (let j = 0; j < s; j++) acc += row[j] * vv[(n * s + j) * d + hh * dh + c];
          out[(n * l + i) * d + hh * dh + c] = acc;
        }
      }
      const bk = backend as unknown as Backend;
      return [bk.makeTensorInfo(q.shape, 'float32', out), bk.makeTensorInfo([b, h, l, s], 'float32', probs)];
    },
  });
  tf.registerKernel({
    kernelName: 'FadAttentionGrad',
    backendName: 'cpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { dy, q, k, v, probs } = inputs as Record<string, tf.TensorInfo>;
      const { heads, scale } = attrs as unknown as { heads: number; scale: number };
      const { b, l, s, d, h, dh } = attnDims(q, k, heads);
      const g = vals(backend, dy), qv = vals(backend, q), kv = vals(backend, k), vv = vals(backend, v), p = vals(backend, probs);
      const dq = new Float32Array(qv.length), dk = new Float32Array(kv.length), dv = new Float32Array(vv.length);
      for (let n = 0; n < b; n++) for (let hh = 0; hh < h; hh++) for (let i = 0; i < l; i++) {
        const pr = p.subarray(((n * h + hh) * l + i) * s, ((n * h + hh) * l + i + 1) * s);
        const dp = new Float64Array(s);
        for (let j = 0; j < s; j++) {
          for (let c = 0; c < dh; c++) {
            const gi = g[(n * l + i) * d + hh * dh + c];
            dv[(n * s + j) * d + hh * dh + c] += pr[j] * gi;
            dp[j] += gi * vv[(n * s + j) * d + hh * dh + c];
          }
        }
        let dot = 0;
        for (let j = 0; j < s; j++) dot += dp[j] * pr[j];
        for (let j = 0; j < s; j++) {
          const ds = pr[j] * (dp[j] - dot) * scale;
          for (let c = 0; c < dh; c++) {
            dq[(n * l + i) * d + hh * dh + c] += ds * kv[(n * s + j) * d + hh * dh + c];
            dk[(n * s + j) * d + hh * dh + c] += ds * qv[(n * l + i) * d + hh * dh + c];
          }
        }
      }
      const bk = backend as unknown as Backend;
      return [bk.makeTensorInfo(q.shape, 'float32', dq), bk.makeTensorInfo(k.shape, 'float32', dk), bk.makeTensorInfo(v.shape, 'float32', dv)];
    },
  });
  tf.registerKernel({
    kernelName: FUSED_ADAM_KERNEL,
    backendName: 'cpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, g, m, v } = inputs as Record<string, tf.TensorInfo>;
      const a = attrs as unknown as { beta1: number; beta2: number; stepSize: number; epsHat: number; decay: number };
      const xv = vals(backend, x), gv = vals(backend, g), mv = vals(backend, m), vv = vals(backend, v);
      const xo = new Float32Array(xv.length), mo = new Float32Array(xv.length), vo = new Float32Array(xv.length);
      for (let i = 0; i < xv.length; i++) {
        mo[i] = a.beta1 * mv[i] + (1 - a.beta1) * gv[i];
        vo[i] = a.beta2 * vv[i] + (1 - a.beta2) * gv[i] * gv[i];
        xo[i] = xv[i] - (a.stepSize * mo[i]) / (Math.sqrt(vo[i]) + a.epsHat) - a.decay * xv[i];
      }
      const bk = backend as unknown as Backend;
      return [bk.makeTensorInfo(x.shape, 'float32', xo), bk.makeTensorInfo(x.shape, 'float32', mo), bk.makeTensorInfo(x.shape, 'float32', vo)];
    },
  });
  tf.registerGradient({
    kernelName: FUSED_ATTENTION_KERNEL,
    inputsToSave: ['q', 'k', 'v'],
    outputsToSave: [false, true],
    gradFunc: (dy, saved, attrs) => {
      const [q, k, v, probs] = saved;
      const [dq, dk, dv] = tf.engine().runKernel('FadAttentionGrad', { dy: (dy as tf.Tensor[])[0], q, k, v, probs }, attrs) as tf.Tensor[];
      return { q: () => dq, k: () => dk, v: () => dv };
    },
  });
  tf.registerGradient({
    kernelName: FUSED_GROUP_NORM_KERNEL,
    inputsToSave: ['x', 'gamma', 'beta'],
    outputsToSave: [false, true, true],
    gradFunc: (dy, saved, attrs) => {
      const [x, gamma, beta, mean, rstd] = saved;
      const [dx, dg, db] = tf.engine().runKernel('FadGroupNormGrad', { dy: (dy as tf.Tensor[])[0], x, gamma, beta, mean, rstd }, attrs) as tf.Tensor[];
      return { x: () => dx, gamma: () => dg, beta: () => db };
    },
  });
  // BatchNorm = the reference GroupNorm on x viewed as [1, rows, C] with one group per channel,
  // plus the running averages (PyTorch's: unbiased variance).
  const asRows = (t: tf.TensorInfo): tf.TensorInfo => {
    const c = t.shape[t.shape.length - 1];
    return { ...t, shape: [1, t.shape.reduce((a, b) => a * b, 1) / c, c] };
  };
  const gnKernel = (name: string) => tf.getKernel(name, 'cpu')!.kernelFunc;
  tf.registerKernel({
    kernelName: FUSED_BATCH_NORM_KERNEL,
    backendName: 'cpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, gamma, beta, runningMean, runningVar } = inputs as Record<string, tf.TensorInfo>;
      const { epsilon, momentum: m, relu } = attrs as unknown as { epsilon: number; momentum: number; relu?: boolean };
      const c = x.shape[x.shape.length - 1];
      const n = x.shape.reduce((a, b) => a * b, 1) / c;
      const gnAttrs = { groups: c, epsilon, silu: false, relu } as unknown as tf.NamedAttrMap;
      const [y, mean, rstd] = gnKernel(FUSED_GROUP_NORM_KERNEL)({ inputs: { x: asRows(x), gamma, beta }, backend, attrs: gnAttrs }) as tf.TensorInfo[];
      const mv = vals(backend, mean), rs = vals(backend, rstd), rm = vals(backend, runningMean), rv = vals(backend, runningVar);
      const rm2 = rm.map((v, i) => (1 - m) * v + m * mv[i]);
      const rv2 = rv.map((v, i) => (1 - m) * v + ((m * n) / (n - 1)) * (1 / (rs[i] * rs[i]) - epsilon));
      const b = backend as unknown as Backend;
      return [
        { ...y, shape: x.shape },
        { ...mean, shape: [c] },
        { ...rstd, shape: [c] },
        b.makeTensorInfo([c], 'float32', rm2),
        b.makeTensorInfo([c], 'float32', rv2),
      ];
    },
  });
  tf.registerKernel({
    kernelName: 'FadBatchNormGrad',
    backendName: 'cpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { dy, x, gamma, beta, mean, rstd } = inputs as Record<string, tf.TensorInfo>;
      const c = x.shape[x.shape.length - 1];
      const { relu } = attrs as unknown as { relu?: boolean };
      const gnAttrs = { groups: c, epsilon: 0, silu: false, relu } as unknown as tf.NamedAttrMap;
      const [dx, dg, db] = gnKernel('FadGroupNormGrad')({ inputs: { dy: asRows(dy), x: asRows(x), gamma, beta, mean, rstd }, backend, attrs: gnAttrs }) as tf.TensorInfo[];
      return [{ ...dx, shape: x.shape }, dg, db];
    },
  });
  tf.registerGradient({
    kernelName: FUSED_BATCH_NORM_KERNEL,
    inputsToSave: ['x', 'gamma', 'beta'],
    outputsToSave: [false, true, true, false, false],
    gradFunc: (dy, saved, attrs) => {
      const [x, gamma, beta, mean, rstd] = saved;
      const [dx, dg, db] = tf.engine().runKernel('FadBatchNormGrad', { dy: (dy as tf.Tensor[])[0], x, gamma, beta, mean, rstd }, attrs) as tf.Tensor[];
      return { x: () => dx, gamma: () => dg, beta: () => db, runningMean: () => tf.zerosLike(mean), runningVar: () => tf.zerosLike(rstd) };
    },
  });
  tf.registerGradient({
    kernelName: FUSED_SILU_KERNEL,
    inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({ x: () => tf.mul(dy as tf.Tensor, tf.mul(tf.sigmoid(x), tf.add(1, tf.mul(x, tf.sub(1, tf.sigmoid(x)))))) }),
  });
}

/** Value and gradients (wrt x and the layer's parameters) of sum(f(x) * w) for a fixed random w. */
function valueAndGrads(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, params: tf.Variable[]): Float32Array[] {
  return tf.tidy(() => {
    const w = tf.randomNormal(f(x).shape, 0, 1, 'float32', 7);
    const loss = (xx: tf.Tensor) => tf.sum(tf.mul(f(xx), w));
    const y = f(x);
    const gx = tf.grad(loss)(x);
    const pg = params.length > 0 ? tf.variableGrads(() => loss(x) as tf.Scalar, params).grads : {};
    return [y, gx, ...params.map((p) => pg[p.name])].map((t) => t.dataSync() as Float32Array);
  });
}

describe('fused GroupNorm / LayerNorm / SiLU kernels', () => {
  beforeAll(async () => {
    await useCpuBackend();
    registerReferenceKernels();
  });
  afterAll(() => setFusedKernelsEnabled(true));

  const cases: Array<{ shape: [number, number, number, number]; groups: number }> = [
    { shape: [2, 5, 3, 8], groups: 4 },
    { shape: [1, 4, 4, 6], groups: 3 },
    { shape: [3, 1, 7, 4], groups: 1 },
    { shape: [2, 3, 3, 5], groups: 5 },
  ];

  it('are picked up when the backend has them, and can be switched off', () => {
    expect(hasFusedKernel(FUSED_GROUP_NORM_KERNEL)).toBe(true);
    setFusedKernelsEnabled(false);
    expect(hasFusedKernel(FUSED_GROUP_NORM_KERNEL)).toBe(false);
    setFusedKernelsEnabled(true);
  });

  for (const { shape, groups } of cases) {
    for (const withSilu of [false, true]) {
      it(`GroupNorm${withSilu ? '+SiLU' : ''} ${JSON.stringify(shape)} groups=${groups}: fused = composed (value and gradients)`, () => {
        const gn = new GroupNorm({ numGroups: groups, numChannels: shape[3] });
        gn.weight.assign(tf.randomUniform([shape[3]], 0.5, 1.5, 'float32', 3));
        gn.bias.assign(tf.randomUniform([shape[3]], -0.5, 0.5, 'float32', 4));
        const x = tf.randomNormal(shape, 0.3, 2, 'float32', 5);
        const f = (xx: tf.Tensor) => (withSilu ? gn.forwardSilu(xx as tf.Tensor4D) : gn.forward(xx as tf.Tensor4D));
        const params = [gn.weight, gn.bias];
        const fused = valueAndGrads(f, x, params);
        setFusedKernelsEnabled(false);
        const composed = valueAndGrads(f, x, params);
        setFusedKernelsEnabled(true);
        fused.forEach((v, i) => expect(relMaxError(v, composed[i]), `output ${i}`).toBeLessThan(1e-4));
        x.dispose();
        gn.dispose();
      });
    }
  }

  it('LayerNorm: fused = composed (value and gradients)', () => {
    const ln = new LayerNorm({ dim: 6 });
    ln.weight.assign(tf.randomUniform([6], 0.5, 1.5, 'float32', 3));
    const x = tf.randomNormal([2, 5, 6], 1, 3, 'float32', 6);
    const fused = valueAndGrads((xx) => ln.forward(xx), x, [ln.weight, ln.bias]);
    setFusedKernelsEnabled(false);
    const composed = valueAndGrads((xx) => ln.forward(xx), x, [ln.weight, ln.bias]);
    setFusedKernelsEnabled(true);
    fused.forEach((v, i) => expect(relMaxError(v, composed[i]), `output ${i}`).toBeLessThan(1e-4));
    x.dispose();
    ln.dispose();
  });

  for (const [l, s] of [[5, 5], [4, 1], [3, 2]]) {
    it(`Attention L=${l} S=${s}: fused = composed (value and gradients of all projections)`, () => {
      const attn = new Attention({ dim: 8, contextDim: 6, heads: 2, generator: new Generator(3) });
      const x = tf.randomNormal([2, l, 8], 0, 1, 'float32', 9) as tf.Tensor3D;
      const ctx = tf.randomNormal([2, s, 6], 0, 1, 'float32', 10) as tf.Tensor3D;
      const params = attn.trainableVariables();
      const f = (xx: tf.Tensor) => attn.forward(xx as tf.Tensor3D, ctx);
      const fused = valueAndGrads(f, x, params);
      setFusedKernelsEnabled(false);
      const composed = valueAndGrads(f, x, params);
      setFusedKernelsEnabled(true);
      fused.forEach((v, i) => expect(relMaxError(v, composed[i]), `output ${i}`).toBeLessThan(1e-4));
      tf.dispose([x, ctx]);
      attn.dispose();
    });
  }

  for (const relu of [false, true]) {
    it(`fusedBatchNorm${relu ? ' + ReLU' : ''}: output, running averages and gradients as composed ops`, () => {
      const x = tf.randomNormal([3, 4, 5, 6], 0.5, 2, 'float32', 11) as tf.Tensor4D;
      const gamma = tf.randomUniform([6], 0.5, 1.5, 'float32', 12) as tf.Tensor1D;
      const beta = tf.randomUniform([6], -0.5, 0.5, 'float32', 13) as tf.Tensor1D;
      const rm = tf.randomNormal([6], 0, 1, 'float32', 15) as tf.Tensor1D;
      const rv = tf.randomUniform([6], 0.5, 2, 'float32', 16) as tf.Tensor1D;
      const w = tf.randomNormal([3, 4, 5, 6], 0, 1, 'float32', 14);
      const n = 3 * 4 * 5;
      const m = 0.1;
      // PyTorch's BatchNorm2d: normalise with the biased variance, keep the unbiased one.
      const composed = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
        const { mean, variance } = tf.moments(xx, [0, 1, 2]);
        const y = tf.add(tf.mul(tf.mul(tf.sub(xx, mean), tf.rsqrt(tf.add(variance, 1e-5))), gg), bb);
        return {
          y: relu ? tf.relu(y) : y,
          runningMean: tf.add(tf.mul(rm, 1 - m), tf.mul(mean, m)),
          runningVar: tf.add(tf.mul(rv, 1 - m), tf.mul(variance, (m * n) / (n - 1))),
        };
      };
      const fused = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
        fusedBatchNorm({ x: xx, gamma: gg as tf.Tensor1D, beta: bb as tf.Tensor1D, runningMean: rm, runningVar: rv, epsilon: 1e-5, momentum: m, relu })!;
      const run = (f: typeof composed) =>
        tf.tidy(() => {
          const r = f(x, gamma, beta);
          const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, b, c).y, w)))([x, gamma, beta]);
          return [r.y, r.runningMean, r.runningVar, ...grads].map((t) => t.dataSync() as Float32Array);
        });
      const before = tf.memory().numTensors;
      const got = run(fused);
      expect(tf.memory().numTensors, 'leaked tensors').toBe(before);
      const ref = run(composed);
      got.forEach((v, i) => expect(relMaxError(v, ref[i]), `output ${i}`).toBeLessThan(1e-4));
      tf.dispose([x, gamma, beta, rm, rv, w]);
    });
  }

  it('fusedBatchNorm and fusedAdamStep return null without the kernels', () => {
    setFusedKernelsEnabled(false);
    const c = tf.ones([3]) as tf.Tensor1D;
    expect(fusedBatchNorm({ x: tf.ones([2, 3]), gamma: c, beta: c, runningMean: c, runningVar: c, epsilon: 1e-5, momentum: 0.1 })).toBeNull();
    expect(fusedAdamStep(tf.ones([2]), tf.ones([2]), tf.ones([2]), tf.ones([2]), { beta1: 0.9, beta2: 0.999, stepSize: 1e-3, epsHat: 1e-8, decay: 0 })).toBeNull();
    setFusedKernelsEnabled(true);
  });

  it('fusedAdamStep = the Adam update composed from tfjs ops', () => {
    const x = tf.randomNormal([50], 0, 1, 'float32', 1);
    const g = tf.randomNormal([50], 0, 0.1, 'float32', 2);
    const m = tf.randomNormal([50], 0, 0.01, 'float32', 3);
    const v = tf.abs(tf.randomNormal([50], 0, 1e-3, 'float32', 4));
    const a = { beta1: 0.9, beta2: 0.999, stepSize: 2e-3, epsHat: 1e-8, decay: 1e-5 };
    const got = fusedAdamStep(x, g, m, v, a)!.map((t) => t.dataSync() as Float32Array);
    const ref = tf.tidy(() => {
      const m2 = tf.add(tf.mul(m, a.beta1), tf.mul(g, 1 - a.beta1));
      const v2 = tf.add(tf.mul(v, a.beta2), tf.mul(tf.square(g), 1 - a.beta2));
      const x2 = tf.sub(x, tf.add(tf.div(tf.mul(m2, a.stepSize), tf.add(tf.sqrt(v2), a.epsHat)), tf.mul(x, a.decay)));
      return [x2, m2, v2].map((t) => t.dataSync() as Float32Array);
    });
    got.forEach((vv, i) => expect(relMaxError(vv, ref[i]), `output ${i}`).toBeLessThan(1e-6));
    tf.dispose([x, g, m, v]);
  });

  it('silu: fused = composed (value and gradient)', () => {
    const x = tf.randomNormal([3, 7], 0, 4, 'float32', 8);
    const fused = valueAndGrads((xx) => silu(xx), x, []);
    setFusedKernelsEnabled(false);
    const composed = valueAndGrads((xx) => silu(xx), x, []);
    setFusedKernelsEnabled(true);
    fused.forEach((v, i) => expect(relMaxError(v, composed[i]), `output ${i}`).toBeLessThan(1e-4));
    x.dispose();
  });

  it('leak no tensors', () => {
    const gn = new GroupNorm({ numGroups: 2, numChannels: 4 });
    const x = tf.randomNormal([2, 3, 3, 4]) as tf.Tensor4D;
    expect(leakedTensors(() => gn.forwardSilu(x).dispose())).toBe(0);
    expect(leakedTensors(() => tf.grad((xx: tf.Tensor) => tf.sum(gn.forwardSilu(xx as tf.Tensor4D)))(x).dispose())).toBe(0);
    x.dispose();
    gn.dispose();
  });
});
