import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { bootstrap, diversity, pairsFromSortedIndices } from './diversity';
import { createSeededRandom } from './seeded-random';
import { ssim } from './ssim';
import { Z_975 } from './summary-statistics';
import { addNoise, syntheticImage } from './test-support/ssim-reference';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const S = 24;

function stack(planes: Float64Array[]): { data: Float64Array; shape: number[] } {
  const data = new Float64Array(planes.length * S * S);
  planes.forEach((p, i) => data.set(p, i * S * S));
  return { data, shape: [planes.length, S, S, 1] };
}

function pairSsim(a: Float64Array, b: Float64Array): number {
  return ssim({ x: { data: a, shape: [S, S] }, y: { data: b, shape: [S, S] }, dataRange: 1 }).mean;
}

const planes = Array.from({ length: 7 }, (_, i) => addNoise(syntheticImage(S, S, i % 3), 0.1 + 0.05 * i, 100 + i));

describe('diversity', () => {
  it('is the mean SSIM over all n(n-1)/2 pairs of an unlabelled set', () => {
    const vals: number[] = [];
    for (let i = 0; i < planes.length; i++) for (let j = i + 1; j < planes.length; j++) vals.push(pairSsim(planes[i], planes[j]));
    const d = diversity({ images: stack(planes), dataRange: 1, interval: 'normal' });
    expect(d.overall.numPairs).toBe(21);
    expect(d.overall.totalPairs).toBe(21);
    expect(d.overall.numImages).toBe(7);
    const m = vals.reduce((a, b) => a + b, 0) / vals.length;
    expect(d.overall.meanSsim).toBeCloseTo(m, 13);
    const sd = Math.sqrt(vals.reduce((a, v) => a + (v - m) ** 2, 0) / (vals.length - 1));
    expect(d.overall.std).toBeCloseTo(sd, 13);
    // Normal-approximation interval: mean -/+ 1.96 sd / sqrt(pairs).
    expect(d.overall.ci95[0]).toBeCloseTo(m - (Z_975 * sd) / Math.sqrt(21), 13);
    expect(d.overall.ci95[1]).toBeCloseTo(m + (Z_975 * sd) / Math.sqrt(21), 13);
    expect(d.perClass).toEqual([]);
    expect(d.macroMeanSsim).toBe(d.overall.meanSsim);
  });

  it('pools within-class pairs only, reports each class, and honours a class subset', () => {
    const labels = [0, 1, 0, 2, 1, 0, 2];
    const d = diversity({ images: stack(planes), labels, dataRange: 1 });
    const byClass = (c: number) => labels.flatMap((l, i) => (l === c ? [i] : []));
    const classVals = [0, 1, 2].map((c) => {
      const idx = byClass(c);
      const v: number[] = [];
      for (let a = 0; a < idx.length; a++) for (let b = a + 1; b < idx.length; b++) v.push(pairSsim(planes[idx[a]], planes[idx[b]]));
      return v;
    });
    expect(d.perClass.map((c) => c.label)).toEqual([0, 1, 2]);
    expect(d.perClass.map((c) => c.numPairs)).toEqual([3, 1, 1]);
    d.perClass.forEach((c, k) => expect(c.meanSsim).toBeCloseTo(classVals[k].reduce((a, b) => a + b, 0) / classVals[k].length, 13));
    const pooled = classVals.flat();
    expect(d.overall.numPairs).toBe(5);
    expect(d.overall.meanSsim).toBeCloseTo(pooled.reduce((a, b) => a + b, 0) / 5, 13);
    expect(d.macroMeanSsim).toBeCloseTo(d.perClass.reduce((a, c) => a + c.meanSsim, 0) / 3, 13);
    // A single pair has no spread: sd and the bootstrap interval are undefined.
    expect(d.perClass[1].std).toBeNaN();

    const sub = diversity({ images: stack(planes), labels, classes: [2, 0], dataRange: 1 });
    expect(sub.perClass.map((c) => c.label)).toEqual([0, 2]);
    expect(sub.overall.numImages).toBe(5);
    expect(sub.overall.meanSsim).toBeCloseTo([...classVals[0], ...classVals[2]].reduce((a, b) => a + b, 0) / 4, 13);
    // A requested class without images is reported (NaN mean) but left out of the macro mean.
    const withEmpty = diversity({ images: stack(planes), labels, classes: [0, 5], dataRange: 1, interval: 'normal' });
    expect(withEmpty.perClass[1]).toMatchObject({ label: 5, numImages: 0, numPairs: 0 });
    expect(withEmpty.perClass[1].meanSsim).toBeNaN();
    expect(withEmpty.macroMeanSsim).toBeCloseTo(withEmpty.perClass[0].meanSsim, 14);
  });

  it('scores a set of near-copies as less diverse than a set of different images', () => {
    const base = syntheticImage(S, S, 1);
    const copies = Array.from({ length: 6 }, (_, i) => addNoise(base, 0.05, i + 1));
    const different = Array.from({ length: 6 }, (_, i) => syntheticImage(S, S, 40 + i));
    const same = diversity({ images: stack(copies), dataRange: 1 }).overall.meanSsim;
    const diff = diversity({ images: stack(different), dataRange: 1 }).overall.meanSsim;
    expect(same).toBeGreaterThan(0.8);
    expect(diff).toBeLessThan(same - 0.3);
  });

  it('gives a degenerate bootstrap interval for identical images and a wider one than the normal approximation when images differ in quality', () => {
    const one = syntheticImage(S, S, 2);
    const d1 = diversity({ images: stack(Array(5).fill(one)), dataRange: 1 });
    expect(d1.overall.meanSsim).toBeCloseTo(1, 12);
    expect(d1.overall.ci95[0]).toBeCloseTo(1, 12);
    expect(d1.overall.ci95[1]).toBeCloseTo(1, 12);
    // Noise level varies by image, so pair values share strong per-image effects.
    const base = syntheticImage(S, S, 3);
    const imgs = Array.from({ length: 12 }, (_, i) => addNoise(base, 0.02 + 0.04 * i, 50 + i));
    const boot = diversity({ images: stack(imgs), dataRange: 1, seed: 3 });
    const norm = diversity({ images: stack(imgs), dataRange: 1, interval: 'normal' });
    expect(boot.overall.ci95[0]).toBeLessThan(boot.overall.meanSsim);
    expect(boot.overall.ci95[1]).toBeGreaterThan(boot.overall.meanSsim);
    expect(boot.overall.ci95[1] - boot.overall.ci95[0]).toBeGreaterThan(norm.overall.ci95[1] - norm.overall.ci95[0]);
    // Reproducible from the seed, different with another seed.
    expect(diversity({ images: stack(imgs), dataRange: 1, seed: 3 }).overall.ci95).toEqual(boot.overall.ci95);
    expect(diversity({ images: stack(imgs), dataRange: 1, seed: 4 }).overall.ci95).not.toEqual(boot.overall.ci95);
  });

  it('subsamples maxPairs distinct pairs reproducibly', () => {
    expect(Array.from(pairsFromSortedIndices([0, 1, 2, 3, 4, 5], 4).i)).toEqual([0, 0, 0, 1, 1, 2]);
    expect(Array.from(pairsFromSortedIndices([0, 1, 2, 3, 4, 5], 4).j)).toEqual([1, 2, 3, 2, 3, 3]);
    expect(Array.from(pairsFromSortedIndices([2, 5], 4).i)).toEqual([0, 2]);
    const imgs = Array.from({ length: 12 }, (_, i) => addNoise(syntheticImage(S, S, i % 4), 0.1, i));
    const full = diversity({ images: stack(imgs), dataRange: 1, interval: 'normal' });
    const a = diversity({ images: stack(imgs), dataRange: 1, maxPairs: 30, seed: 1, interval: 'normal' });
    const b = diversity({ images: stack(imgs), dataRange: 1, maxPairs: 30, seed: 1, interval: 'normal' });
    const c = diversity({ images: stack(imgs), dataRange: 1, maxPairs: 30, seed: 2, interval: 'normal' });
    expect(full.overall.numPairs).toBe(66);
    expect(a.overall.numPairs).toBe(30);
    expect(a.overall.totalPairs).toBe(66);
    expect(a.overall.meanSsim).toBe(b.overall.meanSsim);
    expect(a.overall.meanSsim).not.toBe(c.overall.meanSsim);
    expect(Math.abs(a.overall.meanSsim - full.overall.meanSsim)).toBeLessThan(3 * full.overall.std / Math.sqrt(30));
    // maxPairs >= available pairs evaluates them all.
    expect(diversity({ images: stack(imgs), dataRange: 1, maxPairs: 66, interval: 'normal' }).overall.meanSsim).toBe(full.overall.meanSsim);
  });

  it('accepts tensors (images and score labels) and leaks none', () => {
    const images = tf.tensor4d(Float32Array.from(stack(planes).data), [7, S, S, 1]);
    const scores = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 1, 0, 0], 'int32'), 2);
    const before = tf.memory().numTensors;
    const d = diversity({ images, labels: scores, dataRange: 1 });
    expect(tf.memory().numTensors).toBe(before);
    expect(d.perClass.map((c) => c.numImages)).toEqual([4, 3]);
    tf.dispose([images, scores]);
  });

  it('rejects bad inputs naming the argument', () => {
    const imgs = stack(planes);
    expect(() => diversity({ images: imgs, labels: [0, 1], dataRange: 1 })).toThrow(/argument "labels" has shape \[2\], expected \[7\]/);
    expect(() => diversity({ images: { data: new Float64Array(S * S), shape: [S, S] }, dataRange: 1 })).toThrow(/argument "images" has shape \[24,24\], expected \[N,H,W\]/);
    expect(() => diversity({ images: imgs, classes: [0], dataRange: 1 })).toThrow(/"classes" needs "labels"/);
    expect(() => diversity({ images: imgs, labels: [0, 0, 0, 0, 0, 0, 0.5], dataRange: 1 })).toThrow(/argument "labels" has label 0.5/);
    expect(() => diversity({ images: imgs, dataRange: 1, maxPairs: 0 })).toThrow(/"maxPairs"/);
  });

  it('counts every within-set pair of a 40-image set (780 pairs)', () => {
    const n = 64;
    const count = 40;
    const data = new Float64Array(count * n * n);
    for (let i = 0; i < count; i++) data.set(addNoise(syntheticImage(n, n, i % 5), 0.2, i), i * n * n);
    const d = diversity({ images: { data, shape: [count, n, n, 1] }, dataRange: 1, bootstrapSamples: 200 });
    expect(d.overall.numPairs).toBe(780);
  });
});

describe('diversity bootstrap', () => {
  it('matches the exact resampling distribution of a 3-image class (all 27 draws enumerated)', () => {
    const values = [0.2, 0.5, 0.9]; // pairs (0,1), (0,2), (1,2)
    const pairI = Int32Array.from([0, 0, 1]);
    const pairJ = Int32Array.from([1, 2, 2]);
    const exact: number[] = [];
    for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) for (let c = 0; c < 3; c++) {
      const cnt = [0, 0, 0];
      cnt[a]++;
      cnt[b]++;
      cnt[c]++;
      let sw = 0;
      let sws = 0;
      for (let p = 0; p < 3; p++) {
        const w = cnt[pairI[p]] * cnt[pairJ[p]];
        sw += w;
        sws += w * values[p];
      }
      if (sw > 0) exact.push(sws / sw);
    }
    expect(exact.length).toBe(24);
    const exactMean = exact.reduce((x, y) => x + y, 0) / exact.length;
    const group = { label: 0, images: [0, 1, 2], pairI, pairJ, values: Float64Array.from(values), totalPairs: 3 };
    const reps = 20_000;
    const boot = bootstrap([group], reps, createSeededRandom(1));
    // About 3/27 of the replicates draw a single image and are dropped.
    expect(Math.abs(boot.groups[0].length / reps - 24 / 27)).toBeLessThan(0.01);
    const bootMean = boot.groups[0].reduce((x, y) => x + y, 0) / boot.groups[0].length;
    expect(Math.abs(bootMean - exactMean)).toBeLessThan(0.005);
    // Only the values the enumeration can produce occur.
    const allowed = new Set(exact.map((v) => v.toFixed(12)));
    expect(boot.groups[0].every((v) => allowed.has(v.toFixed(12)))).toBe(true);
    expect(boot.overall).toEqual(boot.groups[0]);
  });
});
