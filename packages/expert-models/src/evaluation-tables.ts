/**
 * Text tables of an evaluation (pure; no Node import): a confusion matrix (an expert's on real
 * images, or the generation confusion of `evaluateGeneratedSet`) and the per-class intensity
 * section of an evaluation, as the `fad` CLI prints them.
 */
import { assertObject, show } from './validate';

/** Generated against real intensity of one class (or the pool); null where a value is undefined (NaN). */
export interface IntensityRow {
  numGenerated: number;
  numReal: number;
  /** Mean over images of each image's mean pixel value. */
  generatedMean: number | null;
  realMean: number | null;
  /** generatedMean - realMean. */
  meanDifference: number | null;
  /** Sample sd over images of the per-image means. */
  generatedMeanSd: number | null;
  realMeanSd: number | null;
  /** meanDifference / realMeanSd (null when the real sd is 0 or there are fewer than 2 real images). */
  meanGap: number | null;
  /** Mean over images of each image's contrast (population sd of its pixel values). */
  generatedContrast: number | null;
  realContrast: number | null;
  contrastDifference: number | null;
}

/** The intensity section of an evaluation. */
export interface IntensityEvaluation {
  /** Every generated class (uncounted ones such as "empty" included), in the expert's class order. */
  perClass: Array<{ class: string } & IntensityRow>;
  overall: IntensityRow;
  definition: string;
}

/** Parameters of {@link formatConfusionMatrix}. */
export interface FormatConfusionMatrixParams {
  /** Counts [K][K]; rows: true (or intended) class, columns: predicted. */
  matrix: readonly (readonly number[])[];
  /** K class names (shown cut to 12 characters). */
  classNames: readonly string[];
}

/** A confusion matrix as aligned text (rows: true/intended, columns: predicted). */
export function formatConfusionMatrix(params: FormatConfusionMatrixParams): string {
  const fn = 'formatConfusionMatrix';
  assertObject(fn, 'params', params);
  const { matrix, classNames } = params;
  if (!Array.isArray(classNames) || !classNames.every((c) => typeof c === 'string')) throw new TypeError(`${fn}: classNames must be an array of strings, got ${show(classNames)}`);
  const k = classNames.length;
  const square = (m: unknown): boolean => Array.isArray(m) && m.length === k && m.every((r) => Array.isArray(r) && r.length === k && r.every((v) => typeof v === 'number'));
  if (!square(matrix)) {
    throw new RangeError(`${fn}: matrix must be ${k}x${k} numbers (one row and column per class name), got ${show(matrix)}`);
  }
  const short = classNames.map((n) => n.slice(0, 12));
  const w = Math.max(6, ...short.map((s) => s.length), ...matrix.flatMap((r) => r.map((v) => String(v).length))) + 1;
  const head = `${''.padEnd(w)}${short.map((s) => s.padStart(w)).join('')}   (rows: true, columns: predicted)`;
  const rows = matrix.map((r, i) => `${short[i].padEnd(w)}${r.map((v) => String(v).padStart(w)).join('')}`);
  return [head, ...rows].join('\n');
}

/** Parameters of {@link formatIntensityTable}. */
export interface FormatIntensityTableParams {
  /** The `intensity` section of an evaluation. */
  intensity: IntensityEvaluation;
}

/** The per-class intensity table (generated against real mean and contrast; the pool last as "all"). */
export function formatIntensityTable(params: FormatIntensityTableParams): string {
  const fn = 'formatIntensityTable';
  assertObject(fn, 'params', params);
  const { intensity } = params;
  if (intensity === null || typeof intensity !== 'object' || !Array.isArray(intensity.perClass) || intensity.overall === null || typeof intensity.overall !== 'object') {
    throw new TypeError(`${fn}: intensity must be an evaluation's intensity section ({ perClass, overall }), got ${show(intensity)}`);
  }
  const f = (v: number | null, d = 3) => (v === null ? '–' : v.toFixed(d));
  const sign = (v: number | null, d = 3) => (v === null ? '–' : `${v >= 0 ? '+' : ''}${v.toFixed(d)}`);
  const head = `intensity (mean pixel value; contrast = sd within an image)\n  ${'class'.padEnd(12)}${'gen mean'.padStart(9)}${'real mean'.padStart(10)}${'diff'.padStart(8)}${'gap/sd'.padStart(8)}${'gen contr'.padStart(10)}${'real contr'.padStart(11)}`;
  const line = (name: string, c: IntensityRow) =>
    `  ${name.slice(0, 11).padEnd(12)}${f(c.generatedMean).padStart(9)}${f(c.realMean).padStart(10)}${sign(c.meanDifference).padStart(8)}${sign(c.meanGap, 1).padStart(8)}${f(c.generatedContrast).padStart(10)}${f(c.realContrast).padStart(11)}`;
  return [head, ...intensity.perClass.map((c) => line(c.class, c)), line('all', intensity.overall)].join('\n');
}
