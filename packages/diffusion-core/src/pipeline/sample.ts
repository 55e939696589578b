/**
 * The sampling pipeline: start from seeded Gaussian noise (or a given x_T), run a scheduler's reverse
 * process with the model, optionally with classifier-free guidance (Ho & Salimans 2022) and/or a
 * gradient guidance (`guidance.ts`: classifier or uncertainty guidance), and return images in [0, 1].
 */
import * as tf from '@tensorflow/tfjs-core';
import { Generator } from '../random';
import { type NoiseScheduler, supportsGuidedStep } from '../schedulers/scheduler';
import type { DiffusionModel } from '../unet/unet';
import type { AutoencoderKL } from '../autoencoder/autoencoder';
import { decodeLatents } from '../autoencoder/latents';
import type { GuidanceFn } from './guidance';
import { guidedStep, guidedStepUnsupported } from './guided-step';
import { checkGuidanceRescale } from './guidance-rescale';
import { modelPrediction, resolveBatch } from './model-prediction';

export interface SampleProgress {
  /** Steps done so far (1-based after the first step). */
  step: number;
  totalSteps: number;
  /** The timestep just denoised. */
  timestep: number;
  /** Wall time of this step in ms (model, guidance and scheduler update; on backends that run ops synchronously). */
  stepMs: number;
  /** The part of `stepMs` spent in the guidance function (0 without guidance or when it returned null). */
  guidanceMs: number;
}

export interface SampleParams {
  model: DiffusionModel;
  /**
   * Any {@link NoiseScheduler}: DDPM, DDIM, DPM-Solver(++), one from `schedulerFromName`, or your own.
   * `setTimesteps(numInferenceSteps)` is called here (which also resets a multistep solver's state).
   */
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
  /**
   * Guidance rescale phi in [0, 1] (Lin et al. 2024, section 3.4; diffusers' `guidance_rescale`):
   * the guided prediction is rescaled to the conditional one's standard deviation and mixed with
   * the plain guided one by phi. Counters the over-exposure (and washed-out bright classes) that
   * classifier-free guidance causes with zero terminal SNR; 0 (default) is plain guidance.
   */
  guidanceRescale?: number;
  /**
   * Gradient guidance g = s * grad_x E(x_t) applied at every step where it returns a tensor (see
   * `guidedStep`); needs a scheduler that implements the `guidedStep` capability (DDIM, DDPM, or
   * your own).
   * It receives x_t in model space (`dataRange`).
   */
  guidance?: GuidanceFn;
  /** Seed of the initial noise and of stochastic steps. Ignored when `generator` is given. */
  seed?: number;
  generator?: Generator;
  /**
   * Start from this x_T [B, size, size, inChannels] instead of drawing it (e.g. from DDIM inversion).
   * Not disposed. The generator then only feeds stochastic steps.
   */
  initialNoise?: tf.Tensor4D;
  /** DDIM eta (0 = deterministic). Passed to the scheduler's step (DPM-Solver accepts only 0 or none). */
  eta?: number;
  /** The range of the training data, mapped to [0, 1] at the end. Default [-1, 1]. */
  dataRange?: [number, number];
  /**
   * Latent diffusion: the frozen autoencoder whose scaled latents the model was trained on. The
   * reverse process then runs on latents [B, sampleSize, sampleSize, latentChannels], which are
   * decoded (`decodeLatents`) to pixel images in `dataRange` and mapped to [0, 1] as in pixel
   * space, so the result has the same convention. The scheduler must not clip or threshold x_0
   * (`clipSample: false`): latents are not in [-1, 1]. Gradient guidance is not available here
   * (it would need the guide's gradient through the decoder).
   */
  autoencoder?: AutoencoderKL;
  onProgress?: (p: SampleProgress) => void;
}

/** Checks that `scheduler` and `model` can sample in the latent space of `autoencoder`; `owner` names the caller. */
export function checkLatentSampling(p: { owner: string; model: DiffusionModel; scheduler: NoiseScheduler; autoencoder: AutoencoderKL }): void {
  const { owner, model, scheduler, autoencoder: ae } = p;
  if (!ae || typeof ae !== 'object' || typeof ae.decode !== 'function' || !ae.config) throw new TypeError(`${owner}: autoencoder must be an AutoencoderKL`);
  const k = ae.config.latentChannels;
  if (model.config.inChannels !== k) {
    throw new RangeError(`${owner}: the model's inChannels (${model.config.inChannels}) must equal autoencoder.config.latentChannels (${k}) to sample in its latent space`);
  }
  const sc = scheduler.config as { clipSample?: boolean; thresholding?: boolean };
  if (sc.clipSample === true || sc.thresholding === true) {
    throw new RangeError(`${owner}: in latent space the scheduler must not clip or threshold x_0 (latents are not in [-1, 1]); build it with clipSample: false${sc.thresholding ? ' and thresholding: false' : ''}`);
  }
}

/** Samples images; resolves to a [B,H,W,C] tensor in [0, 1] that the caller disposes. */
export async function sampleImages(params: SampleParams): Promise<tf.Tensor4D> {
  const { model, scheduler, numInferenceSteps, onProgress, guidance, initialNoise } = params;
  const cfg = model.config;
  const w = params.guidanceScale ?? 1;
  const [lo, hi] = params.dataRange ?? [-1, 1];
  if (!(hi > lo)) throw new RangeError(`sampleImages: dataRange must be [low, high] with high > low, got [${lo}, ${hi}]`);
  const { labels, batchSize: b, cfg: cfgActive } = resolveBatch({ owner: 'sampleImages', model, classLabels: params.classLabels, batchSize: params.batchSize, guidanceScale: w });
  const phi = checkGuidanceRescale('sampleImages', params.guidanceRescale);
  if (guidance !== undefined && typeof guidance !== 'function') throw new TypeError(`sampleImages: guidance must be a GuidanceFn (params) => tf.Tensor4D | null, got ${typeof guidance}`);
  if (guidance !== undefined && !supportsGuidedStep(scheduler)) throw new TypeError(guidedStepUnsupported('sampleImages', scheduler));
  const ae = params.autoencoder;
  if (ae !== undefined) {
    checkLatentSampling({ owner: 'sampleImages', model, scheduler, autoencoder: ae });
    if (guidance !== undefined) throw new TypeError('sampleImages: gradient guidance is not available in latent space (with an autoencoder)');
  }
  const shape = [b, cfg.sampleSize, cfg.sampleSize, cfg.inChannels];
  if (initialNoise !== undefined && (!(initialNoise instanceof tf.Tensor) || !tf.util.arraysEqual(initialNoise.shape, shape))) {
    throw new RangeError(`sampleImages: initialNoise must be a tensor of shape [${shape}] (batch, sampleSize, sampleSize, inChannels), got ${initialNoise instanceof tf.Tensor ? `[${initialNoise.shape}]` : typeof initialNoise}`);
  }
  const gen = params.generator ?? new Generator(params.seed ?? 0);
  scheduler.setTimesteps(numInferenceSteps);
  const timesteps = Array.from(scheduler.timesteps);
  let x = (initialNoise ? tf.clone(initialNoise) : gen.normal(shape)) as tf.Tensor4D;
  try {
    for (let i = 0; i < timesteps.length; i++) {
      const t = timesteps[i];
      const t0 = performance.now();
      let guidanceMs = 0;
      const next = tf.tidy(() => {
        const out = modelPrediction({ model, x, timestep: t, labels, guidanceScale: w, cfg: cfgActive, guidanceRescale: phi });
        let g: tf.Tensor4D | null = null;
        if (guidance) {
          const g0 = performance.now();
          g = guidance({ x, timestep: t, alphaBar: scheduler.alphasCumprod[t], classLabels: labels });
          if (g) g.dataSync(); // finish the gradient so the timing is its own
          guidanceMs = performance.now() - g0;
        }
        const step = g
          ? guidedStep({ scheduler, modelOutput: out, timestep: t, sample: x, guidance: g, eta: params.eta, generator: gen })
          : scheduler.step(out, t, x, { generator: gen, eta: params.eta });
        step.predOriginalSample.dispose();
        return step.prevSample as tf.Tensor4D;
      });
      x.dispose();
      x = next;
      x.dataSync();
      onProgress?.({ step: i + 1, totalSteps: timesteps.length, timestep: t, stepMs: performance.now() - t0, guidanceMs });
      // Let signal handlers and progress output run between steps.
      await new Promise<void>((r) => setTimeout(r, 0));
    }
    if (ae !== undefined) {
      const decoded = decodeLatents({ model: ae, latents: x });
      x.dispose();
      x = decoded;
    }
    const img = tf.tidy(() => tf.clipByValue(tf.div(tf.sub(x, lo), hi - lo), 0, 1) as tf.Tensor4D);
    return img;
  } finally {
    x.dispose();
  }
}
