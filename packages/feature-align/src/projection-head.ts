/**
 * The trainable projection P of feature alignment: a linear map (the paper's choice) or a small
 * MLP, Linear - SiLU - Linear, from one feature width to the other.
 */
import { fanInUniform, Generator, Linear, Module, silu } from '@fad/diffusion-core';
import * as tf from '@tensorflow/tfjs-core';
import { assertOneOf, assertParamsObject, assertKnownKeys, assertPositiveInteger, fail, shapeText } from './validate';

/** `linear`: y = x W + b. `mlp`: y = SiLU(x W0 + b0) W2 + b2 (PyTorch `nn.Sequential` indices). */
export type ProjectionKind = 'linear' | 'mlp';
export const PROJECTION_KINDS: readonly ProjectionKind[] = ['linear', 'mlp'];

export interface ProjectionHeadParams {
  kind?: ProjectionKind;
  /** Width of the features going in. */
  inDim: number;
  /** Width of the features coming out. */
  outDim: number;
  /** Hidden width of the `mlp` (default `outDim`); must be left unset for `linear`. */
  hiddenDim?: number;
  /** Seed of the initialisation (default 0). */
  seed?: number;
}

/** A parameter value as a plain typed array (what `stateDict` returns and `loadStateDict` takes). */
export interface ParameterValue {
  shape: number[];
  data: Float32Array;
}

/**
 * A linear or MLP projection: a diffusion-core `Module` owning its `tf.Variable`s.
 *
 * Initialisation (seeded, so two heads built with the same parameters are identical): every
 * weight W [in, out] and bias b [out] is drawn from U(-1/sqrt(in), 1/sqrt(in)), PyTorch's
 * `nn.Linear` default (kaiming_uniform with a = sqrt(5)), which is what the reference
 * implementation's `nn.Linear(2048, C)` started from. Values come from diffusion-core's
 * `Generator(seed)`, weight before bias, layer by layer: the MLP is two diffusion-core `Linear`s,
 * and the linear head draws exactly what one `Linear` would.
 *
 * Weights are stored in TensorFlow layout, `[in, out]` (PyTorch's `nn.Linear.weight` is
 * `[out, in]`: transpose when porting). Parameter names: `weight`, `bias` (linear), or
 * `0.weight` ... `2.bias` (MLP, PyTorch `nn.Sequential` indices).
 */
export class ProjectionHead extends Module {
  readonly kind: ProjectionKind;
  readonly inDim: number;
  readonly outDim: number;
  /** Hidden width of the MLP; null for a linear head. */
  readonly hiddenDim: number | null;
  /** The linear head's own weight and bias (its names are `weight`, `bias`, not `<child>.weight`). */
  private readonly linear: { weight: tf.Variable; bias: tf.Variable } | null = null;
  /** The MLP's two layers, registered as children `0` and `2`. */
  private readonly mlp: [Linear, Linear] | null = null;
  private released = false;

  constructor(params: ProjectionHeadParams) {
    super();
    const where = 'ProjectionHead';
    assertParamsObject(where, params);
    assertKnownKeys(where, params as unknown as Record<string, unknown>, ['kind', 'inDim', 'outDim', 'hiddenDim', 'seed']);
    const { kind = 'linear', inDim, outDim, hiddenDim, seed = 0 } = params;
    assertOneOf(where, 'kind', kind, PROJECTION_KINDS);
    assertPositiveInteger(where, 'inDim', inDim);
    assertPositiveInteger(where, 'outDim', outDim);
    if (kind === 'linear' && hiddenDim !== undefined) {
      fail(where, `hiddenDim (${hiddenDim}) only applies to kind 'mlp'; leave it unset for 'linear'`, RangeError);
    }
    if (hiddenDim !== undefined) assertPositiveInteger(where, 'hiddenDim', hiddenDim);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) fail(where, `seed must be an integer in [0, 2^32-1], got ${seed}`, RangeError);
    this.kind = kind;
    this.inDim = inDim;
    this.outDim = outDim;
    this.hiddenDim = kind === 'mlp' ? (hiddenDim ?? outDim) : null;
    const generator = new Generator(seed);
    if (this.hiddenDim === null) {
      this.linear = {
        weight: this.addParameter('weight', fanInUniform(generator, [inDim, outDim], inDim)),
        bias: this.addParameter('bias', fanInUniform(generator, [outDim], inDim)),
      };
    } else {
      this.mlp = [
        this.addModule('0', new Linear({ inFeatures: inDim, outFeatures: this.hiddenDim, generator })),
        this.addModule('2', new Linear({ inFeatures: this.hiddenDim, outFeatures: outDim, generator })),
      ];
    }
  }

  /** Projects `x` [B, inDim] to [B, outDim]. */
  forward(x: tf.Tensor2D): tf.Tensor2D {
    if (this.released) fail('ProjectionHead.forward', 'the head has been disposed');
    if (!(x instanceof tf.Tensor) || x.rank !== 2 || x.shape[1] !== this.inDim) {
      fail('ProjectionHead.forward', `x must be [B,${this.inDim}], got ${x instanceof tf.Tensor ? shapeText(x.shape) : String(x)}`);
    }
    return tf.tidy(() => {
      if (this.linear) return tf.add(tf.matMul(x, this.linear.weight as tf.Tensor2D), this.linear.bias) as tf.Tensor2D;
      const [l0, l2] = this.mlp as [Linear, Linear];
      return l2.forward(silu(l0.forward(x))) as tf.Tensor2D;
    });
  }

  /** Frees the variables. */
  override dispose(): void {
    this.released = true;
    super.dispose();
  }
}
