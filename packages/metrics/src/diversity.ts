/**
 * Diversity of an image set as its mean pairwise SSIM (lower = more diverse), per class and
 * overall, with the number of pairs and a 95% confidence interval.
 *
 * - Pairs: all unordered pairs {i, j}, i != j, of images of the same class (or of the whole set
 *   when no labels are given). With `maxPairs`, a class with more pairs is represented by
 *   `maxPairs` distinct pairs drawn uniformly without replacement (seeded).
 * - Overall: the mean over all evaluated within-class pairs pooled (classes with more pairs weigh
 *   more); `macroMeanSsim` is the unweighted mean of the per-class means.
 * - Interval (default `'bootstrap'`): percentile bootstrap over images. Each replicate redraws the
 *   images of each class with replacement (stratified by class) and weights every evaluated pair
 *   {i, j} by count(i) * count(j); the replicate value is the weighted mean pair SSIM. This keeps
 *   the dependence between pairs that share an image, which a per-pair interval ignores.
 *   `'normal'`: mean +/- 1.96 * sd / sqrt(pairs) over the pair values — it treats the pairs as
 *   independent, which they are not (n images give n(n-1)/2 pairs), so it is too narrow; it is
 *   given for comparison with papers that report it.
 */
import { assertWithinDataRange, extractPlane, readImageBatch } from './image-batch';
import { type ArrayInput, type LabelInput, MetricInputError, formatShape, readLabels } from './metric-input';
import { createSeededRandom, sampleWithoutReplacement } from './seeded-random';
import { type PlaneStats, type SsimOptions, assertFitsWindow, computePlaneStats, createSsimScratch, planePairSsim, resolveSsimWindow } from './ssim';
import { percentileInterval } from './bootstrap-interval';
import { mean, normalInterval95, standardDeviation } from './summary-statistics';

/** Parameters of {@link diversity}. */
export interface DiversityParams extends SsimOptions {
  /** Images `[N,H,W,C]` (NHWC) or `[N,H,W]` (grayscale). */
  readonly images: ArrayInput;
  /** Class of each image: `[N]` integer labels or `[N,K]` scores (arg-max). Omit for one group. */
  readonly labels?: LabelInput;
  /** Report only these classes (images of other classes are ignored). Default: every label present. */
  readonly classes?: readonly number[];
  /** At most this many pairs per class (seeded uniform subsample). Default: all pairs. */
  readonly maxPairs?: number;
  /** Seed for pair subsampling and the bootstrap (default 0). */
  readonly seed?: number;
  /** Confidence interval method (default `'bootstrap'`). */
  readonly interval?: 'bootstrap' | 'normal';
  /** Bootstrap replicates (default 1000). */
  readonly bootstrapSamples?: number;
}

/** Mean pairwise SSIM of one group of images. */
export interface DiversityStats {
  /** The class, or null for the overall pool (or an unlabelled set). */
  readonly label: number | null;
  readonly numImages: number;
  /** Pairs evaluated (after `maxPairs`). */
  readonly numPairs: number;
  /** Pairs available, n(n-1)/2 (summed over classes for the pool). */
  readonly totalPairs: number;
  /** Mean SSIM over the evaluated pairs (NaN when there are none). */
  readonly meanSsim: number;
  /** Sample standard deviation of the pair values (NaN for fewer than 2 pairs). */
  readonly std: number;
  /** 95% confidence interval of `meanSsim` (NaN bounds when it cannot be estimated). */
  readonly ci95: [number, number];
}

/** Result of {@link diversity}. */
export interface DiversityResult {
  /** All evaluated within-class pairs pooled (the whole set when unlabelled). */
  readonly overall: DiversityStats;
  /** One entry per class, ascending (empty when no labels are given). */
  readonly perClass: DiversityStats[];
  /** Unweighted mean of the per-class means over classes with at least one pair (overall.meanSsim when unlabelled). */
  readonly macroMeanSsim: number;
  readonly interval: 'bootstrap' | 'normal';
}

/** Images of one class and their evaluated pairs. Internal. */
export interface DiversityGroup {
  label: number | null;
  images: number[];
  /** Evaluated pairs as local indices into `images`. */
  pairI: Int32Array;
  pairJ: Int32Array;
  values: Float64Array;
  totalPairs: number;
}

/**
 * The pairs (i < j) at row-major positions `ks` (ascending) of the strict upper triangle of n items:
 * k = 0 is (0,1), k = n-2 is (0,n-1), k = n-1 is (1,2), ... Internal.
 */
export function pairsFromSortedIndices(ks: number[], n: number): { i: Int32Array; j: Int32Array } {
  const pi = new Int32Array(ks.length);
  const pj = new Int32Array(ks.length);
  let row = 0;
  let rowStart = 0;
  for (let t = 0; t < ks.length; t++) {
    const k = ks[t];
    while (k >= rowStart + (n - 1 - row)) {
      rowStart += n - 1 - row;
      row++;
    }
    pi[t] = row;
    pj[t] = row + 1 + (k - rowStart);
  }
  return { i: pi, j: pj };
}

/**
 * Mean pairwise SSIM within each class and overall (lower = more diverse), with pair counts and
 * 95% intervals. Works the same for generated and real images, so the two can be compared.
 *
 * @example
 * const d = diversity({ images, labels, dataRange: 1, classes: [0, 1, 2, 3, 4, 5, 6], maxPairs: 2000 });
 * d.perClass[0].meanSsim; d.overall.ci95;
 */
export function diversity(params: DiversityParams): DiversityResult {
  const fn = 'diversity';
  const win = resolveSsimWindow(fn, params);
  const imgs = readImageBatch(fn, 'images', params.images, 'set');
  assertFitsWindow(fn, 'images', imgs, win);
  assertWithinDataRange(fn, 'images', imgs, params.dataRange);
  const { seed = 0, interval = 'bootstrap', bootstrapSamples = 1000, maxPairs } = params;
  if (maxPairs !== undefined && (!Number.isInteger(maxPairs) || maxPairs < 1)) {
    throw new MetricInputError(`${fn}: option "maxPairs" must be a positive integer, got ${maxPairs}`);
  }
  if (!Number.isInteger(bootstrapSamples) || bootstrapSamples < 1) {
    throw new MetricInputError(`${fn}: option "bootstrapSamples" must be a positive integer, got ${bootstrapSamples}`);
  }
  if (interval !== 'bootstrap' && interval !== 'normal') {
    throw new MetricInputError(`${fn}: option "interval" must be 'bootstrap' or 'normal', got ${String(interval)}`);
  }
  const n = imgs.batch;

  // Groups of image indices.
  const groups: DiversityGroup[] = [];
  const empty = (label: number | null, images: number[]): DiversityGroup => ({
    label,
    images,
    pairI: new Int32Array(0),
    pairJ: new Int32Array(0),
    values: new Float64Array(0),
    totalPairs: (images.length * (images.length - 1)) / 2,
  });
  if (params.labels === undefined) {
    if (params.classes !== undefined) throw new MetricInputError(`${fn}: option "classes" needs "labels"`);
    groups.push(empty(null, Array.from({ length: n }, (_, i) => i)));
  } else {
    const { labels } = readLabels(fn, 'labels', params.labels);
    if (labels.length !== n) {
      throw new MetricInputError(`${fn}: argument "labels" has shape ${formatShape([labels.length])}, expected [${n}] (one label per image)`);
    }
    const byClass = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const list = byClass.get(labels[i]) ?? [];
      list.push(i);
      byClass.set(labels[i], list);
    }
    let wanted: number[];
    if (params.classes !== undefined) {
      if (!params.classes.every((c) => Number.isInteger(c) && c >= 0) || new Set(params.classes).size !== params.classes.length) {
        throw new MetricInputError(`${fn}: option "classes" must be distinct non-negative integers, got ${JSON.stringify(params.classes)}`);
      }
      wanted = [...params.classes].sort((a, b) => a - b);
    } else {
      wanted = [...byClass.keys()].sort((a, b) => a - b);
    }
    for (const c of wanted) groups.push(empty(c, byClass.get(c) ?? []));
  }

  // Pairs to evaluate.
  const pairRandom = createSeededRandom(seed);
  for (const g of groups) {
    const m = g.images.length;
    let pi: Int32Array;
    let pj: Int32Array;
    if (maxPairs === undefined || g.totalPairs <= maxPairs) {
      pi = new Int32Array(g.totalPairs);
      pj = new Int32Array(g.totalPairs);
      let t = 0;
      for (let i = 0; i < m; i++) {
        for (let j = i + 1; j < m; j++) {
          pi[t] = i;
          pj[t++] = j;
        }
      }
    } else {
      ({ i: pi, j: pj } = pairsFromSortedIndices(sampleWithoutReplacement({ n: g.totalPairs, k: maxPairs, random: pairRandom }), m));
    }
    g.pairI = pi;
    g.pairJ = pj;
  }

  // SSIM of each pair: per-image statistics are computed once (lazily) and reused.
  const { height: h, width: w, channels } = imgs;
  const scratch = createSsimScratch(h, w, win);
  const cache: (PlaneStats[] | undefined)[] = new Array(n);
  const statsOf = (img: number): PlaneStats[] => {
    let s = cache[img];
    if (!s) {
      s = [];
      for (let c = 0; c < channels; c++) s.push(computePlaneStats(extractPlane(imgs, img, c), h, w, win, scratch));
      cache[img] = s;
    }
    return s;
  };
  for (const g of groups) {
    g.values = new Float64Array(g.pairI.length);
    for (let p = 0; p < g.pairI.length; p++) {
      const a = statsOf(g.images[g.pairI[p]]);
      const b = statsOf(g.images[g.pairJ[p]]);
      let s = 0;
      for (let c = 0; c < channels; c++) s += planePairSsim(a[c], b[c], win, scratch).ssim;
      g.values[p] = s / channels;
    }
  }

  // Intervals.
  const pooledValues = concat(groups.map((g) => g.values));
  let groupCis: [number, number][];
  let overallCi: [number, number];
  if (interval === 'normal') {
    groupCis = groups.map((g) => normalInterval95(g.values));
    overallCi = normalInterval95(pooledValues);
  } else {
    const boot = bootstrap(groups, bootstrapSamples, createSeededRandom((seed ^ 0x5bd1e995) >>> 0));
    groupCis = boot.groups.map((values) => percentileInterval({ values }));
    overallCi = percentileInterval({ values: boot.overall });
  }

  const perClass: DiversityStats[] =
    params.labels === undefined
      ? []
      : groups.map((g, k) => ({
          label: g.label,
          numImages: g.images.length,
          numPairs: g.values.length,
          totalPairs: g.totalPairs,
          meanSsim: mean(g.values),
          std: standardDeviation(g.values, 1),
          ci95: groupCis[k],
        }));
  const overall: DiversityStats = {
    label: null,
    numImages: groups.reduce((s, g) => s + g.images.length, 0),
    numPairs: pooledValues.length,
    totalPairs: groups.reduce((s, g) => s + g.totalPairs, 0),
    meanSsim: mean(pooledValues),
    std: standardDeviation(pooledValues, 1),
    ci95: overallCi,
  };
  const macroMeanSsim =
    params.labels === undefined ? overall.meanSsim : mean(perClass.filter((c) => c.numPairs > 0).map((c) => c.meanSsim));
  return { overall, perClass, macroMeanSsim, interval };
}

function concat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Stratified image bootstrap: replicate values per group and pooled; replicates whose weights are
 * all zero (every draw hit the same image) are left out. Internal.
 */
export function bootstrap(groups: DiversityGroup[], reps: number, random: ReturnType<typeof createSeededRandom>): { groups: number[][]; overall: number[] } {
  const out = groups.map(() => [] as number[]);
  const overall: number[] = [];
  const counts = groups.map((g) => new Float64Array(g.images.length));
  for (let r = 0; r < reps; r++) {
    let totW = 0;
    let totWS = 0;
    for (let k = 0; k < groups.length; k++) {
      const g = groups[k];
      const cnt = counts[k];
      const m = g.images.length;
      cnt.fill(0);
      for (let d = 0; d < m; d++) cnt[random.nextInt(m)]++;
      let sw = 0;
      let sws = 0;
      for (let p = 0; p < g.values.length; p++) {
        const wgt = cnt[g.pairI[p]] * cnt[g.pairJ[p]];
        sw += wgt;
        sws += wgt * g.values[p];
      }
      if (sw > 0) out[k].push(sws / sw);
      totW += sw;
      totWS += sws;
    }
    if (totW > 0) overall.push(totWS / totW);
  }
  return { groups: out, overall };
}
