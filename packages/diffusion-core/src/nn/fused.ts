/**
 * Fused GroupNorm(+SiLU) and SiLU kernels, used when the active backend provides them.
 *
 * tfjs has no such ops: composed from tfjs ops a GroupNorm+SiLU is ~10 passes over the
 * activation forward and ~25 backward, and the tape keeps every intermediate. A backend may
 * register these custom kernels (with gradients); `@fad/tfjs-native`'s `native` backend does
 * (see its README for the contract). On every other backend the layers compose the same math
 * from tfjs ops, so results agree to float rounding.
 *
 *   FadGroupNorm  inputs {x: [N, ..., C], gamma: [C], beta: [C]}, attrs {groups, epsilon, silu, relu?}
 *                 -> [y, mean [N, groups], rstd [N, groups]] (SiLU or ReLU after the affine)
 *   FadBatchNorm  inputs {x: [..., C], gamma, beta, runningMean, runningVar: [C]}, attrs {epsilon, momentum, relu?}
 *                 -> [y, mean [C], rstd [C], runningMean', runningVar'] (training-mode BatchNorm
 *                 with the running averages; see fusedBatchNorm)
 *   FadSilu       inputs {x} -> x * sigmoid(x)
 *   FadAttention  inputs {q: [B, L, D], k: [B, S, D], v: [B, S, D]}, attrs {heads, scale}
 *                 -> [out [B, L, D], probs [B, heads, L, S]]: multi-head softmax(scale q k^T) v,
 *                 heads interleaved in the last axis as in Attention (no transposes).
 *   FadAdam       inputs {x, g, m, v}, attrs {beta1, beta2, stepSize, epsHat, decay} -> [x', m', v']
 *                 (no gradient; see fusedAdamStep)
 */
import * as tf from '@tensorflow/tfjs-core';

export const FUSED_GROUP_NORM_KERNEL = 'FadGroupNorm';
export const FUSED_BATCH_NORM_KERNEL = 'FadBatchNorm';
export const FUSED_SILU_KERNEL = 'FadSilu';
export const FUSED_ATTENTION_KERNEL = 'FadAttention';
export const FUSED_ADAM_KERNEL = 'FadAdam';

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

/** Whether the active backend has the kernel `name` (for kernels that need no gradient). */
export function hasKernel(name: string): boolean {
  return enabled && tf.getKernel(name, tf.getBackend()) !== undefined;
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

/** Parameters of {@link fusedBatchNorm}. */
export interface FusedBatchNormParams {
  /** [..., C] (NHWC for images), at least 2 values per channel. */
  x: tf.Tensor;
  gamma: tf.Tensor1D;
  beta: tf.Tensor1D;
  runningMean: tf.Tensor1D;
  runningVar: tf.Tensor1D;
  epsilon: number;
  /** Weight of the batch statistics in the running averages (PyTorch's `momentum`, e.g. 0.1). */
  momentum: number;
  /** Apply a ReLU after the affine transform. */
  relu?: boolean;
}

/**
 * Training-mode batch normalisation (PyTorch's BatchNorm2d: statistics per channel over every
 * other axis, normalised with the biased variance), optionally followed by a ReLU, with the
 * new running averages (the unbiased variance, as PyTorch keeps), as one FadBatchNorm kernel.
 * Returns null when the backend lacks it (callers then compose the same math from tfjs ops).
 * The caller assigns `runningMean` / `runningVar` to its running-statistics variables.
 */
export function fusedBatchNorm(params: FusedBatchNormParams): { y: tf.Tensor; runningMean: tf.Tensor1D; runningVar: tf.Tensor1D } | null {
  if (!hasFusedKernel(FUSED_BATCH_NORM_KERNEL)) return null;
  const { x, gamma, beta, runningMean, runningVar, epsilon, momentum, relu = false } = params;
  const attrs = { epsilon, momentum, relu } as unknown as tf.NamedAttrMap;
  const [y, mean, rstd, rm, rv] = tf.engine().runKernel(FUSED_BATCH_NORM_KERNEL, { x, gamma, beta, runningMean, runningVar }, attrs) as tf.Tensor[];
  // The gradient keeps its own references to the statistics (tfjs saves them).
  mean.dispose();
  rstd.dispose();
  return { y, runningMean: rm as tf.Tensor1D, runningVar: rv as tf.Tensor1D };
}

/** Attributes of one fused Adam step (bias corrections folded in, as in `Adam.apply`). */
export interface FusedAdamStepAttrs {
  beta1: number;
  beta2: number;
  /** lr * sqrt(1 - beta2^t) / (1 - beta1^t). */
  stepSize: number;
  /** epsilon * sqrt(1 - beta2^t). */
  epsHat: number;
  /** lr * weight decay (decoupled, AdamW); 0 for plain Adam. */
  decay: number;
}

/**
 * One Adam update of a variable in one pass: returns [x', m', v'] (m' = b1 m + (1-b1) g,
 * v' = b2 v + (1-b2) g^2, x' = x - stepSize m' / (sqrt(v') + epsHat) - decay x), or null when the
 * backend lacks the FadAdam kernel. The caller assigns them.
 */
export function fusedAdamStep(x: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, attrs: FusedAdamStepAttrs): [tf.Tensor, tf.Tensor, tf.Tensor] | null {
  if (!hasKernel(FUSED_ADAM_KERNEL)) return null;
  return tf.engine().runKernel(FUSED_ADAM_KERNEL, { x, g, m, v }, attrs as unknown as tf.NamedAttrMap) as [tf.Tensor, tf.Tensor, tf.Tensor];
}
