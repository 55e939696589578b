import { describe, expect, it } from 'vitest';
import { formatUtilityTable } from './format-utility-table';
import type { UtilityJson } from './utility-files';

const est = (mean: number, lo: number, hi: number) => ({ mean, perSeed: [], ci95: [lo, hi] as [number, number] });
const protocol = (id: string, numTrain: number, accuracy: ReturnType<typeof est>, macroF1: ReturnType<typeof est>, gain: { accuracy: ReturnType<typeof est>; macroF1: ReturnType<typeof est> } | null, perClassifier: number) => ({
  id, kind: 'real', fraction: 1, ratio: null, synthetic: null, reference: null, seeds: [0, 1], numReal: numTrain, numSynthetic: 0, numTrain, repeatedClasses: [],
  accuracy, macroF1, perClassRecall: [], gain: gain && { ...gain, perClassRecall: [] }, seconds: { total: 2 * perClassifier, perClassifier },
});

/** A utility.json with the fields the table reads, values chosen to exercise rounding, signs, NaN and the time formats. */
const json = {
  classifier: { preset: 'resnet18-kather' }, backend: 'cpu', runs: [{}, {}, {}, {}],
  wallTime: { perClassifierMean: 30.04, classifiersTotal: 3725, thisInvocation: 0 },
  summary: {
    numTest: 6, bootstrap: { method: 'percentile', samples: 100 },
    protocols: [
      protocol('real-f1', 18, est(0.5, 0.25, 0.75), est(0.4, 0.1, 0.6), null, 1.5),
      protocol('mix-s-r1-f1', 36.4, est(0.625, 0.5, 0.75), est(Number.NaN, Number.NaN, Number.NaN), { accuracy: est(0.125, -0.05, 0.3), macroF1: est(-0.1, -0.2, 0) }, 75),
    ],
  },
} as unknown as UtilityJson;

describe('formatUtilityTable', () => {
  it('prints a row per protocol: percentages with one decimal, gains in signed points, "–" for what is not a number, wall times', () => {
    expect(formatUtilityTable({ json }).split('\n')).toEqual([
      'downstream classifier resnet18-kather, 2 seed(s) per protocol, tested on 6 held-out real images; means over seeds, 95% CIs by percentile (100 replicates); gains over real-only at the same fraction (synthetic-only: over the largest fraction)',
      'protocol     train imgs    accuracy [95% CI]    macro-F1 [95% CI]   gain acc, pts [CI]    gain F1, pts [CI]  time/classifier',
      'real-f1              18  50.0% [25.0, 75.0%]  40.0% [10.0, 60.0%]                                                       1.5s',
      'mix-s-r1-f1          36  62.5% [50.0, 75.0%]             – [–, –]  +12.5 [-5.0, +30.0]  -10.0 [-20.0, +0.0]            1m15s',
      'wall time: 30.0s per classifier, 1h02m for all 4 (train + evaluate, on cpu)',
    ]);
  });

  it('rejects what is not a utility.json', () => {
    expect(() => formatUtilityTable({ json: {} as UtilityJson })).toThrow(/formatUtilityTable: expected \{ json: the utility.json of a utility run \}/);
  });
});
