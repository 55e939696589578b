/**
 * One optimisation step of an expert classifier: softmax cross-entropy on the logits in training
 * mode (BatchNorm batch statistics, running statistics updated), gradients of the trainable
 * variables, Adam update. `trainExpert` drives it over epochs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Adam, type AdamState } from '@fad/diffusion-core';
import type { ExpertModel } from './expert-model';
import { readLabelSet } from './image-batch';
import { assertKnownKeys, assertNumber, assertObject, assertOneOf, show } from './validate';

/** How weight decay is applied. */
export const WEIGHT_DECAY_MODES = ['l2', 'decoupled'] as const;
/**
 * `'l2'`: `weightDecay * w` is added to the gradient before Adam (PyTorch `torch.optim.Adam`'s
 * `weight_decay`); `'decoupled'`: subtracted from the weights after the Adam step, scaled by the
 * learning rate (AdamW).
 */
export type WeightDecayMode = (typeof WEIGHT_DECAY_MODES)[number];

/** Constructor parameters of {@link ExpertTrainer}. */
export interface ExpertTrainerParams {
  /** The model to train (not frozen). Its trainable variables at construction are optimised. */
  expert: ExpertModel;
  /** Default learning rate of a step, default 1e-4 (the paper's). */
  learningRate?: number;
  /** Weight decay coefficient, >= 0, default 0. Applies to every trainable variable. */
  weightDecay?: number;
  /** Default `'l2'` (as PyTorch Adam). */
  weightDecayMode?: WeightDecayMode;
}

/** Parameters of {@link ExpertTrainer.trainStep}. */
export interface TrainStepParams {
  /** Augmented images [B,H,W,C] in the expert's input range. */
  images: tf.Tensor4D;
  /** Class indices [B]. */
  labels: tf.Tensor1D | ArrayLike<number>;
  /** Learning rate of this step (schedules); default the trainer's. */
  learningRate?: number;
}

/** Result of one step. */
export interface TrainStepResult {
  /** Optimiser steps taken so far (1 after the first). */
  step: number;
  /** Mean cross-entropy of the batch before the update. */
  loss: number;
  /** Share of the batch the training-mode logits got right, before the update. */
  accuracy: number;
  learningRate: number;
}

/** Mean softmax cross-entropy of logits [B,K] against integer labels [B]. */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });
}

/** Adam training of an expert, one batch at a time. Dispose it to free the optimiser state. */
export class ExpertTrainer {
  readonly expert: ExpertModel;
  readonly learningRate: number;
  readonly weightDecay: number;
  readonly weightDecayMode: WeightDecayMode;
  private readonly variables: tf.Variable[];
  private readonly optimizer: Adam;

  constructor(params: ExpertTrainerParams) {
    const fn = 'ExpertTrainer';
    assertObject(fn, 'params', params);
    assertKnownKeys(fn, '', params, ['expert', 'learningRate', 'weightDecay', 'weightDecayMode']);
    const { expert, learningRate = 1e-4, weightDecay = 0, weightDecayMode = 'l2' } = params;
    if (!expert || typeof (expert as ExpertModel).trainableVariables !== 'function') {
      throw new TypeError(`${fn}: expert must be an expert model (ResNet or VisionTransformer), got ${show(expert)}`);
    }
    if (expert.frozen) throw new Error(`${fn}: the expert is frozen; call expert.unfreeze() before training it`);
    assertNumber(fn, 'learningRate', learningRate, { min: 0, minExclusive: true });
    assertNumber(fn, 'weightDecay', weightDecay, { min: 0 });
    assertOneOf(fn, 'weightDecayMode', weightDecayMode, WEIGHT_DECAY_MODES);
    this.expert = expert;
    this.learningRate = learningRate;
    this.weightDecay = weightDecay;
    this.weightDecayMode = weightDecayMode;
    this.variables = expert.trainableVariables();
    if (this.variables.length === 0) throw new Error(`${fn}: the expert has no trainable variables`);
    // Built inside a tidy scope: diffusion-core's Adam creates its moment variables from
    // `tf.zerosLike` tensors that it does not dispose (2 tensors per variable would leak).
    let optimizer: Adam | undefined;
    tf.tidy(() => {
      optimizer = new Adam(this.variables, { learningRate, weightDecay: weightDecayMode === 'decoupled' ? weightDecay : 0 });
    });
    this.optimizer = optimizer!;
  }

  /** Optimiser steps taken. */
  get step(): number {
    return this.optimizer.step;
  }

  /** One forward/backward/update on a batch. Leaves no tensors behind. */
  trainStep(params: TrainStepParams): TrainStepResult {
    const fn = 'ExpertTrainer.trainStep';
    assertObject(fn, 'params', params);
    const { images } = params;
    const learningRate = params.learningRate ?? this.learningRate;
    assertNumber(fn, 'learningRate', learningRate, { min: 0, minExclusive: true });
    if (this.expert.frozen) throw new Error(`${fn}: the expert was frozen after the trainer was made; call expert.unfreeze()`);
    this.expert.checkInput(images, 'trainStep');
    const b = images.shape[0];
    const labelArr = readLabelSet(fn, 'labels', params.labels, b, this.expert.numClasses);
    const labels = tf.tensor1d(labelArr, 'int32');
    let predicted: tf.Tensor | null = null;
    let grads: tf.Tensor[] = [];
    try {
      const { value, grads: named } = tf.variableGrads(() => {
        const logits = this.expert.logits(images, { training: true });
        predicted = tf.keep(tf.argMax(logits, 1));
        return softmaxCrossEntropy(logits, labels);
      }, this.variables);
      const loss = value.dataSync()[0];
      value.dispose();
      grads = this.variables.map((v) => named[v.name] ?? tf.zerosLike(v));
      if (!Number.isFinite(loss)) {
        throw new Error(`${fn}: non-finite loss (${loss}) at step ${this.step + 1}; lower the learning rate or check the inputs`);
      }
      if (this.weightDecayMode === 'l2' && this.weightDecay > 0) {
        const decayed = tf.tidy(() => grads.map((g, i) => tf.add(g, tf.mul(this.variables[i], this.weightDecay))));
        tf.dispose(grads);
        grads = decayed;
      }
      this.optimizer.apply(grads, learningRate);
      const pred = (predicted as tf.Tensor | null)!.dataSync();
      let correct = 0;
      for (let i = 0; i < b; i++) if (pred[i] === labelArr[i]) correct++;
      return { step: this.step, loss, accuracy: correct / b, learningRate };
    } finally {
      labels.dispose();
      (predicted as tf.Tensor | null)?.dispose();
      tf.dispose(grads);
    }
  }

  /**
   * The optimiser's state (step and Adam moments, in the order of `expert.trainableVariables()`),
   * copied out, for checkpoints. The expert's own variables are saved separately (`stateDict`).
   */
  getState(): AdamState {
    const s = this.optimizer.getState();
    return { step: s.step, m: s.m.map((x) => x.slice()), v: s.v.map((x) => x.slice()) };
  }

  /** Restores {@link getState} output (same expert architecture). Throws if the sizes differ. */
  setState(state: AdamState): void {
    try {
      this.optimizer.setState(state);
    } catch (e) {
      throw new Error(`ExpertTrainer.setState: ${(e as Error).message.replace(/^Adam\.setState: /, '')}`);
    }
  }

  /** Frees the optimiser's moment variables (not the expert). */
  dispose(): void {
    this.optimizer.dispose();
  }
}
