/**
 * A small KL-regularised convolutional autoencoder for latent diffusion, in the style of diffusers'
 * `AutoencoderKL` (Rombach et al. 2022) but without attention, tiny and fast on a CPU. NHWC.
 *
 * Encoder: conv_in → per level `layersPerBlock` res-blocks (+ a stride-2 conv between levels) →
 * mid res-block → GN-SiLU → conv_out to 2 x latentChannels: the mean and the log-variance of a
 * diagonal Gaussian posterior q(z | x).
 * Decoder: conv_in → mid res-block → per level (bottom first) `layersPerBlock + 1` res-blocks
 * (+ nearest 2x upsampling and a conv between levels) → GN-SiLU → conv_out.
 *
 * Parameter names (the keys of saved files): `encoder.conv_in.weight`, `encoder.down_res.{i}.*`,
 * `encoder.downsample.{level}.*`, `encoder.mid_res.*`, `encoder.norm_out.*`, `encoder.conv_out.*`,
 * and the same under `decoder.` with `up_res.{i}` and `upsample.{j}`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, GroupNorm } from '../nn/layers';
import { Module } from '../nn/module';
import { upsampleNearest2x } from '../nn/upsample';
import { Generator } from '../random';
import { type AutoencoderKLConfig, autoencoderDownsamplingFactor, resolveAutoencoderConfig } from './autoencoder-config';

/** The log-variance is clamped to this range, as diffusers' DiagonalGaussianDistribution. */
export const LOG_VAR_RANGE: readonly [number, number] = [-30, 20];

/** GN-SiLU-conv3x3, GN-SiLU-conv3x3, + (1x1 skip) residual: the U-Net's ResBlock without the time embedding. */
export class AutoencoderResBlock extends Module {
  private readonly norm1: GroupNorm;
  private readonly conv1: Conv2d;
  private readonly norm2: GroupNorm;
  private readonly conv2: Conv2d;
  private readonly skip: Conv2d | null;

  constructor({ inChannels, outChannels, groups, eps, generator }: { inChannels: number; outChannels: number; groups: number; eps: number; generator: Generator }) {
    super();
    this.norm1 = this.addModule('norm1', new GroupNorm({ numGroups: groups, numChannels: inChannels, eps }));
    this.conv1 = this.addModule('conv1', new Conv2d({ inChannels, outChannels, kernelSize: 3, generator }));
    this.norm2 = this.addModule('norm2', new GroupNorm({ numGroups: groups, numChannels: outChannels, eps }));
    this.conv2 = this.addModule('conv2', new Conv2d({ inChannels: outChannels, outChannels, kernelSize: 3, generator }));
    this.skip = inChannels !== outChannels ? this.addModule('skip', new Conv2d({ inChannels, outChannels, kernelSize: 1, generator })) : null;
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const h = this.conv2.forward(this.norm2.forwardSilu(this.conv1.forward(this.norm1.forwardSilu(x))));
      return tf.add(this.skip ? this.skip.forward(x) : x, h);
    });
  }
}

/** x [B,H,W,inChannels] → moments [B,H/f,W/f,2*latentChannels] (mean, then log-variance). */
export class AutoencoderEncoder extends Module {
  private readonly convIn: Conv2d;
  private readonly res: AutoencoderResBlock[] = [];
  private readonly down: Conv2d[] = [];
  private readonly midRes: AutoencoderResBlock;
  private readonly normOut: GroupNorm;
  private readonly convOut: Conv2d;
  private readonly config: AutoencoderKLConfig;

  constructor(c: AutoencoderKLConfig, gen: Generator) {
    super();
    this.config = c;
    const ch = c.blockChannels;
    const rb = (cin: number, cout: number) => new AutoencoderResBlock({ inChannels: cin, outChannels: cout, groups: c.normGroups, eps: c.normEps, generator: gen });
    this.convIn = this.addModule('conv_in', new Conv2d({ inChannels: c.inChannels, outChannels: ch[0], kernelSize: 3, generator: gen }));
    let cin = ch[0];
    let i = 0;
    ch.forEach((cl, lvl) => {
      for (let j = 0; j < c.layersPerBlock; j++, i++) {
        this.res.push(this.addModule(`down_res.${i}`, rb(cin, cl)));
        cin = cl;
      }
      if (lvl !== ch.length - 1) {
        this.down.push(this.addModule(`downsample.${lvl}`, new Conv2d({ inChannels: cl, outChannels: cl, kernelSize: 3, stride: 2, generator: gen })));
      }
    });
    this.midRes = this.addModule('mid_res', rb(cin, cin));
    this.normOut = this.addModule('norm_out', new GroupNorm({ numGroups: c.normGroups, numChannels: cin, eps: c.normEps }));
    this.convOut = this.addModule('conv_out', new Conv2d({ inChannels: cin, outChannels: 2 * c.latentChannels, kernelSize: 3, generator: gen }));
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    const c = this.config;
    return tf.tidy(() => {
      let h = this.convIn.forward(x);
      let i = 0;
      for (let lvl = 0; lvl < c.blockChannels.length; lvl++) {
        for (let j = 0; j < c.layersPerBlock; j++, i++) h = this.res[i].forward(h);
        if (lvl !== c.blockChannels.length - 1) h = this.down[lvl].forward(h);
      }
      h = this.midRes.forward(h);
      return this.convOut.forward(this.normOut.forwardSilu(h));
    });
  }
}

/** z [B,h,w,latentChannels] → x [B,h*f,w*f,outChannels]. */
export class AutoencoderDecoder extends Module {
  private readonly convIn: Conv2d;
  private readonly midRes: AutoencoderResBlock;
  private readonly res: AutoencoderResBlock[] = [];
  private readonly up: Conv2d[] = [];
  private readonly normOut: GroupNorm;
  private readonly convOut: Conv2d;
  private readonly config: AutoencoderKLConfig;

  constructor(c: AutoencoderKLConfig, gen: Generator) {
    super();
    this.config = c;
    const ch = c.blockChannels;
    const rb = (cin: number, cout: number) => new AutoencoderResBlock({ inChannels: cin, outChannels: cout, groups: c.normGroups, eps: c.normEps, generator: gen });
    let cin = ch[ch.length - 1];
    this.convIn = this.addModule('conv_in', new Conv2d({ inChannels: c.latentChannels, outChannels: cin, kernelSize: 3, generator: gen }));
    this.midRes = this.addModule('mid_res', rb(cin, cin));
    let i = 0;
    for (let lvl = ch.length - 1; lvl >= 0; lvl--) {
      const cl = ch[lvl];
      for (let j = 0; j < c.layersPerBlock + 1; j++, i++) {
        this.res.push(this.addModule(`up_res.${i}`, rb(cin, cl)));
        cin = cl;
      }
      if (lvl !== 0) {
        this.up.push(this.addModule(`upsample.${ch.length - 1 - lvl}`, new Conv2d({ inChannels: cl, outChannels: cl, kernelSize: 3, generator: gen })));
      }
    }
    this.normOut = this.addModule('norm_out', new GroupNorm({ numGroups: c.normGroups, numChannels: ch[0], eps: c.normEps }));
    this.convOut = this.addModule('conv_out', new Conv2d({ inChannels: ch[0], outChannels: c.outChannels, kernelSize: 3, generator: gen }));
  }

  forward(z: tf.Tensor4D): tf.Tensor4D {
    const c = this.config;
    return tf.tidy(() => {
      let h = this.midRes.forward(this.convIn.forward(z));
      let i = 0;
      let u = 0;
      for (let lvl = c.blockChannels.length - 1; lvl >= 0; lvl--) {
        for (let j = 0; j < c.layersPerBlock + 1; j++, i++) h = this.res[i].forward(h);
        if (lvl !== 0) h = this.up[u++].forward(upsampleNearest2x(h));
      }
      return this.convOut.forward(this.normOut.forwardSilu(h));
    });
  }
}

/** The posterior q(z | x) = N(mean, exp(logVar)), each [B,h,w,latentChannels]. */
export interface LatentDistribution {
  mean: tf.Tensor4D;
  logVar: tf.Tensor4D;
}

export interface AutoencoderForwardParams {
  /** Images [B,H,W,inChannels] in the model's range (the project uses [-1, 1]); H, W divisible by 2^(levels-1). */
  x: tf.Tensor4D;
  /**
   * With a generator, z is drawn from the posterior (reparameterisation, as in training); without,
   * z is its mode (the mean).
   */
  generator?: Generator;
}

export interface AutoencoderForwardResult {
  reconstruction: tf.Tensor4D;
  mean: tf.Tensor4D;
  logVar: tf.Tensor4D;
  /** The (unscaled) latent that was decoded. */
  latent: tf.Tensor4D;
}

export class AutoencoderKL extends Module {
  private currentConfig: AutoencoderKLConfig;
  readonly encoder: AutoencoderEncoder;
  readonly decoder: AutoencoderDecoder;

  /**
   * @param config partial config; defaults fill the rest (see `DEFAULT_AUTOENCODER_CONFIG`).
   * @param options.seed seed of the weight initialisation (default 0).
   */
  constructor(config: Partial<AutoencoderKLConfig> = {}, options: { seed?: number } = {}) {
    super();
    const c = (this.currentConfig = resolveAutoencoderConfig(config));
    const gen = new Generator(options.seed ?? 0);
    this.encoder = this.addModule('encoder', new AutoencoderEncoder(c, gen));
    this.decoder = this.addModule('decoder', new AutoencoderDecoder(c, gen));
  }

  /** The config (a copy-on-write object: `setScalingFactor` replaces it). */
  get config(): AutoencoderKLConfig {
    return this.currentConfig;
  }

  /** The factor by which the encoder shrinks each side: 2^(levels-1). */
  get downsamplingFactor(): number {
    return autoencoderDownsamplingFactor(this.currentConfig);
  }

  /** Stores a new scaling factor in the config (saved with the weights). */
  setScalingFactor(scalingFactor: number): void {
    this.currentConfig = resolveAutoencoderConfig({ ...this.currentConfig, scalingFactor });
  }

  /** The latent shape [h, w, latentChannels] of images of size height x width. */
  latentShape(height: number, width: number = height): [number, number, number] {
    const f = this.downsamplingFactor;
    if (!Number.isInteger(height) || !Number.isInteger(width) || height <= 0 || width <= 0 || height % f !== 0 || width % f !== 0) {
      throw new RangeError(`AutoencoderKL.latentShape: image size ${height}x${width} must be positive and divisible by ${f} (2^(levels-1))`);
    }
    return [height / f, width / f, this.currentConfig.latentChannels];
  }

  /** The posterior q(z | x): mean and (clamped) log-variance. */
  encode(x: tf.Tensor4D): LatentDistribution {
    this.validate('encode', 'x', x, this.currentConfig.inChannels, this.downsamplingFactor);
    const k = this.currentConfig.latentChannels;
    const [mean, logVar] = tf.tidy(() => {
      const moments = this.encoder.forward(x);
      const [m, lv] = tf.split(moments, [k, k], 3);
      return [m, tf.clipByValue(lv, LOG_VAR_RANGE[0], LOG_VAR_RANGE[1])];
    }) as [tf.Tensor4D, tf.Tensor4D];
    return { mean, logVar };
  }

  /** Images from (unscaled) latents z. */
  decode(z: tf.Tensor4D): tf.Tensor4D {
    this.validate('decode', 'z', z, this.currentConfig.latentChannels, 1);
    return this.decoder.forward(z);
  }

  /** Encode, take a latent (sampled with `generator`, else the mean), decode. */
  forward({ x, generator }: AutoencoderForwardParams): AutoencoderForwardResult {
    const { mean, logVar } = this.encode(x);
    const out = tf.tidy(() => {
      const latent = generator ? sampleLatent({ mean, logVar, generator }) : tf.clone(mean);
      return { latent, reconstruction: this.decoder.forward(latent) };
    });
    return { reconstruction: out.reconstruction, mean, logVar, latent: out.latent };
  }

  private validate(method: string, name: string, t: tf.Tensor4D, channels: number, factor: number): void {
    if (!t || t.rank !== 4 || t.shape[3] !== channels) {
      throw new Error(`AutoencoderKL.${method}: ${name} must be NHWC [B,H,W,${channels}], got shape [${t?.shape}]`);
    }
    if (t.shape[1] % factor !== 0 || t.shape[2] % factor !== 0) {
      throw new Error(`AutoencoderKL.${method}: ${name} size ${t.shape[1]}x${t.shape[2]} must be divisible by ${factor} (2^(levels-1))`);
    }
  }
}

/** z = mean + exp(logVar / 2) * eps with eps ~ N(0, I) from the seeded generator (reparameterisation). */
export function sampleLatent({ mean, logVar, generator }: LatentDistribution & { generator: Generator }): tf.Tensor4D {
  if (!mean || !logVar || mean.rank !== 4 || mean.shape.some((d, i) => d !== logVar.shape[i])) {
    throw new Error(`sampleLatent: mean and logVar must be 4-D tensors of the same shape, got [${mean?.shape}] and [${logVar?.shape}]`);
  }
  if (!(generator instanceof Generator)) throw new TypeError('sampleLatent: generator must be a Generator');
  return tf.tidy(() => tf.add(mean, tf.mul(tf.exp(tf.mul(logVar, 0.5)), generator.normal(mean.shape)))) as tf.Tensor4D;
}
