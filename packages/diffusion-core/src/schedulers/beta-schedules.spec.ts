import { describe, expect, it } from 'vitest';
import {
  alphasCumprodFromBetas,
  betasForAlphaBar,
  betaScheduleNames,
  makeBetas,
  registerBetaSchedule,
  rescaleZeroTerminalSnr,
  toFloat32Betas,
  unregisterBetaSchedule,
} from './beta-schedules';

/**
 * Asserts `actual` equals a reference value printed with `digits` significant digits: within 1e-6
 * relative, or within half a unit in the last printed digit when that is looser.
 */
function expectMatchesPrinted(actual: number, expected: number, digits: number): void {
  const halfUlp = 0.5 * 10 ** (Math.floor(Math.log10(Math.abs(expected))) - digits + 1);
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(Math.max(1e-6 * Math.abs(expected), halfUlp));
}

function alphasCumprod(schedule: string, betaStart = 0.0001, betaEnd = 0.02): Float32Array {
  return alphasCumprodFromBetas(toFloat32Betas(makeBetas({ schedule, numTrainTimesteps: 1000, betaStart, betaEnd })));
}

describe('built-in beta schedules (float32 references)', () => {
  it('squaredcos_cap_v2 matches the float32 reference alpha-bars', () => {
    const ac = alphasCumprod('squaredcos_cap_v2');
    expectMatchesPrinted(ac[0], 0.99995869, 8);
    expectMatchesPrinted(ac[499], 0.49384311, 8);
    expectMatchesPrinted(ac[998], 2.42876e-6, 6);
    expectMatchesPrinted(ac[999], 2.42873e-9, 6);
  });

  it('squaredcos_cap_v2 caps the last beta at 0.999', () => {
    const betas = makeBetas({ schedule: 'squaredcos_cap_v2', numTrainTimesteps: 1000, betaStart: 0.1, betaEnd: 0.2 });
    expect(betas[999]).toBe(0.999);
    expect(betas[998]).toBeLessThan(0.999);
    expect(Math.max(...betas)).toBe(0.999);
  });

  it('linear matches the float32 reference alpha-bars', () => {
    const ac = alphasCumprod('linear');
    expectMatchesPrinted(ac[0], 0.9999, 4);
    expect(ac[0]).toBe(Math.fround(1 - Math.fround(0.0001)));
    expectMatchesPrinted(ac[499], 0.0785872, 6);
    expectMatchesPrinted(ac[999], 4.03583e-5, 6);
  });

  it('linear betas run from betaStart to betaEnd in equal steps', () => {
    const b = makeBetas({ schedule: 'linear', numTrainTimesteps: 5, betaStart: 0.1, betaEnd: 0.5 });
    expect(Array.from(b)).toEqual([0.1, 0.2, 0.30000000000000004, 0.4, 0.5]);
  });

  it('scaled_linear (0.00085..0.012) matches the float32 reference alpha-bars', () => {
    const ac = alphasCumprod('scaled_linear', 0.00085, 0.012);
    expectMatchesPrinted(ac[0], 0.99915, 5);
    expectMatchesPrinted(ac[499], 0.2776695, 7);
    expectMatchesPrinted(ac[999], 0.00466009, 6);
  });

  it('scaled_linear is linear in sqrt(beta)', () => {
    const b = makeBetas({ schedule: 'scaled_linear', numTrainTimesteps: 3, betaStart: 0.01, betaEnd: 0.09 });
    expect(b[0]).toBeCloseTo(0.01, 15);
    expect(b[1]).toBeCloseTo(0.04, 15);
    expect(b[2]).toBeCloseTo(0.09, 15);
  });

  it('alpha-bar is a float32 running product, not a float64 product cast at the end', () => {
    const betas = toFloat32Betas(
      makeBetas({ schedule: 'squaredcos_cap_v2', numTrainTimesteps: 1000, betaStart: 0.1, betaEnd: 0.2 }),
    );
    const ac = alphasCumprodFromBetas(betas);
    let acc = 1;
    for (let i = 0; i < betas.length; i++) {
      acc = Math.fround(acc * Math.fround(1 - betas[i]));
      expect(ac[i]).toBe(acc);
    }
  });
});

describe('betasForAlphaBar', () => {
  it('discretises alpha-bar(t) = 1 - t/2 into the matching betas', () => {
    const b = betasForAlphaBar({ numTrainTimesteps: 4, alphaBar: (t) => 1 - t / 2 });
    // beta_i = 1 - (1 - (i+1)/8) / (1 - i/8)
    expect(Array.from(b)).toEqual([0, 1, 2, 3].map((i) => 1 - (1 - (i + 1) / 8) / (1 - i / 8)));
  });

  it('caps betas at maxBeta', () => {
    const b = betasForAlphaBar({ numTrainTimesteps: 2, alphaBar: (t) => 1 - t, maxBeta: 0.9 });
    expect(b[1]).toBe(0.9);
  });
});

describe('beta schedule registry', () => {
  it('lists the built-ins first', () => {
    expect(betaScheduleNames().slice(0, 3)).toEqual(['linear', 'scaled_linear', 'squaredcos_cap_v2']);
  });

  it('registers, uses, and unregisters a custom schedule', () => {
    registerBetaSchedule('constant_test', ({ numTrainTimesteps }) => new Array(numTrainTimesteps).fill(0.5));
    expect(betaScheduleNames()).toContain('constant_test');
    const ac = alphasCumprodFromBetas(
      toFloat32Betas(makeBetas({ schedule: 'constant_test', numTrainTimesteps: 3, betaStart: 0.1, betaEnd: 0.2 })),
    );
    expect(Array.from(ac)).toEqual([0.5, 0.25, 0.125]);
    expect(unregisterBetaSchedule('constant_test')).toBe(true);
    expect(betaScheduleNames()).not.toContain('constant_test');
    expect(unregisterBetaSchedule('constant_test')).toBe(false);
  });

  it('refuses duplicate names, bad arguments and removal of built-ins', () => {
    expect(() => registerBetaSchedule('linear', () => [])).toThrow(/"linear" is already registered/);
    expect(() => registerBetaSchedule('', () => [])).toThrow(/name must be a non-empty string/);
    expect(() => registerBetaSchedule('x', 42 as never)).toThrow(/fn must be a function/);
    expect(() => unregisterBetaSchedule('squaredcos_cap_v2')).toThrow(/built-in/);
  });

  it('rejects unknown schedules and schedules with the wrong length or out-of-range betas', () => {
    expect(() => makeBetas({ schedule: 'cosine', numTrainTimesteps: 10, betaStart: 0.1, betaEnd: 0.2 })).toThrow(
      'makeBetas: schedule must be one of linear, scaled_linear, squaredcos_cap_v2, got "cosine"',
    );
    registerBetaSchedule('short_test', () => [0.1, 0.2]);
    registerBetaSchedule('one_test', ({ numTrainTimesteps }) => new Array(numTrainTimesteps).fill(1));
    try {
      expect(() => makeBetas({ schedule: 'short_test', numTrainTimesteps: 3, betaStart: 0.1, betaEnd: 0.2 })).toThrow(
        /beta schedule "short_test" produced 2 betas, expected numTrainTimesteps = 3/,
      );
      expect(() => makeBetas({ schedule: 'one_test', numTrainTimesteps: 3, betaStart: 0.1, betaEnd: 0.2 })).toThrow(
        /beta schedule "one_test": every beta must be a finite number in \(0, 1\), got beta\[0\] = 1/,
      );
    } finally {
      unregisterBetaSchedule('short_test');
      unregisterBetaSchedule('one_test');
    }
  });
});

describe('rescaleZeroTerminalSnr (Lin et al. 2024, Algorithm 1)', () => {
  // Reference: the algorithm written out in float32 torch 1.13 (linspace in float64 then cast, as
  // diffusers does), outside this project, for the linear 1e-4..0.02 schedule with T = 1000.
  const linear = () => toFloat32Betas(makeBetas({ schedule: 'linear', numTrainTimesteps: 1000, betaStart: 0.0001, betaEnd: 0.02 }));

  it('matches float32 reference betas and alpha-bars; the terminal alpha-bar is exactly 0', () => {
    const b = rescaleZeroTerminalSnr(linear());
    const ac = alphasCumprodFromBetas(b);
    expectMatchesPrinted(b[0], 0.00010001659393310547, 6);
    expectMatchesPrinted(b[1], 0.00012063980102539062, 5);
    expectMatchesPrinted(b[499], 0.010271012783050537, 6);
    expectMatchesPrinted(b[998], 0.7522659301757812, 5); // a ratio of two alpha-bars near 0: float32 rounding shows
    expect(b[999]).toBe(1);
    expectMatchesPrinted(ac[0], 0.9998999834060669, 7);
    expectMatchesPrinted(ac[499], 0.07602876424789429, 5);
    expect(ac[998]).toBeGreaterThan(3e-9);
    expect(ac[998]).toBeLessThan(6e-9);
    expect(ac[999]).toBe(0);
  });

  it('keeps sqrt(alpha-bar_0) and is an affine map of sqrt(alpha-bar)', () => {
    const before = alphasCumprodFromBetas(linear());
    const after = alphasCumprodFromBetas(rescaleZeroTerminalSnr(linear()));
    const s0 = Math.sqrt(before[0]);
    const sT = Math.sqrt(before[999]);
    for (const t of [0, 100, 500, 900, 999]) {
      const expected = ((Math.sqrt(before[t]) - sT) * s0) / (s0 - sT);
      expect(Math.abs(Math.sqrt(after[t]) - expected)).toBeLessThan(2e-5);
    }
  });

  it('rejects fewer than 2 betas', () => {
    expect(() => rescaleZeroTerminalSnr(new Float32Array([0.5]))).toThrow(/at least 2 betas/);
  });
});
