/** Seeded, stratified train/validation split. */
import { Generator } from '@fad/diffusion-core';
import { assertInt, assertNumber, show } from './validate';

/** Parameters of {@link stratifiedSplit}. */
export interface StratifiedSplitParams {
  /** Integer class label of every sample. */
  labels: ArrayLike<number>;
  /** Share of each class that goes to validation, in [0, 1). */
  validationFraction: number;
  /** Seed of the shuffles (integer in [0, 2^32-1]). */
  seed: number;
}

/** Indices of the two parts, each ascending. */
export interface DataSplit {
  train: number[];
  validation: number[];
}

/**
 * Splits every class on its own: its indices are shuffled (Fisher-Yates, seeded; classes in
 * ascending order) and the first `round(n_c * validationFraction)` go to validation. A class with
 * at least 2 samples keeps at least one on each side when the fraction is above 0, so every class
 * is both trained on and validated. Same labels and seed give the same split.
 */
export function stratifiedSplit(params: StratifiedSplitParams): DataSplit {
  const fn = 'stratifiedSplit';
  const { labels, validationFraction, seed } = params;
  if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') {
    throw new TypeError(`${fn}: labels must be an array of integer labels, got ${show(labels)}`);
  }
  assertNumber(fn, 'validationFraction', validationFraction, { min: 0, max: 1, maxExclusive: true });
  assertInt(fn, 'seed', seed, 0, 0xffffffff);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0) throw new RangeError(`${fn}: labels[${i}] must be a non-negative integer, got ${show(y)}`);
    let list = byClass.get(y);
    if (!list) byClass.set(y, (list = []));
    list.push(i);
  }
  const g = new Generator(seed);
  const train: number[] = [];
  const validation: number[] = [];
  for (const cls of [...byClass.keys()].sort((a, b) => a - b)) {
    const idx = byClass.get(cls)!;
    const perm = g.permutation(idx.length).map((j) => idx[j]);
    let nVal = Math.round(idx.length * validationFraction);
    if (validationFraction > 0 && idx.length >= 2) nVal = Math.min(idx.length - 1, Math.max(1, nVal));
    validation.push(...perm.slice(0, nVal));
    train.push(...perm.slice(nVal));
  }
  train.sort((a, b) => a - b);
  validation.sort((a, b) => a - b);
  return { train, validation };
}
