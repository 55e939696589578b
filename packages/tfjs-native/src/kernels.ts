// tfjs kernel functions backed by the oneDNN addon. Each one handles the common case
// (float32, NHWC, supported bias/activation/broadcast) natively and otherwise calls the
// reference cpu kernel it replaces, so behaviour (including error messages) never gets
// worse than the cpu backend's. Input maps are typed locally because tfjs's *Inputs types
// mark every input optional.
import {
  backend_util,
  BatchMatMul,
  broadcast_util,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  FusedConv2D,
  _FusedMatMul,
  util,
  type BatchMatMulAttrs,
  type Conv2DAttrs,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropInputAttrs,
  type FusedConv2DAttrs,
  type FusedConv2DInputs,
  type KernelFunc,
  type TensorInfo,
  type _FusedMatMulAttrs,
  type _FusedMatMulInputs,
} from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

import { ACTIVATION_CODES, type NativeAddon } from './addon';
import { ELTWISE_KERNEL_NAMES } from './eltwise-kernels';
import { FUSED_KERNEL_NAMES } from './fused-ops';
import { allocOutput, f32Values } from './kernel-utils';

/** Names of the kernels the `native` backend implements with oneDNN. */
export const ONEDNN_KERNEL_NAMES: readonly string[] = [
  Conv2D,
  Conv2DBackpropInput,
  Conv2DBackpropFilter,
  FusedConv2D,
  BatchMatMul,
  _FusedMatMul,
];

/** Every kernel the `native` backend implements natively (the rest are the cpu backend's). */
export const NATIVE_KERNEL_NAMES: readonly string[] = [...ONEDNN_KERNEL_NAMES, ...ELTWISE_KERNEL_NAMES, ...FUSED_KERNEL_NAMES];

type KernelArgs = Parameters<KernelFunc>[0];

/** Activation code and alpha for the addon, or null for activations it does not fuse. */
function activationOf(activation: string | undefined, leakyreluAlpha: number | undefined): [number, number] | null {
  const name = activation ?? 'linear';
  if (!Object.prototype.hasOwnProperty.call(ACTIVATION_CODES, name)) return null; // prelu and unknowns
  return [ACTIVATION_CODES[name as keyof typeof ACTIVATION_CODES], name === 'leakyrelu' ? (leakyreluAlpha ?? 0.2) : 0];
}

/**
 * A bias that broadcasts along the last axis of an output of rank `outRank` with `channels`
 * channels: shape [C], [1, ..., 1, C] or a scalar. Returns it as `channels` floats, or null
 * when it broadcasts differently (then the cpu kernel handles it).
 */
function channelBias(backend: MathBackendCPU, bias: TensorInfo, channels: number, outRank: number): Float32Array | null {
  const v = f32Values(backend, bias);
  if (!v || bias.shape.length > outRank) return null;
  const size = util.sizeFromShape(bias.shape);
  if (size === 1) return new Float32Array(channels).fill(v[0]);
  const last = bias.shape[bias.shape.length - 1];
  if (last !== channels || size !== channels) return null;
  return v;
}

const reportedFailures = new Set<string>();

/**
 * Runs one addon call. If oneDNN rejects it (e.g. no implementation for an unusual
 * geometry) the error is reported once per kernel and the caller falls back to the cpu
 * kernel, so an exotic shape costs speed, never correctness.
 */
function callAddon(kernel: string, call: () => void): boolean {
  try {
    call();
    return true;
  } catch (err) {
    if (!reportedFailures.has(kernel)) {
      reportedFailures.add(kernel);
      const msg = String((err as Error)?.message ?? err).split('\n')[0];
      console.warn(`[@fad/tfjs-native] ${kernel}: native kernel failed (${msg}); using the cpu kernel for such calls`);
    }
    return false;
  }
}

/** The addon's conv parameter block, or null if some size is 0 (left to the cpu kernel). */
function convParams(c: backend_util.Conv2DInfo): Int32Array | null {
  const p = Int32Array.of(
    c.batchSize,
    c.inHeight,
    c.inWidth,
    c.inChannels,
    c.filterHeight,
    c.filterWidth,
    c.outChannels,
    c.outHeight,
    c.outWidth,
    c.strideHeight,
    c.strideWidth,
    c.dilationHeight,
    c.dilationWidth,
    c.padInfo.top,
    c.padInfo.left,
  );
  for (let i = 0; i < 13; i++) if (!(p[i] >= 1)) return null;
  if (p[13] < 0 || p[14] < 0) return null;
  // The addon derives bottom/right padding from the output size; oneDNN accepts it only if
  // it is > -stride, which holds for every tfjs padding mode.
  const padBottom = (c.outHeight - 1) * c.strideHeight + (c.filterHeight - 1) * c.dilationHeight + 1 - c.inHeight - c.padInfo.top;
  const padRight = (c.outWidth - 1) * c.strideWidth + (c.filterWidth - 1) * c.dilationWidth + 1 - c.inWidth - c.padInfo.left;
  if (padBottom <= -c.strideHeight || padRight <= -c.strideWidth) return null;
  return p;
}

/** tfjs's NHWC conv geometry and the addon's parameter block for it, or null (cpu kernel). */
function nhwcGeometry(
  inShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  dilations: number | [number, number],
  pad: Conv2DAttrs['pad'],
  rounding: Conv2DAttrs['dimRoundingMode'],
): { info: backend_util.Conv2DInfo; params: Int32Array } | null {
  const info = backend_util.computeConv2DInfo(inShape, filterShape, strides, dilations, pad, rounding, false, 'channelsLast');
  const params = convParams(info);
  return params ? { info, params } : null;
}

/**
 * [M = N*H*W, IC, OC] when the conv parameter block is a pointwise (1x1, stride 1, undilated,
 * unpadded) convolution over NHWC, which is exactly the matrix product [M, IC] x [IC, OC] with
 * the HWIO filter read as [IC, OC]; null otherwise. Such convolutions (half of a ResNet50's
 * weights) run as oneDNN matmuls on the plain filter: the conv primitives want the filter
 * reordered into a blocked layout on every call (fwd, bwd-data, and back from bwd-weights),
 * three extra passes over weights that are mostly not in cache. (makeNativeKernels turns this
 * off when FAD_TFJS_NATIVE_POINTWISE=0.)
 */
function pointwise(p: Int32Array): [number, number, number] | null {
  const [n, ih, iw, ic, kh, kw, oc, oh, ow, sh, sw, dh, dw, pt, pl] = p;
  if (kh !== 1 || kw !== 1 || sh !== 1 || sw !== 1 || dh !== 1 || dw !== 1 || pt !== 0 || pl !== 0) return null;
  if (oh !== ih || ow !== iw) return null;
  return [n * ih * iw, ic, oc];
}

/** Builds the `native` kernels, each falling back to the given cpu kernel. */
export function makeNativeKernels(addon: NativeAddon, cpu: (name: string) => KernelFunc): Record<string, KernelFunc> {
  // Read once, like the addon's FAD_TFJS_NATIVE_IM2COL, rather than on every convolution.
  const asMatmul = process.env.FAD_TFJS_NATIVE_POINTWISE === '0' ? () => null : pointwise;
  const conv2d = cpu(Conv2D);
  const fusedConv2d = cpu(FusedConv2D);
  const conv2dBackpropInput = cpu(Conv2DBackpropInput);
  const conv2dBackpropFilter = cpu(Conv2DBackpropFilter);
  const batchMatMul = cpu(BatchMatMul);
  const fusedMatMul = cpu(_FusedMatMul);

  /**
   * An output of `shape` filled by one addon call (`run` gets the output array), as a tensor of
   * `backend`; null when the addon rejected the call (the caller then runs the cpu kernel).
   */
  function nativeOutput(backend: MathBackendCPU, kernel: string, shape: number[], run: (out: Float32Array) => void): TensorInfo | null {
    const out = allocOutput(util.sizeFromShape(shape));
    if (!callAddon(kernel, () => run(out))) return null;
    return backend.makeTensorInfo(shape, 'float32', out);
  }

  /** Shared by Conv2D and FusedConv2D. Returns null when the cpu kernel must run. */
  function convForward(
    args: KernelArgs,
    x: TensorInfo,
    filter: TensorInfo,
    attrs: Conv2DAttrs,
    bias: TensorInfo | undefined,
    act: [number, number],
  ): TensorInfo | null {
    const backend = args.backend as MathBackendCPU;
    if (attrs.dataFormat === 'NCHW') return null;
    const xv = f32Values(backend, x);
    const wv = f32Values(backend, filter);
    if (!xv || !wv || x.shape.length !== 4 || filter.shape.length !== 4) return null;
    const geometry = nhwcGeometry(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      attrs.strides,
      attrs.dilations,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    if (!geometry) return null;
    const { info, params } = geometry;
    let bv: Float32Array | null = null;
    if (bias) {
      bv = channelBias(backend, bias, info.outChannels, 4);
      if (!bv) return null;
    }
    const pw = asMatmul(params);
    return nativeOutput(backend, Conv2D, info.outShape, (out) =>
      pw
        ? addon.matmul(xv, wv, bv, out, Int32Array.of(1, 1, pw[0], pw[2], pw[1], 0, 0), act[0], act[1])
        : addon.conv2d(xv, wv, bv, out, params, act[0], act[1]),
    );
  }

  return {
    [Conv2D]: (args) => {
      const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
      return convForward(args, x, filter, args.attrs as unknown as Conv2DAttrs, undefined, [0, 0]) ?? conv2d(args);
    },

    [FusedConv2D]: (args) => {
      const { x, filter, bias } = args.inputs as FusedConv2DInputs;
      const attrs = args.attrs as unknown as FusedConv2DAttrs;
      const act = activationOf(attrs.activation, attrs.leakyreluAlpha);
      return (act && convForward(args, x, filter, attrs, bias, act)) ?? fusedConv2d(args);
    },

    [Conv2DBackpropInput]: (args) => {
      const backend = args.backend as MathBackendCPU;
      const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
      const attrs = args.attrs as unknown as Conv2DBackpropInputAttrs;
      const dyv = f32Values(backend, dy);
      const wv = f32Values(backend, filter);
      if (attrs.dataFormat === 'NCHW' || !dyv || !wv || filter.shape.length !== 4) return conv2dBackpropInput(args);
      const g = nhwcGeometry(attrs.inputShape, filter.shape as [number, number, number, number], attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
      if (!g || !util.arraysEqual(dy.shape, g.info.outShape)) return conv2dBackpropInput(args);
      const pw = asMatmul(g.params);
      // Pointwise: dx [M, IC] = dy [M, OC] x filter^T (the filter is [IC, OC]: matmul's transposed B).
      const dx = nativeOutput(backend, Conv2DBackpropInput, g.info.inShape, (out) =>
        pw
          ? addon.matmul(dyv, wv, null, out, Int32Array.of(1, 1, pw[0], pw[1], pw[2], 0, 1), 0, 0)
          : addon.conv2dBackpropInput(dyv, wv, out, g.params),
      );
      return dx ?? conv2dBackpropInput(args);
    },

    [Conv2DBackpropFilter]: (args) => {
      const backend = args.backend as MathBackendCPU;
      const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
      const attrs = args.attrs as unknown as Conv2DBackpropFilterAttrs;
      const xv = f32Values(backend, x);
      const dyv = f32Values(backend, dy);
      if (attrs.dataFormat === 'NCHW' || !xv || !dyv || x.shape.length !== 4) return conv2dBackpropFilter(args);
      const g = nhwcGeometry(x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
      if (!g || !util.arraysEqual(dy.shape, g.info.outShape)) return conv2dBackpropFilter(args);
      const pw = asMatmul(g.params);
      // Pointwise: dw [IC, OC] = x^T [IC, M] x dy [M, OC] (x is [M, IC]: matmul's transposed A).
      const dw = nativeOutput(backend, Conv2DBackpropFilter, g.info.filterShape, (out) =>
        pw
          ? addon.matmul(xv, dyv, null, out, Int32Array.of(1, 1, pw[1], pw[2], pw[0], 1, 0), 0, 0)
          : addon.conv2dBackpropFilter(xv, dyv, out, g.params),
      );
      return dw ?? conv2dBackpropFilter(args);
    },

    [BatchMatMul]: (args) => {
      const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
      const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
      return matmul(args, a, b, transposeA, transposeB, undefined, [0, 0]) ?? batchMatMul(args);
    },

    [_FusedMatMul]: (args) => {
      const { a, b, bias } = args.inputs as _FusedMatMulInputs;
      const attrs = args.attrs as unknown as _FusedMatMulAttrs;
      const act = activationOf(attrs.activation, attrs.leakyreluAlpha);
      return (act && matmul(args, a, b, attrs.transposeA, attrs.transposeB, bias, act)) ?? fusedMatMul(args);
    },
  };

  /**
   * Batched matmul as tfjs's cpu kernel defines it (batch dims broadcast; flattened batch
   * index bi reads a[bi % batchA], b[bi % batchB]). Handled natively when the batches are
   * equal or one is 1; returns null otherwise (and on errors, so the cpu kernel reports them).
   */
  function matmul(
    args: KernelArgs,
    a: TensorInfo,
    b: TensorInfo,
    transposeA: boolean,
    transposeB: boolean,
    bias: TensorInfo | undefined,
    act: [number, number],
  ): TensorInfo | null {
    const backend = args.backend as MathBackendCPU;
    const av = f32Values(backend, a);
    const bv = f32Values(backend, b);
    const ra = a.shape.length;
    const rb = b.shape.length;
    if (!av || !bv || ra < 2 || rb < 2) return null;
    const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const Kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if (K !== Kb || M < 1 || N < 1 || K < 1) return null;
    const batchA = util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = util.sizeFromShape(b.shape.slice(0, -2));
    let outer: number[];
    try {
      outer = broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    } catch {
      return null;
    }
    const batch = Math.max(batchA, batchB);
    if (batchA < 1 || batchB < 1 || util.sizeFromShape(outer) !== batch) return null;
    if (batchA !== batchB && batchA !== 1 && batchB !== 1) return null;
    const outShape = [...outer, M, N];
    let bias32: Float32Array | null = null;
    if (bias) {
      bias32 = channelBias(backend, bias, N, outShape.length);
      if (!bias32) return null;
    }
    // A batch of A rows against one B is a single taller GEMM: [batchA * M, K] x [K, N].
    const params =
      batchB === 1 && batchA > 1 && !transposeA
        ? Int32Array.of(1, 1, batchA * M, N, K, 0, transposeB ? 1 : 0)
        : Int32Array.of(batchA, batchB, M, N, K, transposeA ? 1 : 0, transposeB ? 1 : 0);
    return nativeOutput(backend, BatchMatMul, outShape, (out) => addon.matmul(av, bv, bias32, out, params, act[0], act[1]));
  }
}
