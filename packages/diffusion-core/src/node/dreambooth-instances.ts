/**
 * DreamBooth's instance images (Node only: part of `@fad/diffusion-core/node`, beside the DreamBooth
 * run): a seeded choice of `count` training images of one class, the few images the model is
 * fine-tuned on.
 */
import { Generator } from '@fad/diffusion-core';
import { failParam as fail, isIntAtLeast as isInt } from './param-check';
import { TrainingRunError } from './training-run-error';

/** Parameters of {@link chooseInstances}. */
export interface ChooseInstancesParams {
  /** Class label of every image. */
  labels: Int32Array | readonly number[];
  /** The rows to choose from (the training split). */
  indices: readonly number[];
  classLabel: number;
  /** How many to choose. */
  count: number;
  seed: number;
  /** The class in messages (default the label). */
  className?: string;
}

/**
 * `count` of the rows in `indices` whose label is `classLabel`, chosen by a permutation of
 * `Generator(seed)`, sorted.
 * @throws TrainingRunError `too-few-images` when the class has fewer than `count` images there;
 *   TypeError / RangeError for bad params.
 */
export function chooseInstances(p: ChooseInstancesParams): number[] {
  const fn = 'chooseInstances';
  if (p === null || typeof p !== 'object') fail(fn, 'params', 'one params object', p, TypeError);
  if (!(p.labels instanceof Int32Array || Array.isArray(p.labels))) fail(fn, 'labels', 'an Int32Array or array of class labels', typeof p.labels, TypeError);
  if (!Array.isArray(p.indices) || !p.indices.every((k) => Number.isInteger(k) && k >= 0 && k < p.labels.length)) fail(fn, 'indices', `a list of rows in 0..${p.labels.length - 1}`, p.indices);
  if (!isInt(p.classLabel, 0)) fail(fn, 'classLabel', 'an integer >= 0', p.classLabel);
  if (!isInt(p.count, 1)) fail(fn, 'count', 'an integer >= 1', p.count);
  if (!(isInt(p.seed, 0) && p.seed <= 0xffffffff)) fail(fn, 'seed', 'an integer in [0, 2^32-1]', p.seed);
  const className = p.className ?? String(p.classLabel);
  const pool = p.indices.filter((k) => p.labels[k] === p.classLabel);
  if (pool.length < p.count) {
    throw new TrainingRunError('too-few-images', `${p.count} instance images were asked for but class "${className}" has only ${pool.length} training image(s)`, {
      className, requested: p.count, available: pool.length,
    });
  }
  const perm = new Generator(p.seed).permutation(pool.length);
  return perm.slice(0, p.count).map((i) => pool[i]).sort((a, b) => a - b);
}
