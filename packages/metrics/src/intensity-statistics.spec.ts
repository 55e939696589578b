import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { compareIntensity, intensityStatistics } from './intensity-statistics';
import { MetricInputError } from './metric-input';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// Three 2x2 grayscale images, hand-computed:
//   A = [0, 0, 1, 1]     mean 0.5,  population sd 0.5
//   B = [0.2 x4]         mean 0.2,  sd 0
//   C = [0, 0.4, 0.4, 0.8]  mean 0.4, deviations -0.4,0,0,0.4 -> var 0.32/4 = 0.08, sd sqrt(0.08)
const A = [0, 0, 1, 1];
const B = [0.2, 0.2, 0.2, 0.2];
const C = [0, 0.4, 0.4, 0.8];
const set = { data: [...A, ...B, ...C], shape: [3, 2, 2, 1] };

describe('intensityStatistics', () => {
  it('gives per-image mean and population-sd contrast, and their summaries (hand-computed)', () => {
    const s = intensityStatistics({ images: set });
    expect(s.numImages).toBe(3);
    expect(s.perImageMean[0]).toBeCloseTo(0.5, 15);
    expect(s.perImageMean[1]).toBeCloseTo(0.2, 15);
    expect(s.perImageMean[2]).toBeCloseTo(0.4, 15);
    expect(s.perImageContrast[0]).toBeCloseTo(0.5, 15);
    expect(s.perImageContrast[1]).toBeCloseTo(0, 15);
    expect(s.perImageContrast[2]).toBeCloseTo(Math.sqrt(0.08), 15);
    // means 0.5, 0.2, 0.4: mean 1.1/3; sample sd from deviations 0.1333.., -0.1666.., 0.0333..
    const m = 1.1 / 3;
    expect(s.mean.mean).toBeCloseTo(m, 15);
    const sd = Math.sqrt(((0.5 - m) ** 2 + (0.2 - m) ** 2 + (0.4 - m) ** 2) / 2);
    expect(s.mean.sd).toBeCloseTo(sd, 15);
    expect(s.mean.sd).toBeCloseTo(0.152752523, 8);
    // sorted 0.2, 0.4, 0.5: q25 at position 0.5 -> 0.3; median 0.4; q75 at 1.5 -> 0.45
    expect([s.mean.min, s.mean.q25, s.mean.median, s.mean.q75, s.mean.max].map((v) => +v.toFixed(12))).toEqual([0.2, 0.3, 0.4, 0.45, 0.5]);
    const cm = (0.5 + 0 + Math.sqrt(0.08)) / 3;
    expect(s.contrast.mean).toBeCloseTo(cm, 15);
  });

  it('pools every channel of an RGB image, and reads [N,H,W] as grayscale', () => {
    // One 1x2 RGB image: pixels (0,0.5,1) and (1,0.5,0) -> mean 0.5, deviations .5,0,.5,.5,0,.5 -> sd sqrt(1/6)
    const rgb = intensityStatistics({ images: { data: [0, 0.5, 1, 1, 0.5, 0], shape: [1, 1, 2, 3] } });
    expect(rgb.perImageMean[0]).toBeCloseTo(0.5, 15);
    expect(rgb.perImageContrast[0]).toBeCloseTo(Math.sqrt(1 / 6), 15);
    expect(rgb.mean.sd).toBeNaN();
    const gray = intensityStatistics({ images: { data: set.data, shape: [3, 2, 2] } });
    expect(gray.perImageMean).toEqual(intensityStatistics({ images: set }).perImageMean);
  });

  it('takes a tensor and leaks none', () => {
    const t = tf.tensor4d(set.data, [3, 2, 2, 1]);
    const before = tf.memory().numTensors;
    const s = intensityStatistics({ images: t });
    const c = compareIntensity({ generated: t, real: t, generatedLabels: [0, 1, 1], realLabels: [0, 1, 1] });
    expect(tf.memory().numTensors).toBe(before);
    expect(s.perImageMean[1]).toBeCloseTo(0.2, 6);
    expect(c.overall.meanDifference).toBeCloseTo(0, 12);
    t.dispose();
  });

  it('rejects bad input with a message naming the argument', () => {
    expect(() => intensityStatistics({ images: { data: [0, 1.5, 0, 0], shape: [1, 2, 2, 1] } })).toThrow(
      /intensityStatistics: argument "images" has value 1.5 at index \[0,0,1,0\].*expected pixel values in \[0,1\]/,
    );
    expect(() => intensityStatistics({ images: { data: [0, -0.5, 0, 0], shape: [1, 2, 2, 1] } })).toThrow(MetricInputError);
    expect(() => intensityStatistics({ images: { data: [0, NaN, 0, 0], shape: [1, 2, 2, 1] } })).toThrow(/NaN/);
    expect(() => intensityStatistics({ images: { data: [0, 0, 0, 0], shape: [4] } })).toThrow(/expected \[N,H,W\] or \[N,H,W,C\]/);
    expect(() => intensityStatistics({ images: { data: [], shape: [0, 2, 2, 1] } })).toThrow(/every dimension >= 1/);
    expect(() => intensityStatistics(null as never)).toThrow(/params object/);
  });
});

describe('compareIntensity', () => {
  // Real: class 0 = A, C (means 0.5, 0.4); class 1 = two all-white images (mean 1, contrast 0).
  // Generated: class 0 = B (0.2), class 1 = two all-gray 0.5 images.
  const W = [1, 1, 1, 1];
  const G = [0.5, 0.5, 0.5, 0.5];
  const real = { data: [...A, ...W, ...C, ...W], shape: [4, 2, 2, 1] };
  const realLabels = [0, 1, 0, 1];
  const generated = { data: [...G, ...B, ...G], shape: [3, 2, 2, 1] };
  const generatedLabels = [1, 0, 1];

  it('compares per class and overall (hand-computed)', () => {
    const r = compareIntensity({ generated, real, generatedLabels, realLabels });
    expect(r.perClass.map((c) => c.label)).toEqual([0, 1]);
    const [c0, c1] = r.perClass;
    expect([c0.numGenerated, c0.numReal, c1.numGenerated, c1.numReal]).toEqual([1, 2, 2, 2]);
    expect(c0.generatedMean).toBeCloseTo(0.2, 15);
    expect(c0.realMean).toBeCloseTo(0.45, 15);
    expect(c0.meanDifference).toBeCloseTo(-0.25, 15);
    // real means 0.5, 0.4: sample sd = 0.1 / sqrt(2)
    expect(c0.realMeanSd).toBeCloseTo(0.1 / Math.SQRT2, 15);
    expect(c0.meanGap).toBeCloseTo(-0.25 / (0.1 / Math.SQRT2), 12);
    expect(c0.generatedMeanSd).toBeNaN();
    expect(c0.generatedContrast).toBeCloseTo(0, 15);
    expect(c0.realContrast).toBeCloseTo((0.5 + Math.sqrt(0.08)) / 2, 15);
    expect(c0.contrastDifference).toBeCloseTo(-(0.5 + Math.sqrt(0.08)) / 2, 15);
    // white vs gray: difference -0.5, real sd 0 -> gap undefined
    expect(c1.generatedMean).toBeCloseTo(0.5, 15);
    expect(c1.realMean).toBe(1);
    expect(c1.meanDifference).toBeCloseTo(-0.5, 15);
    expect(c1.realMeanSd).toBe(0);
    expect(c1.meanGap).toBeNaN();
    expect(c1.generatedContrast).toBe(0);
    expect(c1.realContrast).toBe(0);
    // pool: generated 0.5, 0.2, 0.5 -> 0.4; real 0.5, 1, 0.4, 1 -> 0.725
    expect(r.overall.label).toBeNull();
    expect(r.overall.generatedMean).toBeCloseTo(0.4, 15);
    expect(r.overall.realMean).toBeCloseTo(0.725, 15);
    expect(r.overall.numReal).toBe(4);
  });

  it('honours a class subset, gives NaN for a side without images, and pools when unlabelled', () => {
    const r = compareIntensity({ generated, real, generatedLabels, realLabels, classes: [1, 3] });
    expect(r.perClass.map((c) => c.label)).toEqual([1, 3]);
    expect(r.overall.numGenerated).toBe(2);
    expect(r.overall.realMean).toBe(1);
    expect(r.perClass[1].numReal).toBe(0);
    expect(r.perClass[1].generatedMean).toBeNaN();
    const u = compareIntensity({ generated, real });
    expect(u.perClass).toEqual([]);
    expect(u.overall.generatedMean).toBeCloseTo(0.4, 15);
  });

  it('rejects inconsistent labels with a message naming the argument', () => {
    expect(() => compareIntensity({ generated, real, generatedLabels })).toThrow(/"realLabels" is missing/);
    expect(() => compareIntensity({ generated, real, generatedLabels: [0, 1], realLabels })).toThrow(/"generatedLabels" has 2 labels, expected 3/);
    expect(() => compareIntensity({ generated, real, classes: [0] })).toThrow(/"classes" needs generatedLabels/);
    expect(() => compareIntensity({ generated, real, generatedLabels, realLabels, classes: [-1] })).toThrow(/"classes" must be/);
    expect(() => compareIntensity({ generated: { data: [2], shape: [1, 1, 1, 1] }, real })).toThrow(/argument "generated" has value 2/);
  });
});
