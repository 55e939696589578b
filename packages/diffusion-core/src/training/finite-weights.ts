/**
 * A cheap check that weights are finite before they are written as a checkpoint or a finished
 * model: one reduction per tensor (`sum(w * 0)` is 0, or NaN when any value is NaN or infinite),
 * stacked into one small tensor read back once. Only when something is non-finite are the values
 * counted per tensor (for the message).
 */
import * as tf from '@tensorflow/tfjs-core';

/** What {@link findNonFiniteWeights} found. */
export interface NonFiniteWeights {
  /** The first tensor (in the given order) holding a NaN or an infinity. */
  first: string;
  /** Non-finite values in `first`, and its size. */
  firstCount: number;
  firstSize: number;
  /** Tensors with non-finite values, non-finite values overall, and all values checked. */
  tensors: number;
  count: number;
  total: number;
}

/**
 * Finds non-finite values in named tensors (e.g. `module.namedParameters()`); null when all are
 * finite. Leaves no tensors behind.
 * @throws TypeError if `named` is not an array of [name, tensor] pairs.
 */
export function findNonFiniteWeights(named: ReadonlyArray<readonly [string, tf.Tensor]>): NonFiniteWeights | null {
  if (!Array.isArray(named)) throw new TypeError(`findNonFiniteWeights: named must be an array of [name, tensor] pairs, got ${typeof named}`);
  named.forEach((pair, i) => {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || !(pair[1] instanceof tf.Tensor)) {
      throw new TypeError(`findNonFiniteWeights: named[${i}] must be a [name, tensor] pair`);
    }
  });
  if (named.length === 0) return null;
  const flags = tf.tidy(() => tf.stack(named.map(([, t]) => tf.sum(tf.mul(tf.cast(t, 'float32'), 0)))));
  const v = flags.dataSync();
  flags.dispose();
  if (v.every((x) => x === 0)) return null;
  let first = -1;
  let tensors = 0;
  let count = 0;
  let firstCount = 0;
  let total = 0;
  named.forEach(([, t], i) => {
    total += t.size;
    if (v[i] === 0) return;
    const c = tf.tidy(() => tf.sum(tf.cast(tf.logicalNot(tf.isFinite(tf.cast(t, 'float32'))), 'int32')));
    const n = c.dataSync()[0];
    c.dispose();
    if (n === 0) return;
    tensors++;
    count += n;
    if (first < 0) {
      first = i;
      firstCount = n;
    }
  });
  if (first < 0) return null;
  return { first: named[first][0], firstCount, firstSize: named[first][1].size, tensors, count, total };
}

/** A one-line description of a {@link NonFiniteWeights} finding. */
export function describeNonFiniteWeights(r: NonFiniteWeights): string {
  return `tensor "${r.first}" has ${r.firstCount} of ${r.firstSize} values NaN or infinite (${r.count} of ${r.total} values in ${r.tensors} tensor(s) overall)`;
}
