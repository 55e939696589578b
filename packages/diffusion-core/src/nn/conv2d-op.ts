/**
 * 2-D convolution (NHWC, HWIO filters, symmetric explicit padding) that can be differentiated on
 * every backend. When the active backend has no `Conv2DBackpropFilter` kernel (tfjs-backend-wasm
 * 4.x ships none) or only a very slow one (tfjs-backend-cpu), the filter gradient is computed
 * as a forward convolution, which every backend has and runs fast (see conv2dFilterGradAsConv).
 */
import * as tf from '@tensorflow/tfjs-core';
import '../register-gradients';

type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

/**
 * Backends whose own Conv2DBackpropFilter is too slow to use: tfjs-backend-cpu's is a naive loop,
 * measured here ~25x slower than the convolution form for a small U-Net's shapes.
 */
const SLOW_FILTER_GRAD = new Set(['cpu']);

/** Whether the active backend has fast convolution gradients (native, tensorflow, webgl): "accelerated". */
export function useBackendFilterGrad(): boolean {
  const b = tf.getBackend();
  return !SLOW_FILTER_GRAD.has(b) && tf.getKernel('Conv2DBackpropFilter', b) !== undefined;
}

/**
 * dL/dW as one convolution: with batch and channels swapped, X^T [Ci,Hp,Wp,B] convolved with
 * dY^T [Ho,Wo,B,Co] as the filter, dilated by the stride, gives [Ci, >=k, >=k, Co]; the first k x k
 * positions are the filter gradient.
 */
export function conv2dFilterGradAsConv(x: tf.Tensor4D, dy: tf.Tensor4D, kernelSize: number, stride: number, pad: number): tf.Tensor4D {
  return tf.tidy(() => {
    const xp = pad > 0 ? tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) : x;
    const xt = tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D;
    const dyt = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
    const full = tf.conv2d(xt, dyt, 1, 'valid', 'NHWC', stride);
    const cropped = tf.slice(full, [0, 0, 0, 0], [-1, kernelSize, kernelSize, -1]);
    return tf.transpose(cropped, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

const customByKey = new Map<string, (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D>();

function customConv(kernelSize: number, stride: number, pad: number) {
  const key = `${kernelSize}/${stride}/${pad}`;
  let f = customByKey.get(key);
  if (!f) {
    const padArg: Pad4 | 'valid' = pad === 0 ? 'valid' : [[0, 0], [pad, pad], [pad, pad], [0, 0]];
    f = tf.customGrad(((...args: unknown[]) => {
      const [x, w, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
      save([x, w]);
      const value = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, padArg);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
        const dx = tf.conv2dTranspose(dy as tf.Tensor4D, ws, xs.shape, stride, padArg);
        const dw = conv2dFilterGradAsConv(xs, dy as tf.Tensor4D, kernelSize, stride, pad);
        return [dx, dw];
      };
      return { value, gradFunc };
    }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D;
    customByKey.set(key, f);
  }
  return f;
}

/** conv2d whose filter gradient always comes from `conv2dFilterGradAsConv`. */
export function conv2dWithConvFilterGrad(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  return customConv(w.shape[0], stride, pad)(x, w);
}

/** y = conv2d(x, w) with `pad` zeros on every side; square kernels. */
export function conv2dSymmetric(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  if (!useBackendFilterGrad()) return conv2dWithConvFilterGrad(x, w, stride, pad);
  return tf.conv2d(x, w, stride, pad === 0 ? 'valid' : [[0, 0], [pad, pad], [pad, pad], [0, 0]]);
}

const customBiasByKey = new Map<string, (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) => tf.Tensor4D>();

/**
 * conv2d + bias as one FusedConv2D kernel (bias added in the convolution's epilogue), with a
 * gradient that keeps only x and w. (tf.fused.conv2d's own gradient also keeps the output,
 * which a linear activation does not need: one activation-sized tensor per conv until the
 * backward pass.)
 */
function customConvBias(stride: number, pad: number) {
  const key = `${stride}/${pad}`;
  let f = customBiasByKey.get(key);
  if (!f) {
    const padArg: Pad4 | 'valid' = pad === 0 ? 'valid' : [[0, 0], [pad, pad], [pad, pad], [0, 0]];
    f = tf.customGrad(((...args: unknown[]) => {
      const [x, w, b, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D, tf.GradSaveFunc];
      save([x, w]);
      const value = tf.fused.conv2d({ x, filter: w, strides: stride, pad: padArg, bias: b });
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
        const dy4 = dy as tf.Tensor4D;
        const dx = tf.conv2dTranspose(dy4, ws, xs.shape, stride, padArg);
        const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x: xs, dy: dy4 }, {
          strides: stride, pad: padArg, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: ws.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
        const db = tf.sum(dy4, [0, 1, 2]);
        return [dx, dw, db];
      };
      return { value, gradFunc };
    }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) => tf.Tensor4D;
    customBiasByKey.set(key, f);
  }
  return f;
}

/**
 * y = conv2d(x, w) + b with `pad` zeros on every side; square kernels. Fused into one kernel on
 * backends with a fast filter gradient (the native, tensorflow and webgl backends); elsewhere
 * `conv2dSymmetric` then an add.
 */
export function conv2dSymmetricBias(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, stride: number, pad: number): tf.Tensor4D {
  if (!useBackendFilterGrad()) return tf.tidy(() => tf.add(conv2dSymmetric(x, w, stride, pad), b));
  return customConvBias(stride, pad)(x, w, b);
}
