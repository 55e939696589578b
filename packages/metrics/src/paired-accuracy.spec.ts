import { describe, expect, it } from 'vitest';
import { MetricInputError } from './metric-input';
import { pairedAccuracies } from './paired-accuracy';
import { createSeededRandom } from './seeded-random';

describe('pairedAccuracies', () => {
  it('gives hand-computed accuracies and differences, per group and overall', () => {
    const r = pairedAccuracies({
      arms: ['base', 'aligned'],
      outcomes: [
        [[1, 0, 0, 0], [1, 1, 0, 0]], // 1/4, 2/4 -> 3/8
        [[1, 1, 0, 0], [1, 1, 1, 1]], // 2/4, 4/4 -> 6/8
      ],
      contrasts: [['aligned', 'base']],
      samples: 200,
    });
    expect(r.arms.map((a) => a.accuracy)).toEqual([3 / 8, 6 / 8]);
    expect(r.arms[0].perGroup).toEqual([0.25, 0.5]);
    expect(r.contrasts[0]).toMatchObject({ a: 'aligned', b: 'base', difference: 3 / 8, perGroup: [0.25, 0.5] });
    expect(r).toMatchObject({ numGroups: 2, numItems: 4, samples: 200, level: 0.95 });
    for (const a of r.arms) expect(a.ci[0]).toBeLessThanOrEqual(a.ci[1]);
  });

  it('gives a zero-width interval for the difference of identical arms, however the draws fall', () => {
    const o = [[1, 0, 1, 1, 0, 0, 1], [0, 0, 1, 1, 1, 0, 1]];
    const r = pairedAccuracies({ arms: ['a', 'b'], outcomes: [o, o], contrasts: [['a', 'b']], samples: 300 });
    expect(r.contrasts[0].ci).toEqual([0, 0]);
    expect(r.arms[0].ci[1]).toBeGreaterThan(r.arms[0].ci[0]);
  });

  it('matches the normal approximation of a paired difference on many items, and is narrower than an unpaired one', () => {
    const n = 4000;
    const rnd = createSeededRandom(7);
    const a = Array.from({ length: n }, () => (rnd.nextFloat() < 0.6 ? 1 : 0));
    // b agrees with a except on ~10% of the items, where it is right 80% of the time.
    const b = a.map((v) => (rnd.nextFloat() < 0.1 ? (rnd.nextFloat() < 0.8 ? 1 : 0) : v));
    const r = pairedAccuracies({ arms: ['a', 'b'], outcomes: [[a], [b]], contrasts: [['b', 'a']], samples: 2000, seed: 3 });
    const d = b.map((v, i) => v - a[i]);
    const md = d.reduce((s, v) => s + v, 0) / n;
    const sdd = Math.sqrt(d.reduce((s, v) => s + (v - md) ** 2, 0) / (n - 1));
    const half = 1.96 * sdd / Math.sqrt(n);
    expect(r.contrasts[0].difference).toBeCloseTo(md, 12);
    expect(r.contrasts[0].ci[0]).toBeCloseTo(md - half, 2);
    expect(r.contrasts[0].ci[1]).toBeCloseTo(md + half, 2);
    const width = r.contrasts[0].ci[1] - r.contrasts[0].ci[0];
    expect(Math.abs(width - 2 * half) / (2 * half)).toBeLessThan(0.15);
    const pa = r.arms[0].accuracy;
    const pb = r.arms[1].accuracy;
    const unpaired = 2 * 1.96 * Math.sqrt((pa * (1 - pa) + pb * (1 - pb)) / n);
    expect(width).toBeLessThan(unpaired / 2);
  });

  it('widens the interval when the groups disagree and are resampled', () => {
    const n = 200;
    const g0 = Array.from({ length: n }, (_, i) => (i % 10 < 3 ? 1 : 0)); // 0.3
    const g1 = Array.from({ length: n }, (_, i) => (i % 10 < 9 ? 1 : 0)); // 0.9
    const zero = Array.from({ length: n }, () => 0);
    const args = { arms: ['x', 'z'], outcomes: [[g0, g1], [zero, zero]], contrasts: [['x', 'z']] as Array<[string, string]>, samples: 500 };
    const fixed = pairedAccuracies({ ...args, resampleGroups: false });
    const resampled = pairedAccuracies({ ...args, resampleGroups: true });
    expect(fixed.arms[0].accuracy).toBeCloseTo(0.6, 12);
    const w = (c: [number, number]) => c[1] - c[0];
    expect(w(resampled.contrasts[0].ci)).toBeGreaterThan(3 * w(fixed.contrasts[0].ci));
    // Both groups drawn twice: 0.3 or 0.9 lie inside the resampled interval.
    expect(resampled.contrasts[0].ci[0]).toBeLessThan(0.35);
    expect(resampled.contrasts[0].ci[1]).toBeGreaterThan(0.85);
  });

  it('is reproducible from its seed', () => {
    const o = [[[1, 0, 1, 0, 1, 1]], [[0, 0, 1, 1, 1, 1]]];
    const p = { arms: ['a', 'b'], outcomes: o, contrasts: [['a', 'b']] as Array<[string, string]>, samples: 100, seed: 5 };
    expect(pairedAccuracies(p)).toEqual(pairedAccuracies(p));
  });

  it('names the bad argument', () => {
    const ok = [[[1, 0]], [[0, 1]]];
    expect(() => pairedAccuracies({ arms: ['a', 'a'], outcomes: ok })).toThrow(/duplicate names/);
    expect(() => pairedAccuracies({ arms: ['a'], outcomes: ok })).toThrow(/one entry per arm \(1\), got 2/);
    expect(() => pairedAccuracies({ arms: ['a', 'b'], outcomes: [[[1, 0]], [[0, 1, 1]]] })).toThrow(/outcomes\["b"\]\[0\] has 3 items, expected 2/);
    expect(() => pairedAccuracies({ arms: ['a', 'b'], outcomes: [[[1, 0]], [[0, 1], [1, 1]]] })).toThrow(/outcomes\["b"\] has 2 groups, expected 1/);
    expect(() => pairedAccuracies({ arms: ['a', 'b'], outcomes: [[[1, 0.5]], [[0, 1]]] })).toThrow(/outcomes\["a"\]\[0\]\[1\] must be 0 or 1, got 0.5/);
    expect(() => pairedAccuracies({ arms: ['a', 'b'], outcomes: ok, contrasts: [['a', 'c']] })).toThrow(/contrasts\[0\] names "c"/);
    expect(() => pairedAccuracies({ arms: ['a', 'b'], outcomes: ok, samples: 0 })).toThrow(MetricInputError);
  });
});
