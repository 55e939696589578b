import * as tf from '@tensorflow/tfjs-core';

/**
 * Nearest-neighbour 2x upsampling, NHWC: out[b, y, x, c] = in[b, floor(y/2), floor(x/2), c]
 * (PyTorch's `interpolate(scale_factor=2, mode="nearest")`).
 *
 * Built from reshape + tile rather than `tf.image.resizeNearestNeighbor`, because tfjs 4.22's
 * ResizeNearestNeighborGrad on the cpu backend returns wrong gradients for batches larger than 1
 * (found by the trainer's micro-batch equivalence test). The gradient of tile is an exact sum.
 */
export function upsampleNearest2x(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  return tf.tidy(() => {
    // Two rank-4 tiles (tfjs differentiates tile only up to rank 4): widths, then rows.
    const wide = tf.reshape(tf.tile(tf.reshape(x, [b * h, w, 1, c]), [1, 1, 2, 1]), [b, h, 1, 2 * w * c]);
    return tf.reshape(tf.tile(wide, [1, 1, 2, 1]), [b, 2 * h, 2 * w, c]) as tf.Tensor4D;
  });
}
