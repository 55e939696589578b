/**
 * Accuracy, confusion matrix and per-class precision/recall of an expert on labelled images
 * (inference mode), computed with `@fad/metrics`' `classificationReport`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { classificationReport } from '@fad/metrics';
import type { Expert } from './expert-model';
import { softmaxCrossEntropy } from './expert-trainer';
import { type ImageSet, type ImageSetInput, type LabelSetInput, gatherImages, gatherLabels, readImageSet, readLabelSet } from './image-batch';
import { assertInt, assertObject, formatShape } from './validate';

/** Parameters of {@link evaluateExpert}. */
export interface EvaluateExpertParams {
  expert: Expert;
  /** Images [N,H,W,C] in the expert's input range. */
  images: ImageSetInput;
  /** True class indices [N]. */
  labels: LabelSetInput;
  /** Images per forward pass, default 64. */
  batchSize?: number;
}

/** Scores of one class. */
export interface ClassEvaluation {
  label: number;
  name: string;
  /** TP / (TP + FP); 0 when the class is never predicted. */
  precision: number;
  /** TP / (TP + FN); 0 when the class has no samples. */
  recall: number;
  f1: number;
  /** Number of samples of the class. */
  support: number;
  /** Number of samples predicted as the class. */
  predicted: number;
}

/** Result of {@link evaluateExpert}. */
export interface ExpertEvaluation {
  numSamples: number;
  accuracy: number;
  /** Mean softmax cross-entropy. */
  loss: number;
  /** `confusionMatrix[t][p]`: samples of true class t predicted as p. */
  confusionMatrix: number[][];
  /** One entry per class 0..numClasses-1. */
  perClass: ClassEvaluation[];
  /** Unweighted means over the classes present in the labels or predictions (scikit-learn's rule). */
  macro: { precision: number; recall: number; f1: number };
}

/** Evaluation on a subset of an already-read image set. Internal (used by training). */
export function evaluateOnSet(args: { expert: Expert; set: ImageSet; labels: Int32Array; indices: ArrayLike<number>; batchSize: number }): ExpertEvaluation {
  const { expert, set, labels, indices, batchSize } = args;
  const n = indices.length;
  if (n === 0) throw new RangeError('evaluateExpert: no samples to evaluate');
  const predicted = new Int32Array(n);
  let lossSum = 0;
  for (let start = 0; start < n; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => indices[start + i]);
    const [loss, pred] = tf.tidy(() => {
      const x = gatherImages(set, idx);
      const y = tf.tensor1d(gatherLabels(labels, idx), 'int32');
      const logits = expert.logits(x);
      return [tf.mul(softmaxCrossEntropy(logits, y), idx.length), tf.argMax(logits, 1)];
    });
    lossSum += loss.dataSync()[0];
    predicted.set(pred.dataSync() as Int32Array, start);
    tf.dispose([loss, pred]);
  }
  const yTrue = gatherLabels(labels, indices);
  const report = classificationReport({ yTrue, yPred: predicted, numClasses: expert.numClasses });
  return {
    numSamples: n,
    accuracy: report.accuracy,
    loss: lossSum / n,
    confusionMatrix: report.confusionMatrix.map((r) => r.slice()),
    perClass: report.perClass.map((c) => ({
      label: c.label, name: expert.classNames[c.label], precision: c.precision, recall: c.recall, f1: c.f1, support: c.support, predicted: c.predicted,
    })),
    macro: { precision: report.macro.precision, recall: report.macro.recall, f1: report.macro.f1 },
  };
}

/** Checks that images match the expert's input size and channels. Internal. */
export function checkImageSet(fn: string, field: string, set: ImageSet, expert: Expert): void {
  const { size, channels } = expert.inputSpec;
  const [, h, w, c] = set.shape;
  if (h !== size || w !== size || c !== channels) {
    throw new RangeError(`${fn}: ${field} have shape ${formatShape(set.shape)}, the expert expects [N,${size},${size},${channels}]`);
  }
}

/** Evaluates the expert (inference mode) on labelled images. Leaves no tensors behind. */
export function evaluateExpert(params: EvaluateExpertParams): ExpertEvaluation {
  const fn = 'evaluateExpert';
  assertObject(fn, 'params', params);
  const { expert, batchSize = 64 } = params;
  assertInt(fn, 'batchSize', batchSize, 1);
  const set = readImageSet(fn, 'images', params.images);
  checkImageSet(fn, 'images', set, expert);
  const labels = readLabelSet(fn, 'labels', params.labels, set.shape[0], expert.numClasses);
  const indices = Array.from({ length: set.shape[0] }, (_, i) => i);
  return evaluateOnSet({ expert, set, labels, indices, batchSize });
}
