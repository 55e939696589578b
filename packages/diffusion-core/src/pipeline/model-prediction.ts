/**
 * What the sampler and DDIM inversion share: checking class labels against a model, and the model's
 * prediction at one timestep with optional classifier-free guidance (Ho & Salimans 2022). Internal.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DiffusionModel } from '../unet/unet';
import { rescaleGuidance } from './guidance-rescale';

/** Parameters of {@link resolveBatch}. */
export interface ResolveBatchParams {
  /** Function name for error messages. */
  owner: string;
  model: DiffusionModel;
  classLabels?: ArrayLike<number>;
  batchSize?: number;
  /** Classifier-free guidance scale w (1 = none). */
  guidanceScale: number;
}

/** The checked batch: labels (or none), batch size, and whether classifier-free guidance is active. */
export interface ResolvedBatch {
  labels: number[] | undefined;
  batchSize: number;
  cfg: boolean;
}

/** Validates labels / batch size / CFG scale against the model, naming the offending field. */
export function resolveBatch(params: ResolveBatchParams): ResolvedBatch {
  const { owner, model, guidanceScale: w } = params;
  const cfg = model.config;
  if (!Number.isFinite(w) || w < 0) throw new RangeError(`${owner}: guidanceScale must be a finite number >= 0, got ${w}`);
  let labels: number[] | undefined;
  let b: number;
  if (params.classLabels !== undefined) {
    labels = Array.from(params.classLabels);
    b = labels.length;
    if (b === 0) throw new RangeError(`${owner}: classLabels is empty`);
    const max = cfg.numClasses + (cfg.nullClass ? 1 : 0) + (cfg.conditioningTokens?.length ?? 0);
    for (const l of labels) {
      if (!Number.isInteger(l) || l < 0 || l >= max) throw new RangeError(`${owner}: class label ${l} out of range 0..${max - 1}`);
    }
  } else {
    b = params.batchSize ?? 0;
    if (!Number.isInteger(b) || b <= 0) throw new RangeError(`${owner}: give classLabels or a positive integer batchSize, got batchSize=${params.batchSize}`);
    if (cfg.numClasses > 0 && !cfg.nullClass) throw new RangeError(`${owner}: classLabels are required for a class-conditional model without a null class`);
  }
  const guided = w !== 1 && labels !== undefined;
  if (guided && !cfg.nullClass) {
    throw new RangeError(`${owner}: guidanceScale ${w} needs a model trained with a null class (config.nullClass = true)`);
  }
  return { labels, batchSize: b, cfg: guided };
}

/** Parameters of {@link modelPrediction}. */
export interface ModelPredictionParams {
  model: DiffusionModel;
  x: tf.Tensor4D;
  timestep: number;
  labels: number[] | undefined;
  /** Classifier-free guidance scale; applied only when `cfg` is true. */
  guidanceScale: number;
  cfg: boolean;
  /** Guidance rescale phi in [0, 1] (see {@link rescaleGuidance}); 0 or absent: plain CFG. */
  guidanceRescale?: number;
}

/**
 * The model output at (x, timestep): out_uncond + w (out_cond - out_uncond) with CFG (one batched
 * pass of 2B), the conditional output otherwise. Call inside a `tf.tidy`.
 */
export function modelPrediction(params: ModelPredictionParams): tf.Tensor4D {
  const { model, x, timestep: t, labels, guidanceScale: w } = params;
  const b = x.shape[0];
  if (params.cfg && labels) {
    const both = model.forward({
      sample: tf.concat([x, x], 0) as tf.Tensor4D,
      timesteps: new Array(2 * b).fill(t),
      classLabels: [...labels, ...new Array(b).fill(model.config.numClasses)],
    }).sample;
    const [cond, uncond] = tf.split(both, 2, 0) as [tf.Tensor4D, tf.Tensor4D];
    const guided = tf.add(uncond, tf.mul(tf.sub(cond, uncond), w)) as tf.Tensor4D;
    return rescaleGuidance({ guided, cond, phi: params.guidanceRescale ?? 0 });
  }
  return model.forward({ sample: x, timesteps: new Array(b).fill(t), classLabels: labels }).sample;
}
