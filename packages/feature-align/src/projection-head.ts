/**
 * The trainable projection P of feature alignment: a linear map (the paper's choice) or a small
 * MLP, Linear - SiLU - Linear, from one feature width to the other.
 */
import * as tf from '@tensorflow/tfjs-core';
import { SeededRandom } from './seeded-random';
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
 * A linear or MLP projection owning its `tf.Variable`s.
 *
 * Initialisation (seeded, so two heads built with the same parameters are identical): every
 * weight W [in, out] and bias b [out] is drawn from U(-1/sqrt(in), 1/sqrt(in)), PyTorch's
 * `nn.Linear` default (kaiming_uniform with a = sqrt(5)), which is what the reference
 * implementation's `nn.Linear(2048, C)` started from. Values come from xoshiro128** seeded with
 * `seed`, weight before bias, layer by layer: the same numbers `@fad/diffusion-core`'s `Linear`
 * draws from `new Generator(seed)`.
 *
 * Weights are stored in TensorFlow layout, `[in, out]` (PyTorch's `nn.Linear.weight` is
 * `[out, in]`: transpose when porting).
 */
export class ProjectionHead {
  readonly kind: ProjectionKind;
  readonly inDim: number;
  readonly outDim: number;
  /** Hidden width of the MLP; null for a linear head. */
  readonly hiddenDim: number | null;
  private readonly params = new Map<string, tf.Variable>();
  private disposed = false;

  constructor(params: ProjectionHeadParams) {
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
    const rng = new SeededRandom(seed);
    const linear = (prefix: string, fin: number, fout: number) => {
      const bound = 1 / Math.sqrt(fin);
      this.add(`${prefix}weight`, rng.uniform([fin, fout], -bound, bound));
      this.add(`${prefix}bias`, rng.uniform([fout], -bound, bound));
    };
    if (this.hiddenDim === null) {
      linear('', inDim, outDim);
    } else {
      linear('0.', inDim, this.hiddenDim);
      linear('2.', this.hiddenDim, outDim);
    }
  }

  private add(name: string, value: tf.Tensor): void {
    // No explicit variable name: tfjs variable names must be unique per process.
    this.params.set(name, tf.variable(value, true));
    value.dispose();
  }

  /** Projects `x` [B, inDim] to [B, outDim]. */
  forward(x: tf.Tensor2D): tf.Tensor2D {
    this.assertAlive('forward');
    if (!(x instanceof tf.Tensor) || x.rank !== 2 || x.shape[1] !== this.inDim) {
      fail('ProjectionHead.forward', `x must be [B,${this.inDim}], got ${x instanceof tf.Tensor ? shapeText(x.shape) : String(x)}`);
    }
    const p = (n: string) => this.params.get(n) as tf.Variable;
    return tf.tidy(() => {
      if (this.hiddenDim === null) return tf.add(tf.matMul(x, p('weight') as tf.Tensor2D), p('bias')) as tf.Tensor2D;
      const h = tf.add(tf.matMul(x, p('0.weight') as tf.Tensor2D), p('0.bias')) as tf.Tensor2D;
      const a = tf.mul(h, tf.sigmoid(h)) as tf.Tensor2D; // SiLU
      return tf.add(tf.matMul(a, p('2.weight') as tf.Tensor2D), p('2.bias')) as tf.Tensor2D;
    });
  }

  /** Parameters under their names (`weight`, `bias`, or `0.weight` ... `2.bias` for the MLP). */
  namedParameters(prefix = ''): Array<[string, tf.Variable]> {
    return [...this.params].map(([n, v]) => [prefix + n, v]);
  }

  private assertAlive(method: string): void {
    if (this.disposed) fail(`ProjectionHead.${method}`, 'the head has been disposed');
  }

  /** Frees the variables. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.params.values()) v.dispose();
  }
}
