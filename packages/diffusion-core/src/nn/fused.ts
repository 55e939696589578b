/**
 * Fused GroupNorm(+SiLU) and SiLU kernels, used when the active backend provides them.
 *
 * tfjs has no such ops: composed from tfjs ops a GroupNorm+SiLU is ~10 passes over the
 * activation forward and ~25 backward, and the tape keeps every intermediate. A backend may
 * register these custom kernels (with gradients); `@fad/tfjs-native`'s `native` backend does
 * (see its README for the contract). On every other backend the layers compose the same math
 * from tfjs ops, so results agree to float rounding.
 *
 *   FadGroupNorm  inputs {x: [N, ..., C], gamma: [C], beta: [C]}, attrs {groups, epsilon, silu}
 *                 -> [y, mean [N, groups], rstd [N, groups]]
 *   FadSilu       inputs {x} -> x * sigmoid(x)
 *   FadAttention  inputs {q: [B, L, D], k: [B, S, D], v: [B, S, D]}, attrs {heads, scale}
 *                 -> [out [B, L, D], probs [B, heads, L, S]]: multi-head softmax(scale q k^T) v,
 *                 heads interleaved in the last axis as in Attention (no transposes).
 */
import * as tf from '@tensorflow/tfjs-core';

export const FUSED_GROUP_NORM_KERNEL = 'FadGroupNorm';
export const FUSED_SILU_KERNEL = 'FadSilu';
export const FUSED_ATTENTION_KERNEL = 'FadAttention';

let enabled = true;

/**
 * Turns the use of fused kernels on or off (default on). Off forces the composed tfjs ops
 * on every backend, e.g. to compare the two paths.
 */
export function setFusedKernelsEnabled(on: boolean): void {
  enabled = on;
}

/** Whether the active backend has the fused kernel `name` with a registered gradient. */
export function hasFusedKernel(name: string): boolean {
  return enabled && tf.getKernel(name, tf.getBackend()) !== undefined && tf.getGradient(name) !== undefined;
}

/** y = GroupNorm(x) (then SiLU) through the fused kernel. Call only when `hasFusedKernel`. */
export function fusedGroupNorm(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  groups: number,
  epsilon: number,
  silu: boolean,
): tf.Tensor {
  const attrs = { groups, epsilon, silu } as unknown as tf.NamedAttrMap;
  const [y, mean, rstd] = tf.engine().runKernel(FUSED_GROUP_NORM_KERNEL, { x, gamma, beta }, attrs) as tf.Tensor[];
  // The gradient keeps its own references to the statistics (tfjs saves clones).
  mean.dispose();
  rstd.dispose();
  return y;
}

/** x * sigmoid(x) through the fused kernel. Call only when `hasFusedKernel`. */
export function fusedSilu<T extends tf.Tensor>(x: T): T {
  return tf.engine().runKernel(FUSED_SILU_KERNEL, { x }) as T;
}

/** Multi-head attention through the fused kernel. Call only when `hasFusedKernel`. */
export function fusedAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, scale: number): tf.Tensor3D {
  const attrs = { heads, scale } as unknown as tf.NamedAttrMap;
  const [out, probs] = tf.engine().runKernel(FUSED_ATTENTION_KERNEL, { q, k, v }, attrs) as tf.Tensor[];
  probs.dispose();
  return out as tf.Tensor3D;
}
