/**
 * Two-stage guided sampling (Yang et al., TPAMI 2024): (1) sample unguided, (2) DDIM-invert the
 * result to x_T, (3) decode x_T again with deterministic DDIM (eta = 0) and the guidance. Without
 * guidance stage 3 reproduces stage 1 (up to inversion error), so the guided image is a version of
 * the unguided one moved along the guidance direction rather than an unrelated sample.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DDIMScheduler } from '../schedulers/ddim-scheduler';
import { invertDdim } from './ddim-inversion';
import type { GuidanceFn } from './guidance';
import { type SampleParams, type SampleProgress, sampleImages } from './sample';

/** Progress of {@link sampleTwoStage}: a sampling progress plus the stage it belongs to. */
export interface TwoStageProgress extends Omit<SampleProgress, 'stepMs' | 'guidanceMs'> {
  stage: 'sample' | 'invert' | 'decode';
  /** Sampling stages only. */
  stepMs?: number;
  guidanceMs?: number;
}

/** Parameters of {@link sampleTwoStage}: those of `sampleImages`, with a DDIM scheduler and a guidance. */
export interface TwoStageSampleParams extends Omit<SampleParams, 'scheduler' | 'initialNoise' | 'guidance' | 'onProgress'> {
  /** Used by all three stages (stage 1 with `eta`, inversion and decoding with eta = 0). */
  scheduler: DDIMScheduler;
  guidance: GuidanceFn;
  onProgress?: (p: TwoStageProgress) => void;
}

/** Result of {@link sampleTwoStage}; the caller disposes both tensors. */
export interface TwoStageSampleResult {
  /** The guided images, in [0, 1]. */
  images: tf.Tensor4D;
  /** The stage-1 (unguided) images they were derived from, in [0, 1]. */
  unguided: tf.Tensor4D;
}

/** Runs the three stages (see the file comment). */
export async function sampleTwoStage(params: TwoStageSampleParams): Promise<TwoStageSampleResult> {
  const owner = 'sampleTwoStage';
  if (typeof params !== 'object' || params === null) throw new TypeError(`${owner}: params must be an object, got ${String(params)}`);
  const { scheduler, guidance, onProgress, ...rest } = params;
  if (!(scheduler instanceof DDIMScheduler)) throw new TypeError(`${owner}: scheduler must be a DDIMScheduler (inversion is DDIM's), got ${(scheduler as object)?.constructor?.name ?? String(scheduler)}`);
  if (typeof guidance !== 'function') throw new TypeError(`${owner}: guidance must be a GuidanceFn, got ${typeof guidance}`);
  const [lo, hi] = params.dataRange ?? [-1, 1];
  const unguided = await sampleImages({ ...rest, scheduler, onProgress: onProgress && ((p) => onProgress({ ...p, stage: 'sample' })) });
  let x0: tf.Tensor4D | null = null;
  let xT: tf.Tensor4D | null = null;
  try {
    x0 = tf.tidy(() => tf.add(tf.mul(unguided, hi - lo), lo) as tf.Tensor4D);
    const labels = params.classLabels;
    xT = await invertDdim({
      model: params.model, scheduler, samples: x0, classLabels: labels, guidanceScale: params.guidanceScale, numInferenceSteps: params.numInferenceSteps,
      onProgress: onProgress && ((p) => onProgress({ ...p, stage: 'invert' })),
    });
    const images = await sampleImages({
      ...rest, scheduler, eta: 0, initialNoise: xT, guidance, onProgress: onProgress && ((p) => onProgress({ ...p, stage: 'decode' })),
    });
    return { images, unguided };
  } catch (e) {
    unguided.dispose();
    throw e;
  } finally {
    x0?.dispose();
    xT?.dispose();
  }
}
