/**
 * Basic layers (NHWC). Weight layouts are TensorFlow's: Linear [in, out], Conv2d [kh, kw, in, out].
 * (PyTorch stores Linear as [out, in] and Conv2d as [out, in, kh, kw]; convert by transposing.)
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Generator } from '../random';
import { conv2dSymmetric, conv2dSymmetricBias, useBackendFilterGrad } from './conv2d-op';
import { FUSED_GROUP_NORM_KERNEL, FUSED_SILU_KERNEL, fusedGroupNorm, fusedSilu, hasFusedKernel } from './fused';
import { fanInUniform } from './init';
import { Module } from './module';

function assertPositiveInt(owner: string, field: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) {
    throw new RangeError(`${owner}: ${field} must be a positive integer, got ${v}`);
  }
}

export interface LinearParams {
  inFeatures: number;
  outFeatures: number;
  bias?: boolean;
  generator: Generator;
}

/** y = x W + b over the last axis; any leading shape. */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;

  constructor({ inFeatures, outFeatures, bias = true, generator }: LinearParams) {
    super();
    assertPositiveInt('Linear', 'inFeatures', inFeatures);
    assertPositiveInt('Linear', 'outFeatures', outFeatures);
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.weight = this.addParameter('weight', fanInUniform(generator, [inFeatures, outFeatures], inFeatures));
    this.bias = bias ? this.addParameter('bias', fanInUniform(generator, [outFeatures], inFeatures)) : null;
  }

  forward(x: tf.Tensor): tf.Tensor {
    const shape = x.shape;
    if (shape[shape.length - 1] !== this.inFeatures) {
      throw new Error(`Linear: expected last dimension ${this.inFeatures}, got input shape [${shape}]`);
    }
    return tf.tidy(() => {
      const x2 = shape.length === 2 ? x : tf.reshape(x, [-1, this.inFeatures]);
      let y: tf.Tensor;
      if (this.bias && useBackendFilterGrad()) {
        y = linearWithBias(x2 as tf.Tensor2D, this.weight as tf.Tensor2D, this.bias as tf.Tensor1D);
      } else {
        y = tf.matMul(x2 as tf.Tensor2D, this.weight as tf.Tensor2D);
        if (this.bias) y = tf.add(y, this.bias);
      }
      return shape.length === 2 ? y : tf.reshape(y, [...shape.slice(0, -1), this.outFeatures]);
    });
  }
}

/**
 * x W + b as one _FusedMatMul (bias added in the matmul's epilogue), with a gradient that keeps
 * only x and W (tf.fused.matMul's own also keeps the output). Used on accelerated backends.
 */
const linearWithBias = tf.customGrad(((...args: unknown[]) => {
  const [x, w, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  save([x, w]);
  const value = tf.fused.matMul({ a: x, b: w, bias: b });
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
    const d = dy as tf.Tensor2D;
    return [tf.matMul(d, ws, false, true), tf.matMul(xs, d, true, false), tf.sum(d, 0)];
  };
  return { value, gradFunc };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

export interface Conv2dParams {
  inChannels: number;
  outChannels: number;
  kernelSize: number;
  stride?: number;
  /** Zero padding on each side; default (kernelSize-1)/2, PyTorch's "same" for odd kernels. */
  padding?: number;
  bias?: boolean;
  generator: Generator;
}

/** 2-D convolution, NHWC, with symmetric explicit padding (as PyTorch's `padding=p`). */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: number;
  readonly stride: number;
  readonly padding: number;
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;

  constructor({ inChannels, outChannels, kernelSize, stride = 1, padding, bias = true, generator }: Conv2dParams) {
    super();
    assertPositiveInt('Conv2d', 'inChannels', inChannels);
    assertPositiveInt('Conv2d', 'outChannels', outChannels);
    assertPositiveInt('Conv2d', 'kernelSize', kernelSize);
    assertPositiveInt('Conv2d', 'stride', stride);
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = kernelSize;
    this.stride = stride;
    this.padding = padding ?? Math.floor((kernelSize - 1) / 2);
    const fanIn = inChannels * kernelSize * kernelSize;
    this.weight = this.addParameter(
      'weight',
      fanInUniform(generator, [kernelSize, kernelSize, inChannels, outChannels], fanIn),
    );
    this.bias = bias ? this.addParameter('bias', fanInUniform(generator, [outChannels], fanIn)) : null;
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    if (x.rank !== 4 || x.shape[3] !== this.inChannels) {
      throw new Error(`Conv2d: expected NHWC input with ${this.inChannels} channels, got shape [${x.shape}]`);
    }
    if (this.bias) return conv2dSymmetricBias(x, this.weight as tf.Tensor4D, this.bias as tf.Tensor1D, this.stride, this.padding);
    return conv2dSymmetric(x, this.weight as tf.Tensor4D, this.stride, this.padding);
  }
}

export interface GroupNormParams {
  numGroups: number;
  numChannels: number;
  eps?: number;
}

/** Group normalisation (Wu & He 2018) over NHWC, with a per-channel affine transform. */
export class GroupNorm extends Module {
  readonly numGroups: number;
  readonly numChannels: number;
  readonly eps: number;
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor({ numGroups, numChannels, eps = 1e-5 }: GroupNormParams) {
    super();
    assertPositiveInt('GroupNorm', 'numGroups', numGroups);
    assertPositiveInt('GroupNorm', 'numChannels', numChannels);
    if (numChannels % numGroups !== 0) {
      throw new RangeError(
        `GroupNorm: numChannels (${numChannels}) must be divisible by numGroups (${numGroups})`,
      );
    }
    this.numGroups = numGroups;
    this.numChannels = numChannels;
    this.eps = eps;
    this.weight = this.addParameter('weight', tf.ones([numChannels]));
    this.bias = this.addParameter('bias', tf.zeros([numChannels]));
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return this.normalize(x, false);
  }

  /**
   * silu(GroupNorm(x)) — the ResBlock's "GN-SiLU". One fused kernel on backends that have it
   * (see ./fused.ts), else the composed ops.
   */
  forwardSilu(x: tf.Tensor4D): tf.Tensor4D {
    return this.normalize(x, true);
  }

  private normalize(x: tf.Tensor4D, withSilu: boolean): tf.Tensor4D {
    const [b, h, w, c] = x.shape;
    if (c !== this.numChannels) {
      throw new Error(`GroupNorm: expected ${this.numChannels} channels, got input shape [${x.shape}]`);
    }
    if (hasFusedKernel(FUSED_GROUP_NORM_KERNEL)) {
      return fusedGroupNorm(x, this.weight, this.bias, this.numGroups, this.eps, withSilu) as tf.Tensor4D;
    }
    if (withSilu) return tf.tidy(() => silu(this.normalize(x, false)));
    return tf.tidy(() => {
      const g = this.numGroups;
      const xg = tf.reshape(x, [b, h * w, g, c / g]);
      const { mean, variance } = tf.moments(xg, [1, 3], true);
      const xn = tf.reshape(tf.mul(tf.sub(xg, mean), tf.rsqrt(tf.add(variance, this.eps))), [b, h, w, c]);
      return tf.add(tf.mul(xn, this.weight), this.bias) as tf.Tensor4D;
    });
  }
}

/** Layer normalisation over the last axis, with affine weights. */
export class LayerNorm extends Module {
  readonly dim: number;
  readonly eps: number;
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor({ dim, eps = 1e-5 }: { dim: number; eps?: number }) {
    super();
    assertPositiveInt('LayerNorm', 'dim', dim);
    this.dim = dim;
    this.eps = eps;
    this.weight = this.addParameter('weight', tf.ones([dim]));
    this.bias = this.addParameter('bias', tf.zeros([dim]));
  }

  forward(x: tf.Tensor): tf.Tensor {
    if (x.shape[x.rank - 1] !== this.dim) {
      throw new Error(`LayerNorm: expected last dimension ${this.dim}, got input shape [${x.shape}]`);
    }
    if (hasFusedKernel(FUSED_GROUP_NORM_KERNEL) && x.rank >= 1 && x.size > 0) {
      // LayerNorm over the last axis is GroupNorm of [rows, 1, dim] with one group.
      return tf.tidy(() => {
        const rows = x.size / this.dim;
        const y = fusedGroupNorm(tf.reshape(x, [rows, 1, this.dim]), this.weight, this.bias, 1, this.eps, false);
        return tf.reshape(y, x.shape);
      });
    }
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      const xn = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps)));
      return tf.add(tf.mul(xn, this.weight), this.bias);
    });
  }
}

/** A lookup table of learned vectors, N(0,1) initialised like PyTorch's nn.Embedding. */
export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly dim: number;
  readonly weight: tf.Variable;

  constructor({ numEmbeddings, dim, generator }: { numEmbeddings: number; dim: number; generator: Generator }) {
    super();
    assertPositiveInt('Embedding', 'numEmbeddings', numEmbeddings);
    assertPositiveInt('Embedding', 'dim', dim);
    this.numEmbeddings = numEmbeddings;
    this.dim = dim;
    this.weight = this.addParameter('weight', generator.normal([numEmbeddings, dim]));
  }

  /**
   * indices: int32 [B] → [B, dim]. Computed as one-hot(indices) · W rather than a gather: the
   * gradient of gather needs UnsortedSegmentSum, which tfjs-backend-wasm does not have, while a
   * matmul differentiates on every backend (and costs nothing at the table sizes used here).
   * The one-hot is made as int32 and cast: tfjs-backend-wasm 4.22's OneHot ignores a float32
   * dtype and writes int32 bit patterns (1 becomes 1.4e-45), which silently erased conditioning.
   */
  forward(indices: tf.Tensor1D): tf.Tensor2D {
    return tf.tidy(() => tf.matMul(tf.cast(tf.oneHot(indices, this.numEmbeddings), 'float32'), this.weight as tf.Tensor2D));
  }
}

/** SiLU (swish): x * sigmoid(x). One fused kernel on backends that have it (see ./fused.ts). */
export function silu<T extends tf.Tensor>(x: T): T {
  if (hasFusedKernel(FUSED_SILU_KERNEL) && x.dtype === 'float32') return fusedSilu(x);
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x))) as T;
}
