/**
 * Evaluating a generated set (a folder written by `generateImageSet` / `fad generate`) against real
 * images, with an expert classifier and @fad/metrics (Node only: part of `@fad/expert-models/node`):
 * - generation accuracy: share of generated images the expert assigns to their intended class,
 *   per class, overall and per seed (`generationAccuracy`; classes outside the counted set are left
 *   out, "empty" by default, as in the paper), with the confusion matrix (rows: intended class);
 * - diversity: mean pairwise SSIM within each class (lower = more diverse), for the generated set
 *   and, beside it, for the real images of the same classes;
 * - Fréchet distance and KID between the real and generated sets on the expert's pooled features;
 * - intensity: per class, the generated against the real mean intensity (mean of per-image mean
 *   pixel values) and contrast (mean of per-image population sd of pixel values), over every
 *   generated class, "empty" included (`compareIntensity`).
 * The result is the `fad-evaluation/1` record (`eval.json` of `fad evaluate`).
 */
import { type GeneratedSetManifest, readGeneratedSetImages, readGeneratedSetManifest } from '@fad/diffusion-core/node';
import { compareIntensity, confusionMatrix, diversity, frechetDistance, generationAccuracy, kernelInceptionDistance } from '@fad/metrics';
import { argMax, type Expert, type ExpertOutputs, expertOutputs, type IntensityEvaluation, type IntensityRow } from '@fad/expert-models';
import { assertInt, assertKnownKeys, assertObject, assertOneOf, show } from '../validate';
import { EvaluationRunError } from './evaluation-run-error';

/** The evaluation settings (the `evaluate` section of the `fad` config). */
export interface EvaluationSettings {
  /** Classes counted in generation accuracy, diversity, FD and KID; null: every class but `excludeClasses`. */
  classes: string[] | null;
  /** Left out when `classes` is null (the paper leaves out "empty"). */
  excludeClasses: string[];
  /** Which real images the caller compares with (recorded; the caller picks `real`). */
  realSet: 'validation' | 'all';
  /** SSIM pairs per class at most (seeded subsample). */
  ssimMaxPairs: number;
  /** SSIM window: `gaussian` (11x11, sigma 1.5) or `uniform` (ssimWinSize x ssimWinSize). */
  ssimWindow: 'gaussian' | 'uniform';
  /** Odd, >= 3. */
  ssimWinSize: number;
  kidSubsets: number;
  kidSubsetSize: number;
  /** Images per expert forward pass. */
  batchSize: number;
}

/** The real images compared with: [n, imageSize, imageSize, channels] in [0, 1], labels indexing `classNames`. */
export interface RealImageSet {
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

export const INTENSITY_DEFINITION =
  'mean: mean pixel value of an image, in [0,1]; contrast: population standard deviation of the pixel values within an image; ' +
  'values are means over images; meanGap: (generated - real mean) / sample sd of the real per-image means';

/** The evaluation record (`eval.json`; its key order is part of the format). */
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
  settings: EvaluationSettings;
  createdAt: string;
  elapsedSeconds: number;
}

/** Parameters of {@link evaluateGeneratedSet}. */
export interface EvaluateGeneratedSetParams {
  /** The generated set's folder (recorded as given). */
  generatedDir: string;
  /** The expert (run in inference mode; its `classNames` are the classes). Not disposed. */
  expert: Expert;
  /** The expert's file and sha256, recorded in the result. */
  expertPath: string;
  expertSha256: string;
  /** The real images to compare with, at the generated images' size and channels. */
  real: RealImageSet;
  /** Recorded as given in the result's `settings`. */
  settings: EvaluationSettings;
}

const SETTINGS_KEYS = ['classes', 'excludeClasses', 'realSet', 'ssimMaxPairs', 'ssimWindow', 'ssimWinSize', 'kidSubsets', 'kidSubsetSize', 'batchSize'];

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((c) => typeof c === 'string' && c.length > 0);

/** Checks a non-empty string param. Internal. */
export function checkString(fn: string, field: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`${fn}: ${field} must be a non-empty string, got ${show(value)}`);
}

/** Checks evaluation settings (every field of {@link EvaluationSettings}). Internal. */
export function checkEvaluationSettings(fn: string, s: unknown): asserts s is EvaluationSettings {
  assertObject(fn, 'settings', s);
  assertKnownKeys(fn, 'settings', s, SETTINGS_KEYS);
  if (s.classes !== null && !(isStringList(s.classes) && s.classes.length > 0)) throw new TypeError(`${fn}: settings.classes must be null or a non-empty list of class names, got ${show(s.classes)}`);
  if (!isStringList(s.excludeClasses)) throw new TypeError(`${fn}: settings.excludeClasses must be a list of class names, got ${show(s.excludeClasses)}`);
  assertOneOf(fn, 'settings.realSet', s.realSet, ['validation', 'all']);
  assertInt(fn, 'settings.ssimMaxPairs', s.ssimMaxPairs, 1);
  assertOneOf(fn, 'settings.ssimWindow', s.ssimWindow, ['gaussian', 'uniform']);
  assertInt(fn, 'settings.ssimWinSize', s.ssimWinSize, 3);
  if (s.ssimWinSize % 2 !== 1) throw new RangeError(`${fn}: settings.ssimWinSize must be odd, got ${s.ssimWinSize}`);
  assertInt(fn, 'settings.kidSubsets', s.kidSubsets, 1);
  assertInt(fn, 'settings.kidSubsetSize', s.kidSubsetSize, 1);
  assertInt(fn, 'settings.batchSize', s.batchSize, 1);
}

/** Checks a real image set: typed arrays of matching lengths, labels indexing `classNames`. Internal. */
export function checkRealImageSet(fn: string, field: string, r: unknown): asserts r is RealImageSet {
  assertObject(fn, field, r);
  if (!(r.images instanceof Float32Array)) throw new TypeError(`${fn}: ${field}.images must be a Float32Array, got ${show(r.images)}`);
  if (!(r.labels instanceof Int32Array)) throw new TypeError(`${fn}: ${field}.labels must be an Int32Array, got ${show(r.labels)}`);
  if (!isStringList(r.classNames)) throw new TypeError(`${fn}: ${field}.classNames must be a list of class names, got ${show(r.classNames)}`);
  assertInt(fn, `${field}.imageSize`, r.imageSize, 1);
  assertInt(fn, `${field}.channels`, r.channels, 1);
  const per = r.imageSize * r.imageSize * r.channels;
  if (r.images.length !== r.labels.length * per) throw new RangeError(`${fn}: ${field}.images holds ${r.images.length} values; ${r.labels.length} labels of ${r.imageSize}x${r.imageSize}x${r.channels} images need ${r.labels.length * per}`);
  const k = r.classNames.length;
  const bad = r.labels.findIndex((l) => l < 0 || l >= k);
  if (bad >= 0) throw new RangeError(`${fn}: ${field}.labels[${bad}] is ${r.labels[bad]}; labels must index classNames (0..${k - 1})`);
}

/** Checks an expert param: forward, inputSpec and class names. Internal. */
export function checkExpert(fn: string, expert: unknown): asserts expert is Expert {
  const e = expert as Expert | null;
  if (!e || typeof e.forward !== 'function' || typeof e.inputSpec !== 'object' || !isStringList(e.classNames as unknown)) throw new TypeError(`${fn}: expert must be an expert model (forward, inputSpec, classNames), got ${show(expert)}`);
}

/** The classes that count: `settings.classes`, or every class but `settings.excludeClasses`. */
function countedClasses(settings: EvaluationSettings, classNames: string[]): string[] {
  const list = settings.classes ?? classNames.filter((c) => !settings.excludeClasses.includes(c));
  for (const c of list) if (!classNames.includes(c)) throw new EvaluationRunError('unknown-class', `settings.classes names "${c}", which is not one of the classes (${classNames.join(', ')})`, { class: c, classNames });
  if (list.length === 0) throw new EvaluationRunError('no-classes', 'no class left to evaluate (check settings.classes and settings.excludeClasses)');
  return list;
}

const ci = (s: { ci95: readonly [number, number] | readonly number[] }): [number, number] => [s.ci95[0], s.ci95[1]];

/** The expert's outputs: per generated image (manifest order) logits and pooled features, per real image of the counted classes features. */
export interface EvaluationOutputs {
  gen: ExpertOutputs;
  real: { features: number[][] };
}

/** The inputs of an evaluation, read and checked: the manifest, the counted classes, the real images of the counted classes. Internal. */
export interface EvaluationInputs {
  m: GeneratedSetManifest<unknown, unknown>;
  classNames: string[];
  counted: string[];
  countedIdx: number[];
  /** Indices into `real` of the real images of the counted classes, and their pixels. */
  realIdx: number[];
  realPixels: Float32Array;
  per: number;
}

/** Reads the manifest and picks the real images to compare (every check of the evaluation that needs no expert pass). Internal. */
export function evaluationInputs(p: { generatedDir: string; classNames: readonly string[]; real: RealImageSet; settings: EvaluationSettings }): EvaluationInputs {
  const { real, settings } = p;
  const m = readGeneratedSetManifest<unknown, unknown>({ dir: p.generatedDir });
  const classNames = [...p.classNames];
  for (const c of m.generatedClasses) {
    if (!classNames.includes(c)) throw new EvaluationRunError('foreign-class', `the generated class "${c}" is not a class of the expert (${classNames.join(', ')})`, { class: c, classNames });
  }
  if (m.imageSize !== real.imageSize || m.channels !== real.channels) {
    throw new EvaluationRunError('size-mismatch', `generated images are ${m.imageSize}x${m.imageSize}x${m.channels} but the real ones are ${real.imageSize}x${real.imageSize}x${real.channels}`, {
      generated: { imageSize: m.imageSize, channels: m.channels },
      real: { imageSize: real.imageSize, channels: real.channels },
    });
  }
  const counted = countedClasses(settings, classNames);
  const countedIdx = counted.map((c) => classNames.indexOf(c));
  const per = m.imageSize * m.imageSize * m.channels;
  // Real images of the counted classes, relabelled to the expert's class order.
  const realMap = real.classNames.map((c) => classNames.indexOf(c));
  const realIdx: number[] = [];
  for (let i = 0; i < real.labels.length; i++) if (countedIdx.includes(realMap[real.labels[i]])) realIdx.push(i);
  if (realIdx.length < 2) throw new EvaluationRunError('too-few-real', `only ${realIdx.length} real image(s) of the evaluated classes; need at least 2`, { count: realIdx.length });
  const realPixels = new Float32Array(realIdx.length * per);
  realIdx.forEach((k, i) => realPixels.set(real.images.subarray(k * per, (k + 1) * per), i * per));
  return { m, classNames, counted, countedIdx, realIdx, realPixels, per };
}

/**
 * Evaluates the generated set in `p.generatedDir` against `p.real` with the expert (see the file
 * comment). The result's `createdAt` and `elapsedSeconds` are this call's.
 * @throws EvaluationRunError `unknown-class`, `no-classes`, `foreign-class`, `size-mismatch`,
 *   `too-few-real`, `too-few-generated`; GenerationRunError (diffusion-core) when the set cannot be read.
 */
export async function evaluateGeneratedSet(p: EvaluateGeneratedSetParams): Promise<EvaluationResult> {
  const fn = 'evaluateGeneratedSet';
  assertObject(fn, 'params', p);
  assertKnownKeys(fn, '', p, ['generatedDir', 'expert', 'expertPath', 'expertSha256', 'real', 'settings']);
  checkString(fn, 'generatedDir', p.generatedDir);
  checkExpert(fn, p.expert);
  checkString(fn, 'expertPath', p.expertPath);
  checkString(fn, 'expertSha256', p.expertSha256);
  checkRealImageSet(fn, 'real', p.real);
  checkEvaluationSettings(fn, p.settings);
  return evaluateWith({ ...p, classNames: p.expert.classNames });
}

/**
 * The evaluation, with the expert or with its outputs computed before (the merge of
 * `evaluateGeneratedSetShard`'s shards, which records the shards' timing). Params checked by the caller. Internal.
 */
export async function evaluateWith(p: {
  generatedDir: string;
  classNames: readonly string[];
  /** Null when `outputs` are given. */
  expert: Expert | null;
  outputs?: EvaluationOutputs;
  /** createdAt and elapsedSeconds to record instead of this call's. */
  timing?: { createdAt: string; elapsedSeconds: number };
  expertPath: string;
  expertSha256: string;
  real: RealImageSet;
  settings: EvaluationSettings;
}): Promise<EvaluationResult> {
  const t0 = Date.now();
  const { expert, real, settings } = p;
  const { m, classNames, counted, countedIdx, realIdx, realPixels, per } = evaluationInputs({ generatedDir: p.generatedDir, classNames: p.classNames, real, settings });
  const genPixels = await readGeneratedSetImages({ dir: p.generatedDir, manifest: m });
  const intended = m.images.map((i) => classNames.indexOf(i.class));
  const pass = (images: Float32Array, n: number) => expertOutputs({ expert: expert!, images, n, size: m.imageSize, channels: m.channels, batchSize: settings.batchSize });
  const gen = p.outputs?.gen ?? pass(genPixels, m.images.length);
  if (gen.logits.length !== m.images.length || gen.features.length !== m.images.length) throw new EvaluationRunError('bad-shards', `the expert outputs cover ${gen.logits.length} generated images, the set has ${m.images.length}`);
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

  const realOut = p.outputs?.real ?? pass(realPixels, realIdx.length);
  if (realOut.features.length !== realIdx.length) throw new EvaluationRunError('bad-shards', `the expert outputs cover ${realOut.features.length} real images, the evaluation compares ${realIdx.length}`);
  const genFeatures = countedGen.map((i) => gen.features[i]);
  if (genFeatures.length < 2) throw new EvaluationRunError('too-few-generated', `only ${genFeatures.length} generated image(s) of the evaluated classes; need at least 2 for FD and KID`, { count: genFeatures.length });
  const fd = frechetDistance({ features1: realOut.features, features2: genFeatures });
  const kid = kernelInceptionDistance({ features1: realOut.features, features2: genFeatures, numSubsets: settings.kidSubsets, subsetSize: settings.kidSubsetSize, seed: 0 });

  const intensity = intensityEvaluation({ genPixels, intended, real, realMap, classNames, generatedClasses: m.generatedClasses, shape });

  return {
    format: 'fad-evaluation/1',
    generatedDir: p.generatedDir,
    expert: p.expertPath,
    expertSha256: p.expertSha256,
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
    createdAt: p.timing?.createdAt ?? new Date(t0).toISOString(),
    elapsedSeconds: p.timing?.elapsedSeconds ?? (Date.now() - t0) / 1000,
  };
}

const orNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** Per-class generated-vs-real intensity over every generated class (real images of other classes left out). */
function intensityEvaluation(p: {
  genPixels: Float32Array;
  intended: number[];
  real: RealImageSet;
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
