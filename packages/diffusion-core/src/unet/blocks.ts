/**
 * The U-Net's building blocks, Stable Diffusion style, NHWC. Member names follow the project's
 * reference workload (shared/bench/reference_workload.py), so weights map one to one.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FUSED_ATTENTION_KERNEL, fusedAttention, hasFusedKernel } from '../nn/fused';
import { Conv2d, GroupNorm, LayerNorm, Linear, silu } from '../nn/layers';
import { Module } from '../nn/module';
import type { Generator } from '../random';

export interface ResBlockParams {
  inChannels: number;
  outChannels: number;
  timeDim: number;
  groups: number;
  eps: number;
  generator: Generator;
}

/** GN-SiLU-conv3x3, + projected time embedding, GN-SiLU-conv3x3, + (1x1 skip) residual. */
export class ResBlock extends Module {
  private readonly norm1: GroupNorm;
  private readonly conv1: Conv2d;
  private readonly temb: Linear;
  private readonly norm2: GroupNorm;
  private readonly conv2: Conv2d;
  private readonly skip: Conv2d | null;

  constructor({ inChannels, outChannels, timeDim, groups, eps, generator }: ResBlockParams) {
    super();
    this.norm1 = this.addModule('norm1', new GroupNorm({ numGroups: groups, numChannels: inChannels, eps }));
    this.conv1 = this.addModule('conv1', new Conv2d({ inChannels, outChannels, kernelSize: 3, generator }));
    this.temb = this.addModule('temb', new Linear({ inFeatures: timeDim, outFeatures: outChannels, generator }));
    this.norm2 = this.addModule('norm2', new GroupNorm({ numGroups: groups, numChannels: outChannels, eps }));
    this.conv2 = this.addModule(
      'conv2',
      new Conv2d({ inChannels: outChannels, outChannels, kernelSize: 3, generator }),
    );
    this.skip =
      inChannels !== outChannels
        ? this.addModule('skip', new Conv2d({ inChannels, outChannels, kernelSize: 1, generator }))
        : null;
  }

  /** x: [B,H,W,Cin]; tembAct: silu(time embedding), [B, timeDim]. */
  forward(x: tf.Tensor4D, tembAct: tf.Tensor2D): tf.Tensor4D {
    return tf.tidy(() => {
      let h = this.conv1.forward(this.norm1.forwardSilu(x));
      const t = this.temb.forward(tembAct);
      h = tf.add(h, tf.reshape(t, [t.shape[0], 1, 1, t.shape[1] as number]));
      h = this.conv2.forward(this.norm2.forwardSilu(h));
      return tf.add(this.skip ? this.skip.forward(x) : x, h);
    });
  }
}

/** Multi-head attention; keys and values come from `context` (self-attention when context = x). */
export class Attention extends Module {
  private readonly heads: number;
  private readonly dim: number;
  private readonly q: Linear;
  private readonly k: Linear;
  private readonly v: Linear;
  private readonly o: Linear;

  constructor({ dim, contextDim, heads, generator }: { dim: number; contextDim: number; heads: number; generator: Generator }) {
    super();
    this.heads = heads;
    this.dim = dim;
    this.q = this.addModule('q', new Linear({ inFeatures: dim, outFeatures: dim, bias: false, generator }));
    this.k = this.addModule('k', new Linear({ inFeatures: contextDim, outFeatures: dim, bias: false, generator }));
    this.v = this.addModule('v', new Linear({ inFeatures: contextDim, outFeatures: dim, bias: false, generator }));
    this.o = this.addModule('o', new Linear({ inFeatures: dim, outFeatures: dim, generator }));
  }

  /** x: [B,L,D], context: [B,S,Dc] → [B,L,D]. */
  forward(x: tf.Tensor3D, context: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, l] = x.shape;
      const s = context.shape[1];
      const h = this.heads;
      const d = this.dim / h;
      if (hasFusedKernel(FUSED_ATTENTION_KERNEL)) {
        // One kernel each way, reading the heads from the projections' layout (see ../nn/fused.ts).
        const o = fusedAttention(this.q.forward(x) as tf.Tensor3D, this.k.forward(context) as tf.Tensor3D, this.v.forward(context) as tf.Tensor3D, h, 1 / Math.sqrt(d));
        return this.o.forward(o) as tf.Tensor3D;
      }
      // [B,L,D] -> [B,h,L,d] -> [B*h,L,d]
      const split = (t: tf.Tensor, len: number) =>
        tf.reshape(tf.transpose(tf.reshape(t, [b, len, h, d]), [0, 2, 1, 3]), [b * h, len, d]) as tf.Tensor3D;
      const q = split(this.q.forward(x), l);
      const k = split(this.k.forward(context), s);
      const v = split(this.v.forward(context), s);
      // The 1/sqrt(d) scale goes on q ([B*h, L, d]) rather than on the scores ([B*h, L, S]).
      const scores = tf.matMul(tf.mul(q, 1 / Math.sqrt(d)), k, false, true);
      const attn = tf.softmax(scores, -1);
      const out = tf.reshape(tf.transpose(tf.reshape(tf.matMul(attn, v), [b, h, l, d]), [0, 2, 1, 3]), [b, l, this.dim]);
      return this.o.forward(out) as tf.Tensor3D;
    });
  }
}

/**
 * GN → proj_in → [LN, self-attention] → [LN, cross-attention over the conditioning tokens] →
 * [LN, feed-forward (4x, SiLU)] → proj_out, with a residual around the whole block.
 */
export class TransformerBlock extends Module {
  private readonly norm: GroupNorm;
  private readonly projIn: Linear;
  private readonly ln1: LayerNorm;
  private readonly attn1: Attention;
  private readonly ln2: LayerNorm;
  private readonly attn2: Attention;
  private readonly ln3: LayerNorm;
  private readonly ff1: Linear;
  private readonly ff2: Linear;
  private readonly projOut: Linear;

  constructor({ channels, contextDim, heads, groups, eps, generator }: {
    channels: number; contextDim: number; heads: number; groups: number; eps: number; generator: Generator;
  }) {
    super();
    const c = channels;
    this.norm = this.addModule('norm', new GroupNorm({ numGroups: groups, numChannels: c, eps }));
    this.projIn = this.addModule('proj_in', new Linear({ inFeatures: c, outFeatures: c, generator }));
    this.ln1 = this.addModule('ln1', new LayerNorm({ dim: c }));
    this.attn1 = this.addModule('attn1', new Attention({ dim: c, contextDim: c, heads, generator }));
    this.ln2 = this.addModule('ln2', new LayerNorm({ dim: c }));
    this.attn2 = this.addModule('attn2', new Attention({ dim: c, contextDim, heads, generator }));
    this.ln3 = this.addModule('ln3', new LayerNorm({ dim: c }));
    this.ff1 = this.addModule('ff1', new Linear({ inFeatures: c, outFeatures: 4 * c, generator }));
    this.ff2 = this.addModule('ff2', new Linear({ inFeatures: 4 * c, outFeatures: c, generator }));
    this.projOut = this.addModule('proj_out', new Linear({ inFeatures: c, outFeatures: c, generator }));
  }

  /** x: [B,H,W,C], context: [B,S,Dc]. */
  forward(x: tf.Tensor4D, context: tf.Tensor3D): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, hh, ww, c] = x.shape;
      let h = this.projIn.forward(tf.reshape(this.norm.forward(x), [b, hh * ww, c])) as tf.Tensor3D;
      const hn = this.ln1.forward(h) as tf.Tensor3D;
      h = tf.add(h, this.attn1.forward(hn, hn));
      h = tf.add(h, this.attn2.forward(this.ln2.forward(h) as tf.Tensor3D, context));
      h = tf.add(h, this.ff2.forward(silu(this.ff1.forward(this.ln3.forward(h)))));
      h = this.projOut.forward(h) as tf.Tensor3D;
      return tf.add(x, tf.reshape(h, [b, hh, ww, c]));
    });
  }
}
