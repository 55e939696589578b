import { describe, expect, it } from 'vitest';
import { learningRateAt, resolveLrSchedule } from './lr-schedule';

describe('learning-rate schedules', () => {
  it('cosine: peak at the start, (peak+min)/2 half-way, min at the end; linear warm-up', () => {
    const s = resolveLrSchedule({ type: 'cosine', totalSteps: 100, minLearningRate: 0.1 });
    expect(learningRateAt(s, 1, 0)).toBeCloseTo(1, 12);
    expect(learningRateAt(s, 1, 50)).toBeCloseTo(0.55, 12);
    expect(learningRateAt(s, 1, 100)).toBeCloseTo(0.1, 12);
    expect(learningRateAt(s, 1, 150)).toBeCloseTo(0.1, 12);
    const w = resolveLrSchedule({ type: 'cosine', totalSteps: 110, warmupSteps: 10 });
    expect(learningRateAt(w, 2, 0)).toBeCloseTo(0.2, 12);
    expect(learningRateAt(w, 2, 9)).toBeCloseTo(2, 12);
    expect(learningRateAt(w, 2, 60)).toBeCloseTo(1, 12);
  });

  it('constant is constant; bad settings name the field', () => {
    expect(learningRateAt(resolveLrSchedule(), 0.3, 1234)).toBe(0.3);
    expect(() => resolveLrSchedule({ type: 'step' as never })).toThrow(/lrSchedule.type must be one of constant, cosine/);
    expect(() => resolveLrSchedule({ type: 'cosine' })).toThrow(/lrSchedule.totalSteps must be an integer > warmupSteps/);
  });
});
