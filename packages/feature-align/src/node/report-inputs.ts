/**
 * What the experiment report reads from a run folder: the fields it uses of each file, as plain
 * structural types (the report reads files; it needs no other package's types), and a tolerant
 * reader of JSON lines (JSON files are read with diffusion-core's `readJsonFileIfExists`). Numbers
 * that JSON stores as null (NaN, infinities) are typed `number | null` where the report shows them
 * as `–`.
 */
import { existsSync, readFileSync } from 'node:fs';

/** `run.json` of an experiment run folder. */
export interface ReportRunInfo {
  backend?: string;
  startedAt?: string;
  /** The real data set's folder (the paths of split.json are inside it). */
  dataDir?: string;
  imageSize?: number;
  /** 1 (default) or 3. */
  channels?: number;
}

/** `split.json`: the real data set's files, labels and validation indices. */
export interface ReportSplit {
  files: string[];
  labels: number[];
  classNames: string[];
  validation: number[];
}

/** A line of a training run's `metrics.jsonl`: the loss terms of a logging window. */
export interface ReportTrainingMetrics {
  step: number;
  /** `diffusion`, and the alignment terms (`feature_align.align`, ...). */
  terms?: Record<string, number>;
}

/** A line of the expert's `metrics.jsonl`. */
export interface ReportExpertMetrics {
  epoch: number;
  trainAccuracy: number;
  validationAccuracy: number | null;
}

/** `expert/eval.json`: the expert on real held-out images. */
export interface ReportExpertEvaluation {
  classNames: string[];
  confusionMatrix: number[][] | null;
  accuracy: number | null;
  numSamples: number;
}

/** One class of an evaluation's intensity section. */
export interface ReportClassIntensity {
  class: string;
  generatedMean: number | null;
  realMean: number | null;
  meanDifference: number | null;
  generatedContrast: number | null;
  realContrast: number | null;
}

/** `eval.json` of a generated set (a variant's or a DreamBooth arm's). */
export interface ReportEvaluation {
  classNames: string[];
  countedClasses: string[];
  numGenerated: number;
  generationAccuracy: {
    overall: number | null;
    macro: number | null;
    perSeed: Array<{ seed: number; overall: number }>;
  };
  /** Rows: intended class, columns: the expert's prediction. */
  confusionMatrix: number[][];
  diversity: {
    perClass: Array<{ class: string; generated: number | null; real: number | null }>;
    overall: { generated: number | null; real: number | null };
    window: string;
  };
  frechetDistance: number | null;
  kid: { mean: number | null; std: number | null };
  /** Absent in evaluations written before it was added. */
  intensity?: { perClass: ReportClassIntensity[] };
}

/** A mean over seeds with its 95% confidence interval. */
export interface ReportEstimate {
  mean: number;
  ci95: [number, number];
}

/** One protocol of the utility results. */
export interface ReportUtilityProtocol {
  id: string;
  kind: 'real' | 'mixed' | 'synthetic';
  /** Fraction of the real training split (null for synthetic-only). */
  fraction: number | null;
  /** The synthetic set's name (null for real-only). */
  synthetic: string | null;
  /** Synthetic:real ratio (mixed only). */
  ratio: number | null;
  seeds: number[];
  numReal: number;
  numSynthetic: number;
  repeatedClasses: string[];
  accuracy: ReportEstimate;
  macroF1: ReportEstimate;
  perClassRecall: Array<{ mean: number }>;
  gain: { accuracy: ReportEstimate; macroF1: ReportEstimate } | null;
  seconds: { perClassifier: number };
}

/** `utility.json` (format `fad-utility/1`): the downstream utility results. */
export interface ReportUtilityResults {
  format: 'fad-utility/1';
  backend: string;
  classifier: { preset: string };
  data: { classNames: string[] };
  summary: {
    protocols: ReportUtilityProtocol[];
    numTest: number;
    bootstrap: { method: string; samples: number };
  };
  runs: unknown[];
  wallTime: { perClassifierMean: number; classifiersTotal: number };
}

/** The lines of a JSON-lines file that parse (none when it is missing). */
export function readJsonl<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as T];
      } catch {
        return [];
      }
    });
}
