import { describe, expect, it } from 'vitest';
import { Z_975, mean, normalInterval95, quantile, standardDeviation } from './summary-statistics';

describe('summary statistics', () => {
  it('computes mean and standard deviation with ddof', () => {
    expect(mean([1, 2, 3, 6])).toBe(3);
    expect(mean([])).toBeNaN();
    // deviations -2,-1,0,3: sum of squares 14
    expect(standardDeviation([1, 2, 3, 6], 1)).toBeCloseTo(Math.sqrt(14 / 3), 15);
    expect(standardDeviation([1, 2, 3, 6], 0)).toBeCloseTo(Math.sqrt(14 / 4), 15);
    expect(standardDeviation([1], 1)).toBeNaN();
  });

  it('interpolates quantiles like numpy.quantile (linear)', () => {
    expect(quantile([4, 1, 3, 2], 0.25)).toBeCloseTo(1.75, 15);
    expect(quantile([4, 1, 3, 2], 0.5)).toBeCloseTo(2.5, 15);
    expect(quantile([10, 20, 30], 0.975)).toBeCloseTo(29.5, 13);
    expect(quantile([7], 0.3)).toBe(7);
  });

  it('builds the normal-approximation 95% interval', () => {
    expect(Z_975).toBeCloseTo(1.959964, 6);
    const [lo, hi] = normalInterval95([1, 2, 3, 6]);
    const half = (Z_975 * Math.sqrt(14 / 3)) / 2;
    expect(lo).toBeCloseTo(3 - half, 14);
    expect(hi).toBeCloseTo(3 + half, 14);
    expect(normalInterval95([1])).toEqual([NaN, NaN]);
  });
});
