/**
 * Vision Transformer (Dosovitskiy et al. 2021) as torchvision's `VisionTransformer`: a patch
 * embedding `conv_proj` (kernel = stride = patch), a learned class token (with `pooling: 'cls'`),
 * learned position embeddings, `depth` pre-LN encoder blocks (LN -> multi-head self-attention ->
 * residual, LN -> Linear -> GELU -> Linear -> residual), a final LayerNorm, then the head.
 *
 * Names: `conv_proj.*`, `class_token`, `encoder.pos_embedding`, `encoder.layers.{i}.ln_1.*`,
 * `.self_attention.in_proj.*` (q, k, v stacked along the output axis, as torchvision's
 * `in_proj_weight` transposed), `.self_attention.out_proj.*`, `.ln_2.*`, `.mlp.0.*`, `.mlp.3.*`,
 * `encoder.ln.*`, `head.*`. No dropout (torchvision's default is 0).
 *
 * Initialisation: position embeddings N(0, 0.02^2), class token 0, every linear and the patch
 * projection PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)); seeded.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, Generator, LayerNorm, Linear, Module } from '@fad/diffusion-core';
import { ClassifierHead } from './classifier-head';
import type { ExpertConfigInput, ViTConfig } from './expert-config';
import { ExpertModel } from './expert-model';
import { assertBoolean, assertInt } from './validate';
import { ZERO_GENERATOR } from './weight-init';

/** Exact GELU, x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), as PyTorch's `nn.GELU()`. */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1))) as T;
}

/** Multi-head self-attention over [B, N, D]. */
class SelfAttention extends Module {
  private readonly inProj: Linear;
  private readonly outProj: Linear;
  constructor(generator: Generator, private readonly width: number, private readonly numHeads: number) {
    super();
    this.inProj = this.addModule('in_proj', new Linear({ inFeatures: width, outFeatures: 3 * width, generator }));
    this.outProj = this.addModule('out_proj', new Linear({ inFeatures: width, outFeatures: width, generator }));
  }
  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, n, d] = x.shape;
      const h = this.numHeads;
      const dh = d / h;
      // [B, N, 3, H, dh] -> [3, B, H, N, dh]
      const qkv = tf.transpose(tf.reshape(this.inProj.forward(x), [b, n, 3, h, dh]), [2, 0, 3, 1, 4]);
      const [q, k, v] = tf.unstack(qkv, 0) as tf.Tensor4D[];
      const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh));
      const att = tf.matMul(tf.softmax(scores), v); // [B, H, N, dh]
      const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [b, n, this.width]);
      return this.outProj.forward(merged) as tf.Tensor3D;
    });
  }
}

/** Linear -> GELU -> Linear, registered as `0` and `3` like torchvision's MLPBlock. */
class Mlp extends Module {
  private readonly fc1: Linear;
  private readonly fc2: Linear;
  constructor(generator: Generator, width: number, hidden: number) {
    super();
    this.fc1 = this.addModule('0', new Linear({ inFeatures: width, outFeatures: hidden, generator }));
    this.fc2 = this.addModule('3', new Linear({ inFeatures: hidden, outFeatures: width, generator }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(gelu(this.fc1.forward(x))));
  }
}

/** One pre-LN encoder block. */
class EncoderBlock extends Module {
  private readonly ln1: LayerNorm;
  private readonly attn: SelfAttention;
  private readonly ln2: LayerNorm;
  private readonly mlp: Mlp;
  constructor(generator: Generator, config: ViTConfig) {
    super();
    const { width, numHeads, mlpRatio, layerNormEps: eps } = config;
    this.ln1 = this.addModule('ln_1', new LayerNorm({ dim: width, eps }));
    this.attn = this.addModule('self_attention', new SelfAttention(generator, width, numHeads));
    this.ln2 = this.addModule('ln_2', new LayerNorm({ dim: width, eps }));
    this.mlp = this.addModule('mlp', new Mlp(generator, width, width * mlpRatio));
  }
  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const h = tf.add(x, this.attn.forward(this.ln1.forward(x) as tf.Tensor3D));
      return tf.add(h, this.mlp.forward(this.ln2.forward(h))) as tf.Tensor3D;
    });
  }
}

/** Position embeddings, blocks `layers.{i}` and the final `ln`. */
class Encoder extends Module {
  readonly posEmbedding: tf.Variable;
  private readonly blocks: EncoderBlock[] = [];
  private readonly ln: LayerNorm;
  constructor(generator: Generator, config: ViTConfig, numTokens: number) {
    super();
    this.posEmbedding = this.addParameter('pos_embedding', tf.tidy(() => tf.mul(generator.normal([1, numTokens, config.width]), 0.02)));
    const layers = this.addModule('layers', new EncoderLayers());
    for (let i = 0; i < config.depth; i++) this.blocks.push(layers.add(new EncoderBlock(generator, config)));
    this.ln = this.addModule('ln', new LayerNorm({ dim: config.width, eps: config.layerNormEps }));
  }
  forward(tokens: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      let h = tf.add(tokens, this.posEmbedding) as tf.Tensor3D;
      for (const b of this.blocks) h = b.forward(h);
      return this.ln.forward(h) as tf.Tensor3D;
    });
  }
}

/** Container naming the blocks `0`, `1`, ... */
class EncoderLayers extends Module {
  private count = 0;
  add<M extends Module>(m: M): M {
    return this.addModule(String(this.count++), m);
  }
}

/** Constructor parameters of {@link VisionTransformer}. */
export interface VisionTransformerParams {
  /** The architecture (`arch: 'vit'`), e.g. from `presetConfig`; validated with `resolveExpertConfig`. */
  config: ViTConfig | Extract<ExpertConfigInput, { arch: 'vit' }>;
  classNames?: readonly string[];
  /** Seed of the weight initialisation, default 0. */
  seed?: number;
  /** Draw random initial weights (default true); false leaves them at zero, for loading weights right after. */
  initialize?: boolean;
}

/** A Vision Transformer expert classifier (see the file comment for the layout). */
export class VisionTransformer extends ExpertModel {
  declare readonly config: ViTConfig;
  /** Number of patches per image. */
  readonly numPatches: number;
  private readonly convProj: Conv2d;
  private readonly classToken: tf.Variable | null = null;
  private readonly encoder: Encoder;
  private readonly headModule: ClassifierHead;

  constructor(params: VisionTransformerParams) {
    super({ config: params?.config, arch: 'vit', classNames: params?.classNames });
    const seed = params.seed ?? 0;
    assertInt('VisionTransformer', 'seed', seed, 0, 0xffffffff);
    const initialize = params.initialize ?? true;
    assertBoolean('VisionTransformer', 'initialize', initialize);
    const generator = initialize ? new Generator(seed) : ZERO_GENERATOR;
    const c = this.config;
    const grid = c.input.size / c.patchSize;
    this.numPatches = grid * grid;
    this.convProj = this.addModule(
      'conv_proj',
      new Conv2d({ inChannels: c.input.channels, outChannels: c.width, kernelSize: c.patchSize, stride: c.patchSize, padding: 0, generator }),
    );
    if (c.pooling === 'cls') this.classToken = this.addParameter('class_token', tf.zeros([1, 1, c.width]));
    this.encoder = this.addModule('encoder', new Encoder(generator, c, this.numPatches + (c.pooling === 'cls' ? 1 : 0)));
    this.headModule = this.addModule('head', new ClassifierHead({ head: c.head, inFeatures: c.width, numClasses: c.numClasses, generator }));
  }

  protected get head(): ClassifierHead {
    return this.headModule;
  }

  protected pooledFeatures(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      const b = x.shape[0];
      const d = this.config.width;
      let tokens = tf.reshape(this.convProj.forward(x), [b, this.numPatches, d]) as tf.Tensor3D;
      if (this.classToken) tokens = tf.concat([tf.tile(this.classToken, [b, 1, 1]), tokens], 1) as tf.Tensor3D;
      const h = this.encoder.forward(tokens);
      if (this.classToken) return tf.reshape(tf.slice(h, [0, 0, 0], [b, 1, d]), [b, d]) as tf.Tensor2D;
      return tf.mean(h, 1) as tf.Tensor2D;
    });
  }
}
