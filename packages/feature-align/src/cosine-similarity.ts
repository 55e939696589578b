/** Row-wise cosine similarity with a safe epsilon. */
import * as tf from '@tensorflow/tfjs-core';
import { assertFiniteNonNegative, assertParamsObject, assertTensor, fail, shapeText } from './validate';

/**
 * Default epsilon of the norms: each norm is computed as sqrt(sum(v^2) + epsilon^2).
 *
 * For any vector whose norm is well above epsilon this equals the Euclidean norm to float32
 * precision; for a zero vector it gives epsilon instead of 0, so the cosine is 0 (not NaN) and its
 * gradient is finite everywhere. (PyTorch's `F.cosine_similarity` clamps each norm at eps = 1e-8
 * instead; the two agree except within ~epsilon of the origin.)
 */
export const DEFAULT_COSINE_EPSILON = 1e-8;

export interface RowCosineSimilarityParams {
  /** [B, N] */
  a: tf.Tensor2D;
  /** [B, N], same shape as `a`. */
  b: tf.Tensor2D;
  /** See `DEFAULT_COSINE_EPSILON`. */
  epsilon?: number;
}

/** cos(a_i, b_i) for every row i: [B]. Differentiable in both arguments. */
export function rowCosineSimilarity(params: RowCosineSimilarityParams): tf.Tensor1D {
  const where = 'rowCosineSimilarity';
  assertParamsObject(where, params);
  const { a, b, epsilon = DEFAULT_COSINE_EPSILON } = params;
  assertTensor(where, 'a', a, [2], '[B,N]');
  assertTensor(where, 'b', b, [2], '[B,N]');
  assertFiniteNonNegative(where, 'epsilon', epsilon);
  if (a.shape[0] !== b.shape[0] || a.shape[1] !== b.shape[1]) {
    fail(where, `a and b must have the same shape, got a ${shapeText(a.shape)} and b ${shapeText(b.shape)}`);
  }
  return cosineUnchecked(a, b, epsilon);
}

/** The computation without checks (callers have validated). */
export function cosineUnchecked(a: tf.Tensor2D, b: tf.Tensor2D, epsilon: number): tf.Tensor1D {
  return tf.tidy(() => {
    const e2 = epsilon * epsilon;
    const dot = tf.sum(tf.mul(a, b), 1);
    const na = tf.sqrt(tf.add(tf.sum(tf.square(a), 1), e2));
    const nb = tf.sqrt(tf.add(tf.sum(tf.square(b), 1), e2));
    return tf.div(dot, tf.mul(na, nb)) as tf.Tensor1D;
  });
}
