import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluateExpert } from './evaluate-expert';
import type { Expert } from './expert-model';
import { leakedTensors, useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

/** A stand-in expert that predicts the class written in the image (pixel value), with logit 5. */
function stubExpert(): Expert {
  const logits = (x: tf.Tensor4D) => tf.tidy(() => tf.mul(tf.oneHot(tf.cast(tf.mean(x, [1, 2, 3]), 'int32'), 3), 5) as tf.Tensor2D);
  return {
    config: {} as never, featureDim: 1, numClasses: 3, classNames: ['tumor', 'stroma', 'empty'], frozen: true,
    inputSpec: { size: 2, channels: 1, mean: [0], std: [1], range: [0, 3] },
    features: (x) => tf.mean(x, [1, 2]) as tf.Tensor2D,
    logits,
    forward: (x) => ({ features: tf.mean(x, [1, 2]) as tf.Tensor2D, logits: logits(x) }),
    predict: (x) => tf.argMax(logits(x), 1),
    freeze: () => {},
    unfreeze: () => {},
    dispose: () => {},
  };
}

describe('evaluateExpert', () => {
  it('reports accuracy, confusion matrix, per-class precision/recall and loss', () => {
    const truth = [0, 0, 1, 1, 2, 2];
    const shown = [0, 1, 1, 1, 2, 0];
    const images = { data: shown.flatMap((v) => [v, v, v, v]), shape: [6, 2, 2, 1] };
    const r = evaluateExpert({ expert: stubExpert(), images, labels: truth, batchSize: 4 });
    expect(r.numSamples).toBe(6);
    expect(r.accuracy).toBeCloseTo(4 / 6, 12);
    expect(r.confusionMatrix).toEqual([[1, 1, 0], [0, 2, 0], [1, 0, 1]]);
    expect(r.perClass.map((c) => [c.name, c.precision, c.recall, c.support, c.predicted])).toEqual([
      ['tumor', 0.5, 0.5, 2, 2],
      ['stroma', 2 / 3, 1, 2, 3],
      ['empty', 1, 0.5, 2, 1],
    ]);
    expect(r.macro.recall).toBeCloseTo((0.5 + 1 + 0.5) / 3, 12);
    const lse = Math.log(Math.exp(5) + 2);
    expect(r.loss).toBeCloseTo((4 * (lse - 5) + 2 * lse) / 6, 5);
  });

  it('leaves no tensors and checks its inputs', () => {
    const images = tf.zeros([3, 2, 2, 1]) as tf.Tensor4D;
    expect(leakedTensors(() => evaluateExpert({ expert: stubExpert(), images, labels: [0, 0, 0] }))).toBe(0);
    expect(() => evaluateExpert({ expert: stubExpert(), images: tf.zeros([3, 4, 4, 1]) as tf.Tensor4D, labels: [0, 0, 0] })).toThrow(
      /evaluateExpert: images have shape \[3,4,4,1\], the expert expects \[N,2,2,1\]/,
    );
    expect(() => evaluateExpert({ expert: stubExpert(), images, labels: [0, 0, 3] })).toThrow(/labels\[2\] must be an integer class index in \[0, 2\], got 3/);
    expect(() => evaluateExpert({ expert: stubExpert(), images, labels: [0, 0, 0], batchSize: 0 })).toThrow(/batchSize must be an integer >= 1, got 0/);
  });
});
