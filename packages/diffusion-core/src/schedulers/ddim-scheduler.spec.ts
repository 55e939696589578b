import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { DDIM_SCHEDULER_DEFAULTS, DDIMScheduler } from './ddim-scheduler';
import { DDPMScheduler } from './ddpm-scheduler';
import type { PredictionType } from './scheduler';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function expectTensorClose(actual: tf.Tensor, expected: tf.Tensor | number[], tol = 1e-5): void {
  const e = Array.isArray(expected) ? expected : Array.from(expected.dataSync());
  if (!Array.isArray(expected)) expect(actual.shape).toEqual(expected.shape);
  const a = actual.dataSync();
  expect(a.length).toBe(e.length);
  for (let i = 0; i < e.length; i++) {
    if (!(Math.abs(a[i] - e[i]) <= tol)) expect.fail(`element ${i}: ${a[i]} vs ${e[i]} (tol ${tol})`);
  }
}

const SHAPE = [2, 4, 4, 3];
/** A clean sample in (-1, 1), so clipping never changes it. */
function cleanSample(seed = 1): tf.Tensor {
  return new Generator(seed).uniform(SHAPE, -0.9, 0.9);
}

/** What an oracle model that knows x_0 and eps outputs at t, for each prediction type. */
function oracle(s: DDIMScheduler, predictionType: PredictionType, x0: tf.Tensor, eps: tf.Tensor, t: number): tf.Tensor {
  if (predictionType === 'epsilon') return eps.clone();
  if (predictionType === 'sample') return x0.clone();
  return s.getVelocity(x0, eps, new Array(x0.shape[0]).fill(t));
}

describe('DDIMScheduler config', () => {
  it("fills in diffusers' DDIMScheduler defaults", () => {
    expect(new DDIMScheduler().toJSON()).toEqual({
      _class: 'DDIMScheduler',
      numTrainTimesteps: 1000,
      betaStart: 0.0001,
      betaEnd: 0.02,
      betaSchedule: 'linear',
      trainedBetas: null,
      predictionType: 'epsilon',
      clipSample: true,
      clipSampleRange: 1.0,
      timestepSpacing: 'leading',
      stepsOffset: 0,
      rescaleBetasZeroSnr: false,
      setAlphaToOne: true,
    });
    expect(DDIM_SCHEDULER_DEFAULTS).toEqual(new DDIMScheduler().config);
  });

  it('round-trips through toJSON / fromConfig / JSON text', () => {
    const configs = [
      {},
      {
        betaSchedule: 'scaled_linear',
        betaStart: 0.00085,
        betaEnd: 0.012,
        setAlphaToOne: false,
        stepsOffset: 1,
      } as const,
      { predictionType: 'v_prediction', timestepSpacing: 'trailing', clipSample: false } as const,
      { numTrainTimesteps: 3, trainedBetas: [0.1, 0.2, 0.3], clipSampleRange: 1.5 },
    ];
    for (const config of configs) {
      const json = new DDIMScheduler(config).toJSON();
      expect(DDIMScheduler.fromConfig(json).toJSON()).toEqual(json);
      expect(DDIMScheduler.fromConfig(JSON.parse(JSON.stringify(json))).toJSON()).toEqual(json);
    }
  });

  it('rejects invalid config with a message naming the field and the accepted values', () => {
    expect(() => new DDIMScheduler({ betaSchedule: 'cosine' })).toThrow(
      'DDIMScheduler: config.betaSchedule must be one of linear, scaled_linear, squaredcos_cap_v2, got "cosine"',
    );
    expect(() => new DDIMScheduler({ setAlphaToOne: 'yes' as never })).toThrow(
      'DDIMScheduler: config.setAlphaToOne must be a boolean, got "yes"',
    );
    expect(() => new DDIMScheduler({ predictionType: 'v' as never })).toThrow(
      'DDIMScheduler: config.predictionType must be one of epsilon, sample, v_prediction, got "v"',
    );
    expect(() => new DDIMScheduler({ timestepSpacing: 'even' as never })).toThrow(
      'DDIMScheduler: config.timestepSpacing must be one of leading, trailing, linspace, got "even"',
    );
    expect(() => new DDIMScheduler({ varianceType: 'fixed_small' } as never)).toThrow(
      /DDIMScheduler: unknown config key "varianceType"; accepted keys are .*setAlphaToOne/,
    );
    expect(() => DDIMScheduler.fromConfig({ _class: 'DDPMScheduler' })).toThrow(
      'DDIMScheduler.fromConfig: config._class must be "DDIMScheduler", got "DDPMScheduler"',
    );
  });
});

describe('DDIMScheduler.setTimesteps', () => {
  it('"leading" with 50 steps gives 980, 960, ..., 0 and steps back by floor(T / n)', () => {
    const s = new DDIMScheduler();
    expect(s.numInferenceSteps).toBeNull();
    s.setTimesteps(50);
    expect(s.numInferenceSteps).toBe(50);
    expect(Array.from(s.timesteps)).toEqual(Array.from({ length: 50 }, (_, i) => 980 - 20 * i));
    expect(s.previousTimestep(980)).toBe(960);
    expect(s.previousTimestep(0)).toBe(-20);
  });

  it('"trailing" with 50 steps gives 999, 979, ..., 19', () => {
    const s = new DDIMScheduler({ timestepSpacing: 'trailing' });
    s.setTimesteps(50);
    expect(Array.from(s.timesteps)).toEqual(Array.from({ length: 50 }, (_, i) => 999 - 20 * i));
    expect(s.previousTimestep(19)).toBe(-1);
  });

  it('"linspace" spaces evenly from T-1 to 0 and keeps the floor(T / n) step rule', () => {
    const s = new DDIMScheduler({ timestepSpacing: 'linspace' });
    s.setTimesteps(4);
    expect(Array.from(s.timesteps)).toEqual([999, 666, 333, 0]);
    expect(s.previousTimestep(999)).toBe(749);
  });

  it('adds stepsOffset for "leading" and lands on alpha-bar_0 with setAlphaToOne false', () => {
    const s = new DDIMScheduler({ stepsOffset: 1, setAlphaToOne: false });
    s.setTimesteps(50);
    expect(s.timesteps[0]).toBe(981);
    expect(s.timesteps[49]).toBe(1);
    const last = s.stepCoefficients(1);
    expect(last.prevTimestep).toBe(-19);
    expect(last.alphaBarPrev).toBe(s.alphasCumprod[0]);
    expect(s.finalAlphaCumprod).toBe(s.alphasCumprod[0]);
    expect(new DDIMScheduler().finalAlphaCumprod).toBe(1);
  });

  it('rejects numInferenceSteps outside 1..numTrainTimesteps', () => {
    const s = new DDIMScheduler({ numTrainTimesteps: 10 });
    for (const n of [0, 11, 0.5]) {
      expect(() => s.setTimesteps(n)).toThrow(
        `DDIMScheduler.setTimesteps: numInferenceSteps must be an integer in 1..numTrainTimesteps (10), got ${n}`,
      );
    }
  });
});

describe('DDIMScheduler.step', () => {
  it('with eta = 0 and the true noise lands exactly on sqrt(ab_prev) x_0 + sqrt(1 - ab_prev) eps', () => {
    const s = new DDIMScheduler({ betaSchedule: 'squaredcos_cap_v2' });
    s.setTimesteps(25);
    const x0 = cleanSample(1);
    const eps = new Generator(2).normal(SHAPE);
    const t = 600;
    const xt = s.addNoise(x0, eps, [t, t]);
    const out = s.step(eps, t, xt);
    const abPrev = s.alphasCumprod[t - 40];
    const expected = tf.tidy(() => tf.add(tf.mul(x0, Math.sqrt(abPrev)), tf.mul(eps, Math.sqrt(1 - abPrev))));
    expectTensorClose(out.prevSample, expected, 1e-5);
    expectTensorClose(out.predOriginalSample, x0, 1e-5);
    tf.dispose([x0, eps, xt, out.prevSample, out.predOriginalSample, expected]);
  });

  it('recovers x_0 as predOriginalSample for every prediction type given the true target', () => {
    const x0 = cleanSample(3);
    const eps = new Generator(4).normal(SHAPE);
    for (const predictionType of ['epsilon', 'sample', 'v_prediction'] as PredictionType[]) {
      const s = new DDIMScheduler({ predictionType });
      s.setTimesteps(10);
      const t = 500;
      const xt = s.addNoise(x0, eps, [t, t]);
      const target = oracle(s, predictionType, x0, eps, t);
      const out = s.step(target, t, xt);
      expectTensorClose(out.predOriginalSample, x0, 2e-5);
      tf.dispose([xt, target, out.prevSample, out.predOriginalSample]);
    }
    tf.dispose([x0, eps]);
  });

  it('round-trips a known x_0: a full deterministic run with the oracle model ends on x_0', () => {
    // Linear schedule: at the top of the cosine schedule (alpha-bar ~ 2e-9) recovering x_0 from eps
    // divides float32 round-off by sqrt(alpha-bar), a property of epsilon prediction, not of DDIM.
    const x0 = cleanSample(5);
    const eps = new Generator(6).normal(SHAPE);
    for (const predictionType of ['epsilon', 'sample', 'v_prediction'] as PredictionType[]) {
      for (const timestepSpacing of ['leading', 'trailing'] as const) {
        const s = new DDIMScheduler({ predictionType, timestepSpacing });
        s.setTimesteps(20);
        const first = s.timesteps[0];
        let x = s.addNoise(x0, eps, [first, first]);
        for (const t of s.timesteps) {
          // Every intermediate sample stays on the forward-process path of (x_0, eps).
          const onPath = s.addNoise(x0, eps, [t, t]);
          expectTensorClose(x, onPath, 5e-5);
          const out = s.step(oracle(s, predictionType, x0, eps, t), t, x);
          tf.dispose([onPath, x, out.predOriginalSample]);
          x = out.prevSample;
        }
        expectTensorClose(x, x0, 5e-5);
        x.dispose();
      }
    }
    tf.dispose([x0, eps]);
  });

  it('with rescaleBetasZeroSnr, starts from pure noise at t = T-1 ("trailing") and still ends on x_0 (v and sample)', () => {
    const x0 = cleanSample(5);
    const eps = new Generator(6).normal(SHAPE);
    for (const predictionType of ['sample', 'v_prediction'] as PredictionType[]) {
      const s = new DDIMScheduler({ predictionType, timestepSpacing: 'trailing', rescaleBetasZeroSnr: true });
      expect(s.alphasCumprod[999]).toBe(0);
      s.setTimesteps(10);
      expect(s.timesteps[0]).toBe(999);
      // x_T is the noise itself: nothing of x_0 is left at zero SNR.
      let x = s.addNoise(x0, eps, [999, 999]);
      expectTensorClose(x, eps, 0);
      for (const t of s.timesteps) {
        const out = s.step(oracle(s, predictionType, x0, eps, t), t, x);
        expect(Array.from(out.prevSample.dataSync()).every(Number.isFinite)).toBe(true);
        tf.dispose([x, out.predOriginalSample]);
        x = out.prevSample;
      }
      expectTensorClose(x, x0, 5e-5);
      x.dispose();
    }
    tf.dispose([x0, eps]);
  });

  it('rejects rescaleBetasZeroSnr with epsilon prediction, naming both fields', () => {
    expect(() => new DDIMScheduler({ rescaleBetasZeroSnr: true })).toThrow(/rescaleBetasZeroSnr needs predictionType "v_prediction" or "sample"/);
    expect(() => new DDPMScheduler({ rescaleBetasZeroSnr: true, predictionType: 'epsilon' })).toThrow(/rescaleBetasZeroSnr/);
    expect(() => new DDIMScheduler({ rescaleBetasZeroSnr: 1 as never })).toThrow(/config.rescaleBetasZeroSnr must be a boolean/);
  });

  it('with eta > 0 adds sigma_t z (eq. 16) and shrinks the eps direction to sqrt(1 - ab_prev - sigma^2)', () => {
    const s = new DDIMScheduler();
    s.setTimesteps(10);
    const x0 = cleanSample(7);
    const eps = new Generator(8).normal(SHAPE);
    const t = 700;
    const eta = 0.5;
    const xt = s.addNoise(x0, eps, [t, t]);
    const out = s.step(eps, t, xt, { eta, generator: new Generator(99) });
    const ab = s.alphasCumprod[t];
    const abPrev = s.alphasCumprod[t - 100];
    const sigma = eta * Math.sqrt(((1 - abPrev) / (1 - ab)) * (1 - ab / abPrev));
    const c = s.stepCoefficients(t, eta);
    expect(c.sigma).toBeCloseTo(sigma, 12);
    expect(c.coefEps).toBeCloseTo(Math.sqrt(1 - abPrev - sigma * sigma), 12);
    const z = new Generator(99).normal(SHAPE);
    const expected = tf.tidy(() =>
      tf.addN([tf.mul(x0, Math.sqrt(abPrev)), tf.mul(eps, Math.sqrt(1 - abPrev - sigma * sigma)), tf.mul(z, sigma)]),
    );
    expectTensorClose(out.prevSample, expected, 1e-5);
    tf.dispose([x0, eps, xt, out.prevSample, out.predOriginalSample, z, expected]);
  });

  it('with eta = 1 uses the DDPM posterior variance for the same pair of timesteps', () => {
    const ddim = new DDIMScheduler({ betaSchedule: 'squaredcos_cap_v2' });
    const ddpm = new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2' });
    ddim.setTimesteps(25);
    ddpm.setTimesteps(25);
    for (const t of [960, 400, 40]) {
      expect(ddim.stepCoefficients(t, 1).sigma ** 2).toBeCloseTo(ddpm.posteriorCoefficients(t).variance, 12);
    }
  });

  it('gives identical stochastic steps for the same seed and different ones for another seed', () => {
    const s = new DDIMScheduler();
    s.setTimesteps(10);
    const xt = new Generator(11).normal(SHAPE);
    const eps = new Generator(12).normal(SHAPE);
    const run = (seed: number) => {
      const out = s.step(eps, 900, xt, { eta: 1, generator: new Generator(seed) });
      const values = Array.from(out.prevSample.dataSync());
      tf.dispose([out.prevSample, out.predOriginalSample]);
      return values;
    };
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
    tf.dispose([xt, eps]);
  });

  it('clips x_0 but derives the eps direction from the unclipped prediction ("sample" type)', () => {
    const s = new DDIMScheduler({ predictionType: 'sample', clipSampleRange: 0.5 });
    s.setTimesteps(10);
    const t = 500;
    const xt = tf.fill(SHAPE, 0.3);
    const pred = tf.fill(SHAPE, 0.8);
    const out = s.step(pred, t, xt);
    const ab = s.alphasCumprod[t];
    const abPrev = s.alphasCumprod[t - 100];
    const epsHat = (0.3 - Math.sqrt(ab) * 0.8) / Math.sqrt(1 - ab);
    expectTensorClose(out.predOriginalSample, new Array(96).fill(0.5));
    expectTensorClose(out.prevSample, new Array(96).fill(Math.sqrt(abPrev) * 0.5 + Math.sqrt(1 - abPrev) * epsHat));
    tf.dispose([xt, pred, out.prevSample, out.predOriginalSample]);
  });

  it('validates its arguments before allocating anything', () => {
    const s = new DDIMScheduler();
    const x = tf.zeros(SHAPE);
    const wrong = tf.zeros([1, 4, 4, 3]);
    const before = tf.memory().numTensors;
    expect(() => s.step(x, 980, x)).toThrow(
      'DDIMScheduler.step: numInferenceSteps is not set; call setTimesteps(numInferenceSteps) first',
    );
    s.setTimesteps(50);
    expect(() => s.step(x, 990, x)).toThrow(
      'DDIMScheduler.step: timestep 990 is not in the schedule set by setTimesteps(50)',
    );
    expect(() => s.step(x, -20, x)).toThrow(
      /DDIMScheduler\.step: timestep must be an integer in 0\.\.numTrainTimesteps-1/,
    );
    expect(() => s.step(wrong, 980, x)).toThrow(
      'DDIMScheduler.step: modelOutput shape [1,4,4,3] must equal sample shape [2,4,4,3]',
    );
    expect(() => s.step(x, 980, x, { eta: -0.1 })).toThrow(
      'DDIMScheduler.step: options.eta must be a finite number >= 0, got -0.1',
    );
    expect(() => s.step(x, 980, x, { eta: 0.5 })).toThrow(
      'DDIMScheduler.step: options.generator is required when options.eta > 0 (got 0.5)',
    );
    expect(() => s.step(x, 980, x, { eta: 50, generator: new Generator(1) })).toThrow(
      /DDIMScheduler\.step: eta = 50 is too large at timestep 980/,
    );
    expect(() => s.stepCoefficients(980, Number.NaN)).toThrow(
      'DDIMScheduler.stepCoefficients: eta must be a finite number >= 0, got NaN',
    );
    expect(() => s.alphaBar(1000)).toThrow(/DDIMScheduler\.alphaBar: timestep must be an integer/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, wrong]);
  });

  it('leaks no tensors: only the two returned tensors survive a step', () => {
    const s = new DDIMScheduler({ predictionType: 'sample' });
    s.setTimesteps(10);
    const x0 = cleanSample(13);
    const eps = new Generator(14).normal(SHAPE);
    const g = new Generator(15);
    const before = tf.memory().numTensors;
    let x = s.addNoise(x0, eps, [s.timesteps[0], s.timesteps[0]]);
    expect(tf.memory().numTensors).toBe(before + 1);
    for (const t of s.timesteps) {
      const out = s.step(x0, t, x, { eta: 0.7, generator: g });
      expect(tf.memory().numTensors).toBe(before + 3);
      out.predOriginalSample.dispose();
      x.dispose();
      x = out.prevSample;
    }
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x0, eps]);
  });
});
