import { describe, expect, it } from 'vitest';
import { stepDecayLearningRate } from './lr-step-decay';

describe('stepDecayLearningRate', () => {
  it('multiplies by gamma every stepEpochs epochs (the paper: 1e-4, gamma 0.7 each epoch)', () => {
    const lr = (epoch: number, stepEpochs = 1) => stepDecayLearningRate({ baseLearningRate: 1e-4, gamma: 0.7, stepEpochs, epoch });
    expect(lr(0)).toBe(1e-4);
    expect(lr(1)).toBeCloseTo(7e-5, 12);
    expect(lr(3)).toBeCloseTo(1e-4 * 0.343, 12);
    expect(lr(1, 2)).toBe(1e-4);
    expect(lr(2, 2)).toBeCloseTo(7e-5, 12);
    expect(() => stepDecayLearningRate({ baseLearningRate: 1e-4, gamma: 1.5, stepEpochs: 1, epoch: 0 })).toThrow(/gamma must be a finite number > 0 and <= 1, got 1.5/);
    expect(() => stepDecayLearningRate({ baseLearningRate: 1e-4, gamma: 0.7, stepEpochs: 1, epoch: -1 })).toThrow(/epoch must be an integer >= 0, got -1/);
  });
});
