/**
 * The interface every noise scheduler implements (the diffusers scheduler contract, in TypeScript).
 *
 * Tensors are NHWC images. Timesteps are integers in [0, numTrainTimesteps).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Generator } from '../random';

export type BetaScheduleName = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2' | (string & {});
export type PredictionType = 'epsilon' | 'sample' | 'v_prediction';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

export interface StepOptions {
  /** Source of the noise a stochastic step adds (DDPM; DDIM with eta > 0). Required for those. */
  generator?: Generator;
  /** DDIM only: the eta of Song et al. (2021) eq. 16; 0 is deterministic DDIM, 1 is DDPM-like. */
  eta?: number;
}

export interface SchedulerOutput {
  /** x_{t-1}: the sample for the next (earlier) timestep. */
  prevSample: tf.Tensor;
  /** The model's estimate of x_0 at this step. */
  predOriginalSample: tf.Tensor;
}

/** Input of the optional {@link NoiseScheduler.guidedStep} capability. */
export interface GuidedStepInput {
  /** The model's (CFG-combined) prediction at (sample, timestep), per the scheduler's predictionType. */
  modelOutput: tf.Tensor;
  timestep: number;
  /** x_t. */
  sample: tf.Tensor;
  /** g = s * grad_x E(x_t), same shape as sample (checked by the caller, `guidedStep`). */
  guidance: tf.Tensor;
  /** `eta` and `generator`, as for `step`. */
  options?: StepOptions;
}

export interface NoiseScheduler<C = unknown> {
  /** The JSON-serialisable config, as passed to the constructor with defaults filled in. */
  readonly config: Readonly<C>;
  /** alpha-bar_t for t = 0..T-1, float32. */
  readonly alphasCumprod: Float32Array;
  /** The inference timesteps after `setTimesteps`, descending; the training range before. */
  readonly timesteps: Int32Array;
  readonly numInferenceSteps: number | null;
  setTimesteps(numInferenceSteps: number): void;
  addNoise(originalSamples: tf.Tensor, noise: tf.Tensor, timesteps: tf.Tensor1D | number[]): tf.Tensor;
  getVelocity(sample: tf.Tensor, noise: tf.Tensor, timesteps: tf.Tensor1D | number[]): tf.Tensor;
  step(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor, options?: StepOptions): SchedulerOutput;
  toJSON(): C & { _class: string };
  /**
   * Optional capability: one step x_t -> x_prev shifted by a gradient guidance g (classifier or
   * uncertainty guidance, see `guidedStep` in the pipeline). Schedulers that implement it can be used
   * with `sampleImages({ guidance })`; the pipelines test for the method, not for a class, so a
   * scheduler of your own qualifies by implementing it. DDIM and DDPM do; DPM-Solver does not.
   * Draws the same noise as the unguided `step`; the caller owns both outputs.
   */
  guidedStep?(input: GuidedStepInput): SchedulerOutput;
}

/** Whether `scheduler` implements the optional {@link NoiseScheduler.guidedStep} capability. */
export function supportsGuidedStep(scheduler: NoiseScheduler): scheduler is NoiseScheduler & { guidedStep(input: GuidedStepInput): SchedulerOutput } {
  return typeof (scheduler as { guidedStep?: unknown } | null)?.guidedStep === 'function';
}
