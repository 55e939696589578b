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
 *
 * Every module path of diffusers' UNet2DConditionModel that has a [B,H,W,C] output is also an
 * activation name, whatever the model was built from (the structure is the same):
 * `conv_in`; `down_blocks.{l}` (= `down.{l}`), `down_blocks.{l}.resnets.{j}` and its `.conv1`,
 * `.conv2`, `.conv_shortcut` (when the block changes the channels), `down_blocks.{l}.attentions.{j}`,
 * `down_blocks.{l}.downsamplers.0` (and `.conv`); `mid_block` (= `mid`), `mid_block.resnets.{k}`
 * (and sub-convs), `mid_block.attentions.0`; `up_blocks.{i}` (= `up.{i}`), `up_blocks.{i}.resnets.{j}`
 * (and sub-convs), `up_blocks.{i}.attentions.{j}`, `up_blocks.{i}.upsamplers.0` (and `.conv`);
 * `conv_norm_out` (the final GroupNorm, before its SiLU) and `conv_out` (= the output).
 * So `down_blocks.2.resnets.0.conv_shortcut`, the tap of the feature-alignment paper's code, works.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, Embedding, GroupNorm, Linear, silu } from '../nn/layers';
import { Module } from '../nn/module';
import { upsampleNearest2x } from '../nn/upsample';
import { Generator } from '../random';
import { type ActivationTap, ResBlock, TransformerBlock, scopedTap } from './blocks';
import { timestepEmbedding } from './timestep-embedding';
import { type UNetConfig, conditioningLabelCount, resolveUNetConfig } from './unet-config';
import { type UNetLayout, unetLayout } from './unet-layout';

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
  /** The block structure (see unet-layout.ts). */
  readonly layout: UNetLayout;
  private readonly timeMlp1: Linear;
  private readonly timeMlp2: Linear;
  private readonly classEmb: Embedding | null;
  private readonly classProj: Linear | null = null;
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
  private activationNameList: string[] | null = null;

  /**
   * @param config partial config; defaults fill the rest (see `DEFAULT_UNET_CONFIG`).
   * @param options.seed seed of the weight initialisation (default 0).
   */
  constructor(config: Partial<UNetConfig> = {}, options: { seed?: number } = {}) {
    super();
    const c = (this.config = resolveUNetConfig(config));
    const layout = (this.layout = unetLayout(c));
    const gen = new Generator(options.seed ?? 0);
    const groups = c.normGroups;
    const eps = c.normEps;
    const td = c.timeEmbeddingHiddenDim;
    const tb = (ch: number, heads: number) =>
      new TransformerBlock({
        channels: ch, contextDim: c.crossAttentionDim, heads, groups, eps: c.transformerNormEps ?? eps, generator: gen, feedForward: c.feedForward ?? 'silu',
      });
    const rb = (cin: number, cout: number, outputScale = 1) =>
      new ResBlock({ inChannels: cin, outChannels: cout, timeDim: td, groups, eps, generator: gen, timeScaleShift: c.timeScaleShift ?? false, outputScale });

    this.timeMlp1 = this.addModule('time_mlp1', new Linear({ inFeatures: c.timeEmbeddingDim, outFeatures: td, generator: gen }));
    this.timeMlp2 = this.addModule('time_mlp2', new Linear({ inFeatures: td, outFeatures: td, generator: gen }));
    const rows = c.numClasses + (c.nullClass ? 1 : 0);
    const embDim = c.classEmbeddingDim ?? c.crossAttentionDim;
    this.classEmb = rows > 0 ? this.addModule('class_emb', new Embedding({ numEmbeddings: rows, dim: embDim, generator: gen })) : null;
    if (this.classEmb && c.classEmbeddingDim !== undefined) {
      this.classProj = this.addModule('class_proj', new Linear({ inFeatures: embDim, outFeatures: c.crossAttentionDim, generator: gen }));
    }
    this.classToTime =
      c.classConditioning !== 'cross-attention'
        ? this.addModule('class_to_time', new Linear({ inFeatures: c.crossAttentionDim, outFeatures: td, generator: gen }))
        : null;
    const ch = c.blockChannels;
    this.convIn = this.addModule('conv_in', new Conv2d({ inChannels: c.inChannels, outChannels: ch[0], kernelSize: c.convInKernel ?? 3, generator: gen }));

    for (const blk of layout.down) {
      for (const r of blk.resnets) {
        this.downRes.push(this.addModule(`down_res.${r.index}`, rb(r.inChannels, r.outChannels)));
        this.downAttn.push(r.attention ? this.addModule(`down_attn.${r.index}`, tb(r.outChannels, blk.heads)) : null);
      }
      if (blk.downsample) {
        const padding = c.downsamplePadding ?? 1;
        this.downsample.push(
          this.addModule(`downsample.${blk.level}`, new Conv2d({ inChannels: blk.channels, outChannels: blk.channels, kernelSize: 3, stride: 2, padding, generator: gen })),
        );
      }
    }
    if (layout.mid) {
      const { channels: cm, heads } = layout.mid;
      const scale = c.midBlockScaleFactor ?? 1;
      this.midRes1 = this.addModule('mid_res1', rb(cm, cm, scale));
      this.midAttn = layout.mid.attention ? this.addModule('mid_attn', tb(cm, heads)) : null;
      this.midRes2 = this.addModule('mid_res2', rb(cm, cm, scale));
    }
    for (const blk of layout.up) {
      for (const r of blk.resnets) {
        this.upRes.push(this.addModule(`up_res.${r.index}`, rb(r.inChannels, r.outChannels)));
        this.upAttn.push(r.attention ? this.addModule(`up_attn.${r.index}`, tb(r.outChannels, blk.heads)) : null);
      }
      if (blk.upsample) {
        this.upsample.push(
          this.addModule(`upsample.${blk.block}`, new Conv2d({ inChannels: blk.channels, outChannels: blk.channels, kernelSize: 3, generator: gen })),
        );
      }
    }
    this.normOut = this.addModule('norm_out', new GroupNorm({ numGroups: groups, numChannels: ch[0], eps }));
    this.convOut = this.addModule('conv_out', new Conv2d({ inChannels: ch[0], outChannels: c.outChannels, kernelSize: c.convOutKernel ?? 3, generator: gen }));
    // Extra tokens last: their initialisation draws come after every other weight's, so a config
    // with tokens initialises the rest exactly as the same config without them.
    const nTokens = c.conditioningTokens?.length ?? 0;
    if (nTokens > 0) {
      this.tokenEmb = this.addModule('token_emb', new Embedding({ numEmbeddings: nTokens, dim: embDim, generator: gen }));
    }
  }

  /**
   * The conditioning embedding tables: `classes` [numClasses (+1 null), classEmbeddingDim or
   * crossAttentionDim] (`class_emb.weight`) and `tokens` [number of extra tokens, same width]
   * (`token_emb.weight`), or null when absent. Set their `trainable` to freeze them.
   */
  conditioningEmbeddings(): { classes: tf.Variable | null; tokens: tf.Variable | null } {
    return { classes: this.classEmb?.weight ?? null, tokens: this.tokenEmb?.weight ?? null };
  }

  /**
   * Names of every activation `forward` can return for this config: the short names (`conv_in`,
   * `down.{l}`, `down_out`, `mid`, `up.{i}`), then the diffusers module paths (see the module docs).
   */
  activationNames(): string[] {
    if (this.activationNameList) return [...this.activationNameList];
    const n = this.config.blockChannels.length;
    const names = ['conv_in'];
    for (let l = 0; l < n; l++) names.push(`down.${l}`);
    names.push('down_out');
    if (this.config.midBlock) names.push('mid');
    for (let l = 0; l < n; l++) names.push(`up.${l}`);
    const res = (p: string, hasShortcut: boolean) => [p, `${p}.conv1`, `${p}.conv2`, ...(hasShortcut ? [`${p}.conv_shortcut`] : [])];
    for (const blk of this.layout.down) {
      const p = `down_blocks.${blk.level}`;
      for (const r of blk.resnets) {
        names.push(...res(`${p}.resnets.${r.j}`, r.inChannels !== r.outChannels));
        if (r.attention) names.push(`${p}.attentions.${r.j}`);
      }
      if (blk.downsample) names.push(`${p}.downsamplers.0`, `${p}.downsamplers.0.conv`);
      names.push(p);
    }
    if (this.layout.mid) {
      names.push(...res('mid_block.resnets.0', false));
      if (this.layout.mid.attention) names.push('mid_block.attentions.0');
      names.push(...res('mid_block.resnets.1', false), 'mid_block');
    }
    for (const blk of this.layout.up) {
      const p = `up_blocks.${blk.block}`;
      for (const r of blk.resnets) {
        names.push(...res(`${p}.resnets.${r.j}`, r.inChannels !== r.outChannels));
        if (r.attention) names.push(`${p}.attentions.${r.j}`);
      }
      if (blk.upsample) names.push(`${p}.upsamplers.0`, `${p}.upsamplers.0.conv`);
      names.push(p);
    }
    names.push('conv_norm_out', 'conv_out');
    this.activationNameList = names;
    return [...names];
  }

  /**
   * The time embedding [B, timeEmbeddingHiddenDim] the blocks receive (before their SiLU):
   * `time_mlp2(silu(time_mlp1(sinusoidal(t))))`, diffusers' `time_embedding` output.
   */
  timeEmbedding(timesteps: ArrayLike<number> | tf.Tensor1D): tf.Tensor2D {
    const c = this.config;
    const ts = timesteps instanceof tf.Tensor ? Array.from(timesteps.dataSync()) : Array.from(timesteps);
    return tf.tidy(() => {
      const emb = timestepEmbedding(ts, c.timeEmbeddingDim, { flipSinToCos: c.flipSinToCos ?? true, freqShift: c.freqShift ?? 0 });
      return this.timeMlp2.forward(silu(this.timeMlp1.forward(emb))) as tf.Tensor2D;
    });
  }

  forward(params: UNetForwardParams): UNetForwardResult {
    const { returnActivations = false } = params;
    const c = this.config;
    const b = this.validateSample(params.sample);
    const ts = toNumberArray(params.timesteps, 'timesteps', b);
    const wanted = this.resolveWanted(returnActivations);
    // Requested activations are returned by the tidy below with the output (blocks return theirs
    // from their own tidy first), so the caller's scope owns them as it owns the output.
    const kept: Record<string, tf.Tensor4D> = {};
    const tap: ActivationTap = {
      want: (name) => wanted.has(name),
      put: (name, t) => {
        if (wanted.has(name)) kept[name] = t;
      },
    };
    const keepAs = (names: string[], t: tf.Tensor4D) => {
      for (const n of names) tap.put(n, t);
    };
    const L = this.layout;
    const out = tf.tidy(() => {
      const context = this.context(params, b);
      let temb = this.timeEmbedding(ts);
      if (this.classToTime) temb = tf.add(temb, this.classToTime.forward(tf.mean(context, 1)));
      const tembAct = silu(temb) as tf.Tensor2D;
      const sample = c.centerInputSample ? (tf.sub(tf.mul(params.sample, 2), 1) as tf.Tensor4D) : params.sample;
      let h = this.convIn.forward(sample);
      keepAs(['conv_in'], h);
      const skips: tf.Tensor4D[] = [h];
      for (const blk of L.down) {
        const p = `down_blocks.${blk.level}`;
        for (const r of blk.resnets) {
          const rp = `${p}.resnets.${r.j}`;
          h = this.downRes[r.index].forward(h, tembAct, scopedTap(tap, rp));
          keepAs([rp], h);
          const attn = this.downAttn[r.index];
          if (attn) {
            h = attn.forward(h, context);
            keepAs([`${p}.attentions.${r.j}`], h);
          }
          skips.push(h);
        }
        if (blk.downsample) {
          h = this.downsampleForward(blk.level, h);
          keepAs([`${p}.downsamplers.0`, `${p}.downsamplers.0.conv`], h);
          skips.push(h);
        }
        keepAs([`down.${blk.level}`, p], h);
      }
      keepAs(['down_out'], h);
      if (this.midRes1 && this.midRes2) {
        h = this.midRes1.forward(h, tembAct, scopedTap(tap, 'mid_block.resnets.0'));
        keepAs(['mid_block.resnets.0'], h);
        if (this.midAttn) {
          h = this.midAttn.forward(h, context);
          keepAs(['mid_block.attentions.0'], h);
        }
        h = this.midRes2.forward(h, tembAct, scopedTap(tap, 'mid_block.resnets.1'));
        keepAs(['mid_block.resnets.1', 'mid', 'mid_block'], h);
      }
      let u = 0;
      for (const blk of L.up) {
        const p = `up_blocks.${blk.block}`;
        for (const r of blk.resnets) {
          const rp = `${p}.resnets.${r.j}`;
          h = this.upRes[r.index].forward(tf.concat([h, skips.pop() as tf.Tensor4D], 3), tembAct, scopedTap(tap, rp));
          keepAs([rp], h);
          const attn = this.upAttn[r.index];
          if (attn) {
            h = attn.forward(h, context);
            keepAs([`${p}.attentions.${r.j}`], h);
          }
        }
        if (blk.upsample) {
          h = this.upsample[u++].forward(upsampleNearest2x(h));
          keepAs([`${p}.upsamplers.0`, `${p}.upsamplers.0.conv`], h);
        }
        keepAs([`up.${blk.block}`, p], h);
      }
      let y: tf.Tensor4D;
      if (tap.want('conv_norm_out')) {
        const n = this.normOut.forward(h);
        keepAs(['conv_norm_out'], n);
        y = this.convOut.forward(silu(n));
      } else {
        y = this.convOut.forward(this.normOut.forwardSilu(h));
      }
      keepAs(['conv_out'], y);
      return { ...kept, sample: y };
    }) as Record<string, tf.Tensor4D>;
    const { sample: y, ...activations } = out;
    return { sample: y, activations };
  }

  /** The stride-2 conv of level `level` (padding 0: one zero row and column at the bottom/right first, as diffusers). */
  private downsampleForward(level: number, h: tf.Tensor4D): tf.Tensor4D {
    const conv = this.downsample[level];
    if (conv.padding !== 0) return conv.forward(h);
    return tf.tidy(() => conv.forward(tf.pad(h, [[0, 0], [0, 1], [0, 1], [0, 0]])));
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
    if (this.classProj) emb = this.classProj.forward(emb) as tf.Tensor2D;
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
