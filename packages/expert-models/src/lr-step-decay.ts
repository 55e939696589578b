/** Step learning-rate decay (PyTorch `StepLR`). */
import { assertInt, assertNumber } from './validate';

/** Parameters of {@link stepDecayLearningRate}. */
export interface StepDecayParams {
  /** Learning rate of the first epoch, > 0. */
  baseLearningRate: number;
  /** Factor applied every `stepEpochs` epochs, in (0, 1] (paper: 0.7 each epoch). */
  gamma: number;
  /** Epochs between decays, >= 1. */
  stepEpochs: number;
  /** Zero-based epoch. */
  epoch: number;
}

/** `baseLearningRate * gamma ^ floor(epoch / stepEpochs)`. */
export function stepDecayLearningRate(params: StepDecayParams): number {
  const { baseLearningRate, gamma, stepEpochs, epoch } = params;
  assertNumber('stepDecayLearningRate', 'baseLearningRate', baseLearningRate, { min: 0, minExclusive: true });
  assertNumber('stepDecayLearningRate', 'gamma', gamma, { min: 0, max: 1, minExclusive: true });
  assertInt('stepDecayLearningRate', 'stepEpochs', stepEpochs, 1);
  assertInt('stepDecayLearningRate', 'epoch', epoch, 0);
  return baseLearningRate * gamma ** Math.floor(epoch / stepEpochs);
}
