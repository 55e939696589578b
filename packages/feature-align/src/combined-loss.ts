/** The paper's total loss, L = lambda1 * L_mse + lambda2 * L_align. */
import * as tf from '@tensorflow/tfjs-core';
import { assertFiniteNonNegative, assertKnownKeys, assertParamsObject, assertTensor } from './validate';

export interface CombinedLossParams {
  /**
   * The diffusion (denoising MSE) loss, a scalar (rank 0, checked at run time; typed `tf.Tensor`
   * so that `tf.losses.meanSquaredError(...)`, typed `Tensor<Rank>`, goes in as it is).
   */
  diffusionLoss: tf.Tensor;
  /** The alignment loss from `FeatureAlignmentLoss.forward`, a scalar (rank 0, checked). */
  alignLoss: tf.Tensor;
  /** Weight of the diffusion loss (default 1). */
  lambda1?: number;
  /** Weight of the alignment loss (default 1, what the reference implementation used). */
  lambda2?: number;
}

/** lambda1 * diffusionLoss + lambda2 * alignLoss, a scalar. */
export function combinedLoss(params: CombinedLossParams): tf.Scalar {
  const where = 'combinedLoss';
  assertParamsObject(where, params);
  assertKnownKeys(where, params as unknown as Record<string, unknown>, ['diffusionLoss', 'alignLoss', 'lambda1', 'lambda2']);
  const { diffusionLoss, alignLoss, lambda1 = 1, lambda2 = 1 } = params;
  assertTensor(where, 'diffusionLoss', diffusionLoss, [0], 'a scalar');
  assertTensor(where, 'alignLoss', alignLoss, [0], 'a scalar');
  assertFiniteNonNegative(where, 'lambda1', lambda1);
  assertFiniteNonNegative(where, 'lambda2', lambda2);
  return tf.tidy(() => tf.add(tf.mul(diffusionLoss, lambda1), tf.mul(alignLoss, lambda2))) as tf.Scalar;
}
