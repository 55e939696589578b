/**
 * Advancing a generator past a batch without sampling it: the random draws of `sampleImages` (the
 * initial noise x_T, then the noise of each stochastic scheduler step) depend only on the shapes,
 * the scheduler and eta, never on the model's output. So a shard that samples batch k of a seed's
 * stream can reproduce the generator state at the start of batch k by replaying batches 0..k-1
 * here (the scheduler's arithmetic on zeros, no model), and its images are then identical to those
 * of an unsharded run. The cost is the noise draws and the scheduler's elementwise updates: nothing
 * with deterministic samplers (DDIM eta 0, DPM-Solver) beyond x_T, one draw per step with DDPM or
 * DDIM eta > 0, small next to a U-Net forward pass either way.
 *
 * Gradient guidance draws the same noise as the unguided step (`guidedStep`), and two-stage
 * sampling draws only in its first (unguided) stage, so one replay covers them too.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Generator } from '../random';
import type { NoiseScheduler } from '../schedulers/scheduler';

export interface SkipSamplingDrawsParams {
  /** The scheduler `sampleImages` would use (`setTimesteps` is called here). */
  scheduler: NoiseScheduler;
  /** The shape of x_T: [batch, sampleSize, sampleSize, inChannels] (latent shape for latent models). */
  shape: [number, number, number, number];
  numInferenceSteps: number;
  /** As given to `sampleImages`. */
  eta?: number;
  generator: Generator;
}

/** Advances `generator` exactly as `sampleImages` with these settings would (see the file comment). */
export function skipSamplingDraws(p: SkipSamplingDrawsParams): void {
  const owner = 'skipSamplingDraws';
  if (p === null || typeof p !== 'object') throw new TypeError(`${owner}: params must be an object, got ${String(p)}`);
  const { scheduler, shape, numInferenceSteps, generator } = p;
  if (!scheduler || typeof scheduler.step !== 'function' || typeof scheduler.setTimesteps !== 'function') throw new TypeError(`${owner}: scheduler must be a NoiseScheduler`);
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 1)) throw new RangeError(`${owner}: shape must be [batch, height, width, channels] of integers >= 1, got ${JSON.stringify(shape)}`);
  if (!generator || typeof generator.normal !== 'function') throw new TypeError(`${owner}: generator must be a Generator`);
  scheduler.setTimesteps(numInferenceSteps);
  const timesteps = Array.from(scheduler.timesteps);
  tf.tidy(() => {
    generator.normal(shape);
    const zeros = tf.zeros(shape) as tf.Tensor4D;
    for (const t of timesteps) {
      tf.tidy(() => {
        scheduler.step(zeros, t, zeros, { generator, eta: p.eta });
      });
    }
  });
}
