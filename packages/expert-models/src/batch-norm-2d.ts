/**
 * Batch normalisation over NHWC feature maps (Ioffe & Szegedy 2015), with PyTorch's conventions so
 * that torchvision weights and behaviour carry over:
 *
 * - `weight` (gamma, init 1) and `bias` (beta, init 0) are trainable parameters;
 * - `running_mean` (init 0) and `running_var` (init 1) are non-trainable variables ("buffers"),
 *   saved with the weights;
 * - training: `y = (x - mean_B) / sqrt(var_B + eps) * weight + bias` with the batch's biased
 *   variance; afterwards `running = (1 - momentum) * running + momentum * batch_stat`, where the
 *   running variance takes the unbiased batch variance (n / (n - 1), n = B*H*W), as PyTorch;
 * - inference: the running statistics replace the batch ones.
 *
 * `momentum` 0.1 and `eps` 1e-5 are PyTorch's defaults.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Module, fusedBatchNorm } from '@fad/diffusion-core';
import { assertInt, assertNumber, formatShape } from './validate';

/**
 * Variables that hold statistics rather than learned parameters (BN running mean/var). They are
 * never trainable and are left out of parameter counts. Internal registry.
 */
const BUFFERS = new WeakSet<tf.Variable>();

/** True when `v` is a statistics buffer (a BatchNorm running mean or variance), not a parameter. */
export function isBufferVariable(v: tf.Variable): boolean {
  return BUFFERS.has(v);
}

/** Constructor parameters of {@link BatchNorm2d}. */
export interface BatchNorm2dParams {
  /** Number of channels C (the last axis of the NHWC input). */
  numFeatures: number;
  /** Small constant added to the variance, default 1e-5. */
  eps?: number;
  /** Weight of the new batch statistic in the running average, default 0.1 (PyTorch convention). */
  momentum?: number;
}

/** Options of {@link BatchNorm2d.forward}. */
export interface BatchNormForwardOptions {
  /** Use batch statistics and update the running ones (true), or use the running ones (false). */
  training: boolean;
  /** Apply ReLU to the output (fused into the normalisation kernel where the backend has one). */
  relu?: boolean;
}

/** Batch normalisation of NHWC tensors, PyTorch `nn.BatchNorm2d` semantics. */
export class BatchNorm2d extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;

  constructor(params: BatchNorm2dParams) {
    super();
    const { numFeatures, eps = 1e-5, momentum = 0.1 } = params;
    assertInt('BatchNorm2d', 'numFeatures', numFeatures, 1);
    assertNumber('BatchNorm2d', 'eps', eps, { min: 0, minExclusive: true });
    assertNumber('BatchNorm2d', 'momentum', momentum, { min: 0, max: 1 });
    this.numFeatures = numFeatures;
    this.eps = eps;
    this.momentum = momentum;
    this.weight = this.addParameter('weight', tf.ones([numFeatures]));
    this.bias = this.addParameter('bias', tf.zeros([numFeatures]));
    this.runningMean = this.addParameter('running_mean', tf.zeros([numFeatures]), false);
    this.runningVar = this.addParameter('running_var', tf.ones([numFeatures]), false);
    BUFFERS.add(this.runningMean);
    BUFFERS.add(this.runningVar);
  }

  /**
   * Normalises `x` [B,H,W,C]. With `training`, the batch statistics are used and the running
   * statistics updated (by assignment after the output is computed; the update is not part of any
   * gradient). Without, the running statistics are used and nothing changes.
   */
  forward(x: tf.Tensor4D, options: BatchNormForwardOptions): tf.Tensor4D {
    if (x.rank !== 4 || x.shape[3] !== this.numFeatures) {
      throw new Error(`BatchNorm2d: expected NHWC input with ${this.numFeatures} channels, got shape ${formatShape(x.shape)}`);
    }
    if (typeof options?.training !== 'boolean') {
      throw new TypeError(`BatchNorm2d.forward: options.training must be true or false, got ${String(options?.training)}`);
    }
    if (!options.training) {
      return tf.tidy(() => {
        const scale = tf.mul(this.weight, tf.rsqrt(tf.add(this.runningVar, this.eps)));
        const shift = tf.sub(this.bias, tf.mul(this.runningMean, scale));
        const y = tf.add(tf.mul(x, scale), shift) as tf.Tensor4D;
        return options.relu ? tf.relu(y) : y;
      });
    }
    const [b, h, w] = x.shape;
    const n = b * h * w;
    if (n < 2) {
      throw new Error(`BatchNorm2d: training needs more than one value per channel, got input shape ${formatShape(x.shape)}`);
    }
    return tf.tidy(() => {
      // One FadBatchNorm kernel (statistics, normalisation, ReLU and the running averages; saves
      // only x and the statistics) on backends that have it (@fad/tfjs-native); composed ops
      // otherwise.
      const relu = options.relu === true;
      const m = this.momentum;
      const fused = fusedBatchNorm({
        x,
        gamma: this.weight as tf.Tensor1D,
        beta: this.bias as tf.Tensor1D,
        runningMean: this.runningMean as tf.Tensor1D,
        runningVar: this.runningVar as tf.Tensor1D,
        epsilon: this.eps,
        momentum: m,
        relu,
      });
      if (fused) {
        this.runningMean.assign(fused.runningMean);
        this.runningVar.assign(fused.runningVar);
        return fused.y as tf.Tensor4D;
      }
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      let y = tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps))), this.weight), this.bias) as tf.Tensor4D;
      if (relu) y = tf.relu(y);
      this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)));
      this.runningVar.assign(tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(variance, (m * n) / (n - 1))));
      return y;
    });
  }

  /** Number of learned parameters (weight and bias; the running statistics are not counted). */
  override numParameters(): number {
    return 2 * this.numFeatures;
  }

  /** Sets weight and bias trainable or frozen; the running statistics always stay non-trainable. */
  override setTrainable(trainable: boolean): void {
    this.weight.trainable = trainable;
    this.bias.trainable = trainable;
  }
}
