import { describe, expect, it } from 'vitest';
import type { TimestepSpacing } from './scheduler';
import { describeValue, inferenceTimesteps, roundHalfEven, TIMESTEP_SPACINGS, trainingTimesteps } from './timesteps';

function grid(timestepSpacing: TimestepSpacing, numInferenceSteps: number, numTrainTimesteps = 1000, stepsOffset = 0) {
  return Array.from(inferenceTimesteps({ numTrainTimesteps, numInferenceSteps, timestepSpacing, stepsOffset }));
}

describe('roundHalfEven', () => {
  it('rounds ties to even like numpy.round and everything else to nearest', () => {
    expect([0.5, 1.5, 2.5, 3.5, 812.5, 937.5].map(roundHalfEven)).toEqual([0, 2, 2, 4, 812, 938]);
    expect([0.49, 0.51, 2.4999, 7, 998.6].map(roundHalfEven)).toEqual([0, 1, 2, 7, 999]);
  });
});

describe('trainingTimesteps', () => {
  it('is T-1 down to 0', () => {
    expect(Array.from(trainingTimesteps(4))).toEqual([3, 2, 1, 0]);
  });
});

describe('inferenceTimesteps', () => {
  it('"leading" with 50 of 1000 steps gives 980, 960, ..., 0', () => {
    expect(grid('leading', 50)).toEqual(Array.from({ length: 50 }, (_, i) => 980 - 20 * i));
  });

  it('"leading" uses floor(T / n) as the stride and adds stepsOffset', () => {
    expect(grid('leading', 7)).toEqual([852, 710, 568, 426, 284, 142, 0]);
    expect(grid('leading', 50, 1000, 1)).toEqual(Array.from({ length: 50 }, (_, i) => 981 - 20 * i));
  });

  it('"leading" refuses an offset that passes the last training timestep', () => {
    expect(() => grid('leading', 1000, 1000, 1)).toThrow(
      /stepsOffset 1 .* gives timestep 1000, past the last training timestep 999/,
    );
  });

  it('"trailing" with 50 of 1000 steps gives 999, 979, ..., 19', () => {
    expect(grid('trailing', 50)).toEqual(Array.from({ length: 50 }, (_, i) => 999 - 20 * i));
  });

  it('"trailing" rounds half to even like numpy (values from numpy)', () => {
    expect(grid('trailing', 16)).toEqual([
      999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61,
    ]);
    expect(grid('trailing', 7)).toEqual([999, 856, 713, 570, 428, 285, 142]);
    expect(grid('trailing', 3)).toEqual([999, 666, 332]);
  });

  it('"trailing" gives exactly n timesteps where numpy arange would give n + 1', () => {
    // np.arange(50, 0, -50/29) has 30 entries; diffusers would end with timestep -1.
    const ts = grid('trailing', 29, 50);
    expect(ts).toHaveLength(29);
    expect(Math.min(...ts)).toBeGreaterThanOrEqual(0);
  });

  it('"linspace" rounds evenly spaced points from T-1 to 0 (values from numpy)', () => {
    expect(grid('linspace', 3)).toEqual([999, 500, 0]);
    expect(grid('linspace', 7)).toEqual([999, 832, 666, 500, 333, 166, 0]);
    expect(grid('linspace', 10)).toEqual([999, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
    expect(grid('linspace', 5, 10)).toEqual([9, 7, 4, 2, 0]);
    expect(grid('linspace', 1)).toEqual([0]);
  });

  it('every spacing gives n distinct, descending, in-range timesteps for every n', () => {
    for (const T of [1, 50, 1000]) {
      for (const spacing of TIMESTEP_SPACINGS) {
        for (let n = 1; n <= T; n++) {
          const ts = grid(spacing, n, T);
          const ok = ts.length === n && ts.every((t, i) => t >= 0 && t < T && (i === 0 || t < ts[i - 1]));
          if (!ok) expect.fail(`${spacing} T=${T} n=${n}: ${ts}`);
        }
      }
    }
  });

  it('n = T gives every training timestep for every spacing', () => {
    for (const spacing of TIMESTEP_SPACINGS) {
      expect(grid(spacing, 1000)).toEqual(Array.from(trainingTimesteps(1000)));
    }
  });
});

describe('describeValue', () => {
  it('renders values compactly for error messages', () => {
    expect(describeValue('cosine')).toBe('"cosine"');
    expect(describeValue(1.5)).toBe('1.5');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue([1, 2, 3])).toBe('an array of length 3');
    expect(describeValue({ a: 'x'.repeat(100) })).toMatch(/\.\.\.$/);
  });
});
