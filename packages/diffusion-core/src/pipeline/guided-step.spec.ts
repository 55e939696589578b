import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { DDIMScheduler, DDPMScheduler } from '../schedulers';
import { leakedTensors, useCpuBackend } from '../testing/setup-cpu';
import { energyGuidance, type GuidanceParams } from './guidance';
import { guidedStep } from './guided-step';

beforeAll(useCpuBackend);

const SHAPE = [2, 2, 2, 2];
const N = 16;
const D = 8;
const K = 3;
const W = Array.from({ length: D * K }, (_, i) => Math.cos(0.7 * i + 0.3));
const xt = Array.from({ length: N }, (_, i) => Math.sin(2.1 * i) * 1.2);
const epsOut = Array.from({ length: N }, (_, i) => Math.cos(1.7 * i + 0.5));

function logLikelihood(p: GuidanceParams): tf.Tensor1D {
  const logits = tf.matMul(tf.reshape(p.x, [p.x.shape[0], D]), tf.tensor2d(W, [D, K]));
  const y = tf.oneHot(tf.tensor1d(p.classLabels as number[], 'int32'), K);
  return tf.sum(tf.mul(tf.logSoftmax(logits), y), 1) as tf.Tensor1D;
}

/** Hand-computed s * W (e_y - p) for both images, float64. */
function handGuidance(x: number[], labels: number[], s: number): number[] {
  return labels.flatMap((y, b) => {
    const xi = x.slice(b * D, (b + 1) * D);
    const z = Array.from({ length: K }, (_, k) => xi.reduce((acc, v, d) => acc + v * W[d * K + k], 0));
    const e = z.map((v) => Math.exp(v));
    const sum = e.reduce((a, c) => a + c, 0);
    return xi.map((_, d) => s * W.slice(d * K, d * K + K).reduce((acc, w, k) => acc + w * ((k === y ? 1 : 0) - e[k] / sum), 0));
  });
}

function expectClose(got: ArrayLike<number>, want: number[], tol: number): void {
  expect(got.length).toBe(want.length);
  const scale = Math.max(1, ...want.map(Math.abs));
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]) / scale, `element ${i}: ${got[i]} vs ${want[i]}`).toBeLessThan(tol);
}

describe('guidedStep', () => {
  const labels = [1, 2];
  const s = 3;

  it('DDIM (eta 0, no clipping): the guided step moves x_prev by exactly sqrt(1-a) (sqrt(a_prev) sqrt(1-a)/sqrt(a) - sqrt(1-a_prev)) g', () => {
    const sched = new DDIMScheduler({ clipSample: false });
    sched.setTimesteps(10);
    const t = 500;
    const x = tf.tensor4d(xt, SHAPE as never);
    const eps = tf.tensor4d(epsOut, SHAPE as never);
    const g = energyGuidance({ energy: logLikelihood, scale: s })({ x, timestep: t, alphaBar: sched.alphasCumprod[t], classLabels: labels })!;
    const plain = sched.step(eps, t, x);
    const guided = guidedStep({ scheduler: sched, modelOutput: eps, timestep: t, sample: x, guidance: g });
    const a = sched.alphasCumprod[t];
    const ap = sched.alphasCumprod[400];
    const factor = Math.sqrt(1 - a) * ((Math.sqrt(ap) * Math.sqrt(1 - a)) / Math.sqrt(a) - Math.sqrt(1 - ap));
    const gHand = handGuidance(xt, labels, s);
    const diff = Array.from(tf.sub(guided.prevSample, plain.prevSample).dataSync());
    expectClose(diff, gHand.map((v) => v * factor), 1e-5);
    // The returned x0 is the shifted one: x0 + (1-a)/sqrt(a) g.
    const dx0 = Array.from(tf.sub(guided.predOriginalSample, plain.predOriginalSample).dataSync());
    expectClose(dx0, gHand.map((v) => (v * (1 - a)) / Math.sqrt(a)), 1e-5);
    tf.dispose([x, eps, g, plain.prevSample, plain.predOriginalSample, guided.prevSample, guided.predOriginalSample]);
  });

  it('DDIM with clipping follows the five steps of the guided update (hand-computed in float64)', () => {
    const sched = new DDIMScheduler({ clipSample: true, clipSampleRange: 1 });
    sched.setTimesteps(10);
    const t = 900; // a is small: x0 = (x - sqrt(1-a) eps) / sqrt(a) leaves [-1, 1] and is clipped
    const x = tf.tensor4d(xt, SHAPE as never);
    const eps = tf.tensor4d(epsOut, SHAPE as never);
    const g = tf.tensor4d(handGuidance(xt, labels, s), SHAPE as never);
    const out = guidedStep({ scheduler: sched, modelOutput: eps, timestep: t, sample: x, guidance: g });
    const a = sched.alphasCumprod[t];
    const ap = sched.alphasCumprod[800];
    const gv = handGuidance(xt, labels, s);
    let clipped = 0;
    const want = xt.map((xi, i) => {
      const raw = (xi - Math.sqrt(1 - a) * epsOut[i]) / Math.sqrt(a);
      const x0 = Math.min(1, Math.max(-1, raw));
      if (x0 !== raw) clipped++;
      const epsP = (xi / Math.sqrt(a) - x0) / Math.sqrt(1 / a - 1);
      const epsHat = epsP - Math.sqrt(1 - a) * gv[i];
      const x0P = x0 + ((1 - a) / Math.sqrt(a)) * gv[i];
      return Math.sqrt(ap) * x0P + Math.sqrt(1 - ap) * epsHat;
    });
    expect(clipped).toBeGreaterThan(0);
    expectClose(out.prevSample.dataSync(), want, 1e-5);
    tf.dispose([x, eps, g, out.prevSample, out.predOriginalSample]);
  });

  it('g = 0 without clipping is bit-identical to the scheduler step (DDIM eta 0 and 0.5, DDPM), drawing the same noise', () => {
    const x = tf.tensor4d(xt, SHAPE as never);
    const eps = tf.tensor4d(epsOut, SHAPE as never);
    const zero = tf.zerosLike(x);
    const cases: Array<[DDIMScheduler | DDPMScheduler, number]> = [
      [new DDIMScheduler({ clipSample: false }), 0],
      [new DDIMScheduler({ clipSample: false }), 0.5],
      [new DDPMScheduler(), 0],
    ];
    for (const [sched, eta] of cases) {
      sched.setTimesteps(10);
      const t = sched.timesteps[3];
      const a = sched.step(eps, t, x, { eta, generator: new Generator(9) });
      const b = guidedStep({ scheduler: sched, modelOutput: eps, timestep: t, sample: x, guidance: zero, eta, generator: new Generator(9) });
      expect(Array.from(b.prevSample.dataSync()), `${sched.constructor.name} eta ${eta}`).toEqual(Array.from(a.prevSample.dataSync()));
      tf.dispose([a.prevSample, a.predOriginalSample, b.prevSample, b.predOriginalSample]);
    }
    tf.dispose([x, eps, zero]);
  });

  it('DDPM: the posterior mean moves by Sigma g (same noise)', () => {
    const sched = new DDPMScheduler({ clipSample: false });
    sched.setTimesteps(10);
    const t = 600;
    const x = tf.tensor4d(xt, SHAPE as never);
    const eps = tf.tensor4d(epsOut, SHAPE as never);
    const gv = handGuidance(xt, labels, s);
    const g = tf.tensor4d(gv, SHAPE as never);
    const a = sched.step(eps, t, x, { generator: new Generator(1) });
    const b = guidedStep({ scheduler: sched, modelOutput: eps, timestep: t, sample: x, guidance: g, generator: new Generator(1) });
    const variance = sched.posteriorCoefficients(t).variance;
    // By hand: beta-tilde with t' = 500.
    const ab = sched.alphasCumprod[t];
    const abp = sched.alphasCumprod[500];
    expect(variance).toBeCloseTo(((1 - abp) / (1 - ab)) * (1 - ab / abp), 10);
    expectClose(tf.sub(b.prevSample, a.prevSample).dataSync(), gv.map((v) => v * variance), 1e-5);
    tf.dispose([x, eps, g, a.prevSample, a.predOriginalSample, b.prevSample, b.predOriginalSample]);
  });

  it('leaks nothing and validates its arguments', () => {
    const sched = new DDIMScheduler();
    sched.setTimesteps(4);
    const x = tf.ones(SHAPE) as tf.Tensor4D;
    expect(leakedTensors(() => {
      const o = guidedStep({ scheduler: sched, modelOutput: x, timestep: 750, sample: x, guidance: x, eta: 0.3, generator: new Generator(1) });
      tf.dispose([o.prevSample, o.predOriginalSample]);
    })).toBe(0);
    expect(() => guidedStep({ scheduler: sched, modelOutput: x, timestep: 750, sample: x, guidance: tf.ones([1, 2, 2, 2]) })).toThrow(/guidedStep: guidance shape \[1,2,2,2\] must equal sample shape \[2,2,2,2\]/);
    expect(() => guidedStep({ scheduler: {} as never, modelOutput: x, timestep: 750, sample: x, guidance: x })).toThrow(/guidedStep: gradient guidance needs a scheduler that implements guidedStep \(DDIMScheduler and DDPMScheduler do\), got Object/);
    expect(() => guidedStep({ scheduler: sched, modelOutput: x, timestep: 751, sample: x, guidance: x })).toThrow(/timestep 751 is not in the schedule/);
    expect(() => guidedStep({ scheduler: sched, modelOutput: x, timestep: 750, sample: x, guidance: x, eta: 1 })).toThrow(/generator is required/);
    x.dispose();
  });
});
