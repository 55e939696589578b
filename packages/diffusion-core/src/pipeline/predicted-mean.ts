/**
 * A diagnostic of whether a model can set an image's low-frequency content: noise real images to
 * several timesteps, let the model predict x_0, and compare each image's predicted mean with its
 * true mean. A model whose predicted means do not follow the true ones at high t (slope near 0)
 * produces samples of one mean intensity whatever the class: the failure of issue G.
 *
 * With epsilon prediction an error e in the predicted noise becomes an x_0 error of
 * e * sqrt(1 - ab) / sqrt(ab) (Ho et al. 2020 eq. 15), ~150x at the top of the linear schedule, so
 * this is where epsilon models go wrong first; v-prediction bounds it by sqrt(1 - ab)
 * (Salimans & Ho 2022).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Generator } from '../random';
import type { PredictionType } from '../schedulers/scheduler';
import { predictOriginalSample } from '../schedulers/timesteps';
import type { DiffusionModel } from '../unet/unet';
import { modelPrediction, resolveBatch } from './model-prediction';

/** What {@link predictedMeanByTimestep} needs of a scheduler. */
export interface PredictedMeanScheduler {
  readonly config: { readonly numTrainTimesteps: number; readonly predictionType: PredictionType };
  readonly alphasCumprod: Float32Array;
  addNoise(originalSamples: tf.Tensor, noise: tf.Tensor, timesteps: tf.Tensor1D | number[]): tf.Tensor;
}

/** Parameters of {@link predictedMeanByTimestep}. */
export interface PredictedMeanParams {
  model: DiffusionModel;
  scheduler: PredictedMeanScheduler;
  /** Clean images [N,H,W,C] in the model's value range (usually [-1, 1]). Not disposed. */
  x0: tf.Tensor4D;
  /** One class per image (omit for an unconditional model). */
  classLabels?: ArrayLike<number>;
  /** Timesteps to probe, each an integer in 0..T-1. */
  timesteps: number[];
  /** Classifier-free guidance scale (1, the default: the conditional prediction alone). */
  guidanceScale?: number;
  /** Seed of the noise (one draw, reused at every timestep). Default 0. */
  seed?: number;
  /** Images per forward pass. Default 32. */
  batchSize?: number;
}

/** One probed timestep. Means are of per-image means (over pixels and channels), in model space. */
export interface PredictedMeanRow {
  timestep: number;
  alphaBar: number;
  /** Mean over images of the true image mean. */
  trueMean: number;
  /** Mean over images of the predicted x_0's mean. */
  predictedMean: number;
  /** The same after clipping the predicted x_0 to [-1, 1], as DDIM/DDPM's clipSample do. */
  clippedMean: number;
  /** Least-squares slope of predicted image mean on true image mean: 1 follows, 0 ignores it. */
  slope: number;
  /** Mean absolute difference of predicted and true image means. */
  meanAbsError: number;
  /** Mean squared x_0 error per pixel. */
  x0Mse: number;
}

/** Predicted against true per-image means of x_0 at each timestep (see the file comment). */
export function predictedMeanByTimestep(params: PredictedMeanParams): PredictedMeanRow[] {
  const owner = 'predictedMeanByTimestep';
  const { model, scheduler, x0, timesteps } = params;
  if (!(x0 instanceof tf.Tensor) || x0.rank !== 4) throw new TypeError(`${owner}: x0 must be a [N,H,W,C] tensor, got ${x0 instanceof tf.Tensor ? `rank ${x0.rank}` : typeof x0}`);
  const n = x0.shape[0];
  if (!Array.isArray(timesteps) || timesteps.length === 0) throw new RangeError(`${owner}: timesteps must be a non-empty array`);
  const T = scheduler.config.numTrainTimesteps;
  for (const t of timesteps) {
    if (!Number.isInteger(t) || t < 0 || t >= T) throw new RangeError(`${owner}: every timestep must be an integer in 0..${T - 1}, got ${t}`);
  }
  const batchSize = params.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`${owner}: batchSize must be a positive integer, got ${params.batchSize}`);
  const w = params.guidanceScale ?? 1;
  const { labels, cfg } = resolveBatch({ owner, model, classLabels: params.classLabels, batchSize: n, guidanceScale: w });
  if (labels && labels.length !== n) throw new RangeError(`${owner}: ${labels.length} class labels for ${n} images`);
  const noise = new Generator(params.seed ?? 0).normal(x0.shape);
  try {
    const trueMeans = tf.tidy(() => tf.mean(x0, [1, 2, 3]).dataSync() as Float32Array);
    const rows: PredictedMeanRow[] = [];
    for (const t of timesteps) {
      const alphaBar = scheduler.alphasCumprod[t];
      const pred = new Float32Array(n);
      const clipped = new Float32Array(n);
      let sq = 0;
      for (let s = 0; s < n; s += batchSize) {
        const m = Math.min(batchSize, n - s);
        const [p, c, e] = tf.tidy(() => {
          const x = tf.slice(x0, [s, 0, 0, 0], [m, -1, -1, -1]) as tf.Tensor4D;
          const z = tf.slice(noise, [s, 0, 0, 0], [m, -1, -1, -1]);
          const xt = scheduler.addNoise(x, z, new Array(m).fill(t)) as tf.Tensor4D;
          const out = modelPrediction({ model, x: xt, timestep: t, labels: labels?.slice(s, s + m), guidanceScale: w, cfg });
          const x0Hat = predictOriginalSample({ predictionType: scheduler.config.predictionType, modelOutput: out, sample: xt, alphaBar });
          return [
            tf.mean(x0Hat, [1, 2, 3]).dataSync() as Float32Array,
            tf.mean(tf.clipByValue(x0Hat, -1, 1), [1, 2, 3]).dataSync() as Float32Array,
            tf.sum(tf.squaredDifference(x0Hat, x)).dataSync()[0],
          ] as const;
        });
        pred.set(p, s);
        clipped.set(c, s);
        sq += e;
      }
      rows.push({ timestep: t, alphaBar, ...summarise(trueMeans, pred, clipped), x0Mse: sq / x0.size });
    }
    return rows;
  } finally {
    noise.dispose();
  }
}

function summarise(truth: Float32Array, pred: Float32Array, clipped: Float32Array) {
  const n = truth.length;
  let mt = 0;
  let mp = 0;
  let mc = 0;
  let mae = 0;
  for (let i = 0; i < n; i++) {
    mt += truth[i] / n;
    mp += pred[i] / n;
    mc += clipped[i] / n;
    mae += Math.abs(pred[i] - truth[i]) / n;
  }
  let cov = 0;
  let vt = 0;
  for (let i = 0; i < n; i++) {
    cov += (truth[i] - mt) * (pred[i] - mp);
    vt += (truth[i] - mt) ** 2;
  }
  return { trueMean: mt, predictedMean: mp, clippedMean: mc, slope: vt > 0 ? cov / vt : Number.NaN, meanAbsError: mae };
}
