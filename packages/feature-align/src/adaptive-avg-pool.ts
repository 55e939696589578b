/** Adaptive average pooling over NHWC feature maps (PyTorch's `AdaptiveAvgPool2d`). */
import * as tf from '@tensorflow/tfjs-core';
import { assertParamsObject, assertPositiveInteger, assertTensor, fail } from './validate';

export interface AdaptiveAvgPool2dParams {
  /** [B,H,W,C] */
  x: tf.Tensor4D;
  /** Output height and width: one number for a square output, or [height, width]. */
  outputSize: number | readonly [number, number];
}

/**
 * Averages `x` [B,H,W,C] into [B,oh,ow,C]. Output cell (i, j) averages rows
 * floor(i*H/oh) .. ceil((i+1)*H/oh)-1 and columns floor(j*W/ow) .. ceil((j+1)*W/ow)-1, as PyTorch
 * does (bins overlap when the size does not divide). `outputSize` 1 is global average pooling.
 */
export function adaptiveAvgPool2d(params: AdaptiveAvgPool2dParams): tf.Tensor4D {
  const where = 'adaptiveAvgPool2d';
  assertParamsObject(where, params);
  const { x, outputSize } = params;
  assertTensor(where, 'x', x, [4], '[B,H,W,C]');
  const [oh, ow] = typeof outputSize === 'number' ? [outputSize, outputSize] : Array.isArray(outputSize) ? outputSize : [NaN, NaN];
  assertPositiveInteger(where, 'outputSize (height)', oh);
  assertPositiveInteger(where, 'outputSize (width)', ow);
  const [b, h, w, c] = x.shape;
  if (oh > h || ow > w) fail(where, `outputSize [${oh},${ow}] is larger than the input's ${h}x${w} (x shape [${x.shape}])`, RangeError);
  return tf.tidy(() => {
    if (oh === 1 && ow === 1) return tf.mean(x, [1, 2], true) as tf.Tensor4D;
    if (h % oh === 0 && w % ow === 0) {
      return tf.mean(tf.reshape(x, [b, oh, h / oh, ow, w / ow, c]), [2, 4]) as tf.Tensor4D;
    }
    const rows: tf.Tensor4D[] = [];
    for (let i = 0; i < oh; i++) {
      const r0 = Math.floor((i * h) / oh);
      const r1 = Math.ceil(((i + 1) * h) / oh);
      const cells: tf.Tensor4D[] = [];
      for (let j = 0; j < ow; j++) {
        const c0 = Math.floor((j * w) / ow);
        const c1 = Math.ceil(((j + 1) * w) / ow);
        cells.push(tf.mean(tf.slice(x, [0, r0, c0, 0], [b, r1 - r0, c1 - c0, c]), [1, 2], true) as tf.Tensor4D);
      }
      rows.push(tf.concat(cells, 2));
    }
    return tf.concat(rows, 1);
  });
}

export interface PoolFeaturesParams {
  /** Features [B,H,W,C] (pooled over H and W) or already pooled [B,C] (returned as is). */
  x: tf.Tensor2D | tf.Tensor4D;
}

/**
 * Feature maps to one vector per sample: global average pooling of [B,H,W,C] (adaptive average
 * pooling to 1x1, then flattened) into [B,C]; a [B,C] input is returned unchanged (same tensor).
 */
export function poolFeatures(params: PoolFeaturesParams): tf.Tensor2D {
  const where = 'poolFeatures';
  assertParamsObject(where, params);
  const { x } = params;
  assertTensor(where, 'x', x, [2, 4], '[B,H,W,C] or [B,C]');
  return x.rank === 2 ? (x as tf.Tensor2D) : (tf.mean(x, [1, 2]) as tf.Tensor2D);
}
