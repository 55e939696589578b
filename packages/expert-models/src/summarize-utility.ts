/**
 * Means, 95% bootstrap CIs and gains of the downstream-utility records (`runUtility`).
 *
 * Per protocol, a metric's value is its mean over the K training seeds of the metric on the
 * held-out real test images. Intervals: percentile bootstrap (`@fad/metrics` `bootstrapIntervals`),
 * by default over seeds x test images: each replicate redraws the N test images with replacement
 * and the K seeds with replacement, and averages the metric over the drawn seeds on the drawn
 * images; so the interval carries both the test-set sampling and the training (seed) variation.
 * `over: 'images'` keeps all seeds in every replicate (test-set sampling only). The gain of a
 * protocol over its real-only reference (same fraction) is paired: in every replicate the same
 * images and the same seeds (seed s of the protocol against seed s of the reference, which saw the
 * same real images) enter both; its interval is that of the replicate differences. Every protocol
 * shares the same draws, so intervals of different protocols are coherent too.
 */
import { bootstrapIntervals, classificationReportFromConfusion } from '@fad/metrics';
import type { UtilityRunRecord } from './run-utility';
import type { UtilityProtocol } from './utility-protocols';
import { assertInt, assertObject, assertOneOf, show } from './validate';

/** A metric's mean over seeds, its per-seed values and its 95% interval. */
export interface UtilityEstimate {
  mean: number;
  perSeed: number[];
  ci95: [number, number];
}

/** A gain over the reference protocol: mean over seeds of the paired differences, and its interval. */
export interface UtilityGain {
  mean: number;
  perSeed: number[];
  ci95: [number, number];
}

/** Summary of one protocol. */
export interface UtilityProtocolSummary extends UtilityProtocol {
  seeds: number[];
  /** Mean training-set size over seeds (real, synthetic, total). */
  numReal: number;
  numSynthetic: number;
  numTrain: number;
  /** Classes that repeated synthetic images under some seed. */
  repeatedClasses: string[];
  accuracy: UtilityEstimate;
  macroF1: UtilityEstimate;
  perClassRecall: Array<{ class: string } & UtilityEstimate>;
  /** Against `reference` (null for real-only protocols or when the reference was not run). */
  gain: { accuracy: UtilityGain; macroF1: UtilityGain; perClassRecall: Array<{ class: string } & UtilityGain> } | null;
  /** Wall time of training and evaluating its classifiers, summed and per classifier (mean). */
  seconds: { total: number; perClassifier: number };
}

/** Parameters of {@link summarizeUtility}. */
export interface SummarizeUtilityParams {
  protocols: readonly UtilityProtocol[];
  seeds: readonly number[];
  /** One record per (protocol, seed). */
  records: readonly UtilityRunRecord[];
  /** True classes of the test images, in the order of the records' predictions. */
  testLabels: ArrayLike<number>;
  classNames: readonly string[];
  /** Replicates (default 1000), seed (0), and what is resampled (default 'seeds-and-images'). */
  bootstrap?: { samples?: number; seed?: number; over?: 'seeds-and-images' | 'images' };
}

/** Result of {@link summarizeUtility}. */
export interface UtilitySummary {
  protocols: UtilityProtocolSummary[];
  bootstrap: { samples: number; seed: number; over: 'seeds-and-images' | 'images'; level: 0.95; method: string };
  numTest: number;
  testPerClass: number[];
}

const BOOTSTRAP_OVER = ['seeds-and-images', 'images'] as const;

/** Summarises the records (see the file comment). Throws when a (protocol, seed) record is missing. */
export function summarizeUtility(params: SummarizeUtilityParams): UtilitySummary {
  const fn = 'summarizeUtility';
  assertObject(fn, 'params', params);
  const { protocols, seeds, records, testLabels, classNames } = params;
  const samples = params.bootstrap?.samples ?? 1000;
  const bseed = params.bootstrap?.seed ?? 0;
  const over = params.bootstrap?.over ?? 'seeds-and-images';
  assertInt(fn, 'bootstrap.samples', samples, 1);
  assertInt(fn, 'bootstrap.seed', bseed, 0, 0xffffffff);
  assertOneOf(fn, 'bootstrap.over', over, BOOTSTRAP_OVER);
  if (!Array.isArray(seeds) || seeds.length === 0) throw new TypeError(`${fn}: seeds must be a non-empty array, got ${show(seeds)}`);
  const K = classNames.length;
  const N = testLabels.length;
  const y = Int32Array.from(testLabels);
  const byKey = new Map(records.map((r) => [`${r.protocolId}\u0000${r.seed}`, r]));
  // preds[p][s]: predictions of protocol p under seed s.
  const preds = protocols.map((p) =>
    seeds.map((s) => {
      const r = byKey.get(`${p.id}\u0000${s}`);
      if (!r) throw new RangeError(`${fn}: no record of protocol ${p.id} with seed ${s}`);
      if (r.predictions.length !== N) throw new RangeError(`${fn}: the record of ${p.id} seed ${s} has ${r.predictions.length} predictions, the test set ${N} images`);
      return Int32Array.from(r.predictions);
    }),
  );
  const index = new Map(protocols.map((p, i) => [p.id, i]));
  const refOf = protocols.map((p) => (p.reference !== null && index.has(p.reference) ? (index.get(p.reference) as number) : -1));
  const M = 2 + K; // accuracy, macro-F1, recall per class

  /** Metrics [M] of protocol p, seed s, images weighted by `w`. Recall of a class without (weighted) images: NaN. */
  const metrics = (p: number, s: number, w: Int32Array | null): number[] => {
    const cm = Array.from({ length: K }, () => new Array<number>(K).fill(0));
    const pr = preds[p][s];
    for (let i = 0; i < N; i++) {
      const wi = w ? w[i] : 1;
      if (wi) cm[y[i]][pr[i]] += wi;
    }
    const rep = classificationReportFromConfusion({ confusionMatrix: cm, zeroDivision: NaN });
    return [rep.accuracy, rep.macro.f1, ...rep.perClass.map((c) => c.recall)];
  };
  // Point values per protocol and seed.
  const point = protocols.map((_, p) => seeds.map((_s, s) => metrics(p, s, null)));
  // One bootstrap over all protocols: per protocol M values, then per protocol with a reference M gains.
  const gainSlots = refOf.map((r) => r >= 0);
  const boot = bootstrapIntervals({
    numItems: N, numGroups: seeds.length, resampleGroups: over === 'seeds-and-images', samples, seed: bseed,
    statistics: ({ itemCounts, groupCounts }) => {
      const vals = protocols.map((_, p) => seeds.map((_s, s) => (groupCounts[s] ? metrics(p, s, itemCounts) : null)));
      const out: number[] = [];
      const meanOver = (f: (s: number) => number[] | null): number[] => {
        const sum = new Array<number>(M).fill(0);
        let wsum = 0;
        for (let s = 0; s < seeds.length; s++) {
          const g = groupCounts[s];
          if (!g) continue;
          const v = f(s)!;
          for (let m = 0; m < M; m++) sum[m] += g * v[m];
          wsum += g;
        }
        return sum.map((x) => x / wsum);
      };
      for (let p = 0; p < protocols.length; p++) out.push(...meanOver((s) => vals[p][s]));
      for (let p = 0; p < protocols.length; p++) {
        if (!gainSlots[p]) continue;
        const r = refOf[p];
        out.push(...meanOver((s) => vals[p][s]!.map((v, m) => v - vals[r][s]![m])));
      }
      return out;
    },
  });
  const ci = (slot: number): [number, number] => boot.intervals[slot];
  const seedMean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  let gainSlot = protocols.length * M;
  const summaries: UtilityProtocolSummary[] = protocols.map((proto, p) => {
    const est = (m: number): UtilityEstimate => {
      const perSeed = point[p].map((v) => v[m]);
      return { mean: seedMean(perSeed), perSeed, ci95: ci(p * M + m) };
    };
    let gain: UtilityProtocolSummary['gain'] = null;
    if (gainSlots[p]) {
      const r = refOf[p];
      const base = gainSlot;
      gainSlot += M;
      const g = (m: number): UtilityGain => {
        const perSeed = point[p].map((v, s) => v[m] - point[r][s][m]);
        return { mean: seedMean(perSeed), perSeed, ci95: ci(base + m) };
      };
      gain = { accuracy: g(0), macroF1: g(1), perClassRecall: classNames.map((c, k) => ({ class: c, ...g(2 + k) })) };
    }
    const recs = seeds.map((s) => byKey.get(`${proto.id}\u0000${s}`)!);
    const total = recs.reduce((a, r) => a + r.trainSeconds + r.evalSeconds, 0);
    return {
      ...proto,
      seeds: [...seeds],
      numReal: seedMean(recs.map((r) => r.numReal)),
      numSynthetic: seedMean(recs.map((r) => r.numSynthetic)),
      numTrain: seedMean(recs.map((r) => r.numTrain)),
      repeatedClasses: [...new Set(recs.flatMap((r) => r.repeatedClasses))],
      accuracy: est(0),
      macroF1: est(1),
      perClassRecall: classNames.map((c, k) => ({ class: c, ...est(2 + k) })),
      gain,
      seconds: { total, perClassifier: total / recs.length },
    };
  });
  return {
    protocols: summaries,
    bootstrap: {
      samples, seed: bseed, over, level: 0.95,
      method: over === 'seeds-and-images'
        ? 'percentile bootstrap; each replicate redraws the test images and the training seeds with replacement (shared by all protocols; gains paired by image and seed)'
        : 'percentile bootstrap; each replicate redraws the test images with replacement, all seeds kept (shared by all protocols; gains paired by image and seed)',
    },
    numTest: N,
    testPerClass: classNames.map((_, c) => y.reduce((s, v) => s + (v === c ? 1 : 0), 0)),
  };
}
