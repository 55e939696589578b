/**
 * Max pooling with PyTorch's `nn.MaxPool2d(kernel, stride, padding)` semantics on NHWC tensors.
 *
 * PyTorch pads with -infinity, so a padded cell never wins, and the output side is
 * `floor((H + 2 * padding - kernel) / stride) + 1`. TensorFlow's `'same'` padding differs (it pads
 * only at the end when the total is odd, which shifts every window by one pixel for the ResNet stem
 * on even inputs). tfjs' numeric padding instead skips the cells outside the input, which is the
 * -infinity rule, with the same floor for the output size; the forward pass relies on that.
 *
 * The gradient: tfjs-backend-cpu's `MaxPoolGrad` is a per-element loop through generic tensor
 * buffers (1.7 s for the ResNet50 stem at batch 32 and 64x64 input; the `native` backend reuses it).
 * On backends whose tensors live in JS memory (`cpu`, `native`), and on any backend without a
 * `MaxPoolGrad` kernel, the gradient is computed here by a typed-array loop instead (about 15 ms
 * for that shape): each output's gradient goes to the first maximum of its window in row-major
 * order, as PyTorch does on ties. Other backends (GPU) use tfjs' own gradient, which can route a
 * tie differently; with continuous inputs ties do not occur.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, formatShape } from './validate';

/** Parameters of {@link maxPool2d}. */
export interface MaxPool2dParams {
  /** Input [B,H,W,C]. */
  x: tf.Tensor4D;
  /** Square window side. */
  kernelSize: number;
  /** Step between windows, default `kernelSize`. */
  stride?: number;
  /** Implicit -infinity cells on each side (PyTorch `padding`), at most `kernelSize / 2`; default 0. */
  padding?: number;
}

/** Backends whose tensors are JS typed arrays, where reading them for the gradient is free. */
const JS_MEMORY_BACKENDS = new Set(['cpu']);

function useJsGradient(): boolean {
  const backend = tf.getBackend();
  return JS_MEMORY_BACKENDS.has(backend) || tf.getKernel('MaxPoolGrad', backend) === undefined;
}

/**
 * dL/dx: dy of every window added at the window's first maximum (row-major, padding excluded).
 * `x` is NHWC [b, h, w, c]; `dy` is [b, ho, wo, c].
 */
export function maxPoolGradLoop(
  x: Float32Array, shape: readonly [number, number, number, number], dy: Float32Array, ho: number, wo: number,
  kernelSize: number, stride: number, padding: number,
): Float32Array {
  const [b, h, w, c] = shape;
  const dx = new Float32Array(x.length);
  const best = new Float32Array(c);
  const arg = new Int32Array(c);
  for (let n = 0; n < b; n++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        best.fill(-Infinity);
        arg.fill(-1);
        for (let ky = 0; ky < kernelSize; ky++) {
          const iy = oy * stride - padding + ky;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kernelSize; kx++) {
            const ix = ox * stride - padding + kx;
            if (ix < 0 || ix >= w) continue;
            const base = ((n * h + iy) * w + ix) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = x[base + ch];
              if (v > best[ch]) {
                best[ch] = v;
                arg[ch] = base + ch;
              }
            }
          }
        }
        const o = ((n * ho + oy) * wo + ox) * c;
        for (let ch = 0; ch < c; ch++) if (arg[ch] >= 0) dx[arg[ch]] += dy[o + ch];
      }
    }
  }
  return dx;
}

const pools = new Map<string, (x: tf.Tensor4D) => tf.Tensor4D>();

/** tf.maxPool with the typed-array gradient, one per geometry. */
function poolWithJsGradient(k: number, s: number, p: number): (x: tf.Tensor4D) => tf.Tensor4D {
  const key = `${k}/${s}/${p}`;
  let f = pools.get(key);
  if (!f) {
    f = tf.customGrad(((...args: unknown[]) => {
      const [x, save] = args as [tf.Tensor4D, tf.GradSaveFunc];
      const value = tf.maxPool(x, k, s, p === 0 ? 'valid' : p);
      save([x]);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const xs = saved[0] as tf.Tensor4D;
        const [, ho, wo] = dy.shape;
        const dx = maxPoolGradLoop(xs.dataSync() as Float32Array, xs.shape, dy.dataSync() as Float32Array, ho, wo, k, s, p);
        return tf.tensor4d(dx, xs.shape);
      };
      return { value, gradFunc };
    }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor4D) => tf.Tensor4D;
    pools.set(key, f);
  }
  return f;
}

/** Max pooling, PyTorch semantics and tie rule (see the file comment). Differentiable. */
export function maxPool2d(params: MaxPool2dParams): tf.Tensor4D {
  const { x, kernelSize, stride = kernelSize, padding = 0 } = params;
  assertInt('maxPool2d', 'kernelSize', kernelSize, 1);
  assertInt('maxPool2d', 'stride', stride, 1);
  assertInt('maxPool2d', 'padding', padding, 0, Math.floor(kernelSize / 2));
  if (!(x instanceof tf.Tensor) || x.rank !== 4) {
    throw new Error(`maxPool2d: x must be a [B,H,W,C] tensor, got ${x instanceof tf.Tensor ? `shape ${formatShape(x.shape)}` : String(x)}`);
  }
  if (x.shape[1] + 2 * padding < kernelSize || x.shape[2] + 2 * padding < kernelSize) {
    throw new Error(`maxPool2d: input ${formatShape(x.shape)} with padding ${padding} is smaller than the ${kernelSize}x${kernelSize} window`);
  }
  if (x.dtype !== 'float32') throw new TypeError(`maxPool2d: x must be float32, got ${x.dtype}`);
  if (useJsGradient()) return poolWithJsGradient(kernelSize, stride, padding)(x);
  return tf.maxPool(x, kernelSize, stride, padding === 0 ? 'valid' : padding);
}
