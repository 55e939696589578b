// Explicit barrel of the schedulers folder: every public name is listed here. The one definition,
// `schedulerFromConfig`, lives here because it is the only place that knows every scheduler class.
import { DDIMScheduler, type DDIMSchedulerJSON } from './ddim-scheduler';
import { DDPMScheduler, type DDPMSchedulerJSON } from './ddpm-scheduler';
import { DPMSolverMultistepScheduler, type DPMSolverMultistepSchedulerJSON } from './dpm-solver-multistep-scheduler';
import { describeValue } from './timesteps';

export {
  alphasCumprodFromBetas,
  betasForAlphaBar,
  betaScheduleNames,
  BUILTIN_BETA_SCHEDULE_NAMES,
  makeBetas,
  registerBetaSchedule,
  rescaleZeroTerminalSnr,
  unregisterBetaSchedule,
} from './beta-schedules';
export type { BetaScheduleFn, BetaScheduleParams, BetasForAlphaBarParams, MakeBetasParams } from './beta-schedules';
export { DDIM_SCHEDULER_DEFAULTS, DDIMScheduler } from './ddim-scheduler';
export type { DDIMSchedulerConfig, DDIMSchedulerJSON, DDIMStepCoefficients } from './ddim-scheduler';
export { DDPM_SCHEDULER_DEFAULTS, DDPMScheduler, VARIANCE_TYPES } from './ddpm-scheduler';
export type { DDPMSchedulerConfig, DDPMSchedulerJSON, PosteriorCoefficients, VarianceType } from './ddpm-scheduler';
export {
  DPM_FINAL_SIGMAS_TYPES,
  DPM_SOLVER_ALGORITHM_TYPES,
  DPM_SOLVER_MULTISTEP_SCHEDULER_DEFAULTS,
  DPM_SOLVER_TYPES,
  DPMSolverMultistepScheduler,
  dpmSolverTimesteps,
} from './dpm-solver-multistep-scheduler';
export type {
  DPMFinalSigmasType,
  DPMSolverAlgorithmType,
  DPMSolverMultistepSchedulerConfig,
  DPMSolverMultistepSchedulerJSON,
  DPMSolverTimestepsParams,
  DPMSolverType,
  DPMVarianceType,
} from './dpm-solver-multistep-scheduler';
export {
  BUILTIN_SCHEDULER_NAMES,
  registerScheduler,
  schedulerFromName,
  schedulerNames,
  unregisterScheduler,
} from './registry';
export type { BuiltinSchedulerName, SchedulerFactory, SchedulerFromNameParams } from './registry';
export { supportsGuidedStep } from './scheduler';
export type {
  BetaScheduleName,
  GuidedStepInput,
  NoiseScheduler,
  PredictionType,
  SchedulerOutput,
  StepOptions,
  TimestepSpacing,
} from './scheduler';
export { BASE_SCHEDULER_DEFAULTS, inferenceTimesteps, PREDICTION_TYPES, TIMESTEP_SPACINGS } from './timesteps';
export type { BaseSchedulerConfig, InferenceTimestepsParams } from './timesteps';

/** Any serialised scheduler, as written by `toJSON()`. */
export type SchedulerJSON = DDPMSchedulerJSON | DDIMSchedulerJSON | DPMSolverMultistepSchedulerJSON;

/** Every scheduler class `schedulerFromConfig` can build. */
export type AnyScheduler = DDPMScheduler | DDIMScheduler | DPMSolverMultistepScheduler;

/** The `_class` values `schedulerFromConfig` accepts. */
export const SCHEDULER_CLASS_NAMES: readonly SchedulerJSON['_class'][] = [
  DDPMScheduler.className,
  DDIMScheduler.className,
  DPMSolverMultistepScheduler.className,
];

/**
 * Rebuilds a scheduler from any scheduler's `toJSON()` output, choosing the class by `_class`.
 *
 * @throws TypeError if `json` is not an object or `_class` is missing or unknown; otherwise as the
 *   chosen class's constructor does.
 */
export function schedulerFromConfig(json: DDPMSchedulerJSON): DDPMScheduler;
export function schedulerFromConfig(json: DDIMSchedulerJSON): DDIMScheduler;
export function schedulerFromConfig(json: DPMSolverMultistepSchedulerJSON): DPMSolverMultistepScheduler;
export function schedulerFromConfig(json: unknown): AnyScheduler;
export function schedulerFromConfig(json: unknown): AnyScheduler {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new TypeError(`schedulerFromConfig: expected a scheduler config object, got ${describeValue(json)}`);
  }
  const className = (json as { _class?: unknown })._class;
  switch (className) {
    case DDPMScheduler.className:
      return DDPMScheduler.fromConfig(json);
    case DDIMScheduler.className:
      return DDIMScheduler.fromConfig(json);
    case DPMSolverMultistepScheduler.className:
      return DPMSolverMultistepScheduler.fromConfig(json);
    default:
      throw new TypeError(
        `schedulerFromConfig: config._class must be one of ${SCHEDULER_CLASS_NAMES.join(', ')}, ` +
          `got ${describeValue(className)}`,
      );
  }
}
