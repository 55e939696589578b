/**
 * Reading image inputs (NHWC tensors or shaped arrays) into batches of Float64 planes, with the
 * shape, NaN and value-range checks shared by SSIM, MS-SSIM and diversity. Internal module.
 */
import {
  type ArrayInput,
  type NumericArray,
  MetricInputError,
  assertFinite,
  formatShape,
  readArray,
} from './metric-input';

/** Images normalised to NHWC, still holding the caller's flat data. */
export interface ImageBatch {
  readonly data: NumericArray;
  /** The shape as given by the caller (for messages). */
  readonly shape: readonly number[];
  readonly batch: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
}

/**
 * How a rank-3 input is read: `'pair'` (SSIM, MS-SSIM) reads `[H,W,C]` as one image; `'set'`
 * (diversity) reads `[N,H,W]` as N grayscale images. Rank 4 is always `[B,H,W,C]`; rank 2 (`'pair'`
 * only) is one grayscale `[H,W]` image.
 */
export type ImageLayout = 'pair' | 'set';

const LAYOUT_TEXT: Record<ImageLayout, string> = {
  pair: '[H,W], [H,W,C] or [B,H,W,C] (NHWC)',
  set: '[N,H,W] or [N,H,W,C] (NHWC)',
};

/** Reads and checks an image batch: rank, finiteness. */
export function readImageBatch(fn: string, arg: string, input: ArrayInput, layout: ImageLayout): ImageBatch {
  const read = readArray(fn, arg, input);
  const s = read.shape;
  let dims: [number, number, number, number];
  if (s.length === 4) dims = [s[0], s[1], s[2], s[3]];
  else if (s.length === 3 && layout === 'pair') dims = [1, s[0], s[1], s[2]];
  else if (s.length === 3 && layout === 'set') dims = [s[0], s[1], s[2], 1];
  else if (s.length === 2 && layout === 'pair') dims = [1, s[0], s[1], 1];
  else throw new MetricInputError(`${fn}: argument "${arg}" has shape ${formatShape(s)}, expected ${LAYOUT_TEXT[layout]}`);
  if (dims.some((d) => d < 1)) {
    throw new MetricInputError(`${fn}: argument "${arg}" has shape ${formatShape(s)}, expected every dimension >= 1`);
  }
  assertFinite(fn, arg, read.data, s);
  return { data: read.data, shape: s, batch: dims[0], height: dims[1], width: dims[2], channels: dims[3] };
}

/** Throws unless `b` has exactly the shape of `a`. */
export function assertSameShape(fn: string, argA: string, a: ImageBatch, argB: string, b: ImageBatch): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new MetricInputError(
      `${fn}: argument "${argB}" has shape ${formatShape(b.shape)}, expected ${formatShape(a.shape)} (the shape of "${argA}")`,
    );
  }
}

/**
 * Throws if the values of an argument span more than `dataRange` (max - min > dataRange), which
 * means `dataRange` is wrong for these images (e.g. 0..255 pixels with dataRange 1).
 */
export function assertWithinDataRange(fn: string, arg: string, batch: ImageBatch, dataRange: number): void {
  let lo = Infinity;
  let hi = -Infinity;
  const d = batch.data;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (hi - lo > dataRange * (1 + 1e-9)) {
    throw new MetricInputError(
      `${fn}: argument "${arg}" has values from ${lo} to ${hi} (span ${hi - lo}), more than dataRange = ${dataRange}; ` +
        'pass the dynamic range of the images (e.g. 1 for [0,1], 2 for [-1,1], 255 for uint8 pixels)',
    );
  }
}

/** Copies channel `c` of image `b` into a row-major `[H,W]` Float64 plane. */
export function extractPlane(batch: ImageBatch, b: number, c: number, out?: Float64Array): Float64Array {
  const { height, width, channels, data } = batch;
  const plane = out ?? new Float64Array(height * width);
  const base = b * height * width * channels + c;
  const n = height * width;
  for (let i = 0; i < n; i++) plane[i] = data[base + i * channels];
  return plane;
}
