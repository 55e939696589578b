// Custom fused ops with gradients, registered as tfjs kernels of the `native` backend.
//
// tfjs has no GroupNorm or SiLU op; built from tfjs ops they cost ~10 (GroupNorm+SiLU
// forward) and ~25 (backward) full passes over the activation, and the tape keeps every
// intermediate until the backward pass. The fused kernels make 2 passes each way and save
// only the input and the per-group statistics.
//
// Contract (used by @fad/diffusion-core, which calls them through
// `tf.engine().runKernel(name, inputs, attrs)` only when `tf.getKernel(name, backend)`
// exists, and otherwise composes the same math from tfjs ops):
//
//   FadGroupNorm      inputs {x: [N, ..., C], gamma: [C], beta: [C]}
//                     attrs  {groups: G (divides C), epsilon, silu: boolean, relu?: boolean}
//                     outputs [y (x's shape), mean [N, G], rstd [N, G]]
//                     y = gamma * (x - mean_g) * rstd_g + beta, then y * sigmoid(y) if silu,
//                     max(y, 0) if relu;
//                     statistics over all of x's middle axes and the C/G channels of group g
//                     (biased variance, as PyTorch's GroupNorm). LayerNorm over the last axis
//                     is x reshaped to [rows, 1, C] with groups = 1 (training-mode BatchNorm
//                     has its own kernel, FadBatchNorm, below).
//   FadGroupNormGrad  inputs {dy, x, gamma, beta, mean, rstd}, same attrs
//                     outputs [dx, dgamma, dbeta]
//   FadBatchNorm      inputs {x: [..., C] (rank >= 2, >= 2 rows), gamma, beta, runningMean, runningVar: [C]}
//                     attrs  {epsilon, momentum, relu?: boolean}
//                     outputs [y (x's shape), mean [C], rstd [C], runningMean' [C], runningVar' [C]]
//                     training-mode BatchNorm (PyTorch's BatchNorm2d with NHWC x): statistics
//                     per channel over all other axes (n values), y = gamma (x - mean) rstd + beta
//                     (then max(y, 0) if relu), rstd = 1 / sqrt(var + eps) with the biased var;
//                     runningMean' = (1 - momentum) runningMean + momentum mean, runningVar' =
//                     (1 - momentum) runningVar + momentum var n / (n - 1). One kernel instead of
//                     the ~14 (reshapes, statistics, running averages) the composed form needs.
//                     Gradients flow to x, gamma and beta (the running statistics get none).
//   FadBatchNormGrad  inputs {dy, x, gamma, beta, mean, rstd}, attrs as FadBatchNorm
//                     outputs [dx, dgamma, dbeta]
//   FadSilu           inputs {x} -> x * sigmoid(x)
//   FadSiluGrad       inputs {x, dy} -> dy * s * (1 + x * (1 - s)), s = sigmoid(x)
//   FadAdam           inputs {x, g, m, v} (same shape), attrs {beta1, beta2, stepSize, epsHat, decay}
//                     outputs [x', m', v']: m' = b1 m + (1-b1) g, v' = b2 v + (1-b2) g^2,
//                     x' = x - stepSize m' / (sqrt(v') + epsHat) - decay x (Adam with the bias
//                     corrections folded into stepSize and epsHat; decay = lr * weight decay).
//                     One pass instead of ~13 kernels per variable. No gradient.
//   FadAttention      inputs {q: [B, L, D], k: [B, S, D], v: [B, S, D]}, attrs {heads: H (divides D), scale}
//                     outputs [out [B, L, D], probs [B, H, L, S]]: per head h (channels
//                     h*D/H .. (h+1)*D/H - 1), probs = softmax(scale q_h k_h^T), out_h = probs v_h.
//                     Replaces 4 transposes, the scale, 2 batched matmuls and the softmax.
//   FadAttentionGrad  inputs {dy, q, k, v, probs}, same attrs -> [dq, dk, dv]
//
// The gradients of FadGroupNorm and FadSilu are registered globally (tf.registerGradient)
// when the native backend is registered.
import {
  engine,
  getGradient,
  registerGradient,
  util,
  type GradConfig,
  type KernelFunc,
  type NamedAttrMap,
  type Tensor,
  type TensorInfo,
  zerosLike,
} from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

import type { NativeAddon } from './addon';

type KernelArgs = Parameters<KernelFunc>[0];
import { allocOutput, f32Values } from './kernel-utils';

export const FUSED_GROUP_NORM = 'FadGroupNorm';
export const FUSED_GROUP_NORM_GRAD = 'FadGroupNormGrad';
export const FUSED_BATCH_NORM = 'FadBatchNorm';
export const FUSED_BATCH_NORM_GRAD = 'FadBatchNormGrad';
export const FUSED_SILU = 'FadSilu';
export const FUSED_SILU_GRAD = 'FadSiluGrad';
export const FUSED_ADAM = 'FadAdam';
export const FUSED_ATTENTION = 'FadAttention';
export const FUSED_ATTENTION_GRAD = 'FadAttentionGrad';

/** Names of the fused custom kernels (not tfjs ops: see the contract above). */
export const FUSED_KERNEL_NAMES: readonly string[] = [FUSED_GROUP_NORM, FUSED_GROUP_NORM_GRAD, FUSED_BATCH_NORM, FUSED_BATCH_NORM_GRAD, FUSED_SILU, FUSED_SILU_GRAD, FUSED_ADAM, FUSED_ATTENTION, FUSED_ATTENTION_GRAD];

/** Attributes of FadAttention / FadAttentionGrad. */
export interface FusedAttentionAttrs {
  heads: number;
  scale: number;
}

/** [B, L, S, D, H] of a FadAttention call; throws a descriptive error on bad shapes. */
function attentionParams(q: TensorInfo, k: TensorInfo, v: TensorInfo, heads: number): Int32Array {
  const ok3 = (t: TensorInfo) => t.shape.length === 3;
  if (!ok3(q) || !ok3(k) || !ok3(v) || k.shape[0] !== q.shape[0] || !util.arraysEqual(k.shape, v.shape) || k.shape[2] !== q.shape[2]) {
    throw new Error(`@fad/tfjs-native ${FUSED_ATTENTION}: expected q [B,L,D], k and v [B,S,D], got [${q.shape}], [${k.shape}], [${v.shape}]`);
  }
  const [b, l, d] = q.shape;
  if (!(Number.isInteger(heads) && heads >= 1 && d % heads === 0) || b < 1 || l < 1 || k.shape[1] < 1) {
    throw new Error(`@fad/tfjs-native ${FUSED_ATTENTION}: heads (${heads}) must divide the width ${d} of q [${q.shape}]`);
  }
  return Int32Array.of(b, l, k.shape[1], d, heads);
}

/** Attributes of FadAdam. */
export interface FusedAdamAttrs {
  beta1: number;
  beta2: number;
  stepSize: number;
  epsHat: number;
  decay: number;
}

/** Attributes of FadGroupNorm / FadGroupNormGrad. */
export interface FusedGroupNormAttrs {
  groups: number;
  epsilon: number;
  silu: boolean;
  relu?: boolean;
}

/** Attributes of FadBatchNorm / FadBatchNormGrad. */
export interface FusedBatchNormAttrs {
  epsilon: number;
  momentum: number;
  relu?: boolean;
}

/** [1, rows, C, C] (the addon's GroupNorm geometry of a BatchNorm) of a FadBatchNorm call. */
function batchNormParams(x: TensorInfo, kernel: string): Int32Array {
  const r = x.shape.length;
  const c = r >= 2 ? x.shape[r - 1] : 0;
  const rows = c > 0 ? util.sizeFromShape(x.shape) / c : 0;
  if (r < 2 || c < 1 || rows < 2) {
    throw new Error(`@fad/tfjs-native ${kernel}: x must be [..., C] with at least 2 values per channel, got [${x.shape}]`);
  }
  return Int32Array.of(1, rows, c, c);
}

/** The addon's activation code of a FadGroupNorm call: 0 none, 1 SiLU, 2 ReLU. */
function gnActivation(a: FusedGroupNormAttrs): number {
  return a.silu ? 1 : a.relu ? 2 : 0;
}

function values(backend: MathBackendCPU, t: TensorInfo | undefined, what: string, size?: number): Float32Array {
  const v = t ? f32Values(backend, t) : null;
  if (!v) throw new Error(`@fad/tfjs-native ${what}: expected a float32 tensor`);
  if (size !== undefined && v.length !== size) {
    throw new Error(`@fad/tfjs-native ${what}: expected ${size} values, got shape [${t?.shape}]`);
  }
  return v;
}

/** [N, S, C, G] of a FadGroupNorm call; throws a descriptive error on bad shapes. */
function groupNormParams(x: TensorInfo, attrs: FusedGroupNormAttrs): Int32Array {
  const r = x.shape.length;
  if (r < 2) throw new Error(`@fad/tfjs-native ${FUSED_GROUP_NORM}: x must have rank >= 2, got [${x.shape}]`);
  const n = x.shape[0];
  const c = x.shape[r - 1];
  const s = util.sizeFromShape(x.shape.slice(1, r - 1));
  const g = attrs.groups;
  if (!(Number.isInteger(g) && g >= 1 && c % g === 0) || n < 1 || s < 1) {
    throw new Error(`@fad/tfjs-native ${FUSED_GROUP_NORM}: groups (${g}) must divide the channels of x [${x.shape}]`);
  }
  return Int32Array.of(n, s, c, g);
}

export function makeFusedKernels(addon: NativeAddon): Record<string, KernelFunc> {
  /**
   * The addon's groupNorm for FadGroupNorm and FadBatchNorm (p = [N, S, C, G]): y as a tensor
   * of x's shape, and the per-group mean and 1/std as plain arrays.
   */
  function normalize(
    args: KernelArgs,
    kernel: string,
    x: TensorInfo,
    gamma: TensorInfo,
    beta: TensorInfo,
    p: Int32Array,
    epsilon: number,
    act: number,
  ): [TensorInfo, Float32Array, Float32Array] {
    const backend = args.backend as MathBackendCPU;
    const [n, s, c, g] = p;
    const y = allocOutput(n * s * c);
    const mean = new Float32Array(n * g);
    const rstd = new Float32Array(n * g);
    addon.groupNorm(
      values(backend, x, kernel),
      values(backend, gamma, `${kernel} gamma`, c),
      values(backend, beta, `${kernel} beta`, c),
      y, mean, rstd, p, epsilon, act,
    );
    return [backend.makeTensorInfo(x.shape, 'float32', y), mean, rstd];
  }

  /** The addon's groupNormGrad for FadGroupNormGrad and FadBatchNormGrad: [dx, dgamma, dbeta]. */
  function normalizeGrad(args: KernelArgs, kernel: string, p: Int32Array, act: number): TensorInfo[] {
    const backend = args.backend as MathBackendCPU;
    const { dy, x, gamma, beta, mean, rstd } = args.inputs as Record<string, TensorInfo>;
    const [n, s, c, g] = p;
    const dx = allocOutput(n * s * c);
    const dgamma = allocOutput(c);
    const dbeta = allocOutput(c);
    addon.groupNormGrad(
      values(backend, dy, `${kernel} dy`, n * s * c),
      values(backend, x, `${kernel} x`),
      values(backend, gamma, `${kernel} gamma`, c),
      values(backend, beta, `${kernel} beta`, c),
      values(backend, mean, `${kernel} mean`, n * g),
      values(backend, rstd, `${kernel} rstd`, n * g),
      dx, dgamma, dbeta, p, act,
    );
    return [
      backend.makeTensorInfo(x.shape, 'float32', dx),
      backend.makeTensorInfo(gamma.shape, 'float32', dgamma),
      backend.makeTensorInfo(beta.shape, 'float32', dbeta),
    ];
  }

  const statsInfo = (args: KernelArgs, shape: number[], v: Float32Array) => (args.backend as MathBackendCPU).makeTensorInfo(shape, 'float32', v);

  return {
    [FUSED_GROUP_NORM]: (args) => {
      const { x, gamma, beta } = args.inputs as Record<string, TensorInfo>;
      const attrs = args.attrs as unknown as FusedGroupNormAttrs;
      const p = groupNormParams(x, attrs);
      const [n, , , g] = p;
      const [y, mean, rstd] = normalize(args, FUSED_GROUP_NORM, x, gamma, beta, p, attrs.epsilon, gnActivation(attrs));
      return [y, statsInfo(args, [n, g], mean), statsInfo(args, [n, g], rstd)];
    },

    [FUSED_GROUP_NORM_GRAD]: (args) => {
      const attrs = args.attrs as unknown as FusedGroupNormAttrs;
      return normalizeGrad(args, FUSED_GROUP_NORM_GRAD, groupNormParams((args.inputs as Record<string, TensorInfo>).x, attrs), gnActivation(attrs));
    },

    [FUSED_BATCH_NORM]: (args) => {
      const { x, gamma, beta, runningMean, runningVar } = args.inputs as Record<string, TensorInfo>;
      const attrs = args.attrs as unknown as FusedBatchNormAttrs;
      const p = batchNormParams(x, FUSED_BATCH_NORM);
      const rows = p[1];
      const c = p[2];
      const m = attrs.momentum;
      if (!(m >= 0 && m <= 1)) throw new Error(`@fad/tfjs-native ${FUSED_BATCH_NORM}: momentum must be in [0, 1], got ${m}`);
      const backend = args.backend as MathBackendCPU;
      const rm = values(backend, runningMean, `${FUSED_BATCH_NORM} runningMean`, c);
      const rv = values(backend, runningVar, `${FUSED_BATCH_NORM} runningVar`, c);
      const [y, mean, rstd] = normalize(args, FUSED_BATCH_NORM, x, gamma, beta, p, attrs.epsilon, attrs.relu ? 2 : 0);
      // Running averages (C values: plain JS). var = 1/rstd^2 - eps recovers the biased batch
      // variance the kernel normalised with; n / (n - 1) makes it unbiased, as PyTorch does.
      const rm2 = new Float32Array(c);
      const rv2 = new Float32Array(c);
      const unbias = rows / (rows - 1);
      for (let i = 0; i < c; i++) {
        const variance = 1 / (rstd[i] * rstd[i]) - attrs.epsilon;
        rm2[i] = (1 - m) * rm[i] + m * mean[i];
        rv2[i] = (1 - m) * rv[i] + m * variance * unbias;
      }
      return [y, ...[mean, rstd, rm2, rv2].map((v) => statsInfo(args, [c], v))];
    },

    [FUSED_BATCH_NORM_GRAD]: (args) => {
      const attrs = args.attrs as unknown as FusedBatchNormAttrs;
      return normalizeGrad(args, FUSED_BATCH_NORM_GRAD, batchNormParams((args.inputs as Record<string, TensorInfo>).x, FUSED_BATCH_NORM_GRAD), attrs.relu ? 2 : 0);
    },

    [FUSED_SILU]: (args) => {
      const backend = args.backend as MathBackendCPU;
      const { x } = args.inputs as Record<string, TensorInfo>;
      const xv = values(backend, x, FUSED_SILU);
      const y = allocOutput(xv.length);
      if (xv.length > 0) addon.silu(xv, y);
      return backend.makeTensorInfo(x.shape, 'float32', y);
    },

    [FUSED_ADAM]: (args) => {
      const backend = args.backend as MathBackendCPU;
      const { x, g, m, v } = args.inputs as Record<string, TensorInfo>;
      const a = args.attrs as unknown as FusedAdamAttrs;
      const xv = values(backend, x, `${FUSED_ADAM} x`);
      const n = xv.length;
      const gv = values(backend, g, `${FUSED_ADAM} g`, n);
      const mv = values(backend, m, `${FUSED_ADAM} m`, n);
      const vv = values(backend, v, `${FUSED_ADAM} v`, n);
      const xo = allocOutput(n);
      const mo = allocOutput(n);
      const vo = allocOutput(n);
      if (n > 0) addon.adam(xv, gv, mv, vv, xo, mo, vo, a.beta1, a.beta2, a.stepSize, a.epsHat, a.decay);
      return [
        backend.makeTensorInfo(x.shape, 'float32', xo),
        backend.makeTensorInfo(x.shape, 'float32', mo),
        backend.makeTensorInfo(x.shape, 'float32', vo),
      ];
    },

    [FUSED_ATTENTION]: (args) => {
      const backend = args.backend as MathBackendCPU;
      const { q, k, v } = args.inputs as Record<string, TensorInfo>;
      const { heads, scale } = args.attrs as unknown as FusedAttentionAttrs;
      const p = attentionParams(q, k, v, heads);
      const [b, l, s, , h] = p;
      const out = allocOutput(util.sizeFromShape(q.shape));
      const probs = allocOutput(b * h * l * s);
      addon.attention(values(backend, q, `${FUSED_ATTENTION} q`), values(backend, k, `${FUSED_ATTENTION} k`), values(backend, v, `${FUSED_ATTENTION} v`), out, probs, p, scale);
      return [backend.makeTensorInfo(q.shape, 'float32', out), backend.makeTensorInfo([b, h, l, s], 'float32', probs)];
    },

    [FUSED_ATTENTION_GRAD]: (args) => {
      const backend = args.backend as MathBackendCPU;
      const { dy, q, k, v, probs } = args.inputs as Record<string, TensorInfo>;
      const { heads, scale } = args.attrs as unknown as FusedAttentionAttrs;
      const p = attentionParams(q, k, v, heads);
      const [b, l, s, , h] = p;
      const dq = allocOutput(util.sizeFromShape(q.shape));
      const dk = allocOutput(util.sizeFromShape(k.shape));
      const dv = allocOutput(util.sizeFromShape(v.shape));
      addon.attentionGrad(
        values(backend, dy, `${FUSED_ATTENTION_GRAD} dy`, util.sizeFromShape(q.shape)),
        values(backend, q, `${FUSED_ATTENTION_GRAD} q`),
        values(backend, k, `${FUSED_ATTENTION_GRAD} k`),
        values(backend, v, `${FUSED_ATTENTION_GRAD} v`),
        values(backend, probs, `${FUSED_ATTENTION_GRAD} probs`, b * h * l * s),
        dq, dk, dv, p, scale,
      );
      return [
        backend.makeTensorInfo(q.shape, 'float32', dq),
        backend.makeTensorInfo(k.shape, 'float32', dk),
        backend.makeTensorInfo(v.shape, 'float32', dv),
      ];
    },

    [FUSED_SILU_GRAD]: (args) => {
      const backend = args.backend as MathBackendCPU;
      const { x, dy } = args.inputs as Record<string, TensorInfo>;
      const xv = values(backend, x, FUSED_SILU_GRAD);
      const dyv = values(backend, dy, `${FUSED_SILU_GRAD} dy`, xv.length);
      const dx = allocOutput(xv.length);
      if (xv.length > 0) addon.siluGrad(xv, dyv, dx);
      return backend.makeTensorInfo(x.shape, 'float32', dx);
    },
  };
}

const GRADIENTS: GradConfig[] = [
  {
    kernelName: FUSED_GROUP_NORM,
    inputsToSave: ['x', 'gamma', 'beta'],
    outputsToSave: [false, true, true],
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
      const [x, gamma, beta, mean, rstd] = saved;
      const dyY = Array.isArray(dy) ? dy[0] : dy;
      const [dx, dgamma, dbeta] = engine().runKernel(
        FUSED_GROUP_NORM_GRAD,
        { dy: dyY, x, gamma, beta, mean, rstd },
        attrs,
      ) as Tensor[];
      return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
    },
  },
  {
    kernelName: FUSED_BATCH_NORM,
    inputsToSave: ['x', 'gamma', 'beta'],
    outputsToSave: [false, true, true, false, false],
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
      const [x, gamma, beta, mean, rstd] = saved;
      const dyY = Array.isArray(dy) ? dy[0] : dy;
      const [dx, dgamma, dbeta] = engine().runKernel(FUSED_BATCH_NORM_GRAD, { dy: dyY, x, gamma, beta, mean, rstd }, attrs) as Tensor[];
      // The running statistics are state, not a function of the inputs' values.
      return { x: () => dx, gamma: () => dgamma, beta: () => dbeta, runningMean: () => zerosLike(mean), runningVar: () => zerosLike(rstd) };
    },
  },
  {
    kernelName: FUSED_ATTENTION,
    inputsToSave: ['q', 'k', 'v'],
    outputsToSave: [false, true],
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
      const [q, k, v, probs] = saved;
      const dyOut = Array.isArray(dy) ? dy[0] : dy;
      const [dq, dk, dv] = engine().runKernel(FUSED_ATTENTION_GRAD, { dy: dyOut, q, k, v, probs }, attrs) as Tensor[];
      return { q: () => dq, k: () => dk, v: () => dv };
    },
  },
  {
    kernelName: FUSED_SILU,
    inputsToSave: ['x'],
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
      const [x] = saved;
      return { x: () => engine().runKernel(FUSED_SILU_GRAD, { x, dy: dy as Tensor }) as Tensor };
    },
  },
];

/** Registers the gradients of the fused ops (once per process; tfjs's registry is global). */
export function registerFusedGradients(): void {
  for (const g of GRADIENTS) {
    if (!getGradient(g.kernelName)) registerGradient(g);
  }
}
