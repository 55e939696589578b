/**
 * The expert, as feature alignment sees it: anything with a `features(x)` method. Defined
 * structurally, so any model fits: `@fad/expert-models`' experts, a tfjs-layers model (see
 * `featureExtractorFromLayersModel`), or a plain function (`featureExtractorFromFunction`).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { assertParamsObject, assertKnownKeys, assertPositiveInteger, fail } from './validate';

/**
 * What `features(x)` accepts. Every field is optional; `resolveInputAdaptation` turns `range`,
 * `size` and `channels` into the range-mapping / resize / channel-repeat steps applied before the
 * expert. Compatible with `@fad/expert-models`' `InputSpec`.
 */
export interface ExpertInputSpec {
  /** Square side, or [height, width], of the images the expert expects (e.g. 224). */
  readonly size?: number | readonly [number, number];
  /** Channels the expert expects (e.g. 3; a 1-channel input is repeated). */
  readonly channels?: number;
  /**
   * Per-channel mean the expert subtracts internally (e.g. ImageNet's [0.485, 0.456, 0.406]).
   * Informational: feature alignment does not apply it (see `InputAdaptation.mean`).
   */
  readonly mean?: readonly number[];
  /** Per-channel standard deviation the expert divides by internally. Informational, as `mean`. */
  readonly std?: readonly number[];
  /** Value range of the images `features` takes, e.g. [0, 1]. */
  readonly range?: readonly [number, number];
}

/** Options feature alignment passes to `features`: always `{ training: false }`. */
export interface FeatureOptions {
  /** Whether normalisation layers use batch statistics and update their running averages. */
  training?: boolean;
}

/**
 * A frozen expert. `features` maps images [B,H,W,C] (in `inputSpec.range`, at `inputSpec.size`;
 * any input normalisation is the expert's own business) to pooled features [B,D] or feature maps
 * [B,H',W',D] (pooled by the loss). Feature alignment calls it with `{ training: false }` and off
 * the gradient tape (see `extractExpertFeatures`); implementations must run their normalisation
 * layers in inference mode when `training` is false.
 */
export interface FeatureExtractor {
  features(x: tf.Tensor4D, options?: FeatureOptions): tf.Tensor2D | tf.Tensor4D;
  /** Width D of the features, when known (checked against the loss's `expertDim`). */
  readonly featureDim?: number;
  /** The input the expert expects. */
  readonly inputSpec?: ExpertInputSpec;
}

export interface FeatureExtractorFromFunctionParams {
  /** The expert's forward pass, images [B,H,W,C] to [B,D] or [B,H',W',D]. */
  fn: (x: tf.Tensor4D, options?: FeatureOptions) => tf.Tensor;
  featureDim?: number;
  inputSpec?: ExpertInputSpec;
}

/** Wraps a plain function as a `FeatureExtractor` (the function receives `{ training: false }`). */
export function featureExtractorFromFunction(params: FeatureExtractorFromFunctionParams): FeatureExtractor {
  const where = 'featureExtractorFromFunction';
  assertParamsObject(where, params);
  assertKnownKeys(where, params as unknown as Record<string, unknown>, ['fn', 'featureDim', 'inputSpec']);
  const { fn, featureDim, inputSpec } = params;
  if (typeof fn !== 'function') fail(where, `fn must be a function (x: Tensor4D) => Tensor, got ${typeof fn}`, TypeError);
  if (featureDim !== undefined) assertPositiveInteger(where, 'featureDim', featureDim);
  if (inputSpec !== undefined && (inputSpec === null || typeof inputSpec !== 'object')) {
    fail(where, `inputSpec must be an object {size?, channels?, mean?, std?, range?}, got ${inputSpec}`, TypeError);
  }
  return {
    features: (x, options) => fn(x, options) as tf.Tensor2D | tf.Tensor4D,
    ...(featureDim !== undefined ? { featureDim } : {}),
    ...(inputSpec !== undefined ? { inputSpec } : {}),
  };
}

/** Throws unless `expert` looks like a `FeatureExtractor`. */
export function assertFeatureExtractor(where: string, name: string, expert: unknown): asserts expert is FeatureExtractor {
  if (expert === null || typeof expert !== 'object' || typeof (expert as FeatureExtractor).features !== 'function') {
    fail(
      where,
      `${name} must be a FeatureExtractor, an object with features(x: Tensor4D) => Tensor2D | Tensor4D ` +
        '(wrap a function with featureExtractorFromFunction or a tfjs-layers model with featureExtractorFromLayersModel)',
      TypeError,
    );
  }
  const d = (expert as FeatureExtractor).featureDim;
  if (d !== undefined) assertPositiveInteger(where, `${name}.featureDim`, d);
}
