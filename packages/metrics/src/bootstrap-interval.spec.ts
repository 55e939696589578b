import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bootstrapIntervals, percentileInterval } from './bootstrap-interval';
import { classificationReport, classificationReportFromConfusion } from './classification-metrics';
import { MetricInputError } from './metric-input';

const PYTHON = '/usr/bin/python3';
const numpyAvailable = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
if (!numpyAvailable) console.warn(`bootstrap-interval.spec: ${PYTHON} with numpy not found; skipping the numpy reference test`);

describe('percentileInterval', () => {
  it('takes numpy-style linear quantiles of the finite values', () => {
    // np.percentile([1..5], [2.5, 97.5]) = [1.1, 4.9]
    const [lo, hi] = percentileInterval({ values: [5, 1, NaN, 3, 2, 4, Infinity] });
    expect(lo).toBeCloseTo(1.1, 12);
    expect(hi).toBeCloseTo(4.9, 12);
    expect(percentileInterval({ values: [1, 2, 3], level: 0.5 })).toEqual([1.5, 2.5]);
    expect(percentileInterval({ values: [1, NaN] })).toEqual([NaN, NaN]);
    expect(() => percentileInterval({ values: [1, 2], level: 1 })).toThrow(/level" must be a number in \(0, 1\)/);
  });
});

describe('bootstrapIntervals', () => {
  it('matches the exact bootstrap distribution of an accuracy (7 of 10 right: Binomial(10, 0.7) / 10)', () => {
    const correct = [1, 1, 1, 0, 1, 1, 0, 1, 0, 1];
    const r = bootstrapIntervals({
      numItems: 10, samples: 20000, seed: 3,
      statistics: ({ itemCounts }) => [itemCounts.reduce((s, c, i) => s + c * correct[i], 0) / 10],
    });
    // P(X <= 3) = 0.011 < 0.025 < P(X <= 4) = 0.047, P(X <= 9) = 0.972 < 0.975: the exact 95% interval is [0.4, 1.0].
    expect(r.intervals[0]).toEqual([0.4, 1]);
    // The replicate mean is the plug-in estimate 0.7 and the sd sqrt(0.7 * 0.3 / 10).
    const reps = Array.from(r.replicates[0]);
    const m = reps.reduce((a, b) => a + b, 0) / reps.length;
    const sd = Math.sqrt(reps.reduce((a, b) => a + (b - m) ** 2, 0) / (reps.length - 1));
    expect(m).toBeCloseTo(0.7, 2);
    expect(sd).toBeCloseTo(Math.sqrt(0.021), 2);
  });

  it('draws the same items and groups for every statistic (a paired difference is the difference of replicates), reproducibly', () => {
    const a = [0.9, 0.1, 0.5, 0.7];
    const b = [0.2, 0.4, 0.5, 0.3];
    const stat = ({ itemCounts }: { itemCounts: Int32Array }) => {
      const wa = itemCounts.reduce((s, c, i) => s + c * a[i], 0) / 4;
      const wb = itemCounts.reduce((s, c, i) => s + c * b[i], 0) / 4;
      return [wa, wb, wa - wb];
    };
    const r = bootstrapIntervals({ numItems: 4, samples: 200, seed: 1, statistics: stat });
    r.replicates[2].forEach((d, k) => expect(d).toBeCloseTo(r.replicates[0][k] - r.replicates[1][k], 12));
    expect(bootstrapIntervals({ numItems: 4, samples: 200, seed: 1, statistics: stat }).intervals).toEqual(r.intervals);
    expect(bootstrapIntervals({ numItems: 4, samples: 200, seed: 2, statistics: stat }).intervals).not.toEqual(r.intervals);
  });

  it('resamples groups only when asked; counts sum to the sizes; NaN replicates are left out and counted', () => {
    const seen: number[][] = [];
    const r = bootstrapIntervals({
      numItems: 3, numGroups: 4, samples: 50, seed: 0,
      statistics: ({ itemCounts, groupCounts }) => {
        seen.push(Array.from(groupCounts));
        expect(itemCounts.reduce((s, c) => s + c, 0)).toBe(3);
        return [itemCounts[0] > 0 ? 1 : NaN];
      },
    });
    expect(seen.every((g) => g.reduce((s, c) => s + c, 0) === 4)).toBe(true);
    expect(seen.some((g) => g.some((c) => c !== 1))).toBe(true);
    expect(r.finiteReplicates[0]).toBeGreaterThan(20);
    expect(r.finiteReplicates[0]).toBeLessThan(50);
    expect(r.intervals[0]).toEqual([1, 1]);
    const fixed: number[][] = [];
    bootstrapIntervals({ numItems: 3, numGroups: 4, resampleGroups: false, samples: 5, statistics: ({ groupCounts }) => (fixed.push(Array.from(groupCounts)), [0]) });
    expect(fixed.every((g) => g.join() === '1,1,1,1')).toBe(true);
  });

  it('rejects bad options naming them', () => {
    const statistics = () => [0];
    expect(() => bootstrapIntervals({ numItems: 0, statistics })).toThrow(MetricInputError);
    expect(() => bootstrapIntervals({ numItems: 0, statistics })).toThrow(/"numItems" must be an integer in \[1,/);
    expect(() => bootstrapIntervals({ numItems: 2, samples: 1.5, statistics })).toThrow(/"samples"/);
    expect(() => bootstrapIntervals({ numItems: 2, statistics: 3 as never })).toThrow(/"statistics" must be a function/);
    let k = 0;
    expect(() => bootstrapIntervals({ numItems: 2, statistics: () => (k++ ? [1, 2] : [1]) })).toThrow(/returned 2 values in replicate 1, 1 before/);
  });

  it.skipIf(!numpyAvailable)('agrees with numpy on seeds x images replicates of mean accuracy and macro-F1 (same draws)', () => {
    // Two seeds' predictions on 12 test images of 3 classes.
    const yTrue = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2];
    const preds = [
      [0, 0, 1, 0, 1, 1, 2, 1, 2, 2, 0, 2],
      [0, 1, 1, 0, 1, 1, 1, 1, 2, 0, 0, 2],
    ];
    const draws: { items: number[]; groups: number[] }[] = [];
    const r = bootstrapIntervals({
      numItems: 12, numGroups: 2, samples: 300, seed: 11,
      statistics: ({ itemCounts, groupCounts }) => {
        draws.push({ items: Array.from(itemCounts), groups: Array.from(groupCounts) });
        let acc = 0;
        let f1 = 0;
        preds.forEach((p, g) => {
          const cm = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
          itemCounts.forEach((c, i) => (cm[yTrue[i]][p[i]] += c));
          const rep = classificationReportFromConfusion({ confusionMatrix: cm });
          acc += groupCounts[g] * rep.accuracy;
          f1 += groupCounts[g] * rep.macro.f1;
        });
        return [acc / 2, f1 / 2];
      },
    });
    const script = `
import json, sys
import numpy as np
d = json.load(sys.stdin)
yt = np.array(d['yTrue']); P = np.array(d['preds'])
acc, f1 = [], []
for dr in d['draws']:
    w = np.array(dr['items'], float); g = np.array(dr['groups'], float)
    a_s, f_s = [], []
    for p in P:
        a_s.append(np.sum(w * (p == yt)) / w.sum())
        fs = []
        for c in range(3):
            tp = np.sum(w * ((yt == c) & (p == c))); fp = np.sum(w * ((yt != c) & (p == c))); fn = np.sum(w * ((yt == c) & (p != c)))
            if np.sum(w * ((yt == c) | (p == c))) > 0:
                fs.append(2 * tp / (2 * tp + fp + fn))
        f_s.append(np.mean(fs))
    acc.append(np.sum(g * np.array(a_s)) / g.sum()); f1.append(np.sum(g * np.array(f_s)) / g.sum())
print(json.dumps({'acc': acc, 'f1': f1, 'accCi': list(np.percentile(acc, [2.5, 97.5])), 'f1Ci': list(np.percentile(f1, [2.5, 97.5]))}))
`;
    const py = spawnSync(PYTHON, ['-c', script], { input: JSON.stringify({ yTrue, preds, draws }), encoding: 'utf8' });
    expect(py.status, py.stderr).toBe(0);
    const ref = JSON.parse(py.stdout) as { acc: number[]; f1: number[]; accCi: number[]; f1Ci: number[] };
    ref.acc.forEach((v, k) => expect(r.replicates[0][k]).toBeCloseTo(v, 12));
    ref.f1.forEach((v, k) => expect(r.replicates[1][k]).toBeCloseTo(v, 12));
    expect(r.intervals[0][0]).toBeCloseTo(ref.accCi[0], 12);
    expect(r.intervals[0][1]).toBeCloseTo(ref.accCi[1], 12);
    expect(r.intervals[1][0]).toBeCloseTo(ref.f1Ci[0], 12);
    expect(r.intervals[1][1]).toBeCloseTo(ref.f1Ci[1], 12);
  });
});

describe('classificationReportFromConfusion', () => {
  it('equals classificationReport on the labels, and a weighted matrix equals repeated labels', () => {
    const yTrue = [0, 0, 1, 1, 2, 2, 2];
    const yPred = [0, 1, 1, 1, 2, 0, 2];
    const a = classificationReport({ yTrue, yPred, numClasses: 4 });
    const b = classificationReportFromConfusion({ confusionMatrix: a.confusionMatrix });
    expect(b).toEqual(a);
    // Image 1 twice, image 5 three times.
    const w = classificationReport({ yTrue: [...yTrue, 0, 2, 2], yPred: [...yPred, 1, 0, 0], numClasses: 4 });
    const cm = a.confusionMatrix.map((r) => r.slice());
    cm[0][1] += 1;
    cm[2][0] += 2;
    expect(classificationReportFromConfusion({ confusionMatrix: cm })).toEqual(w);
    expect(() => classificationReportFromConfusion({ confusionMatrix: [[1, 0], [0]] })).toThrow(/must be square \(2 x 2\), row 1 has 1/);
    expect(() => classificationReportFromConfusion({ confusionMatrix: [[1, -1], [0, 0]] })).toThrow(/confusionMatrix\[0\]\[1\] must be a finite number >= 0/);
    expect(() => classificationReportFromConfusion({ confusionMatrix: [[0, 0], [0, 0]] })).toThrow(/empty/);
  });
});
