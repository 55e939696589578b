/**
 * A fixed-seed class grid: `imagesPerClass` samples of each class, one row per class, from its
 * own seeded {@link Generator}. Meant for validation samples while training: the same seed gives
 * the same starting noise at every call, so grids of successive checkpoints are comparable, and
 * nothing outside the call is touched (no shared RNG stream, no weights; the caller decides which
 * weights the model holds, e.g. a copy holding the EMA weights).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Generator } from '../random';
import type { NoiseScheduler } from '../schedulers/scheduler';
import type { DiffusionModel } from '../unet/unet';
import type { AutoencoderKL } from '../autoencoder/autoencoder';
import { sampleImages } from './sample';

export interface SampleClassGridParams {
  model: DiffusionModel;
  scheduler: NoiseScheduler;
  /** The class of each row, e.g. `[0, 1, ..., K-1]`. */
  classLabels: readonly number[];
  /** Images per row (class). */
  imagesPerClass: number;
  numInferenceSteps: number;
  /** Seed of this grid's own generator (initial noise and stochastic steps). */
  seed: number;
  /** Classifier-free guidance scale (default 1: conditional prediction only). */
  guidanceScale?: number;
  /** Guidance rescale phi in [0, 1], as in `sampleImages`. */
  guidanceRescale?: number;
  /** DDIM eta (default 0). */
  eta?: number;
  /** Range of the training data (default [-1, 1]), mapped to [0, 1]. */
  dataRange?: [number, number];
  /** Latent diffusion: the autoencoder whose latents the model samples; the grid holds decoded pixels (see `sampleImages`). */
  autoencoder?: AutoencoderKL;
}

export interface ClassGrid {
  /** `[rows * imagesPerClass, H, W, C]` in [0, 1], row-major (all images of row 0 first); the caller disposes it. */
  images: tf.Tensor4D;
  /** The class of each image (`classLabels[r]` repeated `imagesPerClass` times per row). */
  labels: number[];
  rows: number;
  columns: number;
}

/** Samples a class grid with its own generator seeded by `seed`. */
export async function sampleClassGrid(p: SampleClassGridParams): Promise<ClassGrid> {
  const owner = 'sampleClassGrid';
  if (!p || typeof p !== 'object') throw new TypeError(`${owner}: expected a params object, got ${String(p)}`);
  if (!Array.isArray(p.classLabels) || p.classLabels.length === 0 || !p.classLabels.every((c) => Number.isInteger(c) && c >= 0)) {
    throw new RangeError(`${owner}: classLabels must be a non-empty array of non-negative integers, got ${JSON.stringify(p.classLabels)}`);
  }
  if (!(Number.isInteger(p.imagesPerClass) && p.imagesPerClass > 0)) throw new RangeError(`${owner}: imagesPerClass must be a positive integer, got ${p.imagesPerClass}`);
  if (!(Number.isInteger(p.numInferenceSteps) && p.numInferenceSteps > 0)) throw new RangeError(`${owner}: numInferenceSteps must be a positive integer, got ${p.numInferenceSteps}`);
  if (!(Number.isInteger(p.seed) && p.seed >= 0 && p.seed <= 0xffffffff)) throw new RangeError(`${owner}: seed must be an integer in [0, 2^32), got ${p.seed}`);
  const labels = p.classLabels.flatMap((c) => Array.from({ length: p.imagesPerClass }, () => c));
  const images = await sampleImages({
    model: p.model,
    scheduler: p.scheduler,
    classLabels: labels,
    numInferenceSteps: p.numInferenceSteps,
    guidanceScale: p.guidanceScale,
    guidanceRescale: p.guidanceRescale,
    eta: p.eta,
    dataRange: p.dataRange,
    ...(p.autoencoder !== undefined ? { autoencoder: p.autoencoder } : {}),
    generator: new Generator(p.seed),
  });
  return { images, labels, rows: p.classLabels.length, columns: p.imagesPerClass };
}

export interface TileClassGridParams {
  /** `[rows * columns, H, W, C]` images, flat row-major (as `ClassGrid.images.dataSync()`). */
  data: ArrayLike<number>;
  rows: number;
  columns: number;
  height: number;
  width: number;
  channels: number;
}

/**
 * Lays the images of a grid out as one image `[rows * height, columns * width, channels]` (image
 * `r * columns + c` at row block r, column block c), flat row-major, for writing one PNG.
 */
export function tileClassGrid(p: TileClassGridParams): Float32Array {
  const { rows, columns, height: h, width: w, channels: ch } = p;
  for (const [k, v] of Object.entries({ rows, columns, height: h, width: w, channels: ch })) {
    if (!(Number.isInteger(v) && v > 0)) throw new RangeError(`tileClassGrid: ${k} must be a positive integer, got ${v}`);
  }
  const per = h * w * ch;
  if (!p.data || p.data.length !== rows * columns * per) {
    throw new RangeError(`tileClassGrid: data has ${p.data?.length} values, expected rows*columns*height*width*channels = ${rows * columns * per}`);
  }
  const out = new Float32Array(rows * columns * per);
  const rowStride = columns * w * ch;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const src = (r * columns + c) * per;
      for (let y = 0; y < h; y++) {
        const dst = (r * h + y) * rowStride + c * w * ch;
        for (let k = 0; k < w * ch; k++) out[dst + k] = p.data[src + y * w * ch + k];
      }
    }
  }
  return out;
}
