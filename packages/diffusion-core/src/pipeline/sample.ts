/**
 * The sampling pipeline: start from seeded Gaussian noise, run a scheduler's reverse process with
 * the model, optionally with classifier-free guidance (Ho & Salimans 2022), and return images in
 * [0, 1].
 */
import * as tf from '@tensorflow/tfjs-core';
import { Generator } from '../random';
import type { NoiseScheduler } from '../schedulers/scheduler';
import type { DiffusionModel } from '../unet/unet';

export interface SampleProgress {
  /** Steps done so far (1-based after the first step). */
  step: number;
  totalSteps: number;
  /** The timestep just denoised. */
  timestep: number;
}

export interface SampleParams {
  model: DiffusionModel;
  scheduler: NoiseScheduler;
  /** One class per image. Omit for an unconditional (or null-class) batch of `batchSize`. */
  classLabels?: ArrayLike<number>;
  /** Number of images when `classLabels` is omitted. */
  batchSize?: number;
  numInferenceSteps: number;
  /**
   * Classifier-free guidance scale w: eps = eps_uncond + w (eps_cond - eps_uncond). 1 (default)
   * uses the conditional prediction only; needs a model with a null class when w != 1.
   */
  guidanceScale?: number;
  /** Seed of the initial noise and of stochastic steps. Ignored when `generator` is given. */
  seed?: number;
  generator?: Generator;
  /** DDIM eta (0 = deterministic). Passed to the scheduler's step. */
  eta?: number;
  /** The range of the training data, mapped to [0, 1] at the end. Default [-1, 1]. */
  dataRange?: [number, number];
  onProgress?: (p: SampleProgress) => void;
}

/** Samples images; resolves to a [B,H,W,C] tensor in [0, 1] that the caller disposes. */
export async function sampleImages(params: SampleParams): Promise<tf.Tensor4D> {
  const { model, scheduler, numInferenceSteps, onProgress } = params;
  const cfg = model.config;
  const w = params.guidanceScale ?? 1;
  const [lo, hi] = params.dataRange ?? [-1, 1];
  if (!(hi > lo)) throw new RangeError(`sampleImages: dataRange must be [low, high] with high > low, got [${lo}, ${hi}]`);
  if (!Number.isFinite(w) || w < 0) throw new RangeError(`sampleImages: guidanceScale must be a finite number >= 0, got ${w}`);
  let labels: number[] | undefined;
  let b: number;
  if (params.classLabels !== undefined) {
    labels = Array.from(params.classLabels);
    b = labels.length;
    if (b === 0) throw new RangeError('sampleImages: classLabels is empty');
    const max = cfg.numClasses + (cfg.nullClass ? 1 : 0) + (cfg.conditioningTokens?.length ?? 0);
    for (const l of labels) {
      if (!Number.isInteger(l) || l < 0 || l >= max) throw new RangeError(`sampleImages: class label ${l} out of range 0..${max - 1}`);
    }
  } else {
    b = params.batchSize ?? 0;
    if (!Number.isInteger(b) || b <= 0) throw new RangeError(`sampleImages: give classLabels or a positive integer batchSize, got batchSize=${params.batchSize}`);
    if (cfg.numClasses > 0 && !cfg.nullClass) throw new RangeError('sampleImages: classLabels are required for a class-conditional model without a null class');
  }
  const guided = w !== 1 && labels !== undefined;
  if (guided && !cfg.nullClass) {
    throw new RangeError(`sampleImages: guidanceScale ${w} needs a model trained with a null class (config.nullClass = true)`);
  }
  const gen = params.generator ?? new Generator(params.seed ?? 0);
  scheduler.setTimesteps(numInferenceSteps);
  const timesteps = Array.from(scheduler.timesteps);
  let x = gen.normal([b, cfg.sampleSize, cfg.sampleSize, cfg.inChannels]) as tf.Tensor4D;
  try {
    for (let i = 0; i < timesteps.length; i++) {
      const t = timesteps[i];
      const next = tf.tidy(() => {
        let eps: tf.Tensor4D;
        if (guided) {
          const both = model.forward({
            sample: tf.concat([x, x], 0) as tf.Tensor4D,
            timesteps: new Array(2 * b).fill(t),
            classLabels: [...(labels as number[]), ...new Array(b).fill(cfg.numClasses)],
          }).sample;
          const [cond, uncond] = tf.split(both, 2, 0) as [tf.Tensor4D, tf.Tensor4D];
          eps = tf.add(uncond, tf.mul(tf.sub(cond, uncond), w));
        } else {
          eps = model.forward({ sample: x, timesteps: new Array(b).fill(t), classLabels: labels }).sample;
        }
        const out = scheduler.step(eps, t, x, { generator: gen, eta: params.eta });
        out.predOriginalSample.dispose();
        return out.prevSample as tf.Tensor4D;
      });
      x.dispose();
      x = next;
      onProgress?.({ step: i + 1, totalSteps: timesteps.length, timestep: t });
      // Let signal handlers and progress output run between steps.
      await new Promise<void>((r) => setTimeout(r, 0));
    }
    const img = tf.tidy(() => tf.clipByValue(tf.div(tf.sub(x, lo), hi - lo), 0, 1) as tf.Tensor4D);
    return img;
  } finally {
    x.dispose();
  }
}
