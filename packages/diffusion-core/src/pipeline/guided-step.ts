/**
 * One scheduler step shifted by a guidance gradient g = s * grad_x E(x_t) (see `guidance.ts`).
 *
 * DDIM (Dhariwal & Nichol 2021, algorithm 2; Yang et al. 2024), with a = alpha-bar_t:
 *   1. x0 = clip((x_t - sqrt(1-a) eps) / sqrt(a))           (clip only if the scheduler's clipSample)
 *   2. eps' = (x_t / sqrt(a) - x0) / sqrt(1/a - 1)          (the eps matching the clipped x0)
 *   3. eps_hat = eps' - sqrt(1-a) g
 *   4. x0' = x0 + (1-a) / sqrt(a) g                        (= the x0 implied by eps_hat)
 *   5. x_prev = sqrt(a_prev) x0' + sqrt(1 - a_prev - sigma^2) eps_hat + sigma z   (sigma = 0 at eta 0)
 * Without clipping, step 2 is skipped (eps' = eps), so g = 0 reproduces `DDIMScheduler.step` bit for bit.
 *
 * DDPM (Dhariwal & Nichol 2021, algorithm 1): the posterior mean moves by Sigma g, Sigma the step's
 * variance: x_prev = mu + Sigma g + sqrt(Sigma) z.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Generator } from '../random';
import { DDIMScheduler } from '../schedulers/ddim-scheduler';
import { DDPMScheduler } from '../schedulers/ddpm-scheduler';
import type { NoiseScheduler, SchedulerOutput } from '../schedulers/scheduler';
import { checkStepArgs, predictEpsilon, predictOriginalSample, requireGenerator } from '../schedulers/timesteps';

/** Parameters of {@link guidedStep}. */
export interface GuidedStepParams {
  /** A DDIMScheduler or DDPMScheduler (after `setTimesteps`). */
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

/**
 * One guided step x_t -> x_prev (see the file comment). Draws the same noise as the unguided step.
 * @returns prevSample and predOriginalSample (DDIM: the shifted x0'; DDPM: the unshifted estimate);
 *   the caller owns both.
 * @throws TypeError / RangeError naming the field: another scheduler class, mismatched shapes, a
 *   timestep not in the schedule, a missing generator.
 */
export function guidedStep(params: GuidedStepParams): SchedulerOutput {
  const owner = 'guidedStep';
  if (typeof params !== 'object' || params === null) throw new TypeError(`${owner}: params must be an object, got ${String(params)}`);
  const { scheduler, modelOutput, timestep, sample, guidance } = params;
  if (!(guidance instanceof tf.Tensor)) throw new TypeError(`${owner}: guidance must be a tf.Tensor shaped like sample, got ${String(guidance)}`);
  if (!(sample instanceof tf.Tensor) || !tf.util.arraysEqual(guidance.shape, sample.shape)) {
    throw new RangeError(`${owner}: guidance shape [${guidance.shape}] must equal sample shape [${sample instanceof tf.Tensor ? sample.shape : String(sample)}]`);
  }
  const options = { eta: params.eta, generator: params.generator };
  if (scheduler instanceof DDPMScheduler) {
    const post = scheduler.posteriorCoefficients(timestep);
    const out = scheduler.step(modelOutput, timestep, sample, options);
    const prevSample = tf.tidy(() => tf.add(out.prevSample, tf.mul(guidance, post.variance)));
    out.prevSample.dispose();
    return { prevSample, predOriginalSample: out.predOriginalSample };
  }
  if (!(scheduler instanceof DDIMScheduler)) {
    throw new TypeError(`${owner}: scheduler must be a DDIMScheduler or DDPMScheduler, got ${(scheduler as object)?.constructor?.name ?? String(scheduler)}`);
  }
  const { eta, generator: maybeGenerator } = checkStepArgs({ owner, modelOutput, sample, options });
  const c = scheduler.stepCoefficients(timestep, eta);
  const generator = eta > 0 ? requireGenerator(owner, maybeGenerator, `when eta > 0 (got ${eta})`) : null;
  const { predictionType, clipSample, clipSampleRange } = scheduler.config;
  const a = c.alphaBar;
  return tf.tidy(() => {
    const predictParams = { predictionType, modelOutput, sample, alphaBar: a };
    // 1.-2.
    let x0 = predictOriginalSample(predictParams);
    let eps = predictEpsilon(predictParams);
    if (clipSample) {
      x0 = tf.clipByValue(x0, -clipSampleRange, clipSampleRange);
      eps = tf.div(tf.sub(tf.div(sample, Math.sqrt(a)), x0), Math.sqrt(1 / a - 1));
    }
    // 3.-4.
    const epsHat = tf.sub(eps, tf.mul(guidance, Math.sqrt(1 - a)));
    const x0Hat = tf.add(x0, tf.mul(guidance, (1 - a) / Math.sqrt(a)));
    // 5. The same arithmetic as DDIMScheduler.step.
    let prevSample = tf.add(tf.mul(x0Hat, c.coefX0), tf.mul(epsHat, c.coefEps));
    if (generator) prevSample = tf.add(prevSample, tf.mul(generator.normal(sample.shape), c.sigma));
    return { prevSample, predOriginalSample: x0Hat };
  });
}
