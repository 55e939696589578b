/** Running a frozen expert: adapted input, inference mode, off the gradient tape, pooled output. */
import * as tf from '@tensorflow/tfjs-core';
import { assertFeatureExtractor, type FeatureExtractor } from './feature-extractor';
import { adaptExpertInput, type InputAdaptationOption, resolveInputAdaptation } from '@fad/diffusion-core';
import { runWithoutGradient } from './stop-gradient';
import { assertKnownKeys, assertParamsObject, assertTensor, describe, fail, shapeText } from './validate';

export interface ExtractExpertFeaturesParams {
  expert: FeatureExtractor;
  /** Images [B,H,W,C] in the diffusion value range (x_t or x_0). */
  images: tf.Tensor4D;
  /** How to adapt the images to the expert (default `'spec'`: follow `expert.inputSpec`). */
  adaptation?: InputAdaptationOption;
}

/**
 * The expert's pooled features [B,D] of `images`, computed so that the expert stays frozen:
 * - the images are adapted (`adaptExpertInput`), then `expert.features(x, { training: false })`
 *   runs, so normalisation layers use their running statistics and do not update them (the
 *   reference implementation left its ResNet50 in training mode, so every step updated its
 *   BatchNorm statistics);
 * - everything runs off the gradient tape (`runWithoutGradient`): no gradient reaches the
 *   expert's weights (they get none, not a zero), and none of its activations are kept for
 *   back-propagation. This is exact for both alignment targets, since neither x_t nor x_0 depends
 *   on a trainable variable;
 * - feature maps [B,H',W',D] are average-pooled to [B,D].
 */
export function extractExpertFeatures(params: ExtractExpertFeaturesParams): tf.Tensor2D {
  const where = 'extractExpertFeatures';
  assertParamsObject(where, params);
  assertKnownKeys(where, params as unknown as Record<string, unknown>, ['expert', 'images', 'adaptation']);
  const { expert, images, adaptation = 'spec' } = params;
  assertFeatureExtractor(where, 'expert', expert);
  assertTensor(where, 'images', images, [4], '[B,H,W,C]');
  const steps = resolveInputAdaptation({ spec: expert.inputSpec, adaptation });
  const b = images.shape[0];
  return runWithoutGradient(() => {
    const x = adaptExpertInput({ images, adaptation: steps });
    const f = expert.features(x, { training: false });
    if (!(f instanceof tf.Tensor) || (f.rank !== 2 && f.rank !== 4) || f.shape[0] !== b) {
      fail(
        where,
        `expert.features returned ${describe(f)} for input ${shapeText(x.shape)}; expected [${b},D] or [${b},H',W',D]`,
      );
    }
    if (expert.featureDim !== undefined && f.shape[f.rank - 1] !== expert.featureDim) {
      fail(where, `expert.features returned shape ${shapeText(f.shape)}, but expert.featureDim is ${expert.featureDim}`);
    }
    const pooled = f.rank === 4 ? (tf.mean(f, [1, 2]) as tf.Tensor2D) : (f as tf.Tensor2D);
    return pooled.dtype === 'float32' ? pooled : (tf.cast(pooled, 'float32') as tf.Tensor2D);
  });
}
