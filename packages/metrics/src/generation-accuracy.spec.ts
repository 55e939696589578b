import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { generationAccuracy } from './generation-accuracy';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// Class 7 plays "empty". Generated for 0: 0,1,0 ; for 1: 1,7 ; for 2: 2,2 ; for 7: 7,0.
const intended = [0, 0, 0, 1, 1, 2, 2, 7, 7];
const predicted = [0, 1, 0, 1, 7, 2, 2, 7, 0];

describe('generationAccuracy', () => {
  it('counts the share classified as the intended class, per class and overall (hand-computed)', () => {
    const r = generationAccuracy({ intended, predicted });
    expect(r.perClass.map((c) => c.label)).toEqual([0, 1, 2, 7]);
    expect(r.perClass.map((c) => [c.numCorrect, c.numImages])).toEqual([[2, 3], [1, 2], [2, 2], [1, 2]]);
    expect(r.overall).toBeCloseTo(6 / 9, 15);
    expect(r.macro).toBeCloseTo((2 / 3 + 1 / 2 + 1 + 1 / 2) / 4, 15);
  });

  it('leaves out classes outside the subset but still counts predictions of them as misses', () => {
    const r = generationAccuracy({ intended, predicted, classes: [2, 0, 1] });
    expect(r.perClass.map((c) => c.label)).toEqual([0, 1, 2]);
    expect(r.numImages).toBe(7);
    expect(r.numCorrect).toBe(5);
    expect(r.overall).toBeCloseTo(5 / 7, 15);
    expect(r.perClass[1].accuracy).toBe(0.5); // the image generated for 1 but classified as 7 is a miss
    expect(r.macro).toBeCloseTo((2 / 3 + 1 / 2 + 1) / 3, 15);
    const withEmptyClass = generationAccuracy({ intended, predicted, classes: [0, 3] });
    expect(withEmptyClass.perClass[1].accuracy).toBeNaN();
    expect(withEmptyClass.macro).toBeCloseTo(2 / 3, 15);
  });

  it('takes expert logits as a tensor and leaks none', () => {
    const k = 8;
    const logits = tf.tensor2d(predicted.map((p) => Array.from({ length: k }, (_, c) => (c === p ? 3 : 0))), [predicted.length, k]);
    const intendedTensor = tf.tensor1d(intended, 'int32');
    const before = tf.memory().numTensors;
    const r = generationAccuracy({ intended: intendedTensor, predicted: logits, classes: [0, 1, 2] });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.overall).toBeCloseTo(5 / 7, 15);
    tf.dispose([logits, intendedTensor]);
  });

  it('rejects bad inputs', () => {
    expect(() => generationAccuracy({ intended, predicted: predicted.slice(1) })).toThrow(/argument "predicted" has 8 samples/);
    expect(() => generationAccuracy({ intended, predicted, classes: [9] })).toThrow(/"classes"/);
    expect(() => generationAccuracy({ intended, predicted, numClasses: 8, classes: [3] })).toThrow(/no image in "intended"/);
  });
});
