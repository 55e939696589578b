/**
 * What every scheduler shares: the resolved config, the float32 noise schedule, the current
 * timestep grid, and the forward-process helpers. Subclasses add `step`, their previous-timestep
 * rule and `toJSON`.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { noiseSchedule } from './beta-schedules';
import {
  addNoiseFromAlphaBars,
  type BaseSchedulerConfig,
  checkNumInferenceSteps,
  checkTrainTimestep,
  type ConfigSpec,
  inferenceTimesteps,
  resolveConfig,
  trainingTimesteps,
  velocityFromAlphaBars,
} from './timesteps';

export abstract class BaseScheduler<C extends BaseSchedulerConfig> {
  readonly config: Readonly<C>;
  /** beta_t for t = 0..T-1, float32. Treat as read-only. */
  readonly betas: Float32Array;
  /** alpha-bar_t for t = 0..T-1, float32. Treat as read-only. */
  readonly alphasCumprod: Float32Array;
  protected currentTimesteps: Int32Array;
  protected currentNumInferenceSteps: number | null = null;
  /** The class name used in error messages and `_class`. */
  protected readonly owner: string;

  protected constructor(owner: string, input: unknown, spec: ConfigSpec<C>) {
    this.owner = owner;
    this.config = resolveConfig({ owner, input, spec });
    const schedule = noiseSchedule(this.config);
    this.betas = schedule.betas;
    this.alphasCumprod = schedule.alphasCumprod;
    this.currentTimesteps = trainingTimesteps(this.config.numTrainTimesteps);
  }

  /** Descending timesteps `step` accepts: T-1..0 until `setTimesteps` is called. Treat as read-only. */
  get timesteps(): Int32Array {
    return this.currentTimesteps;
  }

  /** The n of the last `setTimesteps(n)`, or null if it was never called. */
  get numInferenceSteps(): number | null {
    return this.currentNumInferenceSteps;
  }

  /**
   * Selects `numInferenceSteps` timesteps spaced per `config.timestepSpacing` (e.g. "leading" with
   * T = 1000 and n = 50: 980, 960, ..., 0; "trailing": 999, 979, ..., 19).
   * @throws RangeError unless numInferenceSteps is an integer in 1..numTrainTimesteps.
   */
  setTimesteps(numInferenceSteps: number): void {
    checkNumInferenceSteps(this.owner, numInferenceSteps, this.config.numTrainTimesteps);
    try {
      this.currentTimesteps = inferenceTimesteps({ ...this.config, numInferenceSteps });
    } catch (e) {
      throw new RangeError(`${this.owner}.setTimesteps: ${(e as Error).message}`);
    }
    this.currentNumInferenceSteps = numInferenceSteps;
  }

  /**
   * alpha-bar_t, the fraction of signal variance left at timestep t.
   * @throws RangeError unless t is an integer in 0..T-1.
   */
  alphaBar(t: number): number {
    checkTrainTimestep(`${this.owner}.alphaBar`, t, this.config.numTrainTimesteps);
    return this.alphasCumprod[t];
  }

  /**
   * x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) noise (Ho et al. 2020 eq. 4), one timestep per batch
   * element, broadcast over the remaining (NHWC) dimensions. The caller owns the returned tensor.
   */
  addNoise(originalSamples: tf.Tensor, noise: tf.Tensor, timesteps: tf.Tensor1D | number[]): tf.Tensor {
    return addNoiseFromAlphaBars({ owner: `${this.owner}.addNoise`, alphasCumprod: this.alphasCumprod, sample: originalSamples, noise, timesteps });
  }

  /** v = sqrt(ab_t) noise - sqrt(1 - ab_t) sample, the v-prediction target for clean `sample`. */
  getVelocity(sample: tf.Tensor, noise: tf.Tensor, timesteps: tf.Tensor1D | number[]): tf.Tensor {
    return velocityFromAlphaBars({ owner: `${this.owner}.getVelocity`, alphasCumprod: this.alphasCumprod, sample, noise, timesteps });
  }

  /** Throws unless t is in the current grid (and, if `requireSet`, `setTimesteps` was called). */
  protected checkScheduledTimestep(owner: string, t: number, requireSet: boolean): void {
    if (requireSet && this.currentNumInferenceSteps === null) {
      throw new Error(`${owner}: numInferenceSteps is not set; call setTimesteps(numInferenceSteps) first`);
    }
    checkTrainTimestep(owner, t, this.config.numTrainTimesteps);
    if (this.currentNumInferenceSteps !== null && !this.currentTimesteps.includes(t)) {
      throw new RangeError(`${owner}: timestep ${t} is not in the schedule set by setTimesteps(${this.currentNumInferenceSteps})`);
    }
  }
}
