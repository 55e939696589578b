/**
 * Resizing images: the one home of resizing in fad. Two forms of the same methods:
 * - `resizeImages` / `resampleDownUp`: NHWC tensor batches in float32 on the tfjs backend (the
 *   expert augmentation in `@fad/expert-models`); `resampleDownUp` is the down-then-up resampling
 *   augmentation that imitates images which went through another resize path;
 * - `resizeImageData`: one HWC `Float32Array` in plain JavaScript with float64 weights and sums,
 *   rounded to float32 once at the end (the image-folder loader `loadImageFolder`, so a data set
 *   decodes to the same values on every backend).
 *
 * - `'bilinear'`, `'nearest'`: tfjs with half-pixel centres (as PyTorch `align_corners=False`,
 *   PIL and OpenCV), no antialiasing;
 * - `'area'`: each output pixel is the mean of the input area it covers, with fractional overlaps
 *   weighted (OpenCV `INTER_AREA` when shrinking, PIL `BOX`); computed as `A X Bᵀ` with
 *   row-stochastic overlap matrices, so an integer factor k equals k x k average pooling.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkChoice, checkImageBatch, checkInteger, checkParamsObject, fail, valueText } from './image-checks';

/** The interpolation methods. */
export const RESIZE_METHODS = ['bilinear', 'area', 'nearest'] as const;
/** An interpolation method. */
export type ResizeMethod = (typeof RESIZE_METHODS)[number];

/** Parameters of {@link resizeImages}. */
export interface ResizeImagesParams {
  /** Images [B,H,W,C]. */
  images: tf.Tensor4D;
  /** Output height, >= 1. */
  height: number;
  /** Output width, >= 1. */
  width: number;
  /** Interpolation (see the file comment). */
  method: ResizeMethod;
}

/**
 * Area weights as sparse rows: row j lists `[i, weight]` for the input pixels i that output pixel j
 * covers, weight = overlap / (in / out) in float64. Overlaps of `minOverlap` or less are dropped.
 */
function areaWeightRows(inSize: number, outSize: number, minOverlap: number): Array<Array<[number, number]>> {
  const scale = inSize / outSize;
  const rows: Array<Array<[number, number]>> = [];
  for (let j = 0; j < outSize; j++) {
    const lo = j * scale;
    const hi = (j + 1) * scale;
    const row: Array<[number, number]> = [];
    for (let i = Math.floor(lo); i < Math.min(inSize, Math.ceil(hi)); i++) {
      const overlap = Math.min(hi, i + 1) - Math.max(lo, i);
      if (overlap > minOverlap) row.push([i, overlap / scale]);
    }
    rows.push(row);
  }
  return rows;
}

/** Row-stochastic [out, in] matrix: weight of input pixel i in output pixel j = overlap / (in / out). */
export function areaMatrix(inSize: number, outSize: number): Float32Array {
  checkInteger('areaMatrix', 'inSize', inSize, 1);
  checkInteger('areaMatrix', 'outSize', outSize, 1);
  const m = new Float32Array(outSize * inSize);
  areaWeightRows(inSize, outSize, 0).forEach((row, j) => {
    for (const [i, w] of row) m[j * inSize + i] = w;
  });
  return m;
}

function resizeArea(images: tf.Tensor4D, height: number, width: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, c] = images.shape;
    const a = tf.tensor2d(areaMatrix(h, height), [height, h]);
    const bw = tf.tensor2d(areaMatrix(w, width), [width, w]);
    // Width: [B,H,W,C] -> [B*H, W, C] -> contract W.
    const xw = tf.transpose(tf.reshape(images, [b * h, w, c]), [0, 2, 1]); // [B*H, C, W]
    const yw = tf.matMul(tf.reshape(xw, [b * h * c, w]), bw, false, true); // [B*H*C, width]
    // Height: [B, H, C, width] -> [B, C, width, H] -> contract H.
    const yh = tf.transpose(tf.reshape(yw, [b, h, c, width]), [0, 1, 3, 2]); // [B, H, width, C]
    const t = tf.reshape(tf.transpose(yh, [0, 2, 3, 1]), [b * width * c, h]); // [B*width*C, H]
    const z = tf.matMul(t, a, false, true); // [B*width*C, height]
    return tf.transpose(tf.reshape(z, [b, width, c, height]), [0, 3, 1, 2]) as tf.Tensor4D;
  });
}

/** Resizes every image to height x width (see the file comment for the methods). */
export function resizeImages(params: ResizeImagesParams): tf.Tensor4D {
  checkParamsObject('resizeImages', params);
  const { images, height, width, method } = params;
  checkImageBatch('resizeImages', images);
  checkInteger('resizeImages', 'height', height, 1);
  checkInteger('resizeImages', 'width', width, 1);
  checkChoice('resizeImages', 'method', method, RESIZE_METHODS);
  if (method === 'area') return resizeArea(images, height, width);
  if (method === 'nearest') return tf.image.resizeNearestNeighbor(images, [height, width], false, true);
  return tf.image.resizeBilinear(images, [height, width], false, true);
}

/** Parameters of {@link resampleDownUp}. */
export interface ResampleDownUpParams {
  /** Images [B,H,W,C]. */
  images: tf.Tensor4D;
  /** Intermediate size as a fraction of the original, in (0, 1]; sides are `max(1, round(scale * side))`. */
  scale: number;
  /** Interpolation of the reduction. */
  downMethod: ResizeMethod;
  /** Interpolation back to the original size, default `'bilinear'`. */
  upMethod?: ResizeMethod;
}

/** Shrinks to `scale` of the size and back: loses detail the way a coarser acquisition or resize path does. */
export function resampleDownUp(params: ResampleDownUpParams): tf.Tensor4D {
  checkParamsObject('resampleDownUp', params);
  const { images, scale, downMethod, upMethod = 'bilinear' } = params;
  if (!(typeof scale === 'number' && scale > 0 && scale <= 1)) fail('resampleDownUp', `scale must be a finite number > 0 and <= 1, got ${valueText(scale)}`, RangeError);
  checkChoice('resampleDownUp', 'downMethod', downMethod, RESIZE_METHODS);
  checkChoice('resampleDownUp', 'upMethod', upMethod, RESIZE_METHODS);
  checkImageBatch('resampleDownUp', images);
  const [, h, w] = images.shape;
  const h2 = Math.max(1, Math.round(scale * h));
  const w2 = Math.max(1, Math.round(scale * w));
  if (h2 === h && w2 === w) return tf.clone(images);
  return tf.tidy(() => {
    const small = resizeImages({ images, height: h2, width: w2, method: downMethod });
    return resizeImages({ images: small, height: h, width: w, method: upMethod });
  });
}

/** The methods of {@link resizeImageData}. */
export const RESIZE_IMAGE_DATA_METHODS = ['area', 'bilinear'] as const;

/** Parameters of {@link resizeImageData}. */
export interface ResizeImageDataParams {
  /** One image, HWC row-major, any value range. */
  pixels: Float32Array;
  /** Height of `pixels`. */
  height: number;
  /** Width of `pixels`. */
  width: number;
  /** Channels of `pixels`. */
  channels: number;
  /** Output height, >= 1. */
  outHeight: number;
  /** Output width, >= 1. */
  outWidth: number;
  /**
   * `'area'`: box filter over the exact source footprint (PIL `BOX`, OpenCV `INTER_AREA` when
   * shrinking); `'bilinear'`: half-pixel centres, no antialiasing (as `resizeImages`).
   */
  method: (typeof RESIZE_IMAGE_DATA_METHODS)[number];
}

/**
 * Resizes one HWC image in plain JavaScript: float64 weights and sums (area weights below an
 * overlap of 1e-12 dropped), one rounding to float32 per output value. Returns a new array (a copy
 * when the size does not change).
 */
export function resizeImageData(params: ResizeImageDataParams): Float32Array {
  const where = 'resizeImageData';
  checkParamsObject(where, params);
  const { pixels: src, height: h, width: w, channels: c, outHeight: outH, outWidth: outW, method } = params;
  for (const [field, v] of [['height', h], ['width', w], ['channels', c], ['outHeight', outH], ['outWidth', outW]] as const) checkInteger(where, field, v, 1);
  checkChoice(where, 'method', method, RESIZE_IMAGE_DATA_METHODS);
  if (!(src instanceof Float32Array) || src.length !== h * w * c) {
    fail(where, `pixels must be a Float32Array of height*width*channels = ${h * w * c} values, got ${src instanceof Float32Array ? `${src.length} values` : valueText(src)}`, RangeError);
  }
  if (h === outH && w === outW) return src.slice();
  const out = new Float32Array(outH * outW * c);
  if (method === 'bilinear') {
    const sy = h / outH;
    const sx = w / outW;
    for (let y = 0; y < outH; y++) {
      const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
      const y0 = Math.floor(fy);
      const y1 = Math.min(y0 + 1, h - 1);
      const dy = fy - y0;
      for (let x = 0; x < outW; x++) {
        const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
        const x0 = Math.floor(fx);
        const x1 = Math.min(x0 + 1, w - 1);
        const dx = fx - x0;
        for (let k = 0; k < c; k++) {
          const a = src[(y0 * w + x0) * c + k];
          const b = src[(y0 * w + x1) * c + k];
          const d = src[(y1 * w + x0) * c + k];
          const e = src[(y1 * w + x1) * c + k];
          out[(y * outW + x) * c + k] = (a * (1 - dx) + b * dx) * (1 - dy) + (d * (1 - dx) + e * dx) * dy;
        }
      }
    }
    return out;
  }
  // Area: the 1-D weight rows (each sums to 1), applied separably: rows into a float64 buffer, then columns.
  const wy = areaWeightRows(h, outH, 1e-12);
  const wx = areaWeightRows(w, outW, 1e-12);
  const tmp = new Float64Array(outH * w * c);
  for (let y = 0; y < outH; y++) {
    for (const [j, wgt] of wy[y]) {
      for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) tmp[(y * w + x) * c + k] += wgt * src[(j * w + x) * c + k];
    }
  }
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      for (let k = 0; k < c; k++) {
        let s = 0;
        for (const [j, wgt] of wx[x]) s += wgt * tmp[(y * w + j) * c + k];
        out[(y * outW + x) * c + k] = s;
      }
    }
  }
  return out;
}
