import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { gaussianModel } from '../testing/gaussian-model';
import { leakedTensors, useCpuBackend } from '../testing/setup-cpu';
import { DDIMScheduler } from './ddim-scheduler';
import {
  DPM_SOLVER_MULTISTEP_SCHEDULER_DEFAULTS,
  type DPMSolverMultistepSchedulerConfig,
  DPMSolverMultistepScheduler,
  thresholdSample,
} from './dpm-solver-multistep-scheduler';
import { schedulerFromConfig } from './index';

beforeAll(useCpuBackend);

function expectClose(actual: tf.Tensor, expected: number[], tol = 2e-5): void {
  const a = actual.dataSync();
  expect(a.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(a[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])))) {
      expect.fail(`element ${i}: ${a[i]} vs ${expected[i]} (tol ${tol})`);
    }
  }
}

// A tiny hand-made schedule: T = 10, betas 0.05..0.5. alpha-bar in float64 (the scheduler's float32
// values differ by ~1e-7 relative, far below the tolerances).
const BETAS = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5];
const AB: number[] = [];
BETAS.reduce((acc, b) => {
  const next = acc * (1 - b);
  AB.push(next);
  return next;
}, 1);
/** sqrt(ab_t), sqrt(1 - ab_t), and the half log-SNR lambda_t = log(sqrt(ab) / sqrt(1 - ab)). */
const alpha = (t: number) => Math.sqrt(AB[t]);
const sigma = (t: number) => Math.sqrt(1 - AB[t]);
const lambda = (t: number) => Math.log(alpha(t) / sigma(t));

const X = [0.7, -1.3, 0.25];
const SHAPE = [1, 1, 1, 3];
/** Model outputs chosen for each of the 3 steps (any values will do: the update is linear in them). */
const OUT = [
  [0.2, -0.5, 0.9],
  [0.4, 0.1, -0.6],
  [-0.3, 0.8, 0.05],
];

const tiny = (config: Partial<DPMSolverMultistepSchedulerConfig> = {}) =>
  new DPMSolverMultistepScheduler({ numTrainTimesteps: 10, trainedBetas: BETAS, ...config });

/** Runs the 3 steps of `s` (n = 3 "linspace": timesteps 9, 6, 3) and returns every prevSample as numbers. */
function run3(s: DPMSolverMultistepScheduler): number[][] {
  s.setTimesteps(3);
  expect(Array.from(s.timesteps)).toEqual([9, 6, 3]);
  let x = tf.tensor(X, SHAPE);
  const outs: number[][] = [];
  for (let i = 0; i < 3; i++) {
    const m = tf.tensor(OUT[i], SHAPE);
    const r = s.step(m, s.timesteps[i], x);
    outs.push(Array.from(r.prevSample.dataSync()));
    tf.dispose([m, x, r.predOriginalSample]);
    x = r.prevSample;
  }
  x.dispose();
  return outs;
}

const zip = (a: number[], b: number[], f: (p: number, q: number) => number) => a.map((p, i) => f(p, b[i]));

describe('DPMSolverMultistepScheduler config', () => {
  it("fills in diffusers' DPMSolverMultistepScheduler defaults", () => {
    expect(new DPMSolverMultistepScheduler().toJSON()).toEqual({
      _class: 'DPMSolverMultistepScheduler',
      numTrainTimesteps: 1000,
      betaStart: 0.0001,
      betaEnd: 0.02,
      betaSchedule: 'linear',
      trainedBetas: null,
      predictionType: 'epsilon',
      clipSample: false,
      clipSampleRange: 1,
      timestepSpacing: 'linspace',
      stepsOffset: 0,
      rescaleBetasZeroSnr: false,
      solverOrder: 2,
      algorithmType: 'dpmsolver++',
      solverType: 'midpoint',
      lowerOrderFinal: true,
      eulerAtFinal: false,
      finalSigmasType: 'zero',
      lambdaMinClipped: null,
      varianceType: null,
      thresholding: false,
      dynamicThresholdingRatio: 0.995,
      sampleMaxValue: 1,
      useKarrasSigmas: false,
    });
    expect(DPM_SOLVER_MULTISTEP_SCHEDULER_DEFAULTS).toEqual(new DPMSolverMultistepScheduler().config);
  });

  it('round-trips through toJSON / fromConfig / JSON text / schedulerFromConfig', () => {
    const config: Partial<DPMSolverMultistepSchedulerConfig> = {
      betaSchedule: 'squaredcos_cap_v2',
      predictionType: 'v_prediction',
      solverOrder: 3,
      algorithmType: 'dpmsolver',
      solverType: 'heun',
      lowerOrderFinal: false,
      eulerAtFinal: true,
      finalSigmasType: 'sigma_min',
      lambdaMinClipped: -5.1,
      timestepSpacing: 'trailing',
      thresholding: true,
      sampleMaxValue: 1.5,
    };
    const s = new DPMSolverMultistepScheduler(config);
    const json = JSON.parse(JSON.stringify(s.toJSON()));
    expect(json).toMatchObject(config);
    const back = DPMSolverMultistepScheduler.fromConfig(json);
    expect(back.toJSON()).toEqual(s.toJSON());
    const viaRegistry = schedulerFromConfig(json);
    expect(viaRegistry).toBeInstanceOf(DPMSolverMultistepScheduler);
    expect(viaRegistry.toJSON()).toEqual(s.toJSON());
  });

  it('rejects unknown keys and bad values, naming the field', () => {
    const bad: [unknown, RegExp][] = [
      [{ solverOrdr: 2 }, /unknown config key "solverOrdr"/],
      [{ solverOrder: 4 }, /config\.solverOrder must be one of 1, 2, 3, got 4/],
      [{ algorithmType: 'sde-dpmsolver++' }, /config\.algorithmType must be one of dpmsolver\+\+, dpmsolver .*not supported.*got "sde-dpmsolver\+\+"/],
      [{ solverType: 'bh2' }, /config\.solverType must be one of midpoint, heun, got "bh2"/],
      [{ finalSigmasType: 'one' }, /config\.finalSigmasType must be one of zero, sigma_min/],
      [{ algorithmType: 'dpmsolver' }, /finalSigmasType "zero" is not supported with config\.algorithmType "dpmsolver"/],
      [{ lambdaMinClipped: -Infinity }, /config\.lambdaMinClipped must be null \(no clipping\) or a finite number/],
      [{ useKarrasSigmas: true }, /config\.useKarrasSigmas must be false \(Karras sigmas are not supported\)/],
      [{ dynamicThresholdingRatio: 1.5 }, /config\.dynamicThresholdingRatio must be a number in \(0, 1\]/],
      [{ varianceType: 'fixed_small' }, /config\.varianceType must be null, "learned" or "learned_range"/],
      [{ timestepSpacing: 'karras' }, /config\.timestepSpacing must be one of leading, trailing, linspace/],
    ];
    for (const [config, re] of bad) {
      expect(() => new DPMSolverMultistepScheduler(config as never), JSON.stringify(config)).toThrow(re);
    }
    expect(() => DPMSolverMultistepScheduler.fromConfig({ _class: 'DDIMScheduler' })).toThrow(/_class must be "DPMSolverMultistepScheduler"/);
  });
});

describe('DPMSolverMultistepScheduler.setTimesteps', () => {
  // Expected grids derived by hand from diffusers' set_timesteps formulas (see dpmSolverTimesteps).
  const cases: [number, number, 'linspace' | 'leading' | 'trailing', number, number[]][] = [
    // linspace: round(i * 999 / 10), i = 10..1 (499.5 rounds half to even: 500).
    [1000, 10, 'linspace', 0, [999, 899, 799, 699, 599, 500, 400, 300, 200, 100]],
    // linspace: round(i * 9 / 4), i = 4..1: 9, 6.75, 4.5 (even: 4), 2.25.
    [10, 4, 'linspace', 0, [9, 7, 4, 2]],
    [1000, 1, 'linspace', 0, [999]],
    // leading: floor(1000 / 11) = 90; i * 90 for i = 10..1, plus the offset.
    [1000, 10, 'leading', 0, [900, 810, 720, 630, 540, 450, 360, 270, 180, 90]],
    [1000, 10, 'leading', 1, [901, 811, 721, 631, 541, 451, 361, 271, 181, 91]],
    [10, 3, 'leading', 0, [6, 4, 2]],
    // trailing: round(1000 - i * 100) - 1.
    [1000, 10, 'trailing', 0, [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]],
    // trailing: round(1000 - i * 1000/3) - 1: 999, round(666.67) - 1 = 666, round(333.33) - 1 = 332.
    [1000, 3, 'trailing', 0, [999, 666, 332]],
    [10, 3, 'trailing', 0, [9, 6, 2]],
  ];
  it.each(cases)('T=%i n=%i %s (stepsOffset %i)', (T, n, timestepSpacing, stepsOffset, want) => {
    const s = new DPMSolverMultistepScheduler({ numTrainTimesteps: T, timestepSpacing, stepsOffset });
    s.setTimesteps(n);
    expect(Array.from(s.timesteps)).toEqual(want);
    expect(s.numInferenceSteps).toBe(want.length);
  });

  it('builds sigma = sqrt((1 - ab) / ab) per timestep plus the final sigma (0, or sigma_0 for "sigma_min")', () => {
    for (const finalSigmasType of ['zero', 'sigma_min'] as const) {
      const s = tiny({ finalSigmasType });
      s.setTimesteps(3);
      const want = [9, 6, 3].map((t) => Math.sqrt((1 - AB[t]) / AB[t]));
      want.push(finalSigmasType === 'zero' ? 0 : Math.sqrt((1 - AB[0]) / AB[0]));
      const got = Array.from(s.sigmas);
      for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 5);
    }
  });

  it('lambdaMinClipped drops the timesteps whose lambda is below it (diffusers: last_timestep = T - clipped)', () => {
    // lambda_t for t = 7, 8, 9 of the tiny schedule is below -0.9; the grid then spans 0..6.
    expect([6, 7].map(lambda).map((l) => l < -0.9)).toEqual([false, true]);
    const s = tiny({ lambdaMinClipped: -0.9 });
    s.setTimesteps(3);
    // linspace(0, 7 - 1, 4) without its 0: 6, 4, 2.
    expect(Array.from(s.timesteps)).toEqual([6, 4, 2]);
    expect(() => tiny({ lambdaMinClipped: 50 }).setTimesteps(2)).toThrow(/lambdaMinClipped 50 leaves 0 timestep/);
  });

  it('rejects bad step counts, an offset past T-1 and grids that repeat a timestep', () => {
    const s = tiny();
    expect(() => s.setTimesteps(0)).toThrow(/numInferenceSteps must be an integer in 1\.\.numTrainTimesteps \(10\), got 0/);
    expect(() => s.setTimesteps(2.5)).toThrow(/got 2\.5/);
    expect(() => tiny({ timestepSpacing: 'leading', stepsOffset: 9 }).setTimesteps(3)).toThrow(/past the last training timestep 9/);
    // linspace with n = T = 10: round(i * 0.9) repeats 4 (i = 4, 5).
    expect(() => s.setTimesteps(10)).toThrow(/repeat timestep 4.*fewer steps/);
  });
});

describe('DPMSolverMultistepScheduler.step (hand-derived values)', () => {
  it('DPM-Solver++ 2M, epsilon: first-order (= DDIM), second-order midpoint (Algorithm 2), final step to sigma 0 (= x_0)', () => {
    const got = run3(tiny());
    // Step 1 (t = 9 -> 6): first order, which is DDIM: x' = alpha_6 x0 + sigma_6 (x - alpha_9 x0) / sigma_9.
    const x0a = zip(X, OUT[0], (x, e) => (x - sigma(9) * e) / alpha(9));
    const x1 = zip(X, x0a, (x, x0) => alpha(6) * x0 + (sigma(6) * (x - alpha(9) * x0)) / sigma(9));
    expectClose(tf.tensor(got[0]), x1);
    // Step 2 (t = 6 -> 3): DPM-Solver++(2M), Lu et al. 2022 Algorithm 2, r = h_prev / h,
    // D = (1 + 1/(2r)) x0_6 - 1/(2r) x0_9, x' = (sigma_3 / sigma_6) x - alpha_3 (e^{-h} - 1) D.
    const x0b = zip(x1, OUT[1], (x, e) => (x - sigma(6) * e) / alpha(6));
    const h = lambda(3) - lambda(6);
    const r = (lambda(6) - lambda(9)) / h;
    const dd = zip(x0b, x0a, (a, b) => (1 + 1 / (2 * r)) * a - (1 / (2 * r)) * b);
    const x2 = zip(x1, dd, (x, d) => (sigma(3) / sigma(6)) * x - alpha(3) * (Math.exp(-h) - 1) * d);
    expectClose(tf.tensor(got[1]), x2);
    // Step 3 (t = 3 -> sigma 0): the first-order step to sigma 0 returns the x_0 prediction itself.
    const x0c = zip(x2, OUT[2], (x, e) => (x - sigma(3) * e) / alpha(3));
    expectClose(tf.tensor(got[2]), x0c);
  });

  it('v_prediction: x_0 = alpha x - sigma v, same updates', () => {
    const got = run3(tiny({ predictionType: 'v_prediction' }));
    const x0a = zip(X, OUT[0], (x, v) => alpha(9) * x - sigma(9) * v);
    const x1 = zip(X, x0a, (x, x0) => alpha(6) * x0 + (sigma(6) * (x - alpha(9) * x0)) / sigma(9));
    expectClose(tf.tensor(got[0]), x1);
    const x0b = zip(x1, OUT[1], (x, v) => alpha(6) * x - sigma(6) * v);
    const h = lambda(3) - lambda(6);
    const r = (lambda(6) - lambda(9)) / h;
    const dd = zip(x0b, x0a, (a, b) => (1 + 1 / (2 * r)) * a - (1 / (2 * r)) * b);
    const x2 = zip(x1, dd, (x, d) => (sigma(3) / sigma(6)) * x - alpha(3) * (Math.exp(-h) - 1) * d);
    expectClose(tf.tensor(got[1]), x2);
    expectClose(tf.tensor(got[2]), zip(x2, OUT[2], (x, v) => alpha(3) * x - sigma(3) * v));
  });

  it('sample prediction with the heun variant: x_t = ... + alpha_t ((e^{-h} - 1)/h + 1) D1', () => {
    const got = run3(tiny({ predictionType: 'sample', solverType: 'heun' }));
    const x1 = zip(X, OUT[0], (x, x0) => alpha(6) * x0 + (sigma(6) * (x - alpha(9) * x0)) / sigma(9));
    expectClose(tf.tensor(got[0]), x1);
    const h = lambda(3) - lambda(6);
    const r = (lambda(6) - lambda(9)) / h;
    const x2 = x1.map((x, i) => {
      const d1 = (OUT[1][i] - OUT[0][i]) / r;
      return (sigma(3) / sigma(6)) * x - alpha(3) * (Math.exp(-h) - 1) * OUT[1][i] + alpha(3) * ((Math.exp(-h) - 1) / h + 1) * d1;
    });
    expectClose(tf.tensor(got[1]), x2);
    expectClose(tf.tensor(got[2]), OUT[2]);
  });

  it('DPM-Solver (noise form) with finalSigmasType sigma_min: x_t = (alpha_t/alpha_s) x - sigma_t (e^h - 1) (eps + D1 / 2)', () => {
    const got = run3(tiny({ algorithmType: 'dpmsolver', finalSigmasType: 'sigma_min' }));
    // The final sigma is sigma_0, so the last step is a DDIM step to t = 0.
    const first = (x: number[], e: number[], s: number, t: number) => {
      const hh = lambda(t) - lambda(s);
      return zip(x, e, (xi, ei) => (alpha(t) / alpha(s)) * xi - sigma(t) * (Math.exp(hh) - 1) * ei);
    };
    const x1 = first(X, OUT[0], 9, 6);
    expectClose(tf.tensor(got[0]), x1);
    const h = lambda(3) - lambda(6);
    const r = (lambda(6) - lambda(9)) / h;
    const x2 = x1.map((x, i) => {
      const d1 = (OUT[1][i] - OUT[0][i]) / r;
      return (alpha(3) / alpha(6)) * x - sigma(3) * (Math.exp(h) - 1) * OUT[1][i] - 0.5 * sigma(3) * (Math.exp(h) - 1) * d1;
    });
    expectClose(tf.tensor(got[1]), x2);
    // lowerOrderFinal (n < 15): first order to sigma_0; DDIM form alpha_0 x0 + sigma_0 eps.
    const x0c = zip(x2, OUT[2], (x, e) => (x - sigma(3) * e) / alpha(3));
    expectClose(tf.tensor(got[2]), zip(x0c, OUT[2], (x0, e) => alpha(0) * x0 + sigma(0) * e));
  });

  it('solverOrder 1 is DDIM at every step; without lowerOrderFinal and with sigma_min the last step stays second order', () => {
    const ddim = (x: number[], e: number[], s: number, t: number) =>
      zip(x, e, (xi, ei) => alpha(t) * ((xi - sigma(s) * ei) / alpha(s)) + sigma(t) * ei);
    const got1 = run3(tiny({ solverOrder: 1 }));
    const x1 = ddim(X, OUT[0], 9, 6);
    const x2 = ddim(x1, OUT[1], 6, 3);
    expectClose(tf.tensor(got1[1]), x2);
    // Second order at the last step (3 -> sigma_0): differs from a first-order step.
    const got2 = run3(tiny({ lowerOrderFinal: false, finalSigmasType: 'sigma_min' }));
    const got2First = run3(tiny({ lowerOrderFinal: true, finalSigmasType: 'sigma_min' }));
    expectClose(tf.tensor(got2[1]), got2First[1]);
    expect(Math.abs(got2[2][0] - got2First[2][0])).toBeGreaterThan(1e-4);
    // eulerAtFinal forces the first order back.
    const got3 = run3(tiny({ lowerOrderFinal: false, finalSigmasType: 'sigma_min', eulerAtFinal: true }));
    expectClose(tf.tensor(got3[2]), got2First[2]);
  });

  it('clipSample clips x_0; thresholding clamps at the per-image quantile and rescales (diffusers _threshold_sample)', () => {
    const big = [3, -0.5, 0.25];
    const s = tiny({ predictionType: 'sample', clipSample: true });
    s.setTimesteps(3);
    const x = tf.tensor(X, SHAPE);
    const m = tf.tensor(big, SHAPE);
    const r = s.step(m, 9, x);
    expectClose(r.predOriginalSample, [1, -0.5, 0.25]);
    tf.dispose([x, m, r.prevSample, r.predOriginalSample]);
    // torch.quantile([0.25, 0.5, 3], 0.5) = 0.5 -> s = clamp(0.5, 1, 2) = 1: plain clipping.
    // Quantile 0.75: rank 1.5 -> 0.5 + 0.5 (3 - 0.5) = 1.75 -> clamp to [-1.75, 1.75], / 1.75.
    const t = tf.tensor([[3, -0.5, 0.25], [0.1, 0.2, -4]]);
    expectClose(tf.tidy(() => thresholdSample(t, 0.5, 2)), [1, -0.5, 0.25, 0.1, 0.2, -1]);
    const q2 = 0.2 + 0.5 * (4 - 0.2); // 2.1 -> clamp to max 2
    expectClose(tf.tidy(() => thresholdSample(t, 0.75, 2)), [1.75 / 1.75, -0.5 / 1.75, 0.25 / 1.75, 0.1 / 2, 0.2 / 2, -2 / 2]);
    expect(q2).toBeGreaterThan(2);
    t.dispose();
  });

  it('learned variance: uses the first half of the output channels (epsilon)', () => {
    const a = run3(tiny());
    const s = tiny({ varianceType: 'learned_range' });
    s.setTimesteps(3);
    let x = tf.tensor(X, SHAPE);
    for (let i = 0; i < 3; i++) {
      const m = tf.tensor([...OUT[i], 9, 9, 9], [1, 1, 1, 6]);
      const r = s.step(m, s.timesteps[i], x);
      expectClose(r.prevSample, a[i]);
      tf.dispose([m, x, r.predOriginalSample]);
      x = r.prevSample;
    }
    x.dispose();
  });
});

describe('DPMSolverMultistepScheduler state, errors and memory', () => {
  it('setTimesteps resets the multistep state (a second run gives the same result)', () => {
    const s = tiny();
    const a = run3(s);
    // Abandon a run midway, then start again.
    s.setTimesteps(3);
    const x = tf.tensor(X, SHAPE);
    const m = tf.tensor(OUT[2], SHAPE);
    const r = s.step(m, 9, x);
    tf.dispose([x, m, r.prevSample, r.predOriginalSample]);
    expect(s.stepIndex).toBe(1);
    expect(run3(s)).toEqual(a);
  });

  it('keeps its history when each step runs inside a tf.tidy (as in a sampling loop)', () => {
    const a = run3(tiny());
    const s = tiny();
    s.setTimesteps(3);
    let x = tf.tensor(X, SHAPE);
    for (let i = 0; i < 3; i++) {
      const next = tf.tidy(() => {
        const r = s.step(tf.tensor(OUT[i], SHAPE), s.timesteps[i], x);
        return r.prevSample;
      });
      expectClose(next, a[i]);
      x.dispose();
      x = next;
    }
    x.dispose();
  });

  it('checks its arguments before changing any state', () => {
    const s = tiny();
    const x = tf.tensor(X, SHAPE);
    const m = tf.tensor(OUT[0], SHAPE);
    expect(() => s.step(m, 9, x)).toThrow(/numInferenceSteps is not set; call setTimesteps/);
    s.setTimesteps(3);
    expect(() => s.step(m, 8, x)).toThrow(/timestep 8 is not in the schedule set by setTimesteps\(3\)/);
    expect(() => s.step(m, 10, x)).toThrow(/timestep must be an integer in 0\.\.numTrainTimesteps-1 \(9\), got 10/);
    expect(() => s.step(tf.zeros([1, 3]), 9, x)).toThrow(/modelOutput shape \[1,3\] must be \[1,1,1,3\]/);
    expect(() => s.step(m, 9, x, { eta: 0.5 })).toThrow(/options\.eta must be 0 or absent/);
    expect(s.stepIndex).toBeNull();
    const r = s.step(m, 9, x);
    expect(() => s.step(m, 3, r.prevSample)).toThrow(/expected timestep 6 \(step 2 of 3\), got 3/);
    expect(() => s.step(tf.zeros([2, 1, 1, 3]), 6, tf.zeros([2, 1, 1, 3]))).toThrow(/differs from the previous step/);
    const r2 = s.step(m, 6, r.prevSample);
    const r3 = s.step(m, 3, r2.prevSample);
    expect(() => s.step(m, 3, r3.prevSample)).toThrow(/all 3 steps were taken/);
    tf.dispose([x, m, r.prevSample, r.predOriginalSample, r2.prevSample, r2.predOriginalSample, r3.prevSample, r3.predOriginalSample]);
  });

  it('leaves no tensors behind: after a full run, and when a run is restarted midway', () => {
    for (const config of [{}, { solverOrder: 3 as const, algorithmType: 'dpmsolver' as const, finalSigmasType: 'sigma_min' as const }, { thresholding: true }]) {
      const s = new DPMSolverMultistepScheduler(config);
      const x = tf.tensor(X, SHAPE);
      const m = tf.tensor(OUT[0], SHAPE);
      expect(
        leakedTensors(() => {
          s.setTimesteps(20);
          let cur = tf.clone(x);
          for (const t of s.timesteps) {
            const r = s.step(m, t, cur);
            tf.dispose([cur, r.predOriginalSample]);
            cur = r.prevSample;
          }
          cur.dispose();
          s.setTimesteps(5);
          const r = s.step(m, s.timesteps[0], x);
          tf.dispose([r.prevSample, r.predOriginalSample]);
          s.setTimesteps(5);
        }),
        JSON.stringify(config),
      ).toBe(0);
      tf.dispose([x, m]);
    }
  });

  it('survives a zero alpha-bar (zero terminal SNR): replaced by 2^-24 as diffusers, finite sigmas and samples', () => {
    // Betas of nearly 1 make the float32 alpha-bar underflow to exactly 0 for the last timesteps.
    const betas = [0.1, 0.2, 0.3, 0.4, 0.5, 0.999999, 0.999999, 0.999999, 0.999999, 0.999999, 0.999999, 0.999999, 0.999999];
    const s = new DPMSolverMultistepScheduler({ numTrainTimesteps: betas.length, trainedBetas: betas });
    expect(s.alphasCumprod[betas.length - 1]).toBe(2 ** -24);
    expect(Array.from(s.trainSigmas).every(Number.isFinite)).toBe(true);
    expect(s.trainSigmas[betas.length - 1]).toBeCloseTo(Math.sqrt(2 ** 24 - 1), 0);
    s.setTimesteps(4);
    let x = tf.tensor(X, SHAPE);
    for (const t of s.timesteps) {
      const m = tf.tensor(OUT[0], SHAPE);
      const r = s.step(m, t, x);
      expect(Array.from(r.prevSample.dataSync()).every(Number.isFinite)).toBe(true);
      tf.dispose([m, x, r.predOriginalSample]);
      x = r.prevSample;
    }
    x.dispose();
  });
});

describe('DPMSolverMultistepScheduler convergence (analytic Gaussian data, exact probability-flow ODE solution)', () => {
  // Data x_0 ~ N(mu, s^2): the probability-flow ODE keeps z = (x_t - sqrt(ab) mu) / sqrt(ab s^2 + 1 - ab)
  // fixed, so from x_T the exact x at alpha-bar a is sqrt(a) mu + sqrt(a s^2 + 1 - a) z (x_0 = mu + s z).
  const S = 0.5;
  const mu = tf.tidy(() => tf.reshape(tf.mul(tf.cos(tf.linspace(0, 3, 32)), 0.6), [2, 4, 4, 1])) as tf.Tensor4D;
  const xT = new Generator(3).normal([2, 4, 4, 1]) as tf.Tensor4D;
  afterAll(() => tf.dispose([mu, xT]));

  /** Max |x_end - exact| after n steps from x_T, where x_end is at alpha-bar `abEnd`. */
  function error(sched: DDIMScheduler | DPMSolverMultistepScheduler, n: number, abEnd = 1): number {
    const model = gaussianModel(mu, S, sched.alphasCumprod);
    sched.setTimesteps(n);
    const T = sched.config.numTrainTimesteps;
    const abT = sched.alphasCumprod[T - 1];
    const exact = tf.tidy(() => {
      const z = tf.div(tf.sub(xT, tf.mul(mu, Math.sqrt(abT))), Math.sqrt(abT * S * S + 1 - abT));
      return tf.add(tf.mul(mu, Math.sqrt(abEnd)), tf.mul(z, Math.sqrt(abEnd * S * S + 1 - abEnd)));
    });
    // Both grids start at t = T-1 (DDIM's "trailing" and DPM's "linspace").
    let x: tf.Tensor = tf.clone(xT);
    for (const t of sched.timesteps) {
      const eps = model.forward({ sample: x as tf.Tensor4D, timesteps: [t, t] }).sample;
      const r = sched.step(eps, t, x);
      tf.dispose([eps, x, r.predOriginalSample]);
      x = r.prevSample;
    }
    const err = tf.tidy(() => tf.max(tf.abs(tf.sub(x, exact))).dataSync()[0]);
    tf.dispose([x, exact]);
    return err;
  }
  const fmt = (e: Record<string, number>) => Object.entries(e).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ');

  it('DPM-Solver++(2M) (defaults, to sigma 0) beats DDIM at 10 and 20 steps and converges at second order', () => {
    const before = tf.memory().numTensors;
    const ddim = (n: number) => error(new DDIMScheduler({ timestepSpacing: 'trailing', clipSample: false }), n);
    const dpm = (n: number) => error(new DPMSolverMultistepScheduler(), n);
    const e = { ddim10: ddim(10), ddim20: ddim(20), ddim40: ddim(40), dpm10: dpm(10), dpm20: dpm(20), dpm40: dpm(40) };
    console.log('Gaussian data, x_0 error:', fmt(e));
    expect(e.dpm10).toBeLessThan(e.ddim10);
    expect(e.dpm20).toBeLessThan(e.ddim20 / 2.5);
    expect(e.dpm40).toBeLessThan(e.ddim40 / 4);
    // Halving the step size: error / 2 for DDIM (first order), / 4 for DPM-Solver++(2M) (second order).
    expect(e.ddim20 / e.ddim40).toBeLessThan(2.5);
    expect(e.dpm20 / e.dpm40).toBeGreaterThan(3.2);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('zero terminal SNR with v-prediction (the issue G setting): starts from pure noise and converges at second order', () => {
    // Exact posterior mean for Gaussian data: x0hat = mu + sqrt(a) s^2 (x - sqrt(a) mu) / (a s^2 + 1 - a),
    // eps-hat = (x - sqrt(a) mu) sqrt(1 - a) / (a s^2 + 1 - a), and v = sqrt(a) eps - sqrt(1 - a) x0.
    // Written without dividing by sqrt(a), so it holds at alpha-bar = 2^-24 (t = T-1).
    const before = tf.memory().numTensors;
    const vError = (n: number, solverOrder: 1 | 2) => {
      const sched = new DPMSolverMultistepScheduler({ predictionType: 'v_prediction', rescaleBetasZeroSnr: true, solverOrder });
      const T = sched.config.numTrainTimesteps;
      expect(sched.alphasCumprod[T - 1]).toBe(2 ** -24);
      sched.setTimesteps(n);
      expect(sched.timesteps[0]).toBe(T - 1);
      const abT = sched.alphasCumprod[T - 1];
      const exact = tf.tidy(() => {
        const z = tf.div(tf.sub(xT, tf.mul(mu, Math.sqrt(abT))), Math.sqrt(abT * S * S + 1 - abT));
        return tf.add(mu, tf.mul(z, S));
      });
      let x: tf.Tensor = tf.clone(xT);
      for (const t of sched.timesteps) {
        const a = sched.alphasCumprod[t];
        const v = tf.tidy(() => {
          const d = a * S * S + 1 - a;
          const centred = tf.sub(x, tf.mul(mu, Math.sqrt(a)));
          const x0 = tf.add(mu, tf.mul(centred, (Math.sqrt(a) * S * S) / d));
          const eps = tf.mul(centred, Math.sqrt(1 - a) / d);
          return tf.sub(tf.mul(eps, Math.sqrt(a)), tf.mul(x0, Math.sqrt(1 - a)));
        });
        const r = sched.step(v, t, x);
        tf.dispose([v, x, r.predOriginalSample]);
        x = r.prevSample;
      }
      const err = tf.tidy(() => tf.max(tf.abs(tf.sub(x, exact))).dataSync()[0]);
      tf.dispose([x, exact]);
      return err;
    };
    const e = { order1_20: vError(20, 1), order2_10: vError(10, 2), order2_20: vError(20, 2), order2_40: vError(40, 2) };
    console.log('Gaussian data, zero terminal SNR, v-prediction:', fmt(e));
    expect(Object.values(e).every(Number.isFinite)).toBe(true);
    expect(e.order2_20).toBeLessThan(e.order1_20 / 2);
    expect(e.order2_20 / e.order2_40).toBeGreaterThan(3);
    expect(e.order2_40).toBeLessThan(1e-2);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('with 20 steps, orders 2 and 3 are several times more accurate than order 1 (DDIM-equivalent) on the same grid', () => {
    const e: Record<string, number> = {};
    for (const solverOrder of [1, 2, 3] as const) e[`order${solverOrder}`] = error(new DPMSolverMultistepScheduler({ solverOrder }), 20);
    console.log('Gaussian data, 20 steps:', fmt(e));
    expect(e.order2).toBeLessThan(e.order1 / 2.5);
    expect(e.order3).toBeLessThan(e.order1 / 2.5);
  });
});
