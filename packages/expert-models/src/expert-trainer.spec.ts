import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createExpert } from './create-expert';
import type { ExpertConfigInput } from './expert-config';
import { ExpertTrainer, softmaxCrossEntropy } from './expert-trainer';
import { leakedTensors, maxAbsDiff, useCpuBackend } from './testing/setup-cpu';
import { toyImages } from './testing/toy-data';

beforeAll(useCpuBackend);

const config: ExpertConfigInput = { arch: 'resnet', block: 'basic', layers: [1, 1], baseWidth: 8, numClasses: 4, input: { size: 16 } };
const toy = toyImages({ numClasses: 4, perClass: 2, size: 16, channels: 1 });
const batch = () => tf.tensor4d(toy.data, toy.shape);

describe('softmaxCrossEntropy', () => {
  it('is the mean of -log softmax at the label', () => {
    const l = softmaxCrossEntropy(tf.tensor2d([[0, 0], [Math.log(3), 0]]), tf.tensor1d([0, 1], 'int32'));
    // -log(1/2) and -log(1/4)
    expect(l.dataSync()[0]).toBeCloseTo((Math.log(2) + Math.log(4)) / 2, 6);
  });
});

describe('ExpertTrainer', () => {
  it('lowers the loss on a fixed batch, updates BN statistics, leaks nothing', () => {
    const e = createExpert({ config, seed: 2 });
    expect(leakedTensors(() => new ExpertTrainer({ expert: e }).dispose())).toBe(0);
    const tr = new ExpertTrainer({ expert: e, learningRate: 1e-2 });
    const x = batch();
    const rm = () => e.namedParameters().find(([n]) => n === 'bn1.running_mean')![1].dataSync().slice();
    const before = rm();
    const first = tr.trainStep({ images: x, labels: toy.labels });
    expect(first.step).toBe(1);
    expect(maxAbsDiff(rm(), before)).toBeGreaterThan(0);
    let last = first;
    expect(leakedTensors(() => {
      for (let i = 0; i < 10; i++) last = tr.trainStep({ images: x, labels: toy.labels, learningRate: 5e-3 });
    })).toBe(0);
    expect(last.loss).toBeLessThan(first.loss * 0.7);
    expect(last.learningRate).toBe(5e-3);
    expect(last.step).toBe(11);
    tr.dispose();
    e.dispose();
  });

  it('applies decoupled weight decay as w -= lr * wd * w, and L2 through the gradient', () => {
    const run = (weightDecay: number, weightDecayMode: 'l2' | 'decoupled') => {
      const e = createExpert({ config, seed: 3 });
      const tr = new ExpertTrainer({ expert: e, learningRate: 1e-3, weightDecay, weightDecayMode });
      const w0 = e.stateDict()['fc.weight'].data;
      tr.trainStep({ images: batch(), labels: toy.labels });
      const w1 = e.stateDict()['fc.weight'].data;
      tr.dispose();
      e.dispose();
      return { w0, w1 };
    };
    const plain = run(0, 'decoupled');
    const decoupled = run(0.5, 'decoupled');
    const expected = plain.w1.map((v, i) => v - 1e-3 * 0.5 * plain.w0[i]);
    expect(maxAbsDiff(decoupled.w1, expected)).toBeLessThan(1e-6);
    expect(maxAbsDiff(run(0.5, 'l2').w1, plain.w1)).toBeGreaterThan(0);
  });

  it('refuses frozen experts and bad arguments', () => {
    const e = createExpert({ config });
    e.freeze();
    expect(() => new ExpertTrainer({ expert: e })).toThrow(/the expert is frozen; call expert.unfreeze\(\) before training it/);
    e.unfreeze();
    const tr = new ExpertTrainer({ expert: e });
    expect(() => tr.trainStep({ images: batch(), labels: [0, 1] })).toThrow(/labels has 2 labels, expected 8/);
    expect(() => tr.trainStep({ images: tf.zeros([2, 8, 8, 1]) as tf.Tensor4D, labels: [0, 1] })).toThrow(/trainStep: input size 8x8/);
    e.freeze();
    expect(() => tr.trainStep({ images: batch(), labels: toy.labels })).toThrow(/frozen after the trainer was made/);
    expect(() => new ExpertTrainer({ expert: e, lr: 1 } as never)).toThrow(/unknown field lr; accepted: expert, learningRate, weightDecay, weightDecayMode/);
    tr.dispose();
    e.dispose();
  });
});
