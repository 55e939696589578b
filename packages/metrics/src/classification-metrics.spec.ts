import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { accuracy, classificationReport, confusionMatrix } from './classification-metrics';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// Hand-computed case (see the comments for each number).
const yTrue = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2];
const yPred = [0, 1, 0, 2, 1, 2, 2, 0, 2, 2];
// true 0 -> predicted 0,1,0,2 ; true 1 -> 1,2 ; true 2 -> 2,0,2,2
const CM = [
  [2, 1, 1],
  [0, 1, 1],
  [1, 0, 3],
];

describe('accuracy and confusionMatrix', () => {
  it('count a hand-worked example (rows = true, columns = predicted)', () => {
    expect(confusionMatrix({ yTrue, yPred })).toEqual(CM);
    expect(accuracy({ yTrue, yPred })).toBeCloseTo(6 / 10, 15);
    expect(confusionMatrix({ yTrue: [1], yPred: [1], numClasses: 3 })).toEqual([
      [0, 0, 0],
      [0, 1, 0],
      [0, 0, 0],
    ]);
  });

  it('take logits or probabilities (arg-max, first maximum on ties) from tensors without leaking', () => {
    const logits = tf.tensor2d(
      yPred.map((p) => [0, 1, 2].map((c) => (c === p ? 2.5 : -1 + 0.1 * c))),
      [10, 3],
    );
    const labels = tf.tensor1d(yTrue, 'int32');
    const before = tf.memory().numTensors;
    expect(confusionMatrix({ yTrue: labels, yPred: logits })).toEqual(CM);
    expect(accuracy({ yTrue: labels, yPred: logits })).toBeCloseTo(0.6, 15);
    classificationReport({ yTrue: labels, yPred: logits });
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([logits, labels]);
    expect(accuracy({ yTrue: [0, 1], yPred: { data: Float32Array.from([0.5, 0.5, 0.2, 0.8]), shape: [2, 2] } })).toBe(1);
  });

  it('reject mismatched or invalid labels naming the argument', () => {
    expect(() => accuracy({ yTrue: [0, 1], yPred: [0] })).toThrow(/argument "yPred" has 1 samples .*expected 2/);
    expect(() => accuracy({ yTrue: [0, -1], yPred: [0, 1] })).toThrow(/argument "yTrue" has label -1 at index \[1\]/);
    expect(() => accuracy({ yTrue: [0, 1], yPred: [0, NaN] })).toThrow(/argument "yPred" contains NaN at index \[1\]/);
    expect(() => accuracy({ yTrue: [0, 3], yPred: [0, 1], numClasses: 3 })).toThrow(/argument "yTrue" has label 3 .*< numClasses = 3/);
    expect(() => accuracy({ yTrue: [0, 3], yPred: { data: new Float64Array(6), shape: [2, 3] } })).toThrow(/argument "yTrue" has label 3 .*< 3 classes/);
    expect(() => accuracy({ yTrue: [0], yPred: { data: new Float64Array(6), shape: [1, 2, 3] } })).toThrow(/argument "yPred" has shape \[1,2,3\], expected \[N\]/);
    expect(() => accuracy({ yTrue: [], yPred: [] })).toThrow(/"yTrue" is empty/);
  });
});

describe('classificationReport', () => {
  it('gives hand-computed precision, recall, F1 and macro averages', () => {
    const r = classificationReport({ yTrue, yPred });
    expect(r.accuracy).toBeCloseTo(0.6, 15);
    expect(r.confusionMatrix).toEqual(CM);
    // class 0: TP 2, predicted 3 (column), support 4 ; class 1: TP 1, 2, 2 ; class 2: TP 3, 5, 4.
    const expected = [
      { precision: 2 / 3, recall: 2 / 4, f1: 4 / 7, support: 4, predicted: 3 },
      { precision: 1 / 2, recall: 1 / 2, f1: 1 / 2, support: 2, predicted: 2 },
      { precision: 3 / 5, recall: 3 / 4, f1: 2 / 3, support: 4, predicted: 5 },
    ];
    r.perClass.forEach((s, c) => {
      expect(s.label).toBe(c);
      expect(s.precision).toBeCloseTo(expected[c].precision, 15);
      expect(s.recall).toBeCloseTo(expected[c].recall, 15);
      expect(s.f1).toBeCloseTo(expected[c].f1, 15);
      // F1 is the harmonic mean of precision and recall whenever both are defined.
      expect(s.f1).toBeCloseTo((2 * s.precision * s.recall) / (s.precision + s.recall), 15);
      expect(s.support).toBe(expected[c].support);
      expect(s.predicted).toBe(expected[c].predicted);
    });
    expect(r.macro.precision).toBeCloseTo((2 / 3 + 1 / 2 + 3 / 5) / 3, 15);
    expect(r.macro.recall).toBeCloseTo((1 / 2 + 1 / 2 + 3 / 4) / 3, 15);
    expect(r.macro.f1).toBeCloseTo((4 / 7 + 1 / 2 + 2 / 3) / 3, 15);
    expect(r.macro.classes).toEqual([0, 1, 2]);
  });

  it('defines 0/0 by zeroDivision and averages over present classes unless classes are given', () => {
    // Class 1 is predicted once but never true: precision 0/1 = 0, recall 0/0, F1 = 0/(0+1+0) = 0.
    // Class 2 (numClasses 3) never occurs: every ratio is 0/0.
    const r = classificationReport({ yTrue: [0, 0], yPred: [0, 1], numClasses: 3 });
    expect(r.perClass[1]).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 0, predicted: 1 });
    expect(r.perClass[2]).toMatchObject({ precision: 0, recall: 0, f1: 0 });
    expect(r.macro.classes).toEqual([0, 1]);
    // class 0: precision 1, recall 1/2, F1 2/3
    expect(r.macro.f1).toBeCloseTo((2 / 3 + 0) / 2, 15);
    const one = classificationReport({ yTrue: [0, 0], yPred: [0, 1], numClasses: 3, zeroDivision: 1 });
    expect(one.perClass[1]).toMatchObject({ precision: 0, recall: 1, f1: 0 });
    expect(one.perClass[2]).toMatchObject({ precision: 1, recall: 1, f1: 1 });
    const all = classificationReport({ yTrue: [0, 0], yPred: [0, 1], numClasses: 3, classes: [0, 1, 2] });
    expect(all.macro.recall).toBeCloseTo((1 / 2 + 0 + 0) / 3, 15);
    expect(() => classificationReport({ yTrue: [0], yPred: [0], classes: [5] })).toThrow(/"classes"/);
  });
});
