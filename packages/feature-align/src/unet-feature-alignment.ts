/**
 * Feature alignment for one of fad's U-Nets in one call: the tapped activation's channel count is
 * read from one forward pass on a dummy input, the `FeatureAlignmentLoss` (with its projection) is
 * built for it and the expert's feature size, and `featureAlignmentObjective` wraps both for the
 * trainer. `fad train --feature-alignment` and the experiment's aligned variants use this.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { UNet2DConditional } from '@fad/diffusion-core';
import { type AlignmentCentering, FeatureAlignmentLoss } from './feature-alignment-loss';
import { type AlignmentTarget, type FeatureAlignmentObjective, featureAlignmentObjective, type LatentExpertInput } from './feature-alignment-objective';
import { assertFeatureExtractor, type FeatureExtractor } from './feature-extractor';
import type { ProjectionKind } from './projection-head';
import { DEFAULT_TAP } from './tap-diffusion-model';
import { assertParamsObject, fail } from './validate';
import type { InputAdaptationOption } from '@fad/diffusion-core';

/** Parameters of {@link unetFeatureAlignment}. */
export interface UNetFeatureAlignmentParams {
  /** The U-Net being trained (only read: one forward pass on zeros, without gradients). */
  model: UNet2DConditional;
  /** The frozen expert. */
  expert: FeatureExtractor;
  /** The activation to align (default `'down_out'`); it must be one of `model.activationNames()`. */
  tap?: string;
  /** The projection's kind (default `'linear'`). */
  projection?: ProjectionKind;
  /** Batch-centring of both operands before the cosine (default `'none'`, the paper's). */
  centering?: AlignmentCentering;
  /** Seed of the projection's initialisation. */
  seed?: number;
  alignTo?: AlignmentTarget;
  /** Weight of the alignment term. */
  lambda2?: number;
  inputAdaptation?: InputAdaptationOption;
  /** Latent diffusion only: which pixel image stands for x_t. Omit in pixel space. */
  latentExpertInput?: LatentExpertInput;
}

/** The loss (holding the projection, whose variables the trainer optimises) and the objective. */
export interface UNetFeatureAlignment {
  loss: FeatureAlignmentLoss;
  objective: FeatureAlignmentObjective;
}

/** Builds the alignment loss and objective for `model` and `expert` (see the file comment). */
export function unetFeatureAlignment(params: UNetFeatureAlignmentParams): UNetFeatureAlignment {
  const fn = 'unetFeatureAlignment';
  assertParamsObject(fn, params);
  const { model } = params;
  if (!model || typeof (model as UNet2DConditional).activationNames !== 'function') fail(fn, 'model must be a UNet2DConditional', TypeError);
  assertFeatureExtractor(fn, 'expert', params.expert);
  const tap = params.tap ?? DEFAULT_TAP;
  const names = model.activationNames();
  if (!names.includes(tap)) fail(fn, `tap "${tap}" is not an activation of the U-Net (available: ${names.join(', ')})`, RangeError);
  const c = model.config;
  // The tapped activation's channels, from one forward pass on a dummy image.
  const diffusionDim = tf.tidy(() => {
    const r = model.forward({ sample: tf.zeros([1, c.sampleSize, c.sampleSize, c.inChannels]) as tf.Tensor4D, timesteps: [0], classLabels: [0], returnActivations: [tap] });
    return r.activations[tap].shape[3];
  });
  const loss = new FeatureAlignmentLoss({
    diffusionDim, expertDim: params.expert.featureDim as number,
    ...(params.projection !== undefined ? { projection: params.projection } : {}),
    ...(params.centering !== undefined ? { centering: params.centering } : {}),
    ...(params.seed !== undefined ? { seed: params.seed } : {}),
  });
  const objective = featureAlignmentObjective({
    loss, expert: params.expert, tap,
    ...(params.alignTo !== undefined ? { alignTo: params.alignTo } : {}),
    ...(params.lambda2 !== undefined ? { lambda2: params.lambda2 } : {}),
    ...(params.inputAdaptation !== undefined ? { inputAdaptation: params.inputAdaptation } : {}),
    ...(params.latentExpertInput !== undefined ? { latentExpertInput: params.latentExpertInput } : {}),
  });
  return { loss, objective };
}
