/**
 * One scheduler step shifted by a gradient guidance g = s * grad_x E(x_t) (see `guidance.ts`).
 *
 * The update itself is the scheduler's: any {@link NoiseScheduler} that implements the optional
 * `guidedStep` capability (DDIMScheduler: Dhariwal & Nichol 2021 algorithm 2 with the clipped-x0
 * correction; DDPMScheduler: the posterior mean moved by Sigma g). This function checks the inputs
 * and dispatches on the capability, not on a class, so a scheduler of your own (registered with
 * `registerScheduler` or passed directly) works with gradient guidance by implementing it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Generator } from '../random';
import { type NoiseScheduler, type SchedulerOutput, supportsGuidedStep } from '../schedulers/scheduler';

/** Parameters of {@link guidedStep}. */
export interface GuidedStepParams {
  /** A scheduler implementing `guidedStep` (DDIMScheduler, DDPMScheduler, or your own), after `setTimesteps`. */
  scheduler: NoiseScheduler;
  /** The model's (CFG-combined) prediction at (sample, timestep), per the scheduler's predictionType. */
  modelOutput: tf.Tensor;
  timestep: number;
  /** x_t. */
  sample: tf.Tensor;
  /** g = s * grad_x E(x_t), same shape as sample. */
  guidance: tf.Tensor;
  /** DDIM eta (default 0); ignored by DDPM. */
  eta?: number;
  /** Needed for DDPM at t > 0 and DDIM with eta > 0. */
  generator?: Generator;
}

/** The message for a scheduler without the `guidedStep` capability; `owner` names the caller. */
export function guidedStepUnsupported(owner: string, scheduler: unknown): string {
  return `${owner}: gradient guidance needs a scheduler that implements guidedStep (DDIMScheduler and DDPMScheduler do), got ${(scheduler as object)?.constructor?.name ?? String(scheduler)}`;
}

/**
 * One guided step x_t -> x_prev (see the file comment). Draws the same noise as the unguided step.
 * @returns prevSample and predOriginalSample (DDIM: the shifted x0'; DDPM: the unshifted estimate);
 *   the caller owns both.
 * @throws TypeError / RangeError naming the field: a scheduler without `guidedStep`, mismatched
 *   shapes, a timestep not in the schedule, a missing generator.
 */
export function guidedStep(params: GuidedStepParams): SchedulerOutput {
  const owner = 'guidedStep';
  if (typeof params !== 'object' || params === null) throw new TypeError(`${owner}: params must be an object, got ${String(params)}`);
  const { scheduler, modelOutput, timestep, sample, guidance } = params;
  if (!(guidance instanceof tf.Tensor)) throw new TypeError(`${owner}: guidance must be a tf.Tensor shaped like sample, got ${String(guidance)}`);
  if (!(sample instanceof tf.Tensor) || !tf.util.arraysEqual(guidance.shape, sample.shape)) {
    throw new RangeError(`${owner}: guidance shape [${guidance.shape}] must equal sample shape [${sample instanceof tf.Tensor ? sample.shape : String(sample)}]`);
  }
  if (!supportsGuidedStep(scheduler)) throw new TypeError(guidedStepUnsupported(owner, scheduler));
  return scheduler.guidedStep({ modelOutput, timestep, sample, guidance, options: { eta: params.eta, generator: params.generator } });
}
