/**
 * A class-conditional U-Net in the Stable Diffusion style (NHWC), whose forward pass can also
 * return named intermediate activations, in the same single pass.
 *
 * Activation names (what `returnActivations` accepts):
 * - `conv_in`: after the input convolution.
 * - `down.{i}`: output of down level i (after its downsampling conv, when it has one).
 * - `down_out`: output of the whole down path, before the mid block — the tap point of the
 *   feature-alignment paper (Nair 2024).
 * - `mid`: output of the mid block (only when the config has one).
 * - `up.{i}`: output of up level i, counting from the bottom (after its upsampling conv, if any).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, Embedding, GroupNorm, Linear, silu } from '../nn/layers';
import { Module } from '../nn/module';
import { upsampleNearest2x } from '../nn/upsample';
import { Generator } from '../random';
import { ResBlock, TransformerBlock } from './blocks';
import { timestepEmbedding } from './timestep-embedding';
import { type UNetConfig, conditioningLabelCount, resolveUNetConfig } from './unet-config';

export interface UNetForwardParams {
  /** Noisy images x_t, [B,H,W,C]. */
  sample: tf.Tensor4D;
  /** One timestep per batch element. */
  timesteps: ArrayLike<number> | tf.Tensor1D;
  /** Class per batch element (0..numClasses-1, or numClasses for the null class). */
  classLabels?: ArrayLike<number> | tf.Tensor1D;
  /** Conditioning tokens [B,S,crossAttentionDim] instead of class labels, e.g. text embeddings. */
  encoderHiddenStates?: tf.Tensor3D;
  /** `true` for every activation, or a list of names (see the module docs). */
  returnActivations?: boolean | readonly string[];
}

export interface UNetForwardResult {
  /** The model output (noise, x0 or v, depending on how it was trained), [B,H,W,outChannels]. */
  sample: tf.Tensor4D;
  /** The requested activations by name. */
  activations: Record<string, tf.Tensor4D>;
}

/** Something a trainer and a sampler can drive: our U-Net, or any model with this contract. */
export interface DiffusionModel {
  readonly config: {
    readonly sampleSize: number;
    readonly inChannels: number;
    readonly numClasses: number;
    readonly nullClass: boolean;
    /** Extra conditioning tokens, labelled after the classes and the null class (see UNetConfig). */
    readonly conditioningTokens?: readonly { readonly name: string; readonly fromClass: number }[];
  };
  forward(params: UNetForwardParams): UNetForwardResult;
  trainableVariables(): tf.Variable[];
}

export class UNet2DConditional extends Module implements DiffusionModel {
  readonly config: UNetConfig;
  private readonly timeMlp1: Linear;
  private readonly timeMlp2: Linear;
  private readonly classEmb: Embedding | null;
  private readonly classToTime: Linear | null;
  private readonly convIn: Conv2d;
  private readonly downRes: ResBlock[] = [];
  private readonly downAttn: Array<TransformerBlock | null> = [];
  private readonly downsample: Conv2d[] = [];
  private readonly midRes1: ResBlock | null = null;
  private readonly midAttn: TransformerBlock | null = null;
  private readonly midRes2: ResBlock | null = null;
  private readonly upRes: ResBlock[] = [];
  private readonly upAttn: Array<TransformerBlock | null> = [];
  private readonly upsample: Conv2d[] = [];
  private readonly normOut: GroupNorm;
  private readonly convOut: Conv2d;
  private readonly tokenEmb: Embedding | null = null;

  /**
   * @param config partial config; defaults fill the rest (see `DEFAULT_UNET_CONFIG`).
   * @param options.seed seed of the weight initialisation (default 0).
   */
  constructor(config: Partial<UNetConfig> = {}, options: { seed?: number } = {}) {
    super();
    const c = (this.config = resolveUNetConfig(config));
    const gen = new Generator(options.seed ?? 0);
    const groups = c.normGroups;
    const eps = c.normEps;
    const td = c.timeEmbeddingHiddenDim;
    const attnAt = new Set(c.attentionLevels);
    const tb = (ch: number) =>
      new TransformerBlock({ channels: ch, contextDim: c.crossAttentionDim, heads: c.attentionHeads, groups, eps, generator: gen });
    const rb = (cin: number, cout: number) =>
      new ResBlock({ inChannels: cin, outChannels: cout, timeDim: td, groups, eps, generator: gen });

    this.timeMlp1 = this.addModule('time_mlp1', new Linear({ inFeatures: c.timeEmbeddingDim, outFeatures: td, generator: gen }));
    this.timeMlp2 = this.addModule('time_mlp2', new Linear({ inFeatures: td, outFeatures: td, generator: gen }));
    const rows = c.numClasses + (c.nullClass ? 1 : 0);
    this.classEmb = rows > 0 ? this.addModule('class_emb', new Embedding({ numEmbeddings: rows, dim: c.crossAttentionDim, generator: gen })) : null;
    this.classToTime =
      c.classConditioning !== 'cross-attention'
        ? this.addModule('class_to_time', new Linear({ inFeatures: c.crossAttentionDim, outFeatures: td, generator: gen }))
        : null;
    const ch = c.blockChannels;
    this.convIn = this.addModule('conv_in', new Conv2d({ inChannels: c.inChannels, outChannels: ch[0], kernelSize: 3, generator: gen }));

    const skipCh = [ch[0]];
    let cin = ch[0];
    let i = 0;
    ch.forEach((cl, lvl) => {
      for (let j = 0; j < c.layersPerBlock; j++, i++) {
        this.downRes.push(this.addModule(`down_res.${i}`, rb(cin, cl)));
        this.downAttn.push(attnAt.has(lvl) ? this.addModule(`down_attn.${i}`, tb(cl)) : null);
        cin = cl;
        skipCh.push(cl);
      }
      if (lvl !== ch.length - 1) {
        this.downsample.push(
          this.addModule(`downsample.${lvl}`, new Conv2d({ inChannels: cl, outChannels: cl, kernelSize: 3, stride: 2, generator: gen })),
        );
        skipCh.push(cl);
      }
    });
    if (c.midBlock) {
      const cm = ch[ch.length - 1];
      this.midRes1 = this.addModule('mid_res1', rb(cm, cm));
      this.midAttn = c.midAttention ? this.addModule('mid_attn', tb(cm)) : null;
      this.midRes2 = this.addModule('mid_res2', rb(cm, cm));
    }
    i = 0;
    for (let lvl = ch.length - 1; lvl >= 0; lvl--) {
      const cl = ch[lvl];
      for (let j = 0; j < c.layersPerBlock + 1; j++, i++) {
        this.upRes.push(this.addModule(`up_res.${i}`, rb(cin + (skipCh.pop() as number), cl)));
        this.upAttn.push(attnAt.has(lvl) ? this.addModule(`up_attn.${i}`, tb(cl)) : null);
        cin = cl;
      }
      if (lvl !== 0) {
        this.upsample.push(
          this.addModule(`upsample.${ch.length - 1 - lvl}`, new Conv2d({ inChannels: cl, outChannels: cl, kernelSize: 3, generator: gen })),
        );
      }
    }
    this.normOut = this.addModule('norm_out', new GroupNorm({ numGroups: groups, numChannels: ch[0], eps }));
    this.convOut = this.addModule('conv_out', new Conv2d({ inChannels: ch[0], outChannels: c.outChannels, kernelSize: 3, generator: gen }));
    // Extra tokens last: their initialisation draws come after every other weight's, so a config
    // with tokens initialises the rest exactly as the same config without them.
    const nTokens = c.conditioningTokens?.length ?? 0;
    if (nTokens > 0) {
      this.tokenEmb = this.addModule('token_emb', new Embedding({ numEmbeddings: nTokens, dim: c.crossAttentionDim, generator: gen }));
    }
  }

  /**
   * The conditioning embedding tables: `classes` [numClasses (+1 null), crossAttentionDim]
   * (`class_emb.weight`) and `tokens` [number of extra tokens, crossAttentionDim]
   * (`token_emb.weight`), or null when absent. Set their `trainable` to freeze them.
   */
  conditioningEmbeddings(): { classes: tf.Variable | null; tokens: tf.Variable | null } {
    return { classes: this.classEmb?.weight ?? null, tokens: this.tokenEmb?.weight ?? null };
  }

  /** Names of every activation `forward` can return for this config. */
  activationNames(): string[] {
    const n = this.config.blockChannels.length;
    const names = ['conv_in'];
    for (let l = 0; l < n; l++) names.push(`down.${l}`);
    names.push('down_out');
    if (this.config.midBlock) names.push('mid');
    for (let l = 0; l < n; l++) names.push(`up.${l}`);
    return names;
  }

  forward(params: UNetForwardParams): UNetForwardResult {
    const { sample, returnActivations = false } = params;
    const c = this.config;
    const b = this.validateSample(sample);
    const ts = toNumberArray(params.timesteps, 'timesteps', b);
    const wanted = this.resolveWanted(returnActivations);
    const kept: Record<string, tf.Tensor4D> = {};
    const keep = (name: string, t: tf.Tensor4D) => {
      if (wanted.has(name)) kept[name] = t;
    };

    const out = tf.tidy(() => {
      const context = this.context(params, b);
      let temb = this.timeMlp2.forward(silu(this.timeMlp1.forward(timestepEmbedding(ts, c.timeEmbeddingDim))));
      if (this.classToTime) temb = tf.add(temb, this.classToTime.forward(tf.mean(context, 1)));
      const tembAct = silu(temb) as tf.Tensor2D;
      let h = this.convIn.forward(sample);
      keep('conv_in', h);
      const skips: tf.Tensor4D[] = [h];
      let i = 0;
      const levels = c.blockChannels.length;
      for (let lvl = 0; lvl < levels; lvl++) {
        for (let j = 0; j < c.layersPerBlock; j++, i++) {
          h = this.downRes[i].forward(h, tembAct);
          const attn = this.downAttn[i];
          if (attn) h = attn.forward(h, context);
          skips.push(h);
        }
        if (lvl !== levels - 1) {
          h = this.downsample[lvl].forward(h);
          skips.push(h);
        }
        keep(`down.${lvl}`, h);
      }
      keep('down_out', h);
      if (this.midRes1 && this.midRes2) {
        h = this.midRes1.forward(h, tembAct);
        if (this.midAttn) h = this.midAttn.forward(h, context);
        h = this.midRes2.forward(h, tembAct);
        keep('mid', h);
      }
      i = 0;
      let u = 0;
      for (let lvl = levels - 1; lvl >= 0; lvl--) {
        for (let j = 0; j < c.layersPerBlock + 1; j++, i++) {
          h = this.upRes[i].forward(tf.concat([h, skips.pop() as tf.Tensor4D], 3), tembAct);
          const attn = this.upAttn[i];
          if (attn) h = attn.forward(h, context);
        }
        if (lvl !== 0) {
          h = this.upsample[u++].forward(upsampleNearest2x(h));
        }
        keep(`up.${levels - 1 - lvl}`, h);
      }
      const y = this.convOut.forward(this.normOut.forwardSilu(h));
      // tidy keeps what the callback returns: the output and the requested activations.
      return { sample: y, ...kept };
    });
    const { sample: y, ...activations } = out as Record<string, tf.Tensor4D>;
    return { sample: y, activations };
  }

  private validateSample(sample: tf.Tensor4D): number {
    const c = this.config;
    if (!sample || sample.rank !== 4) {
      throw new Error(`UNet2DConditional.forward: sample must be NHWC [B,H,W,${c.inChannels}], got shape [${sample?.shape}]`);
    }
    const [b, h, w, ch] = sample.shape;
    const f = 2 ** (c.blockChannels.length - 1);
    if (ch !== c.inChannels) {
      throw new Error(`UNet2DConditional.forward: sample has ${ch} channels, the config's inChannels is ${c.inChannels}`);
    }
    if (h % f !== 0 || w % f !== 0) {
      throw new Error(`UNet2DConditional.forward: sample size ${h}x${w} must be divisible by ${f} (2^(levels-1))`);
    }
    if (sample.dtype !== 'float32') {
      throw new Error(`UNet2DConditional.forward: sample must be float32, got ${sample.dtype}`);
    }
    return b;
  }

  private resolveWanted(r: boolean | readonly string[]): Set<string> {
    const all = this.activationNames();
    if (r === true) return new Set(all);
    if (r === false) return new Set();
    for (const n of r) {
      if (!all.includes(n)) {
        throw new Error(`UNet2DConditional.forward: unknown activation "${n}"; available: ${all.join(', ')}`);
      }
    }
    return new Set(r);
  }

  /** The conditioning tokens [B,S,crossAttentionDim]. */
  private context(params: UNetForwardParams, b: number): tf.Tensor3D {
    const c = this.config;
    if (params.encoderHiddenStates) {
      const e = params.encoderHiddenStates;
      if (e.rank !== 3 || e.shape[0] !== b || e.shape[2] !== c.crossAttentionDim) {
        throw new Error(
          `UNet2DConditional.forward: encoderHiddenStates must be [${b},S,${c.crossAttentionDim}], got [${e.shape}]`,
        );
      }
      return e;
    }
    if (!this.classEmb) {
      // Unconditional model: one all-zero token (cross-attention then adds a constant).
      return tf.zeros([b, 1, c.crossAttentionDim]);
    }
    const maxLabel = conditioningLabelCount(c);
    let labels: number[];
    if (params.classLabels === undefined) {
      if (!c.nullClass) {
        throw new Error('UNet2DConditional.forward: classLabels are required (the config has no null class)');
      }
      labels = new Array(b).fill(c.numClasses);
    } else {
      labels = toNumberArray(params.classLabels, 'classLabels', b);
    }
    for (const l of labels) {
      if (!Number.isInteger(l) || l < 0 || l >= maxLabel) {
        throw new Error(
          `UNet2DConditional.forward: class label ${l} out of range 0..${maxLabel - 1}` +
            (c.nullClass ? ` (${c.numClasses} is the null class)` : '') +
            (this.tokenEmb ? ` (${c.numClasses + (c.nullClass ? 1 : 0)}.. are the conditioning tokens)` : ''),
        );
      }
    }
    let emb: tf.Tensor2D;
    if (this.tokenEmb) {
      // One table of classes, null class and tokens, looked up as one-hot · W like Embedding.
      const table = tf.concat([this.classEmb.weight, this.tokenEmb.weight], 0) as tf.Tensor2D;
      emb = tf.matMul(tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), maxLabel), 'float32'), table);
    } else {
      emb = this.classEmb.forward(tf.tensor1d(labels, 'int32'));
    }
    return tf.reshape(emb, [b, 1, c.crossAttentionDim]);
  }
}

function toNumberArray(v: ArrayLike<number> | tf.Tensor1D, name: string, b: number): number[] {
  const arr = v instanceof tf.Tensor ? Array.from(v.dataSync()) : Array.from(v);
  if (arr.length !== b) {
    throw new Error(`UNet2DConditional.forward: ${name} has ${arr.length} entries for a batch of ${b}`);
  }
  return arr;
}
