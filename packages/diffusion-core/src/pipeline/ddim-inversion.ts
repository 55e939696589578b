/**
 * DDIM inversion (Song et al. 2021 section 4.3; Dhariwal & Nichol 2021 appendix F; diffusers'
 * `DDIMInverseScheduler`): run the deterministic DDIM update (eta = 0) backwards, from a clean x_0 to
 * the x_T that deterministic DDIM sampling with the same model, schedule and steps decodes back to
 * (approximately) x_0.
 *
 * The sampler steps t -> t' = t - T/n with the model evaluated at (x_t, t). Inversion goes
 * t' -> t, where x_t is unknown, so the model is evaluated at (x_{t'}, t), as diffusers and
 * null-text inversion do:
 *   eps = model(x_{t'}, t) (as eps, for any prediction type);  x0 = (x_{t'} - sqrt(1 - a_{t'}) eps) / sqrt(a_{t'});
 *   x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps,
 * with a_{t'} the final alpha-bar (1 with setAlphaToOne) before the first grid timestep. The error
 * of that approximation shrinks with more steps and a smoother model. No clipping is applied.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DDIMScheduler } from '../schedulers/ddim-scheduler';
import { predictEpsilon } from '../schedulers/timesteps';
import type { DiffusionModel } from '../unet/unet';
import { modelPrediction, resolveBatch } from './model-prediction';

/** Progress of {@link invertDdim}. */
export interface InversionProgress {
  step: number;
  totalSteps: number;
  /** The timestep just reached. */
  timestep: number;
}

/** Parameters of {@link invertDdim}. */
export interface InvertDdimParams {
  model: DiffusionModel;
  /** Its noise schedule and grid are used; `setTimesteps(numInferenceSteps)` is called. */
  scheduler: DDIMScheduler;
  /** Clean images x_0 [B, size, size, inChannels] in model space (e.g. [-1, 1]). Not disposed. */
  samples: tf.Tensor4D;
  /** One class per image, as for sampling (omit for an unconditional model). */
  classLabels?: ArrayLike<number>;
  /** Classifier-free guidance scale used by the decoding that should reproduce x_0 (default 1). */
  guidanceScale?: number;
  numInferenceSteps: number;
  onProgress?: (p: InversionProgress) => void;
}

/**
 * Maps x_0 to x_T (see the file comment). Resolves to a tensor the caller disposes; leaves nothing
 * else allocated.
 * @throws TypeError / RangeError naming the field before any work.
 */
export async function invertDdim(params: InvertDdimParams): Promise<tf.Tensor4D> {
  const owner = 'invertDdim';
  if (typeof params !== 'object' || params === null) throw new TypeError(`${owner}: params must be an object, got ${String(params)}`);
  const { model, scheduler, samples, numInferenceSteps, onProgress } = params;
  if (!(scheduler instanceof DDIMScheduler)) throw new TypeError(`${owner}: scheduler must be a DDIMScheduler, got ${(scheduler as object)?.constructor?.name ?? String(scheduler)}`);
  const c = model?.config;
  if (!c || typeof model.forward !== 'function') throw new TypeError(`${owner}: model must be a DiffusionModel (e.g. UNet2DConditional), got ${String(model)}`);
  const shape = [samples?.shape?.[0], c.sampleSize, c.sampleSize, c.inChannels];
  if (!(samples instanceof tf.Tensor) || !tf.util.arraysEqual(samples.shape, shape)) {
    throw new RangeError(`${owner}: samples must be a tensor [B,${c.sampleSize},${c.sampleSize},${c.inChannels}], got ${samples instanceof tf.Tensor ? `[${samples.shape}]` : String(samples)}`);
  }
  const w = params.guidanceScale ?? 1;
  const { labels, batchSize, cfg } = resolveBatch({ owner, model, classLabels: params.classLabels, batchSize: samples.shape[0], guidanceScale: w });
  if (batchSize !== samples.shape[0]) throw new RangeError(`${owner}: classLabels has ${batchSize} entries, samples has ${samples.shape[0]} images`);
  scheduler.setTimesteps(numInferenceSteps);
  const ascending = Array.from(scheduler.timesteps).reverse();
  const { predictionType } = scheduler.config;
  let x = tf.clone(samples);
  try {
    for (let i = 0; i < ascending.length; i++) {
      const t = ascending[i];
      const { alphaBarPrev: aFrom, alphaBar: aTo } = scheduler.stepCoefficients(t, 0);
      const next = tf.tidy(() => {
        const out = modelPrediction({ model, x, timestep: t, labels, guidanceScale: w, cfg });
        // The model saw x_{t'} as if it were x_t: read its output as eps with alpha-bar_t, then
        // take the x_0 that this eps implies for x_{t'}.
        const eps = predictEpsilon({ predictionType, modelOutput: out, sample: x, alphaBar: aTo });
        const x0 = tf.div(tf.sub(x, tf.mul(eps, Math.sqrt(1 - aFrom))), Math.sqrt(aFrom));
        return tf.add(tf.mul(x0, Math.sqrt(aTo)), tf.mul(eps, Math.sqrt(1 - aTo))) as tf.Tensor4D;
      });
      x.dispose();
      x = next;
      onProgress?.({ step: i + 1, totalSteps: ascending.length, timestep: t });
      await new Promise<void>((r) => setTimeout(r, 0));
    }
    return x;
  } catch (e) {
    x.dispose();
    throw e;
  }
}
