/** Learning-rate schedules, as pure functions of the step (0-based). */

/** The learning-rate schedule types (`LrScheduleConfig.type`). */
export const LR_SCHEDULE_TYPES = ['constant', 'cosine'] as const;

export interface LrScheduleConfig {
  /** 'constant', or 'cosine' (Loshchilov & Hutter 2017) decaying to minLearningRate at totalSteps. */
  type: (typeof LR_SCHEDULE_TYPES)[number];
  /** Linear warm-up from 0 over this many steps. */
  warmupSteps: number;
  /** Required for 'cosine': the step at which the decay ends. */
  totalSteps?: number;
  minLearningRate: number;
}

export const DEFAULT_LR_SCHEDULE: LrScheduleConfig = { type: 'constant', warmupSteps: 0, minLearningRate: 0 };

export function resolveLrSchedule(partial: Partial<LrScheduleConfig> = {}): LrScheduleConfig {
  const c = { ...DEFAULT_LR_SCHEDULE, ...partial };
  if (!(LR_SCHEDULE_TYPES as readonly string[]).includes(c.type)) {
    throw new RangeError(`lrSchedule.type must be one of ${LR_SCHEDULE_TYPES.join(', ')}, got ${JSON.stringify(c.type)}`);
  }
  if (!Number.isInteger(c.warmupSteps) || c.warmupSteps < 0) {
    throw new RangeError(`lrSchedule.warmupSteps must be an integer >= 0, got ${c.warmupSteps}`);
  }
  if (c.type === 'cosine' && (!Number.isInteger(c.totalSteps) || (c.totalSteps as number) <= c.warmupSteps)) {
    throw new RangeError(`lrSchedule.totalSteps must be an integer > warmupSteps for a cosine schedule, got ${c.totalSteps}`);
  }
  if (!(c.minLearningRate >= 0)) throw new RangeError(`lrSchedule.minLearningRate must be >= 0, got ${c.minLearningRate}`);
  return c;
}

/** The learning rate at `step` for a peak rate `baseLr`. */
export function learningRateAt(schedule: LrScheduleConfig, baseLr: number, step: number): number {
  if (schedule.warmupSteps > 0 && step < schedule.warmupSteps) return (baseLr * (step + 1)) / schedule.warmupSteps;
  if (schedule.type === 'constant') return baseLr;
  const total = schedule.totalSteps as number;
  const p = Math.min(1, (step - schedule.warmupSteps) / (total - schedule.warmupSteps));
  return schedule.minLearningRate + 0.5 * (baseLr - schedule.minLearningRate) * (1 + Math.cos(Math.PI * p));
}
