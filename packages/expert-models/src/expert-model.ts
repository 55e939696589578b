/**
 * The interface every expert classifier offers, and the base class that implements it on top of an
 * architecture-specific backbone. Feature alignment consumes `features` (the pooled penultimate
 * activations); evaluation uses `logits` / `predict`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Module } from '@fad/diffusion-core';
import { isBufferVariable } from './batch-norm-2d';
import type { ClassifierHead } from './classifier-head';
import { type ExpertConfig, type ExpertConfigInput, type InputSpec, featureDimOf, resolveExpertConfig } from './expert-config';
import { formatShape, show } from './validate';

/** Options of {@link Expert.features} and {@link Expert.logits}. */
export interface ExpertForwardOptions {
  /**
   * Training mode: BatchNorm uses batch statistics and updates its running statistics. Default
   * false (inference: running statistics, nothing changes). Ignored while the expert is frozen.
   */
  training?: boolean;
}

/** Options of {@link Expert.predict}. */
export interface ExpertPredictOptions {
  /** `'classes'` (default): int32 class indices [B]; `'probabilities'`: softmax [B, numClasses]. */
  output?: 'classes' | 'probabilities';
}

/** Features and logits from one forward pass. */
export interface ExpertForwardResult {
  /** Pooled penultimate features [B, featureDim]. */
  features: tf.Tensor2D;
  /** Class logits [B, numClasses]. */
  logits: tf.Tensor2D;
}

/** What every expert classifier provides, whatever its architecture. */
export interface Expert {
  /** The architecture config (JSON-able; saved in checkpoints). */
  readonly config: ExpertConfig;
  /** Size of `features`' last axis (2048 for ResNet50, 512 for ResNet18/34, `width` for ViT). */
  readonly featureDim: number;
  /** Expected input size, channels, value range and the normalisation applied internally. */
  readonly inputSpec: InputSpec;
  /** One name per class; `classNames[k]` is the name of logit k. */
  readonly classNames: readonly string[];
  readonly numClasses: number;
  /** True after `freeze()`: no variable is trainable and every pass runs in inference mode. */
  readonly frozen: boolean;
  /**
   * Pooled penultimate features [B, featureDim] of images x [B, size, size, channels] in
   * `inputSpec.range` (global average pool for ResNet; class token or token mean after the final
   * LayerNorm for ViT). Differentiable with respect to x. Inference mode unless `{training: true}`.
   */
  features(x: tf.Tensor4D, options?: ExpertForwardOptions): tf.Tensor2D;
  /** Class logits [B, numClasses]. */
  logits(x: tf.Tensor4D, options?: ExpertForwardOptions): tf.Tensor2D;
  /** Features and logits from a single pass. */
  forward(x: tf.Tensor4D, options?: ExpertForwardOptions): ExpertForwardResult;
  /**
   * Predictions in inference mode: int32 class indices [B] (arg-max of the logits, the lowest index
   * on ties) by default, or softmax probabilities [B, numClasses] with `{output: 'probabilities'}`.
   */
  predict(x: tf.Tensor4D, options?: ExpertPredictOptions): tf.Tensor;
  /** Makes every variable non-trainable and forces inference mode (for use as a fixed judge/aligner). */
  freeze(): void;
  /** Undoes `freeze()`: parameters trainable again (BatchNorm statistics never are). */
  unfreeze(): void;
  /** Frees every variable. */
  dispose(): void;
}

/** Constructor parameters shared by all experts. */
export interface ExpertModelParams {
  /** The architecture; validated and completed with `resolveExpertConfig`. */
  config: ExpertConfigInput;
  /** The architecture the subclass implements. */
  arch: ExpertConfig['arch'];
  /** Class names (length `numClasses`); default `class_0`, `class_1`, ... */
  classNames?: readonly string[];
}

/** Validated class names for a config. Internal. */
export function resolveClassNames(fn: string, classNames: readonly string[] | undefined, numClasses: number): string[] {
  if (classNames === undefined) return Array.from({ length: numClasses }, (_, i) => `class_${i}`);
  if (!Array.isArray(classNames) || classNames.length !== numClasses || !classNames.every((c) => typeof c === 'string')) {
    throw new RangeError(`${fn}: classNames must be an array of ${numClasses} strings (config.numClasses), got ${show(classNames)}`);
  }
  if (new Set(classNames).size !== classNames.length) {
    throw new RangeError(`${fn}: classNames must be distinct, got ${show(classNames)}`);
  }
  return classNames.slice();
}

/**
 * Base class of the experts: input checks, normalisation, freezing, heads and predictions. A
 * subclass builds its backbone and head in its constructor and implements `pooledFeatures`.
 */
export abstract class ExpertModel extends Module implements Expert {
  readonly config: ExpertConfig;
  readonly featureDim: number;
  readonly inputSpec: InputSpec;
  readonly classNames: readonly string[];
  readonly numClasses: number;
  private isFrozen = false;

  protected constructor(params: ExpertModelParams) {
    super();
    const name = this.constructor.name;
    if (typeof params?.config !== 'object' || params.config === null || params.config.arch !== params.arch) {
      throw new RangeError(`${name}: config.arch must be "${params.arch}", got ${show(params?.config?.arch)}`);
    }
    const config = resolveExpertConfig(params.config);
    this.config = config;
    this.inputSpec = config.input;
    this.numClasses = config.numClasses;
    this.featureDim = featureDimOf(config);
    this.classNames = Object.freeze(resolveClassNames(name, params.classNames, config.numClasses));
  }

  /** The classifier head (registered by the subclass). */
  protected abstract get head(): ClassifierHead;

  /** Backbone on normalised input: pooled features [B, featureDim]. */
  protected abstract pooledFeatures(x: tf.Tensor4D, training: boolean): tf.Tensor2D;

  get frozen(): boolean {
    return this.isFrozen;
  }

  /** Throws a clear error unless x is [B, size, size, channels] float32. */
  checkInput(x: tf.Tensor, caller = 'features'): void {
    const name = `${this.constructor.name}.${caller}`;
    const { size, channels } = this.inputSpec;
    const expected = `[B,${size},${size},${channels}]`;
    if (!(x instanceof tf.Tensor)) throw new TypeError(`${name}: x must be a tf.Tensor ${expected}, got ${show(x)}`);
    if (x.rank !== 4) throw new Error(`${name}: x must be a batch of images ${expected} (NHWC), got shape ${formatShape(x.shape)}`);
    const [, h, w, c] = x.shape;
    if (h !== size || w !== size) {
      throw new Error(`${name}: input size ${h}x${w} (shape ${formatShape(x.shape)}) does not match the expert's ${size}x${size}; expected ${expected}`);
    }
    if (c !== channels) {
      throw new Error(`${name}: input has ${c} channel(s) (shape ${formatShape(x.shape)}), the expert expects ${channels}; expected ${expected}`);
    }
    if (x.dtype !== 'float32') throw new TypeError(`${name}: x must be float32, got ${x.dtype}`);
  }

  private mode(caller: string, options: ExpertForwardOptions | undefined): boolean {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new TypeError(`${this.constructor.name}.${caller}: options must be an object like {training: false}, got ${show(options)}`);
    }
    const training = options?.training ?? false;
    if (typeof training !== 'boolean') {
      throw new TypeError(`${this.constructor.name}.${caller}: options.training must be true or false, got ${show(training)}`);
    }
    return training && !this.isFrozen;
  }

  private normalise(x: tf.Tensor4D): tf.Tensor4D {
    const { mean, std } = this.inputSpec;
    return tf.div(tf.sub(x, tf.tensor1d(mean)), tf.tensor1d(std)) as tf.Tensor4D;
  }

  features(x: tf.Tensor4D, options?: ExpertForwardOptions): tf.Tensor2D {
    this.checkInput(x, 'features');
    const training = this.mode('features', options);
    return tf.tidy(() => this.pooledFeatures(this.normalise(x), training));
  }

  logits(x: tf.Tensor4D, options?: ExpertForwardOptions): tf.Tensor2D {
    this.checkInput(x, 'logits');
    const training = this.mode('logits', options);
    return tf.tidy(() => this.head.forward(this.pooledFeatures(this.normalise(x), training)));
  }

  forward(x: tf.Tensor4D, options?: ExpertForwardOptions): ExpertForwardResult {
    this.checkInput(x, 'forward');
    const training = this.mode('forward', options);
    const features = tf.tidy(() => this.pooledFeatures(this.normalise(x), training));
    const logits = this.head.forward(features);
    return { features, logits };
  }

  predict(x: tf.Tensor4D, options: ExpertPredictOptions = {}): tf.Tensor {
    const output = options?.output ?? 'classes';
    if (output !== 'classes' && output !== 'probabilities') {
      throw new RangeError(`${this.constructor.name}.predict: options.output must be "classes" or "probabilities", got ${show(output)}`);
    }
    this.checkInput(x, 'predict');
    return tf.tidy(() => {
      const logits = this.head.forward(this.pooledFeatures(this.normalise(x), false));
      return output === 'classes' ? tf.argMax(logits, 1) : tf.softmax(logits);
    });
  }

  freeze(): void {
    this.isFrozen = true;
    this.setTrainable(false);
  }

  unfreeze(): void {
    this.isFrozen = false;
    this.setTrainable(true);
  }

  /** Sets the parameters trainable or not; BatchNorm running statistics always stay non-trainable. */
  override setTrainable(trainable: boolean): void {
    for (const [, v] of this.namedParameters()) v.trainable = trainable && !isBufferVariable(v);
  }

  /** Number of learned parameters (BatchNorm running statistics excluded, as PyTorch counts). */
  override numParameters(): number {
    return this.namedParameters().reduce((s, [, v]) => s + (isBufferVariable(v) ? 0 : v.size), 0);
  }

  /** Number of values in statistics buffers (BatchNorm running mean and variance). */
  numBufferValues(): number {
    return this.namedParameters().reduce((s, [, v]) => s + (isBufferVariable(v) ? v.size : 0), 0);
  }
}
