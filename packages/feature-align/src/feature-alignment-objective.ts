/**
 * Feature alignment as a `@fad/diffusion-core` training objective. diffusion-core knows nothing of
 * this package: its `DiffusionTrainer` accepts any `TrainingObjective` (name, activations to tap,
 * extra trainable variables, loss terms), and this function builds one. The dependency points one
 * way: feature-align uses diffusion-core (its nn primitives and I/O at runtime, these types here),
 * diffusion-core never imports feature-align.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ObjectiveContext, TrainingObjective } from '@fad/diffusion-core';
import { assertFeatureExtractor, type FeatureExtractor } from './feature-extractor';
import { extractExpertFeatures } from './expert-features';
import type { FeatureAlignmentLoss } from './feature-alignment-loss';
import { type InputAdaptation, type InputAdaptationOption, resolveInputAdaptation } from '@fad/diffusion-core';
import { runWithoutGradient } from './stop-gradient';
import { DEFAULT_TAP } from './tap-diffusion-model';
import { assertFiniteNonNegative, assertKnownKeys, assertOneOf, assertParamsObject, fail, shapeText } from './validate';

/** Which images the expert sees: x_t (`'noisy'`, the paper's default) or x_0 (`'clean'`). */
export type AlignmentTarget = 'noisy' | 'clean';
export const ALIGNMENT_TARGETS: readonly AlignmentTarget[] = ['noisy', 'clean'];

/**
 * What the expert sees as the "noisy input" when the U-Net trains in latent space (see the README,
 * "Feature alignment in latent space"):
 * - `'decoded'`: D(z_t), the noisy latent decoded by the frozen autoencoder (`ctx.latent.decode`);
 * - `'pixel-noised'`: sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps, the pixel image noised to
 *   the same alpha-bar_t as z_t with fresh pixel noise eps (`ctx.latent.pixelNoise`).
 */
export type LatentExpertInput = 'decoded' | 'pixel-noised';
export const LATENT_EXPERT_INPUTS: readonly LatentExpertInput[] = ['decoded', 'pixel-noised'];

export interface FeatureAlignmentObjectiveParams {
  /** The loss and its projection (its variables are optimised with the model). */
  loss: FeatureAlignmentLoss;
  /** The frozen expert. */
  expert: FeatureExtractor;
  /** U-Net activation to align (default `'down_out'`, the paper's; or `'mid'`, `'down.1'`, ...). */
  tap?: string;
  /**
   * `'noisy'` (default): the expert sees x_t, the U-Net's own input, as in the paper (67%
   * generation accuracy vs 29% for clean). `'clean'`: the expert sees x_0.
   */
  alignTo?: AlignmentTarget;
  /** Weight of the alignment term (default 1). The trainer's `diffusionLossWeight` is lambda1. */
  lambda2?: number;
  /** Adapting images to the expert (default `'spec'`; `'raw'` as the reference implementation). */
  inputAdaptation?: InputAdaptationOption;
  /** Objective name, the prefix of its logged terms (default `'feature_align'`). */
  name?: string;
  /**
   * Latent diffusion only (the trainer has an autoencoder), with `alignTo: 'noisy'`: which pixel
   * image stands for x_t (default `'decoded'`). With `alignTo: 'clean'` the expert sees the pixel
   * x_0. Ignored in pixel space.
   */
  latentExpertInput?: LatentExpertInput;
}

/** The objective, with its resolved settings visible. */
export interface FeatureAlignmentObjective extends TrainingObjective {
  readonly tap: string;
  readonly alignTo: AlignmentTarget;
  readonly lambda2: number;
  readonly inputAdaptation: InputAdaptation;
  readonly latentExpertInput: LatentExpertInput;
}

/**
 * The pixel image the expert sees in a latent-diffusion step (`ctx.latent` present): x_0 for
 * `'clean'`; for `'noisy'`, D(z_t) (`'decoded'`) or sqrt(ab) x_0 + sqrt(1 - ab) eps
 * (`'pixel-noised'`), with alpha-bar_t of each sample. Off the gradient tape: the expert's target
 * is frozen, so nothing needs a gradient through the decoder. The caller disposes the result.
 */
export function latentExpertImages(params: { ctx: ObjectiveContext; alignTo: AlignmentTarget; latentExpertInput: LatentExpertInput }): tf.Tensor4D {
  const where = 'latentExpertImages';
  const { ctx, alignTo, latentExpertInput } = params;
  const l = ctx.latent;
  if (!l) fail(where, 'the step has no ctx.latent (the trainer has no autoencoder)');
  if (alignTo === 'clean') return runWithoutGradient(() => tf.clone(l.pixelX0));
  if (latentExpertInput === 'decoded') return runWithoutGradient(() => l.decode(ctx.noisy));
  const eps = l.pixelNoise;
  if (!eps) fail(where, "latentExpertInput 'pixel-noised' needs ctx.latent.pixelNoise (the objective sets needsPixelNoise, so the trainer draws it)");
  const b = l.pixelX0.shape[0];
  if (l.alphaBars.length !== b) fail(where, `ctx.latent.alphaBars has ${l.alphaBars.length} entries for a batch of ${b}`);
  return runWithoutGradient(() => {
    const sa = tf.tensor4d(l.alphaBars.map((ab) => Math.sqrt(ab)), [b, 1, 1, 1]);
    const sb = tf.tensor4d(l.alphaBars.map((ab) => Math.sqrt(1 - ab)), [b, 1, 1, 1]);
    return tf.add(tf.mul(sa, l.pixelX0), tf.mul(sb, eps)) as tf.Tensor4D;
  });
}

/**
 * A `TrainingObjective` adding lambda2 * L_align to the diffusion loss. Per step it runs the frozen
 * expert on x_t (or x_0) with `extractExpertFeatures`, takes the tapped U-Net activation, and
 * returns `{ total: lambda2 * L_align, terms: { align: L_align } }`; the trainer logs it as
 * `<name>.align` next to `diffusion`.
 *
 * @example
 * const trainer = new DiffusionTrainer({ model, scheduler, objectives: [
 *   featureAlignmentObjective({ loss, expert, tap: 'down_out', alignTo: 'noisy', lambda2: 1 }),
 * ] });
 */
export function featureAlignmentObjective(params: FeatureAlignmentObjectiveParams): FeatureAlignmentObjective {
  const where = 'featureAlignmentObjective';
  assertParamsObject(where, params);
  assertKnownKeys(where, params as unknown as Record<string, unknown>, ['loss', 'expert', 'tap', 'alignTo', 'lambda2', 'inputAdaptation', 'name', 'latentExpertInput']);
  const { loss, expert, tap = DEFAULT_TAP, alignTo = 'noisy', lambda2 = 1, inputAdaptation = 'spec', name = 'feature_align', latentExpertInput = 'decoded' } = params;
  if (loss === null || typeof loss !== 'object' || typeof loss.forward !== 'function' || typeof loss.trainableVariables !== 'function' || !loss.config) {
    fail(where, 'loss must be a FeatureAlignmentLoss', TypeError);
  }
  assertFeatureExtractor(where, 'expert', expert);
  if (expert.featureDim !== undefined && expert.featureDim !== loss.config.expertDim) {
    fail(where, `expert.featureDim is ${expert.featureDim} but the loss was built with expertDim = ${loss.config.expertDim}`, RangeError);
  }
  if (typeof tap !== 'string' || tap.length === 0) fail(where, `tap must be an activation name such as 'down_out', got ${JSON.stringify(tap)}`, TypeError);
  assertOneOf(where, 'alignTo', alignTo, ALIGNMENT_TARGETS);
  assertOneOf(where, 'latentExpertInput', latentExpertInput, LATENT_EXPERT_INPUTS);
  assertFiniteNonNegative(where, 'lambda2', lambda2);
  if (typeof name !== 'string' || name.length === 0) fail(where, `name must be a non-empty string, got ${JSON.stringify(name)}`, TypeError);
  const adaptation = resolveInputAdaptation({ spec: expert.inputSpec, adaptation: inputAdaptation });
  return {
    name,
    activations: [tap],
    tap,
    alignTo,
    lambda2,
    inputAdaptation: adaptation,
    latentExpertInput,
    needsPixelNoise: alignTo === 'noisy' && latentExpertInput === 'pixel-noised',
    trainableVariables: () => loss.trainableVariables(),
    loss(ctx: ObjectiveContext): { total: tf.Scalar; terms: Record<string, tf.Scalar> } {
      const h = ctx.activations[tap];
      if (!h) {
        fail(`${where} (${name})`, `the step has no activation "${tap}"; it got: ${Object.keys(ctx.activations).join(', ') || 'none'}`);
      }
      // Latent space: the expert sees pixels (x_0, D(z_t) or x_0 noised in pixel space), see latentExpertImages.
      const pixels = ctx.latent ? latentExpertImages({ ctx, alignTo, latentExpertInput }) : null;
      const images = pixels ?? (alignTo === 'noisy' ? ctx.noisy : ctx.x0);
      const e = extractExpertFeatures({ expert, images, adaptation });
      pixels?.dispose();
      if (e.shape[0] !== h.shape[0]) {
        fail(`${where} (${name})`, `expert features ${shapeText(e.shape)} and activation "${tap}" ${shapeText(h.shape)} disagree on the batch size`);
      }
      const align = loss.forward({ diffusionFeatures: h, expertFeatures: e });
      e.dispose();
      const total = tf.mul(align, lambda2) as tf.Scalar;
      return { total, terms: { align } };
    },
  };
}
