/**
 * The feature-alignment loss of Nair (2024): the cosine distance between a frozen expert's
 * features and a diffusion model's intermediate features, through a trainable projection.
 *
 *   L_align = mean_b (1 - cos(P(e_b), pool(h_b)))
 *
 * h [B,H,W,C]: diffusion features (e.g. the U-Net's down-path output), average-pooled to [B,C].
 * e [B,D]: the expert's pooled features (feature maps [B,H',W',D] are pooled too).
 * P: trainable projection D -> C (or C -> D applied to pool(h), with `projectionSide: 'diffusion'`).
 *
 * `centering: 'batch'` (not in the paper; default 'none') subtracts each operand's mean over the
 * batch before the cosine: cos(P(e_b) - mean_b' P(e_b'), pool(h_b) - mean_b' pool(h_b')). Pooled
 * U-Net activations share a large component across images, and with the paper's loss the
 * projection can map every expert feature onto that common direction, which satisfies the loss
 * (1 - cos ~ 0.001 within 150 steps on Kather 2016) while carrying no per-image information.
 * Centred, only how the images differ from each other can be aligned.
 */
import { Module } from '@fad/diffusion-core';
import * as tf from '@tensorflow/tfjs-core';
import './register-gradients';
import { cosineUnchecked, DEFAULT_COSINE_EPSILON } from './cosine-similarity';
import { PROJECTION_KINDS, ProjectionHead, type ProjectionKind } from './projection-head';
import { stopGradient } from './stop-gradient';
import {
  assertFiniteNonNegative,
  assertKnownKeys,
  assertOneOf,
  assertParamsObject,
  assertPositiveInteger,
  assertTensor,
  fail,
  shapeText,
} from './validate';

/** Which features the projection maps: the expert's (D -> C, the paper) or the diffusion's (C -> D). */
export type ProjectionSide = 'expert' | 'diffusion';
export const PROJECTION_SIDES: readonly ProjectionSide[] = ['expert', 'diffusion'];

/** What is subtracted from both operands before the cosine: nothing (the paper), or their batch means. */
export type AlignmentCentering = 'none' | 'batch';
export const ALIGNMENT_CENTERINGS: readonly AlignmentCentering[] = ['none', 'batch'];

/** Everything that defines a loss's structure (saved with its weights). */
export interface FeatureAlignmentLossConfig {
  /** C: channels of the diffusion features. */
  readonly diffusionDim: number;
  /** D: width of the expert's features (2048 for ResNet50). */
  readonly expertDim: number;
  /** Default `'expert'`. */
  readonly projectionSide: ProjectionSide;
  /** Default `'linear'`. */
  readonly projection: ProjectionKind;
  /** Hidden width of the `'mlp'` projection (default: its output width); null for `'linear'`. */
  readonly hiddenDim: number | null;
  /** Epsilon of the norms in the cosine (see `DEFAULT_COSINE_EPSILON`). */
  readonly epsilon: number;
  /** Default `'none'` (the paper); `'batch'` centres both operands over the batch (needs B >= 2). */
  readonly centering: AlignmentCentering;
}

export interface FeatureAlignmentLossParams {
  diffusionDim: number;
  expertDim: number;
  projectionSide?: ProjectionSide;
  projection?: ProjectionKind;
  hiddenDim?: number | null;
  epsilon?: number;
  centering?: AlignmentCentering;
  /** Seed of the projection's initialisation (default 0); see `ProjectionHead`. */
  seed?: number;
}

/** The two feature tensors the loss compares. */
export interface AlignmentFeatures {
  /** h: [B,H,W,C] feature maps (average-pooled here) or pooled [B,C]. Gradients flow into it. */
  diffusionFeatures: tf.Tensor2D | tf.Tensor4D;
  /**
   * e: the expert's features [B,D] or feature maps [B,H',W',D] (pooled here). Treated as a
   * constant: no gradient flows back into it (see `extractExpertFeatures` to compute it).
   */
  expertFeatures: tf.Tensor2D | tf.Tensor4D;
}

const PARAM_KEYS = ['diffusionDim', 'expertDim', 'projectionSide', 'projection', 'hiddenDim', 'epsilon', 'centering', 'seed'];

/** Validates a config (also used when loading a saved loss). */
export function resolveFeatureAlignmentLossConfig(params: FeatureAlignmentLossParams): FeatureAlignmentLossConfig {
  const where = 'FeatureAlignmentLoss';
  assertParamsObject(where, params);
  assertKnownKeys(where, params as unknown as Record<string, unknown>, PARAM_KEYS);
  const { diffusionDim, expertDim, projectionSide = 'expert', projection = 'linear', hiddenDim = null, epsilon = DEFAULT_COSINE_EPSILON, centering = 'none' } = params;
  assertPositiveInteger(where, 'diffusionDim', diffusionDim);
  assertPositiveInteger(where, 'expertDim', expertDim);
  assertOneOf(where, 'projectionSide', projectionSide, PROJECTION_SIDES);
  assertOneOf(where, 'projection', projection, PROJECTION_KINDS);
  if (hiddenDim !== null) {
    if (projection !== 'mlp') fail(where, `hiddenDim (${hiddenDim}) only applies to projection 'mlp', got projection '${projection}'`, RangeError);
    assertPositiveInteger(where, 'hiddenDim', hiddenDim);
  }
  assertFiniteNonNegative(where, 'epsilon', epsilon);
  assertOneOf(where, 'centering', centering, ALIGNMENT_CENTERINGS);
  const outDim = projectionSide === 'expert' ? diffusionDim : expertDim;
  return {
    diffusionDim,
    expertDim,
    projectionSide,
    projection,
    hiddenDim: projection === 'mlp' ? (hiddenDim ?? outDim) : null,
    epsilon,
    centering,
  };
}

/**
 * The alignment loss together with the projection it owns: a diffusion-core `Module` whose one
 * child is the `ProjectionHead`, so `trainableVariables()` (the projection's weights, for the
 * optimizer next to the diffusion model's), `namedParameters`, `stateDict` / `loadStateDict`,
 * `numParameters` and `dispose` are `Module`'s, and its `moduleToSafetensors` and
 * `loadModuleWeights` take the loss as it is (see also `serializeFeatureAlignmentLoss`).
 * Parameter names: `projection.weight`, `projection.bias`, or `projection.0.*` and
 * `projection.2.*` for the MLP.
 */
export class FeatureAlignmentLoss extends Module {
  readonly config: FeatureAlignmentLossConfig;
  readonly projection: ProjectionHead;

  constructor(params: FeatureAlignmentLossParams) {
    super();
    this.config = Object.freeze(resolveFeatureAlignmentLossConfig(params));
    const { diffusionDim: c, expertDim: d, projectionSide, projection, hiddenDim } = this.config;
    const [inDim, outDim] = projectionSide === 'expert' ? [d, c] : [c, d];
    this.projection = this.addModule(
      'projection',
      new ProjectionHead({ kind: projection, inDim, outDim, ...(hiddenDim !== null ? { hiddenDim } : {}), seed: params.seed ?? 0 }),
    );
  }

  /** L_align = mean over the batch of (1 - cos): a scalar in [0, 2] (see `centering`). */
  forward(features: AlignmentFeatures): tf.Scalar {
    const [a, b] = this.prepare('forward', features);
    return tf.tidy(() => tf.mean(tf.sub(1, cosineUnchecked(a(), b(), this.config.epsilon)))) as tf.Scalar;
  }

  /** The per-sample cosines cos(P(e_b), pool(h_b)) (of the centred operands with `centering: 'batch'`), [B]. */
  cosineSimilarity(features: AlignmentFeatures): tf.Tensor1D {
    const [a, b] = this.prepare('cosineSimilarity', features);
    return tf.tidy(() => cosineUnchecked(a(), b(), this.config.epsilon));
  }

  /** Validates the inputs and returns (lazy, for use inside a tidy) the two [B,N] operands. */
  private prepare(method: string, features: AlignmentFeatures): [() => tf.Tensor2D, () => tf.Tensor2D] {
    const where = `FeatureAlignmentLoss.${method}`;
    assertParamsObject(where, features);
    assertKnownKeys(where, features as unknown as Record<string, unknown>, ['diffusionFeatures', 'expertFeatures']);
    const { diffusionFeatures: h, expertFeatures: e } = features;
    const { diffusionDim: c, expertDim: d } = this.config;
    assertTensor(where, 'diffusionFeatures', h, [2, 4], `[B,H,W,${c}] or [B,${c}]`);
    assertTensor(where, 'expertFeatures', e, [2, 4], `[B,${d}] or [B,H',W',${d}]`);
    const hc = h.shape[h.rank - 1];
    const ed = e.shape[e.rank - 1];
    if (hc !== c) {
      fail(where, `diffusionFeatures has ${hc} channels (shape ${shapeText(h.shape)}), but the loss was built with diffusionDim = ${c}: expected [${h.shape[0]},H,W,${c}] or [${h.shape[0]},${c}]`);
    }
    if (ed !== d) {
      fail(where, `expertFeatures has D = ${ed} (shape ${shapeText(e.shape)}), but the projection was built with expertDim = ${d}: expected [${e.shape[0]},${d}] or [${e.shape[0]},H',W',${d}]`);
    }
    if (h.shape[0] !== e.shape[0]) {
      fail(where, `batch sizes disagree: diffusionFeatures has ${h.shape[0]} (shape ${shapeText(h.shape)}), expertFeatures has ${e.shape[0]} (shape ${shapeText(e.shape)})`);
    }
    const centred = this.config.centering === 'batch';
    if (centred && h.shape[0] < 2) {
      fail(where, `centering 'batch' needs a batch of at least 2, got diffusionFeatures ${shapeText(h.shape)} (with one image the centred features are all zero)`);
    }
    const centre = (x: tf.Tensor2D): tf.Tensor2D => (centred ? (tf.sub(x, tf.mean(x, 0, true)) as tf.Tensor2D) : x);
    const pooledH = () => (h.rank === 4 ? (tf.mean(h, [1, 2]) as tf.Tensor2D) : (h as tf.Tensor2D));
    const pooledE = () => stopGradient(e.rank === 4 ? (tf.mean(e, [1, 2]) as tf.Tensor2D) : (e as tf.Tensor2D));
    return this.config.projectionSide === 'expert'
      ? [() => centre(this.projection.forward(pooledE())), () => centre(pooledH())]
      : [() => centre(this.projection.forward(pooledH())), () => centre(pooledE())];
  }

  /** Marks the projection trainable or frozen (frozen: left out of `trainableVariables()`). */
  override setTrainable(trainable: boolean): void {
    if (typeof trainable !== 'boolean') fail('FeatureAlignmentLoss.setTrainable', `trainable must be true or false, got ${trainable}`, TypeError);
    super.setTrainable(trainable);
  }

  /**
   * Loads parameters by dotted name (`Module.loadStateDict`: with `strict`, the default, every
   * parameter must be present and nothing else; shapes must always match; nothing is assigned
   * unless everything checks).
   */
  override loadStateDict(state: Record<string, { shape: readonly number[]; data: Float32Array }>, options: { strict?: boolean } = {}): void {
    if (state === null || typeof state !== 'object') fail('FeatureAlignmentLoss.loadStateDict', `state must be an object of {shape, data} by name, got ${state}`, TypeError);
    super.loadStateDict(state, options);
  }
}
