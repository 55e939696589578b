/**
 * Classification metrics from true and predicted labels: accuracy, confusion matrix, per-class
 * precision / recall / F1 and their macro averages.
 *
 * Predictions may be integer labels `[N]` or scores `[N,K]` (logits or probabilities: the arg-max is
 * the predicted class; ties go to the lowest index).
 */
import { type LabelInput, MetricInputError, formatShape, readLabels } from './metric-input';

/** True and predicted labels. */
export interface ClassificationParams {
  /** True classes: `[N]` integer labels (or `[N,K]` one-hot/scores, reduced by arg-max). */
  readonly yTrue: LabelInput;
  /** Predicted classes: `[N]` integer labels, or `[N,K]` logits/probabilities. */
  readonly yPred: LabelInput;
  /**
   * Number of classes K (labels are 0..K-1). Default: K of a `[N,K]` input, else the largest label
   * seen plus one.
   */
  readonly numClasses?: number;
}

/** Per-class scores. 0/0 ratios take the value of `zeroDivision` (default 0). */
export interface ClassScores {
  readonly label: number;
  /** TP / (TP + FP): of the samples predicted as this class, the share that are. */
  readonly precision: number;
  /** TP / (TP + FN): of the samples of this class, the share predicted as it. */
  readonly recall: number;
  /** 2TP / (2TP + FP + FN), the harmonic mean of precision and recall. */
  readonly f1: number;
  /** Number of true samples of the class (TP + FN). */
  readonly support: number;
  /** Number of samples predicted as the class (TP + FP). */
  readonly predicted: number;
}

/** Result of {@link classificationReport}. */
export interface ClassificationReport {
  readonly numSamples: number;
  readonly accuracy: number;
  /** `confusionMatrix[t][p]`: number of samples of true class t predicted as p. */
  readonly confusionMatrix: number[][];
  /** One entry per class 0..K-1. */
  readonly perClass: ClassScores[];
  /** Unweighted means of precision, recall and F1 over `macro.classes`. */
  readonly macro: { readonly precision: number; readonly recall: number; readonly f1: number; readonly classes: number[] };
}

/** Resolved labels of both inputs. Internal. */
export function readLabelPair(
  fn: string,
  trueArg: string,
  yTrueIn: LabelInput,
  predArg: string,
  yPredIn: LabelInput,
  numClassesIn?: number,
): { yTrue: Int32Array; yPred: Int32Array; numClasses: number } {
  if (numClassesIn !== undefined && (!Number.isInteger(numClassesIn) || numClassesIn < 1)) {
    throw new MetricInputError(`${fn}: option "numClasses" must be a positive integer, got ${numClassesIn}`);
  }
  const t = readLabels(fn, trueArg, yTrueIn, numClassesIn);
  const p = readLabels(fn, predArg, yPredIn, numClassesIn ?? t.numScores ?? undefined);
  if (t.numScores !== null && p.numScores !== null && t.numScores !== p.numScores) {
    throw new MetricInputError(
      `${fn}: argument "${predArg}" has ${p.numScores} scores per sample, expected ${t.numScores} (as "${trueArg}")`,
    );
  }
  if (p.labels.length !== t.labels.length) {
    throw new MetricInputError(
      `${fn}: argument "${predArg}" has ${p.labels.length} samples (shape ${formatShape([p.labels.length])}), expected ${t.labels.length} (as "${trueArg}")`,
    );
  }
  if (t.labels.length === 0) throw new MetricInputError(`${fn}: argument "${trueArg}" is empty, expected at least one sample`);
  let numClasses = numClassesIn ?? t.numScores ?? p.numScores ?? 0;
  if (numClassesIn === undefined && t.numScores === null && p.numScores === null) {
    for (const v of t.labels) numClasses = Math.max(numClasses, v + 1);
    for (const v of p.labels) numClasses = Math.max(numClasses, v + 1);
  } else {
    // A [N,K] input fixes K: integer labels of the other input must fit.
    const check = (labels: Int32Array, arg: string) => {
      const bad = labels.findIndex((v) => v >= numClasses);
      if (bad >= 0) throw new MetricInputError(`${fn}: argument "${arg}" has label ${labels[bad]} at index [${bad}], expected < ${numClasses} classes`);
    };
    check(t.labels, trueArg);
    check(p.labels, predArg);
  }
  return { yTrue: t.labels, yPred: p.labels, numClasses };
}

/** Share of samples whose predicted class equals the true class. */
export function accuracy(params: ClassificationParams): number {
  const { yTrue, yPred } = readLabelPair('accuracy', 'yTrue', params.yTrue, 'yPred', params.yPred, params.numClasses);
  let ok = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) ok++;
  return ok / yTrue.length;
}

function buildConfusion(yTrue: Int32Array, yPred: Int32Array, k: number): number[][] {
  const m = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < yTrue.length; i++) m[yTrue[i]][yPred[i]]++;
  return m;
}

/** K x K counts, rows = true class, columns = predicted class. */
export function confusionMatrix(params: ClassificationParams): number[][] {
  const { yTrue, yPred, numClasses } = readLabelPair('confusionMatrix', 'yTrue', params.yTrue, 'yPred', params.yPred, params.numClasses);
  return buildConfusion(yTrue, yPred, numClasses);
}

/**
 * Accuracy, confusion matrix, per-class precision / recall / F1 and macro averages.
 *
 * Macro averages are over `classes` when given, else (as scikit-learn) over the classes that occur
 * in `yTrue` or in the predictions. A 0/0 ratio (no predictions of a class for precision, no
 * samples for recall, neither for F1) is `zeroDivision` (default 0, scikit-learn's value).
 */
export function classificationReport(
  params: ClassificationParams & { readonly classes?: readonly number[]; readonly zeroDivision?: number },
): ClassificationReport {
  const fn = 'classificationReport';
  const { yTrue, yPred, numClasses } = readLabelPair(fn, 'yTrue', params.yTrue, 'yPred', params.yPred, params.numClasses);
  return reportOf(fn, buildConfusion(yTrue, yPred, numClasses), params.classes, params.zeroDivision ?? 0);
}

/** Parameters of {@link classificationReportFromConfusion}. */
export interface ConfusionReportParams {
  /** K x K counts (rows: true class, columns: predicted), non-negative; weights (e.g. bootstrap counts) are allowed. */
  readonly confusionMatrix: ReadonlyArray<ArrayLike<number>>;
  /** Classes of the macro averages (default: those with samples or predictions, as scikit-learn). */
  readonly classes?: readonly number[];
  /** Value of a 0/0 ratio, default 0. */
  readonly zeroDivision?: number;
}

/**
 * {@link classificationReport} from a confusion matrix instead of labels (same rules): what a
 * bootstrap needs, where each replicate is a reweighted confusion matrix. `numSamples` is the sum of
 * the matrix. Throws when the matrix is not square, has a negative or non-finite entry, or sums to 0.
 */
export function classificationReportFromConfusion(params: ConfusionReportParams): ClassificationReport {
  const fn = 'classificationReportFromConfusion';
  const m = params?.confusionMatrix;
  if (!Array.isArray(m) || m.length === 0) throw new MetricInputError(`${fn}: argument "confusionMatrix" must be a non-empty K x K array, got ${String(m)}`);
  const k = m.length;
  const cm = m.map((row, i) => {
    if (!row || row.length !== k) throw new MetricInputError(`${fn}: argument "confusionMatrix" must be square (${k} x ${k}), row ${i} has ${row?.length} entries`);
    return Array.from(row as ArrayLike<number>, (v: number, j) => {
      if (!Number.isFinite(v) || v < 0) throw new MetricInputError(`${fn}: confusionMatrix[${i}][${j}] must be a finite number >= 0, got ${v}`);
      return v;
    });
  });
  return reportOf(fn, cm, params.classes, params.zeroDivision ?? 0);
}

function reportOf(fn: string, cm: number[][], classesIn: readonly number[] | undefined, zd: number): ClassificationReport {
  const numClasses = cm.length;
  const perClass: ClassScores[] = [];
  let correct = 0;
  let total = 0;
  for (let c = 0; c < numClasses; c++) {
    const tp = cm[c][c];
    correct += tp;
    let support = 0;
    let predicted = 0;
    for (let j = 0; j < numClasses; j++) {
      support += cm[c][j];
      predicted += cm[j][c];
    }
    total += support;
    const fp = predicted - tp;
    const fn_ = support - tp;
    perClass.push({
      label: c,
      precision: predicted > 0 ? tp / predicted : zd,
      recall: support > 0 ? tp / support : zd,
      f1: 2 * tp + fp + fn_ > 0 ? (2 * tp) / (2 * tp + fp + fn_) : zd,
      support,
      predicted,
    });
  }
  if (!(total > 0)) throw new MetricInputError(`${fn}: the confusion matrix is empty (no samples)`);
  let classes: number[];
  if (classesIn !== undefined) {
    const bad = classesIn.find((c) => !Number.isInteger(c) || c < 0 || c >= numClasses);
    if (bad !== undefined || classesIn.length === 0) {
      throw new MetricInputError(`${fn}: option "classes" must be a non-empty list of labels in [0, ${numClasses}), got ${JSON.stringify(classesIn)}`);
    }
    classes = [...new Set(classesIn)].sort((a, b) => a - b);
  } else {
    classes = perClass.filter((s) => s.support > 0 || s.predicted > 0).map((s) => s.label);
  }
  const avg = (key: 'precision' | 'recall' | 'f1') => classes.reduce((s, c) => s + perClass[c][key], 0) / classes.length;
  return {
    numSamples: total,
    accuracy: correct / total,
    confusionMatrix: cm,
    perClass,
    macro: { precision: avg('precision'), recall: avg('recall'), f1: avg('f1'), classes },
  };
}
