import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { DDPMScheduler } from '../schedulers';
import { leakedTensors, relMaxError, useCpuBackend } from '../testing/setup-cpu';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { type TrainingObjective, DiffusionTrainer, minSnrWeight } from './trainer';

beforeAll(useCpuBackend);

/** A small, attention-free U-Net at 8x8: cheap enough to train for hundreds of steps on cpu. */
const small = { ...UNET_PRESETS.tiny, sampleSize: 8, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };
const scheduler = () => new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2' });

/** Eight smooth 8x8 patterns in [-0.8, 0.8]. */
function patterns(s = 8): tf.Tensor4D {
  const d = new Float32Array(8 * s * s);
  for (let n = 0; n < 8; n++)
    for (let y = 0; y < s; y++)
      for (let x = 0; x < s; x++)
        d[(n * s + y) * s + x] = 0.8 * Math.sin((((n % 4) + 1) * x * Math.PI) / s + n) * Math.cos(((Math.floor(n / 4) + 1) * y * Math.PI) / s);
  return tf.tensor4d(d, [8, s, s, 1]);
}
const labels = [0, 1, 2, 3, 0, 1, 2, 3];

const disposables: Array<{ dispose(): void }> = [];
afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));

describe('DiffusionTrainer', () => {
  it('overfits 8 fixed images: the loss on a fixed noise draw drops more than 10x in 300 steps', () => {
    const model = new UNet2DConditional(small, { seed: 1 });
    const sched = scheduler();
    const trainer = new DiffusionTrainer({
      model, scheduler: sched, seed: 1,
      optimizer: { learningRate: 1e-2 },
      lrSchedule: { type: 'cosine', totalSteps: 300, warmupSteps: 10, minLearningRate: 1e-2 / 30 },
    });
    disposables.push(model, trainer);
    const x0 = patterns();
    const g = new Generator(7);
    // A fixed evaluation draw: 4 noise samples and timesteps per image.
    const x0e = tf.concat([x0, x0, x0, x0]) as tf.Tensor4D;
    const le = [...labels, ...labels, ...labels, ...labels];
    const noise = g.normal([32, 8, 8, 1]);
    const t = g.integers(32, 0, 1000);
    const evalLoss = () =>
      tf.tidy(() => {
        const xt = sched.addNoise(x0e, noise, t) as tf.Tensor4D;
        return tf.mean(tf.squaredDifference(model.forward({ sample: xt, timesteps: t, classLabels: le }).sample, noise)).dataSync()[0];
      });
    const before = evalLoss();
    let last = 0;
    for (let i = 0; i < 300; i++) last = trainer.step({ x0, classLabels: labels }).loss;
    const after = evalLoss();
    expect(before / after).toBeGreaterThan(10);
    expect(last).toBeLessThan(before / 4);
    tf.dispose([x0, x0e, noise]);
  }, 300_000);

  it('leaks no tensors in a train step (with EMA, clipping, micro-batches and an objective)', () => {
    const model = new UNet2DConditional(small, { seed: 2 });
    const w = tf.variable(tf.scalar(0.5));
    const objective: TrainingObjective = {
      name: 'probe',
      activations: ['down_out'],
      trainableVariables: () => [w],
      loss: ({ activations }) => {
        const v = tf.mean(tf.square(tf.sub(tf.mean(activations.down_out), w))) as tf.Scalar;
        return { total: v, terms: { v } };
      },
    };
    const trainer = new DiffusionTrainer({ model, scheduler: scheduler(), emaDecay: 0.99, gradClipNorm: 1, microBatchSize: 3, objectives: [objective] });
    disposables.push(model, trainer, w);
    const x0 = patterns();
    trainer.step({ x0, classLabels: labels });
    expect(leakedTensors(() => trainer.step({ x0, classLabels: labels }))).toBe(0);
    x0.dispose();
  });

  it('gives the same update with micro-batches as with the whole batch', () => {
    const run = (micro: number | undefined) => {
      const model = new UNet2DConditional(small, { seed: 3 });
      const trainer = new DiffusionTrainer({ model, scheduler: scheduler(), seed: 5, microBatchSize: micro });
      const x0 = patterns();
      const r = trainer.step({ x0, classLabels: labels });
      const weights = model.namedParameters().map(([, v]) => Array.from(v.dataSync()));
      x0.dispose();
      trainer.dispose();
      model.dispose();
      return { r, weights };
    };
    const whole = run(undefined);
    const split = run(3);
    expect(split.r.loss).toBeCloseTo(whole.r.loss, 5);
    expect(split.r.gradNorm).toBeCloseTo(whole.r.gradNorm, 3);
    const flat = (w: number[][]) => w.flat();
    // Adam's first step moves each weight by ~lr*sign(g); compare relative to that scale.
    expect(relMaxError(flat(split.weights), flat(whole.weights))).toBeLessThan(1e-4);
  });

  it('resumes from getState/setState to exactly the uninterrupted result', () => {
    const make = () => {
      const model = new UNet2DConditional(small, { seed: 4 });
      const trainer = new DiffusionTrainer({ model, scheduler: scheduler(), seed: 9, emaDecay: 0.9, condDropProb: 0.3 });
      return { model, trainer };
    };
    const x0 = patterns();
    const a = make();
    for (let i = 0; i < 3; i++) a.trainer.step({ x0, classLabels: labels });
    const losses = [a.trainer.step({ x0, classLabels: labels }).loss, a.trainer.step({ x0, classLabels: labels }).loss];

    const b = make();
    for (let i = 0; i < 3; i++) b.trainer.step({ x0, classLabels: labels });
    const state = JSON.parse(JSON.stringify(b.trainer.getState(), (_, v) => (v instanceof Float32Array ? Array.from(v) : v)));
    const weights = b.model.stateDict();
    const c = make(); // a fresh process, as after a crash
    c.model.loadStateDict(weights);
    c.trainer.setState({ ...state, optimizer: { step: state.optimizer.step, m: state.optimizer.m.map((x: number[]) => Float32Array.from(x)), v: state.optimizer.v.map((x: number[]) => Float32Array.from(x)) }, ema: state.ema.map((x: number[]) => Float32Array.from(x)) });
    const resumed = [c.trainer.step({ x0, classLabels: labels }).loss, c.trainer.step({ x0, classLabels: labels }).loss];
    expect(resumed).toEqual(losses);
    expect(c.trainer.stepCount).toBe(5);
    [a, b, c].forEach((m) => { m.trainer.dispose(); m.model.dispose(); });
    x0.dispose();
  });

  it('emaWarmup: the EMA equals the weights after step 1 and follows min(d, (1+s)/(10+s)) after, also across a resume', () => {
    const x0 = patterns();
    const make = (emaWarmup: boolean) => {
      const model = new UNet2DConditional(small, { seed: 4 });
      const trainer = new DiffusionTrainer({ model, scheduler: scheduler(), seed: 9, emaDecay: 0.999, emaWarmup, condDropProb: 0 });
      return { model, trainer };
    };
    const ema = (t: DiffusionTrainer) => t.getState().ema!.map((a) => Array.from(a)).flat();
    const weights = (m: UNet2DConditional) => m.trainableVariables().map((v) => Array.from(v.dataSync())).flat();
    const a = make(true);
    const w0 = weights(a.model);
    a.trainer.step({ x0, classLabels: labels });
    const w1 = weights(a.model);
    expect(relMaxError(ema(a.trainer), w1)).toBeLessThan(1e-6); // decay 0 at the first update
    const off = make(false);
    off.trainer.step({ x0, classLabels: labels });
    // Without warm-up the shadow is 0.999 w0 + 0.001 w1.
    expect(relMaxError(ema(off.trainer), w0.map((v, i) => 0.999 * v + 0.001 * w1[i]))).toBeLessThan(1e-5);
    a.trainer.step({ x0, classLabels: labels });
    // Step 2, resumed in a fresh trainer from step 1's state: the same decay 2/11 applies.
    const b = make(true);
    b.trainer.step({ x0, classLabels: labels });
    const state = b.trainer.getState();
    const c = make(true);
    c.model.loadStateDict(b.model.stateDict());
    c.trainer.setState(state);
    const e1 = ema(c.trainer);
    c.trainer.step({ x0, classLabels: labels });
    const w2 = weights(c.model);
    expect(relMaxError(ema(c.trainer), e1.map((v, i) => (2 / 11) * v + (9 / 11) * w2[i]))).toBeLessThan(1e-5);
    expect(relMaxError(ema(c.trainer), ema(a.trainer))).toBeLessThan(1e-6);
    [a, off, b, c].forEach((m) => { m.trainer.dispose(); m.model.dispose(); });
    x0.dispose();
  });

  it('passes noisy input, activations and dropped labels to objectives, and trains their variables', () => {
    const model = new UNet2DConditional(small, { seed: 6 });
    const w = tf.variable(tf.scalar(3));
    const seen: { labels?: number[]; keys: string[]; noisyShape: number[] }[] = [];
    const objective: TrainingObjective = {
      name: 'pull',
      activations: ['down_out', 'mid'],
      trainableVariables: () => [w],
      loss: (ctx) => {
        seen.push({ labels: ctx.classLabels, keys: Object.keys(ctx.activations), noisyShape: ctx.noisy.shape });
        const v = tf.square(w) as tf.Scalar;
        return { total: tf.mul(v, 2) as tf.Scalar, terms: { wsq: v } };
      },
    };
    const trainer = new DiffusionTrainer({ model, scheduler: scheduler(), objectives: [objective], condDropProb: 0.5, seed: 1, optimizer: { learningRate: 0.1 } });
    disposables.push(model, trainer, w);
    const x0 = patterns();
    const r = trainer.step({ x0, classLabels: labels });
    expect(r.terms['pull.wsq']).toBeCloseTo(9, 5);
    expect(r.loss).toBeCloseTo(r.terms.diffusion + 18, 4);
    expect(w.dataSync()[0]).toBeCloseTo(2.9, 5); // Adam's first step: lr * sign(grad)
    expect(seen[0].keys.sort()).toEqual(['down_out', 'mid']);
    expect(seen[0].noisyShape).toEqual([8, 8, 8, 1]);
    expect(seen[0].labels).toContain(small.numClasses); // some labels dropped to the null class
    expect(seen[0].labels?.some((l) => l < small.numClasses)).toBe(true);
    x0.dispose();
  });

  it('lossWeights 1/B give the plain batch mean and the same update; per-sample losses are returned', () => {
    const results = [undefined, 3].map((microBatchSize) => {
      const run = (weighted: boolean) => {
        const model = new UNet2DConditional(small, { seed: 5 });
        const trainer = new DiffusionTrainer({ model, scheduler: scheduler(), seed: 2, microBatchSize });
        disposables.push(model, trainer);
        const x0 = patterns();
        const r = trainer.step({ x0, classLabels: labels, ...(weighted ? { lossWeights: new Array(8).fill(1 / 8) } : {}) });
        x0.dispose();
        return { r, w: Array.from(model.trainableVariables()[0].dataSync()) };
      };
      return [run(false), run(true)];
    });
    for (const [plain, weighted] of results) {
      expect(weighted.r.loss).toBeCloseTo(plain.r.loss, 6);
      expect(weighted.r.terms.diffusion).toBeCloseTo(plain.r.terms.diffusion, 6);
      expect(plain.r.sampleLosses).toBeUndefined();
      const per = weighted.r.sampleLosses as number[];
      expect(per).toHaveLength(8);
      expect(per.reduce((s, v) => s + v, 0) / 8).toBeCloseTo(plain.r.loss, 6);
      weighted.w.forEach((v, i) => expect(v).toBeCloseTo(plain.w[i], 6));
    }
  });

  it('minSnrWeight: min(SNR, gamma) in x_0 space for each prediction type (hand values)', () => {
    // alpha-bar 0.5: SNR 1; alpha-bar 0.9: SNR 9; alpha-bar 0: SNR 0 (zero terminal SNR).
    const w = (alphaBar: number, predictionType: 'epsilon' | 'v_prediction' | 'sample') => minSnrWeight({ alphaBar, gamma: 5, predictionType });
    expect(w(0.5, 'epsilon')).toBeCloseTo(1, 12);
    expect(w(0.5, 'v_prediction')).toBeCloseTo(0.5, 12);
    expect(w(0.5, 'sample')).toBeCloseTo(1, 12);
    expect(w(0.9, 'epsilon')).toBeCloseTo(5 / 9, 12);
    expect(w(0.9, 'v_prediction')).toBeCloseTo(0.5, 12);
    expect(w(0.9, 'sample')).toBeCloseTo(5, 12);
    expect(w(0, 'epsilon')).toBe(1);
    expect(w(0, 'v_prediction')).toBe(0);
    expect(w(0, 'sample')).toBe(0);
    expect(() => minSnrWeight({ alphaBar: 0.5, gamma: 0, predictionType: 'epsilon' })).toThrow(/gamma must be a finite number > 0/);
    expect(() => minSnrWeight({ alphaBar: 1.5, gamma: 5, predictionType: 'epsilon' })).toThrow(/alphaBar must be in \[0, 1\]/);
  });

  it('snrGamma weighs each sample by its min-SNR weight: the same loss and update as explicit lossWeights', () => {
    for (const predictionType of ['epsilon', 'v_prediction'] as const) {
      // The trainer's first draw is the batch's timesteps: replay it to get the weights by hand.
      const ts = new Generator(2).integers(8, 0, 1000);
      const sched = new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2', predictionType });
      const hand = ts.map((t) => {
        const ab = sched.alphasCumprod[t];
        const snr = ab / (1 - ab);
        return (Math.min(snr, 5) / (predictionType === 'epsilon' ? snr : snr + 1)) / 8;
      });
      const run = (p: { snrGamma?: number; lossWeights?: number[] }) => {
        const model = new UNet2DConditional(small, { seed: 5 });
        const trainer = new DiffusionTrainer({ model, scheduler: sched, seed: 2, microBatchSize: 3, snrGamma: p.snrGamma });
        disposables.push(model, trainer);
        const x0 = patterns();
        const r = trainer.step({ x0, classLabels: labels, lossWeights: p.lossWeights });
        x0.dispose();
        return { r, w: Array.from(model.trainableVariables()[0].dataSync()) };
      };
      const minSnr = run({ snrGamma: 5 });
      const explicit = run({ lossWeights: hand });
      const plain = run({});
      expect(minSnr.r.loss).toBeCloseTo(explicit.r.loss, 6);
      minSnr.w.forEach((v, i) => expect(v).toBeCloseTo(explicit.w[i], 6));
      expect(Math.abs(minSnr.r.loss - plain.r.loss)).toBeGreaterThan(1e-4);
      expect(minSnr.r.sampleLosses).toBeUndefined();
    }
    const model = new UNet2DConditional(small);
    disposables.push(model);
    expect(() => new DiffusionTrainer({ model, scheduler: scheduler(), snrGamma: -1 })).toThrow(/snrGamma must be a finite number > 0 or null, got -1/);
  });

  it('noiseOffset adds noiseOffset * n per image and channel after the other draws; 0 draws nothing extra', () => {
    const seen: tf.Tensor4D[] = [];
    const recorder: TrainingObjective = {
      name: 'rec', activations: [], trainableVariables: () => [],
      loss: (ctx) => { seen.push(tf.keep(ctx.noise.clone())); return { total: tf.scalar(0), terms: {} }; },
    };
    const run = (noiseOffset?: number) => {
      const model = new UNet2DConditional(small, { seed: 5 });
      const trainer = new DiffusionTrainer({ model, scheduler: scheduler(), seed: 3, objectives: [recorder], noiseOffset });
      disposables.push(model, trainer);
      const x0 = patterns();
      trainer.step({ x0, classLabels: labels });
      x0.dispose();
      return seen[seen.length - 1];
    };
    const none = run();
    const zero = run(0);
    const half = run(0.5);
    expect(Array.from(zero.dataSync())).toEqual(Array.from(none.dataSync()));
    // Replay the generator: timesteps, noise, then the offsets [B,1,1,C].
    const g = new Generator(3);
    g.integers(8, 0, 1000);
    g.normal([8, 8, 8, 1]).dispose();
    const off = g.normal([8, 1, 1, 1]);
    const diff = tf.sub(half, none);
    const d = diff.dataSync();
    const o = off.dataSync();
    for (let n = 0; n < 8; n++) for (let k = 0; k < 64; k++) expect(d[n * 64 + k]).toBeCloseTo(0.5 * o[n], 5);
    tf.dispose([diff, off, ...seen]);
    const model = new UNet2DConditional(small);
    disposables.push(model);
    expect(() => new DiffusionTrainer({ model, scheduler: scheduler(), noiseOffset: -0.1 })).toThrow(/noiseOffset must be a finite number >= 0, got -0.1/);
  });

  it('validates its inputs', () => {
    const model = new UNet2DConditional(small);
    disposables.push(model);
    expect(() => new DiffusionTrainer({ model, scheduler: scheduler(), condDropProb: 1 })).toThrow(/condDropProb must be in \[0, 1\)/);
    expect(() => new DiffusionTrainer({ model, scheduler: scheduler(), gradClipNorm: -1 })).toThrow(/gradClipNorm must be > 0/);
    const noNull = new UNet2DConditional({ ...small, nullClass: false });
    disposables.push(noNull);
    expect(() => new DiffusionTrainer({ model: noNull, scheduler: scheduler(), condDropProb: 0.1 })).toThrow(/needs a model with a null class/);
    const t = new DiffusionTrainer({ model, scheduler: scheduler() });
    disposables.push(t);
    const x = tf.zeros([2, 8, 8, 3]) as tf.Tensor4D;
    expect(() => t.step({ x0: x })).toThrow(/x0 must be \[B,H,W,1\], got \[2,8,8,3\]/);
    const y = tf.zeros([2, 8, 8, 1]) as tf.Tensor4D;
    expect(() => t.step({ x0: y, classLabels: [1] })).toThrow(/1 class labels for a batch of 2/);
    expect(() => t.step({ x0: y, classLabels: [1, 2], lossWeights: [1] })).toThrow(/1 lossWeights for a batch of 2/);
    expect(() => t.step({ x0: y, classLabels: [1, 2], lossWeights: [1, -0.5] })).toThrow(/lossWeights\[1\] must be a finite number >= 0, got -0.5/);
    tf.dispose([x, y]);
  });
});
