import { bootstrapIntervals } from '@fad/metrics';
import { describe, expect, it } from 'vitest';
import type { UtilityRunRecord } from './run-utility';
import { summarizeUtility } from './summarize-utility';
import { planProtocols } from './utility-protocols';

const testLabels = [0, 0, 1, 1];
const classNames = ['a', 'b'];
const plan = planProtocols({ fractions: [1], ratios: [1], syntheticSets: ['s'], seeds: [0, 1], includeSyntheticOnly: false });
const preds: Record<string, number[][]> = {
  'real-f1': [[0, 1, 1, 1], [0, 0, 1, 0]],
  'mix-s-r1-f1': [[0, 0, 1, 1], [0, 0, 0, 1]],
};
const record = (protocolId: string, seed: number): UtilityRunRecord => ({
  protocolId, seed, numReal: 4, numSynthetic: protocolId.startsWith('mix') ? 4 : 0, numTrain: protocolId.startsWith('mix') ? 8 : 4, trainPerClass: [],
  repeatedClasses: seed === 1 && protocolId.startsWith('mix') ? ['b'] : [], accuracy: NaN, macroF1: NaN, perClassRecall: [],
  predictions: preds[protocolId][seed], trainSeconds: 2, evalSeconds: 1,
});
const records = plan.runs.map((r) => record(r.protocolId, r.seed));

describe('summarizeUtility', () => {
  it('gives hand-computed means, per-seed values and paired gains', () => {
    const s = summarizeUtility({ protocols: plan.protocols, seeds: plan.seeds, records, testLabels, classNames, bootstrap: { samples: 200 } });
    const [real, mix] = s.protocols;
    // real: seed 0 [0,1,1,1] acc 3/4, recall a 1/2, b 1; F1 a 2/3, b 4/5. Seed 1 [0,0,1,0]: acc 3/4, recall 1, 1/2; F1 4/5, 2/3.
    expect(real.accuracy.perSeed).toEqual([0.75, 0.75]);
    expect(real.macroF1.mean).toBeCloseTo((2 / 3 + 0.8) / 2, 12);
    expect(real.perClassRecall.map((c) => [c.class, c.perSeed])).toEqual([['a', [0.5, 1]], ['b', [1, 0.5]]]);
    expect(real.gain).toBeNull();
    // mix: seed 0 all right; seed 1 [0,0,0,1]: acc 3/4, recall a 1, b 1/2.
    expect(mix.accuracy).toMatchObject({ mean: 0.875, perSeed: [1, 0.75] });
    expect(mix.gain!.accuracy).toMatchObject({ mean: 0.125, perSeed: [0.25, 0] });
    expect(mix.gain!.perClassRecall[0]).toMatchObject({ class: 'a', perSeed: [0.5, 0] });
    expect(mix.gain!.perClassRecall[1]).toMatchObject({ class: 'b', perSeed: [0, 0] });
    expect(mix).toMatchObject({ numTrain: 8, numSynthetic: 4, repeatedClasses: ['b'], reference: 'real-f1', seconds: { total: 6, perClassifier: 3 } });
    expect(s).toMatchObject({ numTest: 4, testPerClass: [2, 2], bootstrap: { samples: 200, seed: 0, over: 'seeds-and-images', level: 0.95 } });
    for (const e of [real.accuracy, mix.accuracy, mix.gain!.accuracy]) {
      expect(e.ci95[0]).toBeLessThanOrEqual(e.mean);
      expect(e.ci95[1]).toBeGreaterThanOrEqual(e.mean);
    }
  });

  it('has the intervals of an independent computation on the same draws (accuracy and paired gain from correctness, no confusion matrices)', () => {
    for (const over of ['seeds-and-images', 'images'] as const) {
      const s = summarizeUtility({ protocols: plan.protocols, seeds: plan.seeds, records, testLabels, classNames, bootstrap: { samples: 500, seed: 7, over } });
      const right = (id: string, seed: number) => preds[id][seed].map((p, i) => (p === testLabels[i] ? 1 : 0));
      const acc = (id: string, seed: number, w: Int32Array) => right(id, seed).reduce((a: number, r, i) => a + r * w[i], 0) / 4;
      const ref = bootstrapIntervals({
        numItems: 4, numGroups: 2, resampleGroups: over === 'seeds-and-images', samples: 500, seed: 7,
        statistics: ({ itemCounts: w, groupCounts: g }) => {
          const avg = (f: (s: number) => number) => (g[0] * f(0) + g[1] * f(1)) / (g[0] + g[1]);
          return [avg((k) => acc('real-f1', k, w)), avg((k) => acc('mix-s-r1-f1', k, w)), avg((k) => acc('mix-s-r1-f1', k, w) - acc('real-f1', k, w))];
        },
      });
      expect(s.protocols[0].accuracy.ci95).toEqual(ref.intervals[0]);
      expect(s.protocols[1].accuracy.ci95).toEqual(ref.intervals[1]);
      const [lo, hi] = s.protocols[1].gain!.accuracy.ci95;
      expect(lo).toBeCloseTo(ref.intervals[2][0], 12);
      expect(hi).toBeCloseTo(ref.intervals[2][1], 12);
    }
  });

  it('leaves out of a class recall the replicates without that class, and refuses missing records', () => {
    const s = summarizeUtility({ protocols: plan.protocols, seeds: plan.seeds, records, testLabels, classNames, bootstrap: { samples: 300 } });
    for (const c of s.protocols[0].perClassRecall) expect(Number.isFinite(c.ci95[0]) && Number.isFinite(c.ci95[1])).toBe(true);
    expect(() => summarizeUtility({ protocols: plan.protocols, seeds: plan.seeds, records: records.slice(1), testLabels, classNames })).toThrow(/no record of protocol real-f1 with seed 0/);
    expect(() => summarizeUtility({ protocols: plan.protocols, seeds: plan.seeds, records, testLabels: [0, 1], classNames })).toThrow(/has 4 predictions, the test set 2 images/);
    expect(() => summarizeUtility({ protocols: plan.protocols, seeds: plan.seeds, records, testLabels, classNames, bootstrap: { over: 'seeds' as never } })).toThrow(/bootstrap.over/);
  });
});
