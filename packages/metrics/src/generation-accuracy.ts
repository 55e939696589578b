/**
 * Generation accuracy: the share of generated images that an expert classifier assigns to the class
 * they were generated for, per class and overall.
 */
import { readLabelPair } from './classification-metrics';
import { type LabelInput, MetricInputError } from './metric-input';

/** Parameters of {@link generationAccuracy}. */
export interface GenerationAccuracyParams {
  /** The class each image was generated for: `[N]` integer labels. */
  readonly intended: LabelInput;
  /** The expert's output for each image: `[N]` labels or `[N,K]` logits/probabilities (arg-max). */
  readonly predicted: LabelInput;
  /**
   * Only images generated for these classes count (e.g. every class but "empty", as in the paper).
   * A prediction of any class, excluded ones included, that differs from the intended class is a
   * miss. Default: every intended class present.
   */
  readonly classes?: readonly number[];
  /** Number of classes K; default as in {@link classificationReport}. */
  readonly numClasses?: number;
}

/** Accuracy for one intended class. */
export interface GenerationClassAccuracy {
  readonly label: number;
  /** numCorrect / numImages (NaN when no image was generated for the class). */
  readonly accuracy: number;
  readonly numImages: number;
  readonly numCorrect: number;
}

/** Result of {@link generationAccuracy}. */
export interface GenerationAccuracyResult {
  /** Correct / counted images, pooled over the selected classes. */
  readonly overall: number;
  readonly numImages: number;
  readonly numCorrect: number;
  /** One entry per selected class, ascending. */
  readonly perClass: GenerationClassAccuracy[];
  /** Unweighted mean of the per-class accuracies (classes without images left out). */
  readonly macro: number;
}

/**
 * Share of generated images classified as the class they were generated for.
 *
 * @example
 * generationAccuracy({ intended, predicted: expertLogits, classes: [0, 1, 2, 3, 4, 5, 6] });
 */
export function generationAccuracy(params: GenerationAccuracyParams): GenerationAccuracyResult {
  const fn = 'generationAccuracy';
  const { yTrue, yPred, numClasses } = readLabelPair(fn, 'intended', params.intended, 'predicted', params.predicted, params.numClasses);
  let classes: number[];
  if (params.classes !== undefined) {
    if (params.classes.length === 0 || params.classes.some((c) => !Number.isInteger(c) || c < 0 || c >= numClasses)) {
      throw new MetricInputError(`${fn}: option "classes" must be a non-empty list of labels in [0, ${numClasses}), got ${JSON.stringify(params.classes)}`);
    }
    classes = [...new Set(params.classes)].sort((a, b) => a - b);
  } else {
    classes = [...new Set(yTrue)].sort((a, b) => a - b);
  }
  const selected = new Set(classes);
  const images = new Map<number, number>(classes.map((c) => [c, 0]));
  const correct = new Map<number, number>(classes.map((c) => [c, 0]));
  for (let i = 0; i < yTrue.length; i++) {
    const c = yTrue[i];
    if (!selected.has(c)) continue;
    images.set(c, (images.get(c) ?? 0) + 1);
    if (yPred[i] === c) correct.set(c, (correct.get(c) ?? 0) + 1);
  }
  const perClass = classes.map((label) => {
    const n = images.get(label) ?? 0;
    const k = correct.get(label) ?? 0;
    return { label, accuracy: n > 0 ? k / n : NaN, numImages: n, numCorrect: k };
  });
  const numImages = perClass.reduce((s, c) => s + c.numImages, 0);
  const numCorrect = perClass.reduce((s, c) => s + c.numCorrect, 0);
  if (numImages === 0) {
    throw new MetricInputError(`${fn}: no image in "intended" belongs to the selected classes ${JSON.stringify(classes)}`);
  }
  const withImages = perClass.filter((c) => c.numImages > 0);
  return {
    overall: numCorrect / numImages,
    numImages,
    numCorrect,
    perClass,
    macro: withImages.reduce((s, c) => s + c.accuracy, 0) / withImages.length,
  };
}
