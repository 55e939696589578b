/**
 * Per-class statistics of the mean intensity of images (Node only: part of
 * `@fad/diffusion-core/node`): what the `matchMean` filter of `generateImageSet` compares
 * generated images with.
 */
import type { IntensityStats } from './generated-set';

/** Parameters of {@link classIntensityStats}. */
export interface ClassIntensityStatsParams {
  /** The images, one after the other, `pixelsPerImage` values each. */
  images: Float32Array;
  /** The class index of each image, in 0..classNames.length-1. */
  labels: Int32Array | readonly number[];
  pixelsPerImage: number;
  classNames: readonly string[];
}

/** Per class: the mean and the (sample) standard deviation of the per-image mean intensity. */
export function classIntensityStats(p: ClassIntensityStatsParams): Record<string, IntensityStats> {
  const fn = 'classIntensityStats';
  if (p === null || typeof p !== 'object') throw new TypeError(`${fn}: params must be an object, got ${String(p)}`);
  if (!(p.images instanceof Float32Array)) throw new TypeError(`${fn}: images must be a Float32Array`);
  if (!Number.isInteger(p.pixelsPerImage) || p.pixelsPerImage < 1) throw new RangeError(`${fn}: pixelsPerImage must be an integer >= 1, got ${String(p.pixelsPerImage)}`);
  if (!Array.isArray(p.classNames)) throw new TypeError(`${fn}: classNames must be an array of strings`);
  if (!p.labels || p.labels.length * p.pixelsPerImage > p.images.length) throw new RangeError(`${fn}: labels must hold one label per image (${Math.floor(p.images.length / p.pixelsPerImage)} images), got ${String(p.labels?.length)}`);
  const { images, labels, pixelsPerImage: per, classNames } = p;
  const sums = classNames.map(() => [] as number[]);
  for (let i = 0; i < labels.length; i++) {
    if (!Number.isInteger(labels[i]) || labels[i] < 0 || labels[i] >= classNames.length) throw new RangeError(`${fn}: labels[${i}] must be a class index in 0..${classNames.length - 1}, got ${String(labels[i])}`);
    let s = 0;
    for (let j = i * per; j < (i + 1) * per; j++) s += images[j];
    sums[labels[i]].push(s / per);
  }
  const out: Record<string, IntensityStats> = {};
  classNames.forEach((c, k) => {
    const v = sums[k];
    const m = v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
    const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, v.length - 1));
    out[c] = { mean: m, std: sd };
  });
  return out;
}

/** How many values are NaN or infinite. */
export function countNonFinite(values: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) n++;
  return n;
}
