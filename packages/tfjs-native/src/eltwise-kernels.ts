// Multi-threaded C++ replacements for the cpu backend's elementwise, reduction, softmax
// and data-movement kernels (float32 only). Measured on a diffusion U-Net train step with
// the convolutions already native, these pure-JS kernels took ~95% of the time: the cpu
// backend runs a broadcasting Sub/Mul at ~6-20 M elements/s, transposes axes before every
// reduction over non-trailing axes, and slices non-contiguous boxes element by element.
//
// Every kernel handles float32 tensors of rank <= 8 natively and calls the cpu kernel it
// replaces for anything else (int32/bool/complex dtypes, empty tensors), so results and
// error messages never get worse than the cpu backend's.
import {
  AddN,
  Abs,
  Add,
  backend_util,
  Concat,
  Exp,
  FusedBatchNorm,
  Log,
  Max,
  Maximum,
  MaxPool,
  MaxPoolGrad,
  Mean,
  Min,
  Minimum,
  Multiply,
  Neg,
  OnesLike,
  Pow,
  RealDiv,
  Reciprocal,
  Relu,
  Relu6,
  Rsqrt,
  Sigmoid,
  Slice,
  slice_util,
  Softmax,
  SplitV,
  Sqrt,
  Square,
  SquaredDifference,
  Step,
  Sub,
  Sum,
  Tanh,
  Tile,
  Transpose,
  util,
  ZerosLike,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

import type { NativeAddon } from './addon';
import { allocOutput, f32Values } from './kernel-utils';

/** Binary op codes of the addon (native/eltwise.cc BinOp). */
export const BINARY_OPS = {
  [Add]: 0,
  [Sub]: 1,
  [Multiply]: 2,
  [RealDiv]: 3,
  [SquaredDifference]: 4,
  [Maximum]: 5,
  [Minimum]: 6,
  [Pow]: 7,
} as const;

/** Unary op codes of the addon (native/eltwise.cc UnOp). */
export const UNARY_OPS = {
  [Sigmoid]: 0,
  [Exp]: 1,
  [Log]: 2,
  [Sqrt]: 3,
  [Rsqrt]: 4,
  [Square]: 5,
  [Neg]: 6,
  [Relu]: 7,
  [Abs]: 8,
  [Tanh]: 9,
  [Reciprocal]: 10,
  [Step]: 11,
  [Relu6]: 12,
} as const;

/** Reduction op codes (native/eltwise.cc RedOp). */
const REDUCE_OPS = { [Sum]: 0, [Mean]: 1, [Max]: 2, [Min]: 3 } as const;

/** Names of the elementwise / reduction / data-movement kernels the addon implements. */
export const ELTWISE_KERNEL_NAMES: readonly string[] = [
  ...Object.keys(BINARY_OPS),
  ...Object.keys(UNARY_OPS),
  ...Object.keys(REDUCE_OPS),
  Softmax,
  Transpose,
  Slice,
  SplitV,
  Concat,
  Tile,
  AddN,
  FusedBatchNorm,
  MaxPool,
  MaxPoolGrad,
  ZerosLike,
  OnesLike,
];

const MAX_RANK = 8;

type Args = Parameters<KernelFunc>[0];

function shapeOk(shape: readonly number[]): boolean {
  return shape.length <= MAX_RANK && util.sizeFromShape(shape as number[]) > 0;
}

const i32 = (xs: readonly number[]) => Int32Array.from(xs);

/** Builds the kernels, each falling back to the given cpu kernel. */
export function makeEltwiseKernels(addon: NativeAddon, cpu: (name: string) => KernelFunc): Record<string, KernelFunc> {
  const kernels: Record<string, KernelFunc> = {};

  for (const [name, op] of Object.entries(BINARY_OPS)) {
    const fallback = cpu(name);
    kernels[name] = (args) => {
      const backend = args.backend as MathBackendCPU;
      const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
      const av = f32Values(backend, a);
      const bv = f32Values(backend, b);
      if (!av || !bv) return fallback(args);
      let outShape: number[];
      try {
        outShape = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
      } catch {
        return fallback(args);
      }
      if (!shapeOk(outShape) || !shapeOk(a.shape) || !shapeOk(b.shape)) return fallback(args);
      const out = allocOutput(util.sizeFromShape(outShape));
      addon.binary(op, av, i32(a.shape), bv, i32(b.shape), out, i32(outShape));
      return backend.makeTensorInfo(outShape, 'float32', out);
    };
  }

  for (const [name, op] of Object.entries(UNARY_OPS)) {
    const fallback = cpu(name);
    kernels[name] = (args) => {
      const backend = args.backend as MathBackendCPU;
      const { x } = args.inputs as { x: TensorInfo };
      const xv = f32Values(backend, x);
      if (!xv || xv.length === 0) return fallback(args);
      const alpha = name === Step ? Number((args.attrs as { alpha?: number }).alpha ?? 0) : 0;
      const out = allocOutput(xv.length);
      addon.unary(op, xv, out, alpha);
      return backend.makeTensorInfo(x.shape, 'float32', out);
    };
  }

  for (const [name, op] of Object.entries(REDUCE_OPS)) {
    const fallback = cpu(name);
    kernels[name] = (args) => {
      const backend = args.backend as MathBackendCPU;
      const { x } = args.inputs as { x: TensorInfo };
      const attrs = args.attrs as { axis?: number | number[]; reductionIndices?: number | number[]; keepDims?: boolean };
      const xv = f32Values(backend, x);
      if (!xv || !shapeOk(x.shape)) return fallback(args);
      const axisAttr = name === Max ? attrs.reductionIndices : attrs.axis;
      let axes: number[];
      try {
        axes = util.parseAxisParam(axisAttr as number | number[], x.shape);
      } catch {
        return fallback(args);
      }
      const mask = x.shape.map((_, i) => (axes.includes(i) ? 1 : 0));
      const reduced = x.shape.filter((_, i) => !axes.includes(i));
      const outShape = attrs.keepDims ? backend_util.expandShapeToKeepDim(reduced, axes) : reduced;
      const out = allocOutput(util.sizeFromShape(reduced));
      addon.reduce(op, xv, i32(x.shape), Int32Array.from(mask), out);
      return backend.makeTensorInfo(outShape, 'float32', out);
    };
  }

  {
    const fallback = cpu(Softmax);
    kernels[Softmax] = (args) => {
      const backend = args.backend as MathBackendCPU;
      const { logits } = args.inputs as { logits: TensorInfo };
      const { dim } = args.attrs as { dim: number };
      const rank = logits.shape.length;
      const xv = f32Values(backend, logits);
      if (!xv || rank < 1 || !shapeOk(logits.shape) || (dim !== -1 && dim !== rank - 1)) return fallback(args);
      const cols = logits.shape[rank - 1];
      const out = allocOutput(xv.length);
      addon.softmax(xv, xv.length / cols, cols, out);
      return backend.makeTensorInfo(logits.shape, 'float32', out);
    };
  }

  {
    const fallback = cpu(Transpose);
    kernels[Transpose] = (args) => {
      const backend = args.backend as MathBackendCPU;
      const { x } = args.inputs as { x: TensorInfo };
      const { perm } = args.attrs as { perm: number[] };
      const xv = f32Values(backend, x);
      if (!xv || !shapeOk(x.shape) || perm.length !== x.shape.length) return fallback(args);
      const outShape = perm.map((p) => x.shape[p]);
      const out = allocOutput(xv.length);
      addon.transpose(xv, i32(x.shape), i32(perm), out);
      return backend.makeTensorInfo(outShape, 'float32', out);
    };
  }

  const cpuSlice = cpu(Slice);
  /** A slice: the cpu kernel's zero-copy view when contiguous, else a native strided copy. */
  function sliceOf(args: Args, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    const backend = args.backend as MathBackendCPU;
    const xv = f32Values(backend, x);
    if (!xv || !shapeOk(x.shape) || util.sizeFromShape(size) === 0 || slice_util.isSliceContinous(x.shape, begin, size)) {
      return cpuSlice({ inputs: { x }, backend, attrs: { begin, size } }) as TensorInfo;
    }
    const out = allocOutput(util.sizeFromShape(size));
    addon.slice(xv, i32(x.shape), i32(begin), i32(size), out);
    return backend.makeTensorInfo(size, 'float32', out);
  }

  kernels[Slice] = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { begin, size } = args.attrs as { begin: number | number[]; size?: number | number[] };
    if (x.dtype !== 'float32') return cpuSlice(args);
    const [b, s] = slice_util.parseSliceParams(x, begin, size);
    slice_util.assertParamsValid(x, b, s);
    return sliceOf(args, x, b, s);
  };

  {
    const fallback = cpu(SplitV);
    kernels[SplitV] = (args) => {
      const { x } = args.inputs as { x: TensorInfo };
      const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
      if (x.dtype !== 'float32') return fallback(args);
      const ax = util.parseAxisParam(axis, x.shape)[0];
      const sizes = backend_util.prepareSplitSize(x, numOrSizeSplits, ax);
      const begin = new Array<number>(x.shape.length).fill(0);
      return sizes.map((s) => {
        const size = x.shape.slice();
        size[ax] = s;
        const t = sliceOf(args, x, begin.slice(), size);
        begin[ax] += s;
        return t;
      });
    };
  }

  {
    const fallback = cpu(Concat);
    kernels[Concat] = (args) => {
      const backend = args.backend as MathBackendCPU;
      const inputs = args.inputs as unknown as TensorInfo[];
      const { axis } = args.attrs as { axis: number | number[] };
      if (inputs.length < 2) return fallback(args);
      const vals = inputs.map((t) => f32Values(backend, t));
      if (vals.some((v) => !v) || !inputs.every((t) => shapeOk(t.shape))) return fallback(args);
      const ax = util.parseAxisParam(axis, inputs[0].shape)[0];
      const shapes = inputs.map((t) => t.shape);
      backend_util.assertParamsConsistent(shapes, ax);
      const outShape = backend_util.computeOutShape(shapes, ax);
      const outer = util.sizeFromShape(outShape.slice(0, ax));
      const inner = Int32Array.from(shapes.map((s) => util.sizeFromShape(s.slice(ax))));
      const out = allocOutput(util.sizeFromShape(outShape));
      addon.concat(vals as Float32Array[], outer, inner, out);
      return backend.makeTensorInfo(outShape, 'float32', out);
    };
  }

  {
    const fallback = cpu(Tile);
    kernels[Tile] = (args) => {
      const backend = args.backend as MathBackendCPU;
      const { x } = args.inputs as { x: TensorInfo };
      const { reps } = args.attrs as { reps: number[] };
      const xv = f32Values(backend, x);
      if (!xv || !shapeOk(x.shape) || reps.length !== x.shape.length || reps.some((r) => !(r >= 1))) return fallback(args);
      const outShape = x.shape.map((d, i) => d * reps[i]);
      const out = allocOutput(util.sizeFromShape(outShape));
      addon.tile(xv, i32(x.shape), i32(reps), out);
      return backend.makeTensorInfo(outShape, 'float32', out);
    };
  }

  {
    const fallback = cpu(AddN);
    kernels[AddN] = (args) => {
      const backend = args.backend as MathBackendCPU;
      const inputs = args.inputs as unknown as TensorInfo[];
      const vals = inputs.map((t) => f32Values(backend, t));
      if (inputs.length === 0 || vals.some((v) => !v || v.length === 0)) return fallback(args);
      if (!inputs.every((t) => util.arraysEqual(t.shape, inputs[0].shape))) return fallback(args);
      const out = allocOutput((vals[0] as Float32Array).length);
      addon.addN(vals as Float32Array[], out);
      return backend.makeTensorInfo(inputs[0].shape, 'float32', out);
    };
  }

  {
    const fallback = cpu(FusedBatchNorm);
    kernels[FusedBatchNorm] = (args) => {
      const backend = args.backend as MathBackendCPU;
      const { x, mean, variance, offset, scale } = args.inputs as Record<string, TensorInfo | undefined>;
      const { varianceEpsilon } = args.attrs as { varianceEpsilon?: number };
      if (!x || !mean || !variance || x.shape.length < 1) return fallback(args);
      const xv = f32Values(backend, x);
      const c = x.shape[x.shape.length - 1];
      const param = (t: TensorInfo | undefined): Float32Array | null | false => {
        if (!t) return null;
        const v = f32Values(backend, t);
        return v && (v.length === c || v.length === 1) ? v : false;
      };
      const mv = param(mean);
      const vv = param(variance);
      const ov = param(offset);
      const sv = param(scale);
      if (!xv || xv.length === 0 || !mv || !vv || ov === false || sv === false) return fallback(args);
      const out = allocOutput(xv.length);
      addon.batchNorm(xv, c, mv, vv, ov, sv, varianceEpsilon ?? 0.001, out);
      return backend.makeTensorInfo(x.shape, 'float32', out);
    };
  }

  for (const [name, value] of [[ZerosLike, 0], [OnesLike, 1]] as const) {
    const fallback = cpu(name);
    kernels[name] = (args) => {
      const backend = args.backend as MathBackendCPU;
      const { x } = args.inputs as { x: TensorInfo };
      const n = util.sizeFromShape(x.shape);
      if (x.dtype !== 'float32' || n === 0) return fallback(args);
      const out = allocOutput(n);
      addon.fill(out, value);
      return backend.makeTensorInfo(x.shape, 'float32', out);
    };
  }

  /** The addon's pooling parameter block, or null when the cpu kernel must run. */
  function poolParams(x: TensorInfo, attrs: { filterSize: number | [number, number]; strides: number | [number, number]; pad: unknown; dimRoundingMode?: 'floor' | 'round' | 'ceil' }): Int32Array | null {
    if (x.shape.length !== 4) return null;
    let info: backend_util.Conv2DInfo;
    try {
      info = backend_util.computePool2DInfo(x.shape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad as 'valid', attrs.dimRoundingMode);
    } catch {
      return null;
    }
    if (info.dilationHeight !== 1 || info.dilationWidth !== 1 || info.outHeight < 1 || info.outWidth < 1) return null;
    if (info.padInfo.top < 0 || info.padInfo.left < 0) return null;
    return Int32Array.of(info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth,
      info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left);
  }

  {
    const fallback = cpu(MaxPool);
    kernels[MaxPool] = (args) => {
      const backend = args.backend as MathBackendCPU;
      const { x } = args.inputs as { x: TensorInfo };
      const xv = f32Values(backend, x);
      const p = xv && xv.length > 0 ? poolParams(x, args.attrs as never) : null;
      if (!xv || !p) return fallback(args);
      const outShape = [p[0], p[4], p[5], p[3]];
      const out = allocOutput(util.sizeFromShape(outShape));
      addon.maxPool(xv, p, out);
      return backend.makeTensorInfo(outShape, 'float32', out);
    };
  }

  {
    const fallback = cpu(MaxPoolGrad);
    kernels[MaxPoolGrad] = (args) => {
      const backend = args.backend as MathBackendCPU;
      const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
      const xv = f32Values(backend, input);
      const dyv = f32Values(backend, dy);
      const p = xv && dyv && xv.length > 0 ? poolParams(input, args.attrs as never) : null;
      if (!xv || !dyv || !p || dyv.length !== p[0] * p[4] * p[5] * p[3]) return fallback(args);
      const dx = allocOutput(xv.length);
      addon.maxPoolGrad(dyv, xv, p, dx);
      return backend.makeTensorInfo(input.shape, 'float32', dx);
    };
  }

  return kernels;
}
