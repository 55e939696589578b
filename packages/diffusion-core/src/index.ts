// Explicit barrel: every public name is listed here.
export { Generator } from './random';
export type { GeneratorState } from './random';
export type {
  BetaScheduleName,
  NoiseScheduler,
  PredictionType,
  SchedulerOutput,
  StepOptions,
  TimestepSpacing,
} from './schedulers/scheduler';
