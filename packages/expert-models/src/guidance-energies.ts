/**
 * Energies of a classifier's output that guided sampling climbs (see `expertGuidance`), per image,
 * from logits z [B, K] with p = softmax(z):
 * - `classifier`: log p(y | x), the classifier guidance of Dhariwal & Nichol (2021);
 * - `entropy`: U = -sum_k p_k log p_k;
 * - `margin`: U = -(p_(1) - p_(2)), the top probability minus the runner-up, negated;
 * - `least-confidence`: U = -max_k p_k.
 * The last three are the uncertainty measures of Yang et al. (TPAMI 2024): climbing them moves a
 * sample towards the classifier's decision boundary. The arg-max choices (which class is top and
 * runner-up) are constants for the gradient, as in the papers' implementations.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertOneOf, show } from './validate';

/** The uncertainty energies. */
export const UNCERTAINTY_KINDS = ['entropy', 'margin', 'least-confidence'] as const;
export type UncertaintyKind = (typeof UNCERTAINTY_KINDS)[number];

/** Every energy `expertGuidance` accepts: classifier guidance and the uncertainties. */
export const GUIDANCE_KINDS = ['classifier', ...UNCERTAINTY_KINDS] as const;
export type GuidanceKind = (typeof GUIDANCE_KINDS)[number];

/** Parameters of {@link uncertaintyEnergy}. */
export interface UncertaintyEnergyParams {
  /** Logits [B, K], K >= 2. */
  logits: tf.Tensor2D;
  kind: UncertaintyKind;
}

/** Parameters of {@link classLogLikelihood}. */
export interface ClassLogLikelihoodParams {
  /** Logits [B, K]. */
  logits: tf.Tensor2D;
  /** Target class per image, 0..K-1. */
  labels: ArrayLike<number>;
}

function checkLogits(fn: string, logits: unknown, minClasses: number): asserts logits is tf.Tensor2D {
  if (!(logits instanceof tf.Tensor) || logits.rank !== 2) {
    throw new TypeError(`${fn}: logits must be a [B, K] tensor, got ${logits instanceof tf.Tensor ? `shape [${logits.shape}]` : show(logits)}`);
  }
  if (logits.shape[1] < minClasses) throw new RangeError(`${fn}: logits must have at least ${minClasses} classes, got ${logits.shape[1]}`);
}

/** The uncertainty U per image, [B] (see the file comment). Differentiable in the logits. */
export function uncertaintyEnergy(params: UncertaintyEnergyParams): tf.Tensor1D {
  const fn = 'uncertaintyEnergy';
  if (typeof params !== 'object' || params === null) throw new TypeError(`${fn}: params must be an object {logits, kind}, got ${show(params)}`);
  const { logits, kind } = params;
  checkLogits(fn, logits, 2);
  assertOneOf(fn, 'kind', kind, UNCERTAINTY_KINDS);
  const k = logits.shape[1];
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    const p = tf.exp(logp);
    if (kind === 'entropy') return tf.neg(tf.sum(tf.mul(p, logp), 1)) as tf.Tensor1D;
    const top = tf.oneHot(tf.argMax(logits, 1), k);
    const p1 = tf.sum(tf.mul(p, top), 1);
    if (kind === 'least-confidence') return tf.neg(p1) as tf.Tensor1D;
    const second = tf.oneHot(tf.argMax(tf.sub(p, tf.mul(top, 2)), 1), k);
    return tf.neg(tf.sub(p1, tf.sum(tf.mul(p, second), 1))) as tf.Tensor1D;
  });
}

/** log p(y | x) per image, [B]. Differentiable in the logits. */
export function classLogLikelihood(params: ClassLogLikelihoodParams): tf.Tensor1D {
  const fn = 'classLogLikelihood';
  if (typeof params !== 'object' || params === null) throw new TypeError(`${fn}: params must be an object {logits, labels}, got ${show(params)}`);
  const { logits, labels } = params;
  checkLogits(fn, logits, 1);
  const [b, k] = logits.shape;
  const ys = labels === undefined || labels === null ? null : Array.from(labels);
  if (!ys || ys.length !== b || !ys.every((y) => Number.isInteger(y) && y >= 0 && y < k)) {
    throw new RangeError(`${fn}: labels must be ${b} integer class indices in 0..${k - 1} (one per image), got ${show(ys ?? labels)}`);
  }
  return tf.tidy(() => tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(tf.tensor1d(ys, 'int32'), k)), 1) as tf.Tensor1D);
}
