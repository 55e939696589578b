/**
 * The expert, as feature alignment sees it: anything with a `features(x)` method. Defined
 * structurally, so any model fits: `@fad/expert-models`' experts, a tfjs-layers model (see
 * `featureExtractorFromLayersModel`), or a plain function (`featureExtractorFromFunction`).
 */
import type { ExpertInputSpec } from '@fad/diffusion-core';
import type * as tf from '@tensorflow/tfjs-core';
import { assertParamsObject, assertKnownKeys, assertPositiveInteger, fail } from './validate';

/** What `features(x)` accepts (size, channels, range; mean/std informational). Defined in @fad/diffusion-core with the input adaptation. */
export type { ExpertInputSpec };

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
