/**
 * Per-image mean intensity and contrast of an image set, and their comparison between a generated
 * and a real set (overall and per class).
 *
 * - Mean intensity of an image: the mean of all its pixel values (every row, column and channel).
 * - Contrast of an image: the **population standard deviation** (divisor H·W·C) of all its pixel
 *   values — the RMS contrast. It measures spread within one image, not between images.
 * - Summaries over images: the mean, the sample standard deviation (divisor N−1; NaN for N < 2)
 *   and the quartiles (numpy's linear interpolation) of the per-image means, and the mean and
 *   sample standard deviation of the per-image contrasts.
 *
 * This catches a generator that cannot set an image's low-frequency content: e.g. generated tiles
 * whose mean is 0.5 in every class while real ones range from 0.3 to 0.95.
 */
import { readImageBatch } from './image-batch';
import { type ArrayInput, type LabelInput, MetricInputError, formatShape, readLabels, unravelIndex } from './metric-input';
import { mean, quantile, standardDeviation } from './summary-statistics';

/** Parameters of {@link intensityStatistics}. */
export interface IntensityStatisticsParams {
  /** Images `[N,H,W,C]` (NHWC) or `[N,H,W]` (grayscale), values in [0,1]. */
  readonly images: ArrayInput;
}

/** Mean, sample sd and quartiles of the per-image means of a set. */
export interface IntensityMeanSummary {
  /** Mean of the per-image means (NaN for an empty set). */
  readonly mean: number;
  /** Sample standard deviation (N−1) of the per-image means (NaN for fewer than 2 images). */
  readonly sd: number;
  readonly min: number;
  readonly q25: number;
  readonly median: number;
  readonly q75: number;
  readonly max: number;
}

/** Mean and sample sd of the per-image contrasts of a set. */
export interface IntensityContrastSummary {
  /** Mean of the per-image contrasts (NaN for an empty set). */
  readonly mean: number;
  /** Sample standard deviation (N−1) of the per-image contrasts (NaN for fewer than 2 images). */
  readonly sd: number;
}

/** Result of {@link intensityStatistics}. */
export interface IntensityStatistics {
  readonly numImages: number;
  /** Mean pixel value of each image. */
  readonly perImageMean: number[];
  /** Population standard deviation of the pixel values of each image (RMS contrast). */
  readonly perImageContrast: number[];
  readonly mean: IntensityMeanSummary;
  readonly contrast: IntensityContrastSummary;
}

/** Parameters of {@link compareIntensity}. */
export interface CompareIntensityParams {
  /** Generated images `[N,H,W,C]` or `[N,H,W]`, values in [0,1]. */
  readonly generated: ArrayInput;
  /** Real images, same layout (the image size may differ), values in [0,1]. */
  readonly real: ArrayInput;
  /** Class of each generated image (`[N]` integers or `[N,K]` scores). Give both label sets or neither. */
  readonly generatedLabels?: LabelInput;
  /** Class of each real image. */
  readonly realLabels?: LabelInput;
  /**
   * Compare only these classes (images of other classes are left out of `perClass` and `overall`).
   * Default: every label present in either set.
   */
  readonly classes?: readonly number[];
}

/** Generated against real intensity of one group (a class, or the pool). */
export interface IntensityComparison {
  /** The class, or null for the overall pool. */
  readonly label: number | null;
  readonly numGenerated: number;
  readonly numReal: number;
  /** Mean of the per-image means of the generated images. */
  readonly generatedMean: number;
  /** Mean of the per-image means of the real images. */
  readonly realMean: number;
  /** `generatedMean − realMean`. */
  readonly meanDifference: number;
  /** Sample sd of the generated per-image means. */
  readonly generatedMeanSd: number;
  /** Sample sd of the real per-image means. */
  readonly realMeanSd: number;
  /**
   * Scale-free gap: `meanDifference / realMeanSd`, the difference in units of the real images'
   * spread of per-image means (a z-score of the generated mean among real images). NaN when the
   * real sd is 0 or undefined (fewer than 2 real images).
   */
  readonly meanGap: number;
  /** Mean per-image contrast of the generated images. */
  readonly generatedContrast: number;
  /** Mean per-image contrast of the real images. */
  readonly realContrast: number;
  /** `generatedContrast − realContrast`. */
  readonly contrastDifference: number;
}

/** Result of {@link compareIntensity}. */
export interface CompareIntensityResult {
  /** All (selected) images pooled. */
  readonly overall: IntensityComparison;
  /** One entry per class, ascending (empty when no labels are given). */
  readonly perClass: IntensityComparison[];
}

/** Per-image means and contrasts, checking the range [0,1]. Internal. */
function perImage(fn: string, arg: string, input: ArrayInput): { means: Float64Array; contrasts: Float64Array } {
  const b = readImageBatch(fn, arg, input, 'set');
  const per = b.height * b.width * b.channels;
  const means = new Float64Array(b.batch);
  const contrasts = new Float64Array(b.batch);
  const d = b.data;
  for (let i = 0; i < b.batch; i++) {
    const base = i * per;
    let s = 0;
    for (let k = 0; k < per; k++) {
      const v = d[base + k];
      if (v < 0 || v > 1) {
        throw new MetricInputError(
          `${fn}: argument "${arg}" has value ${v} at index ${formatShape(unravelIndex(base + k, b.shape))} (shape ${formatShape(b.shape)}), expected pixel values in [0,1]`,
        );
      }
      s += v;
    }
    const m = s / per;
    let ss = 0;
    for (let k = 0; k < per; k++) ss += (d[base + k] - m) ** 2;
    means[i] = m;
    contrasts[i] = Math.sqrt(ss / per);
  }
  return { means, contrasts };
}

function summarise(means: ArrayLike<number>, contrasts: ArrayLike<number>): Omit<IntensityStatistics, 'numImages' | 'perImageMean' | 'perImageContrast'> {
  return {
    mean: {
      mean: mean(means),
      sd: standardDeviation(means, 1),
      min: quantile(means, 0),
      q25: quantile(means, 0.25),
      median: quantile(means, 0.5),
      q75: quantile(means, 0.75),
      max: quantile(means, 1),
    },
    contrast: { mean: mean(contrasts), sd: standardDeviation(contrasts, 1) },
  };
}

/**
 * Per-image mean intensity and contrast (population sd of the pixel values within the image) of a
 * set of images in [0,1], with their summaries. Throws {@link MetricInputError} on a wrong shape,
 * NaN/Infinity or a value outside [0,1].
 */
export function intensityStatistics(params: IntensityStatisticsParams): IntensityStatistics {
  const fn = 'intensityStatistics';
  if (typeof params !== 'object' || params === null) throw new MetricInputError(`${fn}: expected a params object { images }, got ${String(params)}`);
  const { means, contrasts } = perImage(fn, 'images', params.images);
  if (means.length < 1) throw new MetricInputError(`${fn}: argument "images" holds no image, expected N >= 1`);
  return { numImages: means.length, perImageMean: Array.from(means), perImageContrast: Array.from(contrasts), ...summarise(means, contrasts) };
}

function compareGroup(label: number | null, g: { means: number[]; contrasts: number[] }, r: { means: number[]; contrasts: number[] }): IntensityComparison {
  const generatedMean = mean(g.means);
  const realMean = mean(r.means);
  const realMeanSd = standardDeviation(r.means, 1);
  const meanDifference = generatedMean - realMean;
  const generatedContrast = mean(g.contrasts);
  const realContrast = mean(r.contrasts);
  return {
    label,
    numGenerated: g.means.length,
    numReal: r.means.length,
    generatedMean,
    realMean,
    meanDifference,
    generatedMeanSd: standardDeviation(g.means, 1),
    realMeanSd,
    meanGap: realMeanSd > 0 ? meanDifference / realMeanSd : NaN,
    generatedContrast,
    realContrast,
    contrastDifference: generatedContrast - realContrast,
  };
}

/**
 * Compares the mean intensity and contrast of generated images against real ones, overall and per
 * class: mean of per-image means for each set, their difference, the difference in units of the
 * real per-image-mean sd (`meanGap`), and the mean per-image contrast of each set. A class with no
 * image on one side gets NaN for that side.
 */
export function compareIntensity(params: CompareIntensityParams): CompareIntensityResult {
  const fn = 'compareIntensity';
  if (typeof params !== 'object' || params === null) throw new MetricInputError(`${fn}: expected a params object { generated, real }, got ${String(params)}`);
  const gen = perImage(fn, 'generated', params.generated);
  const real = perImage(fn, 'real', params.real);
  const hasG = params.generatedLabels !== undefined;
  const hasR = params.realLabels !== undefined;
  if (hasG !== hasR) {
    throw new MetricInputError(`${fn}: argument "${hasG ? 'realLabels' : 'generatedLabels'}" is missing; give both generatedLabels and realLabels or neither`);
  }
  const labelsOf = (arg: string, input: LabelInput | undefined, n: number): Int32Array | null => {
    if (input === undefined) return null;
    const l = readLabels(fn, arg, input).labels;
    if (l.length !== n) throw new MetricInputError(`${fn}: argument "${arg}" has ${l.length} labels, expected ${n} (one per image)`);
    return l;
  };
  const gl = labelsOf('generatedLabels', params.generatedLabels, gen.means.length);
  const rl = labelsOf('realLabels', params.realLabels, real.means.length);
  if (params.classes !== undefined) {
    if (!Array.isArray(params.classes) || !params.classes.every((c) => Number.isInteger(c) && c >= 0)) {
      throw new MetricInputError(`${fn}: argument "classes" must be an array of non-negative integers, got ${JSON.stringify(params.classes)}`);
    }
    if (gl === null) throw new MetricInputError(`${fn}: argument "classes" needs generatedLabels and realLabels`);
  }
  const classes =
    gl === null || rl === null
      ? []
      : [...new Set(params.classes ?? [...gl, ...rl])].sort((a, b) => a - b);
  const keep = new Set(classes);
  const pick = (set: { means: Float64Array; contrasts: Float64Array }, labels: Int32Array | null, want: (l: number) => boolean) => {
    const means: number[] = [];
    const contrasts: number[] = [];
    for (let i = 0; i < set.means.length; i++) {
      if (labels === null || want(labels[i])) {
        means.push(set.means[i]);
        contrasts.push(set.contrasts[i]);
      }
    }
    return { means, contrasts };
  };
  const inSelection = (l: number) => params.classes === undefined || keep.has(l);
  const overall = compareGroup(null, pick(gen, gl, inSelection), pick(real, rl, inSelection));
  const perClass = classes.map((c) => compareGroup(c, pick(gen, gl, (l) => l === c), pick(real, rl, (l) => l === c)));
  return { overall, perClass };
}
