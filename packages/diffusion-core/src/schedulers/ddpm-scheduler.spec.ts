import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { DDPM_SCHEDULER_DEFAULTS, DDPMScheduler } from './ddpm-scheduler';
import type { PredictionType } from './scheduler';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/**
 * Asserts `actual` equals a reference value printed with `digits` significant digits: within 1e-6
 * relative, or within half a unit in the last printed digit when that is looser.
 */
function expectMatchesPrinted(actual: number, expected: number, digits: number): void {
  const halfUlp = 0.5 * 10 ** (Math.floor(Math.log10(Math.abs(expected))) - digits + 1);
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(Math.max(1e-6 * Math.abs(expected), halfUlp));
}

function expectTensorClose(actual: tf.Tensor, expected: tf.Tensor | number[], tol = 1e-5): void {
  const e = Array.isArray(expected) ? expected : Array.from(expected.dataSync());
  if (!Array.isArray(expected)) expect(actual.shape).toEqual(expected.shape);
  const a = actual.dataSync();
  expect(a.length).toBe(e.length);
  for (let i = 0; i < e.length; i++) {
    if (!(Math.abs(a[i] - e[i]) <= tol)) expect.fail(`element ${i}: ${a[i]} vs ${e[i]} (tol ${tol})`);
  }
}

const SHAPE = [2, 2, 2, 3];
/** A clean sample in (-1, 1), so clipping never changes it. */
function cleanSample(seed = 1): tf.Tensor {
  return tf.tidy(() => new Generator(seed).uniform(SHAPE, -0.9, 0.9));
}

describe('DDPMScheduler config', () => {
  it("fills in diffusers' DDPMScheduler defaults", () => {
    expect(new DDPMScheduler().toJSON()).toEqual({
      _class: 'DDPMScheduler',
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
      varianceType: 'fixed_small',
    });
    expect(DDPM_SCHEDULER_DEFAULTS).toEqual(new DDPMScheduler().config);
  });

  it('round-trips through toJSON / fromConfig / JSON text', () => {
    const configs = [
      {},
      { betaSchedule: 'squaredcos_cap_v2', predictionType: 'v_prediction', varianceType: 'fixed_large_log' } as const,
      { numTrainTimesteps: 4, trainedBetas: [0.1, 0.2, 0.3, 0.4], clipSample: false, clipSampleRange: 3 },
      {
        timestepSpacing: 'trailing',
        stepsOffset: 1,
        betaStart: 0.00085,
        betaEnd: 0.012,
        betaSchedule: 'scaled_linear',
      } as const,
    ];
    for (const config of configs) {
      const s = new DDPMScheduler(config);
      const json = s.toJSON();
      expect(DDPMScheduler.fromConfig(json).toJSON()).toEqual(json);
      expect(DDPMScheduler.fromConfig(JSON.parse(JSON.stringify(json))).toJSON()).toEqual(json);
      expect(Array.from(DDPMScheduler.fromConfig(json).alphasCumprod)).toEqual(Array.from(s.alphasCumprod));
    }
  });

  it('keeps its config frozen and independent of the caller and of toJSON output', () => {
    const betas = [0.1, 0.2];
    const s = new DDPMScheduler({ numTrainTimesteps: 2, trainedBetas: betas });
    betas[0] = 0.9;
    expect(s.config.trainedBetas).toEqual([0.1, 0.2]);
    const json = s.toJSON();
    json.trainedBetas![1] = 0.5;
    expect(s.config.trainedBetas).toEqual([0.1, 0.2]);
    expect(Object.isFrozen(s.config)).toBe(true);
  });

  it('uses trainedBetas instead of the named schedule', () => {
    const s = new DDPMScheduler({ numTrainTimesteps: 3, trainedBetas: [0.5, 0.5, 0.5] });
    expect(Array.from(s.alphasCumprod)).toEqual([0.5, 0.25, 0.125]);
  });

  it('rejects every invalid config field with a message naming the field and the accepted values', () => {
    const cases: [Record<string, unknown>, string | RegExp][] = [
      [
        { betaSchedule: 'cosine' },
        'DDPMScheduler: config.betaSchedule must be one of linear, scaled_linear, squaredcos_cap_v2, got "cosine"',
      ],
      [
        { predictionType: 'eps' },
        'DDPMScheduler: config.predictionType must be one of epsilon, sample, v_prediction, got "eps"',
      ],
      [
        { timestepSpacing: 'uniform' },
        'DDPMScheduler: config.timestepSpacing must be one of leading, trailing, linspace, got "uniform"',
      ],
      [
        { varianceType: 'learned' },
        'DDPMScheduler: config.varianceType must be one of ' +
          'fixed_small, fixed_small_log, fixed_large, fixed_large_log, got "learned"',
      ],
      [{ numTrainTimesteps: 0 }, 'DDPMScheduler: config.numTrainTimesteps must be an integer >= 1, got 0'],
      [{ numTrainTimesteps: 10.5 }, /config\.numTrainTimesteps must be an integer >= 1, got 10.5/],
      [{ betaStart: -1 }, 'DDPMScheduler: config.betaStart must be a number in (0, 1), got -1'],
      [{ betaEnd: '0.02' }, 'DDPMScheduler: config.betaEnd must be a number in (0, 1), got "0.02"'],
      [{ clipSample: 1 }, 'DDPMScheduler: config.clipSample must be a boolean, got 1'],
      [{ clipSampleRange: 0 }, 'DDPMScheduler: config.clipSampleRange must be a finite number > 0, got 0'],
      [{ stepsOffset: -1 }, 'DDPMScheduler: config.stepsOffset must be an integer >= 0, got -1'],
      [{ stepsOffset: 1000 }, /config\.stepsOffset must be an integer in 0\.\.numTrainTimesteps-1 \(999\), got 1000/],
      [{ trainedBetas: 'x' }, 'DDPMScheduler: config.trainedBetas must be null or an array of numbers, got "x"'],
      [{ trainedBetas: [0.1] }, /config\.trainedBetas produced 1 betas, expected numTrainTimesteps = 1000/],
      [
        { numTrainTimesteps: 2, trainedBetas: [0.1, 1] },
        /config\.trainedBetas: every beta must be a finite number in \(0, 1\), got beta\[1\] = 1/,
      ],
      [
        { thresholding: true },
        /DDPMScheduler: unknown config key "thresholding"; accepted keys are numTrainTimesteps, .*varianceType/,
      ],
      [{ setAlphaToOne: true }, /unknown config key "setAlphaToOne"/],
    ];
    for (const [config, message] of cases) {
      expect(() => new DDPMScheduler(config as never), JSON.stringify(config)).toThrow(message);
    }
    expect(() => new DDPMScheduler(null as never)).toThrow('DDPMScheduler: config must be a plain object, got null');
  });

  it('fromConfig refuses another class and non-objects', () => {
    expect(() => DDPMScheduler.fromConfig({ _class: 'DDIMScheduler' })).toThrow(
      'DDPMScheduler.fromConfig: config._class must be "DDPMScheduler", got "DDIMScheduler"',
    );
    expect(() => DDPMScheduler.fromConfig('{}')).toThrow(/expected a config object/);
  });
});

describe('DDPMScheduler numerics (squaredcos_cap_v2 references)', () => {
  const s = new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2' });

  it('has the reference alpha-bars', () => {
    expectMatchesPrinted(s.alphasCumprod[0], 0.99995869, 8);
    expectMatchesPrinted(s.alphasCumprod[499], 0.49384311, 8);
    expectMatchesPrinted(s.alphasCumprod[998], 2.42876e-6, 6);
    expectMatchesPrinted(s.alphasCumprod[999], 2.42873e-9, 6);
    expect(s.betas[999]).toBe(Math.fround(0.999));
    expect(s.alphaBar(499)).toBe(s.alphasCumprod[499]);
  });

  it('has the reference posterior coefficients at t = 999 (setTimesteps never called)', () => {
    const c = s.posteriorCoefficients(999);
    expect(c.prevTimestep).toBe(998);
    expectMatchesPrinted(c.coefX0, 0.0015569, 5);
    expectMatchesPrinted(c.coefXt, 0.0316225, 6);
    expectMatchesPrinted(c.variance, 0.998998, 6);
    expect(c.logVariance).toBeCloseTo(Math.log(c.variance), 12);
  });

  it('has the reference posterior coefficients at t = 500', () => {
    const c = s.posteriorCoefficients(500);
    expectMatchesPrinted(c.coefX0, 0.0043679, 5);
    expectMatchesPrinted(c.coefXt, 0.9953562, 7);
    expectMatchesPrinted(c.variance, 0.003146, 5);
  });

  it("agrees with the beta_t form of Ho et al. eq. 7 when t' = t - 1", () => {
    // diffusers uses 1 - ab_t / ab_{t-1} for beta_t, which equals beta_t up to the float32 round-off
    // of the two alpha-bars (~2 ulp of 1, i.e. ~1.2e-7 absolute): large relative to the tiny betas at
    // small t.
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
    for (const t of [1, 10, 500, 900, 999]) {
      const c = s.posteriorCoefficients(t);
      const ab = s.alphasCumprod[t];
      const abPrev = s.alphasCumprod[t - 1];
      const beta = s.betas[t];
      const tol = 1.5e-7 / beta + 1e-6;
      expect(rel(c.coefX0, (Math.sqrt(abPrev) * beta) / (1 - ab))).toBeLessThan(tol);
      expect(rel(c.coefXt, (Math.sqrt(1 - beta) * (1 - abPrev)) / (1 - ab))).toBeLessThan(tol);
      expect(rel(c.variance, ((1 - abPrev) / (1 - ab)) * beta)).toBeLessThan(tol);
    }
  });

  it('uses beta_t for the "large" variance types and the same variances for the "log" names', () => {
    const large = new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2', varianceType: 'fixed_large' });
    const largeLog = new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2', varianceType: 'fixed_large_log' });
    const smallLog = new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2', varianceType: 'fixed_small_log' });
    const t = 500;
    const ab = s.alphasCumprod[t];
    const abPrev = s.alphasCumprod[t - 1];
    expect(large.posteriorCoefficients(t).variance).toBeCloseTo(1 - ab / abPrev, 12);
    expect(large.posteriorCoefficients(t).variance).toBeCloseTo(s.betas[t], 6);
    expect(largeLog.posteriorCoefficients(t)).toEqual(large.posteriorCoefficients(t));
    expect(smallLog.posteriorCoefficients(t)).toEqual(s.posteriorCoefficients(t));
  });

  it('at t = 0 the posterior mean is x_0 and the variance is clamped to 1e-20', () => {
    const c = s.posteriorCoefficients(0);
    expect(c.prevTimestep).toBe(-1);
    expect(c.alphaBarPrev).toBe(1);
    expect(c.coefX0).toBeCloseTo(1, 12);
    expect(c.coefXt).toBe(0);
    expect(c.variance).toBe(1e-20);
  });
});

describe('DDPMScheduler.setTimesteps', () => {
  it('starts with every training timestep and null numInferenceSteps', () => {
    const s = new DDPMScheduler({ numTrainTimesteps: 5 });
    expect(Array.from(s.timesteps)).toEqual([4, 3, 2, 1, 0]);
    expect(s.numInferenceSteps).toBeNull();
  });

  it('spaces timesteps per config and steps to the next scheduled timestep', () => {
    const s = new DDPMScheduler();
    s.setTimesteps(10);
    expect(s.numInferenceSteps).toBe(10);
    expect(Array.from(s.timesteps)).toEqual([900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
    expect(s.previousTimestep(900)).toBe(800);
    expect(s.previousTimestep(0)).toBe(-1);
    const c = s.posteriorCoefficients(900);
    expect(c.alphaBarPrev).toBe(s.alphasCumprod[800]);
    // With a skip the effective beta is 1 - ab_t / ab_t'.
    expect(c.variance).toBeCloseTo(
      ((1 - s.alphasCumprod[800]) / (1 - s.alphasCumprod[900])) * (1 - s.alphasCumprod[900] / s.alphasCumprod[800]),
      12,
    );

    const trailing = new DDPMScheduler({ timestepSpacing: 'trailing' });
    trailing.setTimesteps(4);
    expect(Array.from(trailing.timesteps)).toEqual([999, 749, 499, 249]);
    expect(trailing.previousTimestep(249)).toBe(-1);
    const linspace = new DDPMScheduler({ timestepSpacing: 'linspace' });
    linspace.setTimesteps(3);
    expect(Array.from(linspace.timesteps)).toEqual([999, 500, 0]);
    expect(linspace.previousTimestep(999)).toBe(500);
  });

  it('rejects numInferenceSteps outside 1..numTrainTimesteps and non-integers', () => {
    const s = new DDPMScheduler();
    for (const n of [0, -1, 1001, 2.5, Number.NaN]) {
      expect(() => s.setTimesteps(n)).toThrow(
        /DDPMScheduler\.setTimesteps: numInferenceSteps must be an integer in 1\.\.numTrainTimesteps \(1000\), got/,
      );
    }
    expect(() => new DDPMScheduler({ stepsOffset: 1 }).setTimesteps(1000)).toThrow(
      /DDPMScheduler\.setTimesteps: stepsOffset 1 .* past the last training timestep 999/,
    );
  });
});

describe('DDPMScheduler.addNoise / getVelocity', () => {
  const s = new DDPMScheduler();

  it('broadcasts sqrt(alpha-bar_t) per batch element over NHWC', () => {
    const x0 = cleanSample(1);
    const noise = new Generator(2).normal(SHAPE);
    const ts = [10, 700];
    const perImage = x0.size / SHAPE[0];
    const x = x0.dataSync();
    const n = noise.dataSync();
    const expected = Array.from(x, (v, i) => {
      const ab = s.alphasCumprod[ts[Math.floor(i / perImage)]];
      return Math.sqrt(ab) * v + Math.sqrt(1 - ab) * n[i];
    });
    const tsTensor = tf.tensor1d(ts, 'int32');
    for (const timesteps of [ts, tsTensor]) {
      const xt = s.addNoise(x0, noise, timesteps);
      expectTensorClose(xt, expected, 1e-6);
      xt.dispose();
    }
    tf.dispose([x0, noise, tsTensor]);
  });

  it('getVelocity is sqrt(ab) noise - sqrt(1 - ab) sample, and x_0 = sqrt(ab) x_t - sqrt(1 - ab) v', () => {
    const x0 = cleanSample(3);
    const noise = new Generator(4).normal(SHAPE);
    const ts = [250, 250];
    const ab = s.alphasCumprod[250];
    const v = s.getVelocity(x0, noise, ts);
    const expected = tf.sub(tf.mul(noise, Math.sqrt(ab)), tf.mul(x0, Math.sqrt(1 - ab)));
    expectTensorClose(v, expected, 1e-6);
    const xt = s.addNoise(x0, noise, ts);
    const recovered = tf.sub(tf.mul(xt, Math.sqrt(ab)), tf.mul(v, Math.sqrt(1 - ab)));
    expectTensorClose(recovered, x0, 1e-5);
    tf.dispose([x0, noise, v, expected, xt, recovered]);
  });

  it('rejects bad timesteps and shapes with messages naming the argument', () => {
    const x0 = tf.zeros(SHAPE);
    const noise = tf.zeros(SHAPE);
    const before = tf.memory().numTensors;
    expect(() => s.addNoise(x0, noise, [1])).toThrow(
      'DDPMScheduler.addNoise: timesteps has 1 entries, expected one per batch element (2)',
    );
    expect(() => s.addNoise(x0, noise, [1, 1000])).toThrow(
      'DDPMScheduler.addNoise: every timestep must be an integer in 0..numTrainTimesteps-1 (999), got 1000',
    );
    expect(() => s.addNoise(x0, noise, [1, 0.5])).toThrow(/every timestep must be an integer/);
    const floatTs = tf.tensor1d([1, 2], 'float32');
    const narrow = tf.zeros([2, 2, 2, 1]);
    expect(() => s.getVelocity(x0, narrow, [1, 2])).toThrow(
      'DDPMScheduler.getVelocity: noise shape [2,2,2,1] must equal samples shape [2,2,2,3]',
    );
    expect(() => s.addNoise(x0, noise, floatTs as tf.Tensor1D)).toThrow(
      'DDPMScheduler.addNoise: timesteps must be a number[] or an int32 Tensor1D, got a float32 tensor of rank 1',
    );
    tf.dispose([floatTs, narrow]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x0, noise]);
  });
});

describe('DDPMScheduler.step', () => {
  it('recovers x_0 as predOriginalSample for every prediction type given the true target', () => {
    const x0 = cleanSample(5);
    const eps = new Generator(6).normal(SHAPE);
    const t = 600;
    for (const predictionType of ['epsilon', 'sample', 'v_prediction'] as PredictionType[]) {
      const s = new DDPMScheduler({ predictionType, betaSchedule: 'squaredcos_cap_v2' });
      const xt = s.addNoise(x0, eps, [t, t]);
      const targets = {
        epsilon: () => eps.clone(),
        sample: () => x0.clone(),
        v_prediction: () => s.getVelocity(x0, eps, [t, t]),
      };
      const target = targets[predictionType]();
      const out = s.step(target, t, xt, { generator: new Generator(9) });
      expectTensorClose(out.predOriginalSample, x0, 2e-5);
      tf.dispose([xt, target, out.prevSample, out.predOriginalSample]);
    }
    tf.dispose([x0, eps]);
  });

  it('at t > 0 returns coefX0 x_0 + coefXt x_t + sqrt(variance) z with z from the generator', () => {
    const s = new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2' });
    const x0 = cleanSample(7);
    const eps = new Generator(8).normal(SHAPE);
    const t = 500;
    const xt = s.addNoise(x0, eps, [t, t]);
    const out = s.step(eps, t, xt, { generator: new Generator(123) });
    const c = s.posteriorCoefficients(t);
    const z = new Generator(123).normal(SHAPE);
    const expected = tf.tidy(() =>
      tf.addN([tf.mul(x0, c.coefX0), tf.mul(xt, c.coefXt), tf.mul(z, Math.sqrt(c.variance))]),
    );
    expectTensorClose(out.prevSample, expected, 1e-5);
    tf.dispose([x0, eps, xt, out.prevSample, out.predOriginalSample, z, expected]);
  });

  it('adds no noise at t = 0 (no generator needed) and lands on x_0', () => {
    const s = new DDPMScheduler();
    const x0 = cleanSample(9);
    const eps = new Generator(10).normal(SHAPE);
    const xt = s.addNoise(x0, eps, [0, 0]);
    const out = s.step(eps, 0, xt);
    expectTensorClose(out.prevSample, x0, 1e-5);
    expectTensorClose(out.predOriginalSample, x0, 1e-5);
    tf.dispose([x0, eps, xt, out.prevSample, out.predOriginalSample]);
  });

  it('gives identical stochastic steps for the same seed and different ones for another seed', () => {
    const s = new DDPMScheduler();
    const xt = new Generator(11).normal(SHAPE);
    const eps = new Generator(12).normal(SHAPE);
    const a = s.step(eps, 999, xt, { generator: new Generator(5) });
    const b = s.step(eps, 999, xt, { generator: new Generator(5) });
    const c = s.step(eps, 999, xt, { generator: new Generator(6) });
    expect(Array.from(a.prevSample.dataSync())).toEqual(Array.from(b.prevSample.dataSync()));
    expect(Array.from(a.prevSample.dataSync())).not.toEqual(Array.from(c.prevSample.dataSync()));
    tf.dispose([xt, eps, ...[a, b, c].flatMap((o) => [o.prevSample, o.predOriginalSample])]);
  });

  it('clips the predicted x_0 to clipSampleRange, and not at all with clipSample false', () => {
    const xt = tf.fill(SHAPE, 0.1);
    const pred = tf.fill(SHAPE, 5);
    const clipped = new DDPMScheduler({ predictionType: 'sample', clipSampleRange: 2 }).step(pred, 0, xt);
    expectTensorClose(clipped.predOriginalSample, new Array(24).fill(2));
    const unclipped = new DDPMScheduler({ predictionType: 'sample', clipSample: false }).step(pred, 0, xt);
    expectTensorClose(unclipped.predOriginalSample, new Array(24).fill(5));
    expect(unclipped.predOriginalSample).not.toBe(pred);
    tf.dispose([xt, pred, ...[clipped, unclipped].flatMap((o) => [o.prevSample, o.predOriginalSample])]);
  });

  it('validates its arguments before allocating anything', () => {
    const s = new DDPMScheduler();
    const x = tf.zeros(SHAPE);
    const wrong = tf.zeros([2, 2, 2, 1]);
    const g = new Generator(1);
    const before = tf.memory().numTensors;
    expect(() => s.step(x, 10, x)).toThrow(
      'DDPMScheduler.step: options.generator is required at timestep 10 > 0 (DDPM adds noise)',
    );
    expect(() => s.step(wrong, 10, x, { generator: g })).toThrow(
      'DDPMScheduler.step: modelOutput shape [2,2,2,1] must equal sample shape [2,2,2,3]',
    );
    expect(() => s.step(x, 1000, x, { generator: g })).toThrow(
      'DDPMScheduler.step: timestep must be an integer in 0..numTrainTimesteps-1 (999), got 1000',
    );
    expect(() => s.step(x, 1.5, x, { generator: g })).toThrow(/timestep must be an integer/);
    expect(() => s.step(x, 10, x, { generator: g, eta: -1 })).toThrow(
      'DDPMScheduler.step: options.eta must be a finite number >= 0, got -1',
    );
    expect(() => s.step(x, 10, x, { generator: {} as Generator })).toThrow(/options\.generator must be a Generator/);
    expect(() => s.step('x' as never, 10, x, { generator: g })).toThrow(/modelOutput must be a tf.Tensor/);
    s.setTimesteps(10);
    expect(() => s.step(x, 950, x, { generator: g })).toThrow(
      'DDPMScheduler.step: timestep 950 is not in the schedule set by setTimesteps(10)',
    );
    expect(() => s.posteriorCoefficients(950)).toThrow(
      /DDPMScheduler\.posteriorCoefficients: timestep 950 is not in the schedule/,
    );
    expect(() => s.alphaBar(-1)).toThrow(
      /DDPMScheduler\.alphaBar: timestep must be an integer in 0\.\.numTrainTimesteps-1/,
    );
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, wrong]);
  });

  it('leaks no tensors: only the two returned tensors survive a step', () => {
    const s = new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2', predictionType: 'v_prediction' });
    s.setTimesteps(20);
    const x0 = cleanSample(13);
    const eps = new Generator(14).normal(SHAPE);
    const g = new Generator(15);
    const before = tf.memory().numTensors;
    const timesteps = tf.tensor1d([s.timesteps[0], s.timesteps[0]], 'int32') as tf.Tensor1D;
    let x = s.addNoise(x0, eps, timesteps);
    const v = s.getVelocity(x0, eps, timesteps);
    tf.dispose([timesteps, v]);
    expect(tf.memory().numTensors).toBe(before + 1);
    for (const t of s.timesteps) {
      const out = s.step(eps, t, x, { generator: g });
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
