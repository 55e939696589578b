/**
 * The classifier applied to pooled features. Parameter names follow PyTorch: a linear head owns
 * `weight`/`bias` directly (torchvision's `fc`), an MLP head is an `nn.Sequential(Linear, ReLU,
 * Linear)` whose linears are `0.*` and `2.*`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Generator, Linear, Module } from '@fad/diffusion-core';
import type { HeadConfig } from './expert-config';
import { assertInt, formatShape } from './validate';

/** Constructor parameters of {@link ClassifierHead}. */
export interface ClassifierHeadParams {
  head: HeadConfig;
  inFeatures: number;
  numClasses: number;
  generator: Generator;
}

/** Maps pooled features [B, inFeatures] to class logits [B, numClasses]. */
export class ClassifierHead extends Module {
  readonly config: HeadConfig;
  readonly inFeatures: number;
  readonly numClasses: number;
  /** Linear head: `weight` [in, classes] and `bias`; null for an MLP head. */
  private readonly weight: tf.Variable | null = null;
  private readonly bias: tf.Variable | null = null;
  /** MLP head: the two linears (`0`, `2`); null for a linear head. */
  private readonly hidden: Linear | null = null;
  private readonly out: Linear | null = null;

  constructor(params: ClassifierHeadParams) {
    super();
    const { head, inFeatures, numClasses, generator } = params;
    assertInt('ClassifierHead', 'inFeatures', inFeatures, 1);
    assertInt('ClassifierHead', 'numClasses', numClasses, 1);
    this.config = head;
    this.inFeatures = inFeatures;
    this.numClasses = numClasses;
    if (head.type === 'linear') {
      // PyTorch's default Linear init, U(-1/sqrt(in), 1/sqrt(in)), drawn as diffusion-core's Linear does.
      const bound = 1 / Math.sqrt(inFeatures);
      this.weight = this.addParameter('weight', generator.uniform([inFeatures, numClasses], -bound, bound));
      this.bias = this.addParameter('bias', generator.uniform([numClasses], -bound, bound));
    } else if (head.type === 'mlp') {
      assertInt('ClassifierHead', 'head.hiddenDim', head.hiddenDim, 1);
      this.hidden = this.addModule('0', new Linear({ inFeatures, outFeatures: head.hiddenDim, generator }));
      this.out = this.addModule('2', new Linear({ inFeatures: head.hiddenDim, outFeatures: numClasses, generator }));
    } else {
      throw new RangeError(`ClassifierHead: head.type must be "linear" or "mlp", got ${JSON.stringify((head as { type: unknown }).type)}`);
    }
  }

  /** Logits [B, numClasses]. */
  forward(x: tf.Tensor2D): tf.Tensor2D {
    if (x.rank !== 2 || x.shape[1] !== this.inFeatures) {
      throw new Error(`ClassifierHead: expected features [B,${this.inFeatures}], got shape ${formatShape(x.shape)}`);
    }
    return tf.tidy(() => {
      if (this.weight && this.bias) return tf.add(tf.matMul(x, this.weight as tf.Tensor2D), this.bias) as tf.Tensor2D;
      return this.out!.forward(tf.relu(this.hidden!.forward(x))) as tf.Tensor2D;
    });
  }
}
