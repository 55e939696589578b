/**
 * The U-Net's building blocks, Stable Diffusion style, NHWC. Member names follow the project's
 * reference workload (shared/bench/reference_workload.py), so weights map one to one.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FUSED_ATTENTION_KERNEL, fusedAttention, hasFusedKernel } from '../nn/fused';
import { Conv2d, GroupNorm, LayerNorm, Linear, silu } from '../nn/layers';
import { Module } from '../nn/module';
import type { Generator } from '../random';

/**
 * Receives named intermediate activations during a forward pass (the U-Net's module-path taps).
 * `want` says whether a name is requested, so that blocks keep (or compute) extra tensors only
 * then; `put` receives a tensor owned by the caller's tidy scope (blocks return tapped tensors from
 * their own tidy before putting them).
 */
export interface ActivationTap {
  want(name: string): boolean;
  put(name: string, t: tf.Tensor4D): void;
}

/** A tap whose names are `${prefix}.${name}`. */
export function scopedTap(tap: ActivationTap | undefined, prefix: string): ActivationTap | undefined {
  if (!tap) return undefined;
  return { want: (n) => tap.want(`${prefix}.${n}`), put: (n, t) => tap.put(`${prefix}.${n}`, t) };
}

export interface ResBlockParams {
  inChannels: number;
  outChannels: number;
  timeDim: number;
  groups: number;
  eps: number;
  generator: Generator;
  /** Time embedding as GroupNorm scale and shift (`temb` projects to 2 x outChannels) instead of added. */
  timeScaleShift?: boolean;
  /** The output (skip + residual) is divided by this (default 1). */
  outputScale?: number;
}

/**
 * GN-SiLU-conv3x3, + projected time embedding, GN-SiLU-conv3x3, + (1x1 skip) residual: diffusers'
 * ResnetBlock2D (members norm1, conv1, time_emb_proj = `temb`, norm2, conv2, conv_shortcut = `skip`).
 */
export class ResBlock extends Module {
  private readonly norm1: GroupNorm;
  private readonly conv1: Conv2d;
  private readonly temb: Linear;
  private readonly norm2: GroupNorm;
  private readonly conv2: Conv2d;
  private readonly skip: Conv2d | null;
  private readonly timeScaleShift: boolean;
  private readonly outputScale: number;

  constructor({ inChannels, outChannels, timeDim, groups, eps, generator, timeScaleShift = false, outputScale = 1 }: ResBlockParams) {
    super();
    this.timeScaleShift = timeScaleShift;
    this.outputScale = outputScale;
    this.norm1 = this.addModule('norm1', new GroupNorm({ numGroups: groups, numChannels: inChannels, eps }));
    this.conv1 = this.addModule('conv1', new Conv2d({ inChannels, outChannels, kernelSize: 3, generator }));
    this.temb = this.addModule('temb', new Linear({ inFeatures: timeDim, outFeatures: timeScaleShift ? 2 * outChannels : outChannels, generator }));
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

  /**
   * x: [B,H,W,Cin]; tembAct: silu(time embedding), [B, timeDim]. `tap` receives `conv1`, `conv2`
   * and `conv_shortcut` (the 1x1 skip conv's output, when the block has one).
   */
  forward(x: tf.Tensor4D, tembAct: tf.Tensor2D, tap?: ActivationTap): tf.Tensor4D {
    // Tapped tensors leave this tidy as part of its result, so the caller's scope owns them.
    const { out, ...tapped } = tf.tidy(() => {
      const kept: Record<string, tf.Tensor4D> = {};
      const keep = (n: string, t: tf.Tensor4D) => {
        if (tap?.want(n)) kept[n] = t;
      };
      let h = this.conv1.forward(this.norm1.forwardSilu(x));
      keep('conv1', h);
      const t = this.temb.forward(tembAct);
      const n = t.shape[1] as number;
      if (this.timeScaleShift) {
        const [scale, shift] = tf.split(tf.reshape(t, [t.shape[0], 1, 1, n]), 2, 3);
        h = silu(tf.add(tf.mul(this.norm2.forward(h), tf.add(scale, 1)), shift));
      } else {
        h = tf.add(h, tf.reshape(t, [t.shape[0], 1, 1, n]));
        h = this.norm2.forwardSilu(h);
      }
      h = this.conv2.forward(h);
      keep('conv2', h);
      let sc = x;
      if (this.skip) {
        sc = this.skip.forward(x);
        keep('conv_shortcut', sc);
      }
      const sum = tf.add(sc, h) as tf.Tensor4D;
      return { ...kept, out: this.outputScale === 1 ? sum : (tf.div(sum, this.outputScale) as tf.Tensor4D) };
    }) as Record<string, tf.Tensor4D>;
    if (tap) for (const [name, t] of Object.entries(tapped)) tap.put(name, t);
    return out;
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
 * [LN, feed-forward] → proj_out, with a residual around the whole block: diffusers'
 * Transformer2DModel with one BasicTransformerBlock. The feed-forward is 4x Linear + SiLU (`silu`)
 * or diffusers' GEGLU (`geglu`: ff1 projects to 2 x 4C, value * GELU(gate) with the exact erf GELU).
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
  private readonly feedForward: 'silu' | 'geglu';

  constructor({ channels, contextDim, heads, groups, eps, generator, feedForward = 'silu' }: {
    channels: number; contextDim: number; heads: number; groups: number;
    /** eps of the GroupNorm (the LayerNorms use 1e-5). */
    eps: number;
    generator: Generator;
    feedForward?: 'silu' | 'geglu';
  }) {
    super();
    const c = channels;
    this.feedForward = feedForward;
    this.norm = this.addModule('norm', new GroupNorm({ numGroups: groups, numChannels: c, eps }));
    this.projIn = this.addModule('proj_in', new Linear({ inFeatures: c, outFeatures: c, generator }));
    this.ln1 = this.addModule('ln1', new LayerNorm({ dim: c }));
    this.attn1 = this.addModule('attn1', new Attention({ dim: c, contextDim: c, heads, generator }));
    this.ln2 = this.addModule('ln2', new LayerNorm({ dim: c }));
    this.attn2 = this.addModule('attn2', new Attention({ dim: c, contextDim, heads, generator }));
    this.ln3 = this.addModule('ln3', new LayerNorm({ dim: c }));
    this.ff1 = this.addModule('ff1', new Linear({ inFeatures: c, outFeatures: (feedForward === 'geglu' ? 8 : 4) * c, generator }));
    this.ff2 = this.addModule('ff2', new Linear({ inFeatures: 4 * c, outFeatures: c, generator }));
    this.projOut = this.addModule('proj_out', new Linear({ inFeatures: c, outFeatures: c, generator }));
  }

  /**
   * GEGLU on [B,L,C]: ff1's first 4C outputs (the value) times GELU (exact, erf) of its last 4C
   * (the gate). The weight is split rather than the [B,L,8C] activation (cheaper, same values).
   */
  private geglu(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const w = this.ff1.weight as tf.Tensor2D;
      const b = this.ff1.bias as tf.Tensor1D;
      const [c, n] = w.shape;
      const x2 = tf.reshape(x, [-1, c]) as tf.Tensor2D;
      const half = (i: number) => tf.add(tf.matMul(x2, tf.slice(w, [0, i * (n / 2)], [c, n / 2])), tf.slice(b, [i * (n / 2)], [n / 2]));
      const value = half(0);
      const gate = half(1);
      const gelu = tf.mul(tf.mul(gate, 0.5), tf.add(tf.erf(tf.mul(gate, Math.SQRT1_2)), 1));
      return tf.reshape(tf.mul(value, gelu), [...x.shape.slice(0, -1), n / 2]);
    });
  }

  /** x: [B,H,W,C], context: [B,S,Dc]. */
  forward(x: tf.Tensor4D, context: tf.Tensor3D): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, hh, ww, c] = x.shape;
      let h = this.projIn.forward(tf.reshape(this.norm.forward(x), [b, hh * ww, c])) as tf.Tensor3D;
      const hn = this.ln1.forward(h) as tf.Tensor3D;
      h = tf.add(h, this.attn1.forward(hn, hn));
      h = tf.add(h, this.attn2.forward(this.ln2.forward(h) as tf.Tensor3D, context));
      const h3 = this.ln3.forward(h);
      h = tf.add(h, this.ff2.forward(this.feedForward === 'geglu' ? this.geglu(h3) : silu(this.ff1.forward(h3))));
      h = this.projOut.forward(h) as tf.Tensor3D;
      return tf.add(x, tf.reshape(h, [b, hh, ww, c]));
    });
  }
}

