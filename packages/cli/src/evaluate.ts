/**
 * Evaluating a generated set (a folder written by `fad generate`) against real images, with an
 * expert classifier and @fad/metrics:
 * - generation accuracy: share of generated images the expert assigns to their intended class,
 *   per class, overall and per seed (`generationAccuracy`; classes outside the counted set are left
 *   out, "empty" by default, as in the paper), with the confusion matrix (rows: intended class);
 * - diversity: mean pairwise SSIM within each class (lower = more diverse), for the generated set
 *   and, beside it, for the real images of the same classes;
 * - Fréchet distance and KID between the real and generated sets on the expert's pooled features;
 * - intensity: per class, the generated against the real mean intensity (mean of per-image mean
 *   pixel values) and contrast (mean of per-image population sd of pixel values), over every
 *   generated class, "empty" included (`compareIntensity`).
 */
import { compareIntensity, confusionMatrix, diversity, frechetDistance, generationAccuracy, kernelInceptionDistance } from '@fad/metrics';
import { argMax, type ExpertModel } from '@fad/expert-models';
import type { EvaluateSection } from './config';
import { readGeneratedSetImages, readGeneratedSetManifest } from '@fad/diffusion-core/node';
import { CliError, fromLibraryError, withLibraryErrors } from './errors';
import { expertOutputs } from './expert';
import type { DreamBoothInfo, ExpertGuidanceRecord, GenerateManifest } from './generate';

export interface RealSet {
  images: Float32Array;
  labels: Int32Array;
  classNames: string[];
  imageSize: number;
  channels: number;
}

export interface ClassDiversity {
  class: string;
  generated: number;
  generatedCi95: [number, number];
  real: number;
  realCi95: [number, number];
  numGenerated: number;
  numReal: number;
}

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

export interface IntensityEvaluation {
  /** Every generated class (uncounted ones such as "empty" included), in the expert's class order. */
  perClass: Array<{ class: string } & IntensityRow>;
  overall: IntensityRow;
  definition: string;
}

export const INTENSITY_DEFINITION =
  'mean: mean pixel value of an image, in [0,1]; contrast: population standard deviation of the pixel values within an image; ' +
  'values are means over images; meanGap: (generated - real mean) / sample sd of the real per-image means';

export interface EvaluationResult {
  format: 'fad-evaluation/1';
  generatedDir: string;
  expert: string;
  expertSha256: string;
  classNames: string[];
  countedClasses: string[];
  numGenerated: number;
  numReal: number;
  generationAccuracy: {
    overall: number;
    macro: number;
    perClass: Array<{ class: string; accuracy: number; numImages: number; numCorrect: number }>;
    perSeed: Array<{ seed: number; overall: number; macro: number }>;
  };
  /** Rows: intended class, columns: expert's prediction, over the expert's classes (counted intended classes only). */
  confusionMatrix: number[][];
  /**
   * The expert's top class for every generated image (uncounted classes included), in manifest order:
   * paired comparisons of variants sampled from the same seeds (bootstrap CIs of differences) need
   * them. Absent in evaluations written before it was added.
   */
  predictions?: Array<{ file: string; class: string; seed: number; predicted: string }>;
  diversity: {
    perClass: ClassDiversity[];
    overall: { generated: number; real: number };
    macro: { generated: number; real: number };
    window: string;
  };
  frechetDistance: number;
  kid: { mean: number; std: number; subsetSize: number; numSubsets: number };
  /** Absent in evaluations written before it was added. */
  intensity?: IntensityEvaluation;
  settings: EvaluateSection;
  createdAt: string;
  elapsedSeconds: number;
}

/** The set's checked manifest (diffusion-core's `readGeneratedSetManifest`), errors as the CLI's. */
export function readManifest(dir: string): GenerateManifest {
  return withLibraryErrors(() => readGeneratedSetManifest<ExpertGuidanceRecord, DreamBoothInfo>({ dir }));
}

/** Decodes the generated images listed in a manifest (diffusion-core's `readGeneratedSetImages`). */
export async function readGenerated(dir: string, m: GenerateManifest): Promise<Float32Array> {
  try {
    return await readGeneratedSetImages({ dir, manifest: m });
  } catch (e) {
    throw fromLibraryError(e);
  }
}

/** The classes that count: `evaluate.classes`, or every class but `excludeClasses`. */
export function countedClasses(settings: EvaluateSection, classNames: string[]): string[] {
  const list = settings.classes ?? classNames.filter((c) => !settings.excludeClasses.includes(c));
  for (const c of list) if (!classNames.includes(c)) throw new CliError(`evaluate.classes names "${c}", which is not one of the classes (${classNames.join(', ')})`);
  if (list.length === 0) throw new CliError('no class left to evaluate (check evaluate.classes and evaluate.excludeClasses)');
  return list;
}

const ci = (s: { ci95: readonly [number, number] | readonly number[] }): [number, number] => [s.ci95[0], s.ci95[1]];

/** The expert's outputs: per generated image (manifest order) logits and pooled features, per real image of the counted classes features. */
export interface EvaluationOutputs {
  gen: { features: number[][]; logits: number[][] };
  real: { features: number[][] };
}

export interface EvaluateJob {
  generatedDir: string;
  /** Null when `outputs` are given (fad merge of evaluate shards): then `classNames` are the expert's classes. */
  expert: ExpertModel | null;
  classNames?: readonly string[];
  /** The expert's outputs computed before (by the shards of `fad evaluate --shard`); default: computed here. */
  outputs?: EvaluationOutputs;
  /** createdAt and elapsedSeconds to record instead of this call's (a merge records the shards'). */
  timing?: { createdAt: string; elapsedSeconds: number };
  expertPath: string;
  expertSha256: string;
  real: RealSet;
  settings: EvaluateSection;
}

/** The inputs of an evaluation, read and checked: the manifest, the counted classes, the real images of the counted classes. */
export interface EvaluationInputs {
  m: GenerateManifest;
  classNames: string[];
  counted: string[];
  countedIdx: number[];
  /** Indices into `real` of the real images of the counted classes, and their pixels. */
  realIdx: number[];
  realPixels: Float32Array;
  per: number;
}

/** Reads the manifest and picks the real images to compare (every check of `evaluateGenerated` that needs no expert pass). */
export function evaluationInputs(p: { generatedDir: string; classNames: readonly string[]; real: RealSet; settings: EvaluateSection }): EvaluationInputs {
  const { real, settings } = p;
  const m = readManifest(p.generatedDir);
  const classNames = [...p.classNames];
  for (const c of m.generatedClasses) {
    if (!classNames.includes(c)) throw new CliError(`the generated class "${c}" is not a class of the expert (${classNames.join(', ')})`);
  }
  if (m.imageSize !== real.imageSize || m.channels !== real.channels) {
    throw new CliError(`generated images are ${m.imageSize}x${m.imageSize}x${m.channels} but the real ones are ${real.imageSize}x${real.imageSize}x${real.channels}; set data.imageSize/channels to match the model`);
  }
  const counted = countedClasses(settings, classNames);
  const countedIdx = counted.map((c) => classNames.indexOf(c));
  const per = m.imageSize * m.imageSize * m.channels;
  // Real images of the counted classes, relabelled to the expert's class order.
  const realMap = real.classNames.map((c) => classNames.indexOf(c));
  const realIdx: number[] = [];
  for (let i = 0; i < real.labels.length; i++) if (countedIdx.includes(realMap[real.labels[i]])) realIdx.push(i);
  if (realIdx.length < 2) throw new CliError(`only ${realIdx.length} real image(s) of the evaluated classes; need at least 2`);
  const realPixels = new Float32Array(realIdx.length * per);
  realIdx.forEach((k, i) => realPixels.set(real.images.subarray(k * per, (k + 1) * per), i * per));
  return { m, classNames, counted, countedIdx, realIdx, realPixels, per };
}

export async function evaluateGenerated(job: EvaluateJob): Promise<EvaluationResult> {
  const t0 = Date.now();
  const { expert, real, settings } = job;
  const expertClasses = expert?.classNames ?? job.classNames;
  if (!expertClasses) throw new CliError('evaluateGenerated: give the expert, or its classNames with outputs');
  if (!expert && !job.outputs) throw new CliError('evaluateGenerated: without an expert, give its outputs');
  const { m, classNames, counted, countedIdx, realIdx, realPixels, per } = evaluationInputs({ generatedDir: job.generatedDir, classNames: expertClasses, real, settings });
  const genPixels = await readGenerated(job.generatedDir, m);
  const intended = m.images.map((i) => classNames.indexOf(i.class));
  const gen = job.outputs?.gen ?? expertOutputs(expert!, genPixels, m.images.length, m.imageSize, m.channels, settings.batchSize);
  if (gen.logits.length !== m.images.length || gen.features.length !== m.images.length) throw new CliError(`the expert outputs cover ${gen.logits.length} generated images, the set has ${m.images.length}`);
  const predicted = gen.logits.map(argMax);
  const ga = generationAccuracy({ intended, predicted, classes: countedIdx, numClasses: classNames.length });
  const perSeed = m.seeds.map((seed) => {
    const idx = m.images.map((im, i) => (im.seed === seed ? i : -1)).filter((i) => i >= 0);
    const r = generationAccuracy({ intended: idx.map((i) => intended[i]), predicted: idx.map((i) => predicted[i]), classes: countedIdx, numClasses: classNames.length });
    return { seed, overall: r.overall, macro: r.macro };
  });
  const countedGen = intended.map((l, i) => (countedIdx.includes(l) ? i : -1)).filter((i) => i >= 0);
  const cm = confusionMatrix({ yTrue: countedGen.map((i) => intended[i]), yPred: countedGen.map((i) => predicted[i]), numClasses: classNames.length });

  const realMap = real.classNames.map((c) => classNames.indexOf(c));
  const realLabels = realIdx.map((k) => realMap[real.labels[k]]);
  const genCountedPixels = new Float32Array(countedGen.length * per);
  countedGen.forEach((k, i) => genCountedPixels.set(genPixels.subarray(k * per, (k + 1) * per), i * per));
  const genLabels = countedGen.map((k) => intended[k]);

  const ssimOpts = settings.ssimWindow === 'gaussian' ? { window: 'gaussian' as const } : { window: 'uniform' as const, winSize: settings.ssimWinSize };
  const shape = (n: number) => [n, m.imageSize, m.imageSize, m.channels];
  const divGen = diversity({ images: { data: genCountedPixels, shape: shape(countedGen.length) }, labels: genLabels, classes: countedIdx, dataRange: 1, maxPairs: settings.ssimMaxPairs, seed: 0, ...ssimOpts });
  const divReal = diversity({ images: { data: realPixels, shape: shape(realIdx.length) }, labels: realLabels, classes: countedIdx, dataRange: 1, maxPairs: settings.ssimMaxPairs, seed: 0, ...ssimOpts });

  const realOut = job.outputs?.real ?? expertOutputs(expert!, realPixels, realIdx.length, m.imageSize, m.channels, settings.batchSize);
  if (realOut.features.length !== realIdx.length) throw new CliError(`the expert outputs cover ${realOut.features.length} real images, the evaluation compares ${realIdx.length}`);
  const genFeatures = countedGen.map((i) => gen.features[i]);
  if (genFeatures.length < 2) throw new CliError(`only ${genFeatures.length} generated image(s) of the evaluated classes; need at least 2 for FD and KID`);
  const fd = frechetDistance({ features1: realOut.features, features2: genFeatures });
  const kid = kernelInceptionDistance({ features1: realOut.features, features2: genFeatures, numSubsets: settings.kidSubsets, subsetSize: settings.kidSubsetSize, seed: 0 });

  const intensity = intensityEvaluation({ genPixels, intended, real, realMap, classNames, generatedClasses: m.generatedClasses, shape });

  return {
    format: 'fad-evaluation/1',
    generatedDir: job.generatedDir,
    expert: job.expertPath,
    expertSha256: job.expertSha256,
    classNames,
    countedClasses: counted,
    numGenerated: countedGen.length,
    numReal: realIdx.length,
    generationAccuracy: {
      overall: ga.overall,
      macro: ga.macro,
      perClass: ga.perClass.map((c) => ({ class: classNames[c.label], accuracy: c.accuracy, numImages: c.numImages, numCorrect: c.numCorrect })),
      perSeed,
    },
    confusionMatrix: cm,
    predictions: m.images.map((im, i) => ({ file: im.file, class: im.class, seed: im.seed, predicted: classNames[predicted[i]] })),
    diversity: {
      perClass: countedIdx.map((label, j) => {
        const g = divGen.perClass.find((c) => c.label === label) ?? divGen.perClass[j];
        const r = divReal.perClass.find((c) => c.label === label) ?? divReal.perClass[j];
        return { class: classNames[label], generated: g.meanSsim, generatedCi95: ci(g), real: r.meanSsim, realCi95: ci(r), numGenerated: g.numImages, numReal: r.numImages };
      }),
      overall: { generated: divGen.overall.meanSsim, real: divReal.overall.meanSsim },
      macro: { generated: divGen.macroMeanSsim, real: divReal.macroMeanSsim },
      window: settings.ssimWindow === 'gaussian' ? 'gaussian 11x11, sigma 1.5' : `uniform ${settings.ssimWinSize}x${settings.ssimWinSize}`,
    },
    frechetDistance: fd.distance,
    kid: { mean: kid.mean, std: kid.std, subsetSize: kid.subsetSize, numSubsets: kid.numSubsets },
    intensity,
    settings,
    createdAt: job.timing?.createdAt ?? new Date(t0).toISOString(),
    elapsedSeconds: job.timing?.elapsedSeconds ?? (Date.now() - t0) / 1000,
  };
}

const orNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** Per-class generated-vs-real intensity over every generated class (real images of other classes left out). */
function intensityEvaluation(p: {
  genPixels: Float32Array;
  intended: number[];
  real: RealSet;
  realMap: number[];
  classNames: string[];
  generatedClasses: string[];
  shape: (n: number) => number[];
}): IntensityEvaluation {
  const classes = p.generatedClasses.map((c) => p.classNames.indexOf(c)).sort((a, b) => a - b);
  const realLabels = Array.from(p.real.labels, (l) => p.realMap[l]);
  // Real images of classes the expert does not know (label -1) are dropped by the class list.
  const r = compareIntensity({
    generated: { data: p.genPixels, shape: p.shape(p.intended.length) },
    generatedLabels: p.intended,
    real: { data: p.real.images, shape: p.shape(realLabels.length) },
    realLabels: realLabels.map((l) => (l < 0 ? p.classNames.length : l)),
    classes,
  });
  const row = (c: (typeof r)['overall']): IntensityRow => ({
    numGenerated: c.numGenerated,
    numReal: c.numReal,
    generatedMean: orNull(c.generatedMean),
    realMean: orNull(c.realMean),
    meanDifference: orNull(c.meanDifference),
    generatedMeanSd: orNull(c.generatedMeanSd),
    realMeanSd: orNull(c.realMeanSd),
    meanGap: orNull(c.meanGap),
    generatedContrast: orNull(c.generatedContrast),
    realContrast: orNull(c.realContrast),
    contrastDifference: orNull(c.contrastDifference),
  });
  return { perClass: r.perClass.map((c) => ({ class: p.classNames[c.label as number], ...row(c) })), overall: row(r.overall), definition: INTENSITY_DEFINITION };
}

/** The per-class intensity table printed by `fad evaluate`. */
export function formatIntensity(intensity: IntensityEvaluation): string {
  const f = (v: number | null, d = 3) => (v === null ? '–' : v.toFixed(d));
  const sign = (v: number | null, d = 3) => (v === null ? '–' : `${v >= 0 ? '+' : ''}${v.toFixed(d)}`);
  const head = `intensity (mean pixel value; contrast = sd within an image)\n  ${'class'.padEnd(12)}${'gen mean'.padStart(9)}${'real mean'.padStart(10)}${'diff'.padStart(8)}${'gap/sd'.padStart(8)}${'gen contr'.padStart(10)}${'real contr'.padStart(11)}`;
  const line = (name: string, c: IntensityRow) =>
    `  ${name.slice(0, 11).padEnd(12)}${f(c.generatedMean).padStart(9)}${f(c.realMean).padStart(10)}${sign(c.meanDifference).padStart(8)}${sign(c.meanGap, 1).padStart(8)}${f(c.generatedContrast).padStart(10)}${f(c.realContrast).padStart(11)}`;
  return [head, ...intensity.perClass.map((c) => line(c.class, c)), line('all', intensity.overall)].join('\n');
}

/** A confusion matrix as aligned text (rows: true/intended, columns: predicted). */
export function formatConfusion(matrix: number[][], names: string[]): string {
  const short = names.map((n) => n.slice(0, 12));
  const w = Math.max(6, ...short.map((s) => s.length), ...matrix.flat().map((v) => String(v).length)) + 1;
  const head = `${''.padEnd(w)}${short.map((s) => s.padStart(w)).join('')}   (rows: true, columns: predicted)`;
  const rows = matrix.map((r, i) => `${short[i].padEnd(w)}${r.map((v) => String(v).padStart(w)).join('')}`);
  return [head, ...rows].join('\n');
}
