/**
 * evaluateGeneratedSet on two tiny hand-made sets: the fixture (a stub expert whose features and
 * predictions are known: accuracy per class and seed, confusion matrix, FD/KID by their 1-D
 * formulas, and the whole eval.json pinned as today's CLI wrote it before the move), and the
 * intensity set (real "white" tiles against generated gray ones, a "dark" class with hand-computed
 * means, sds and contrasts).
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writePngFile } from '@fad/diffusion-core/node';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createExpert } from '../create-expert';
import { formatIntensityTable } from '../evaluation-tables';
import { FIXTURE_CLASSES, FIXTURE_GENERATED, FIXTURE_REAL, FIXTURE_SETTINGS, fixtureReal, stubExpert, writeFixtureSet } from '../testing/evaluation-fixture';
import { useCpuBackend } from '../testing/setup-cpu';
import { type EvaluateGeneratedSetParams, type EvaluationResult, type EvaluationSettings, evaluateGeneratedSet, type RealImageSet } from './evaluate-generated-set';
import { EvaluationRunError } from './evaluation-run-error';

const root = mkdtempSync(join(tmpdir(), 'fad-evaluate-set-'));
const gen = join(root, 'gen');

beforeAll(async () => {
  await useCpuBackend();
  await writeFixtureSet(gen);
});

const settings = (extra: Partial<EvaluationSettings> = {}): EvaluationSettings => ({ ...FIXTURE_SETTINGS, excludeClasses: [...FIXTURE_SETTINGS.excludeClasses], ...extra });
const params = (extra: Partial<EvaluateGeneratedSetParams> = {}): EvaluateGeneratedSetParams => ({
  generatedDir: gen, expert: stubExpert(), expertPath: 'stub.safetensors', expertSha256: 'stub-sha256', real: fixtureReal(), settings: settings(), ...extra,
});

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const sampleVar = (v: number[]) => v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1);

describe('evaluateGeneratedSet (fixture with a stub expert)', () => {
  let r: EvaluationResult;

  it('writes the eval.json of the CLI before the move, byte for byte apart from its timing fields, leaking no tensor', async () => {
    const before = tf.memory().numTensors;
    r = await evaluateGeneratedSet(params());
    expect(tf.memory().numTensors).toBe(before);
    const text = `${JSON.stringify({ ...r, generatedDir: 'GEN', createdAt: '', elapsedSeconds: 0 }, null, 2)}\n`;
    expect(text).toBe(readFileSync(fileURLToPath(new URL('../testing/evaluation-fixture.eval.json', import.meta.url)), 'utf8'));
    expect(r.generatedDir).toBe(gen);
    expect(Date.parse(r.createdAt)).toBeGreaterThan(Date.now() - 600_000);
    expect(r.elapsedSeconds).toBeGreaterThanOrEqual(0);
  });

  it('counts the accuracy per class and seed from the stub\'s predictions, "empty" left out', () => {
    expect(r.countedClasses).toEqual(['a', 'b']);
    expect(r.predictions!.map((p) => p.predicted)).toEqual(FIXTURE_GENERATED.map((g) => g.predicted));
    const counted = FIXTURE_GENERATED.filter((g) => g.class !== 'empty');
    const acc = (list: typeof counted) => list.filter((g) => g.predicted === g.class).length / list.length;
    expect(r.numGenerated).toBe(counted.length);
    expect(r.generationAccuracy.overall).toBe(acc(counted));
    expect(r.generationAccuracy.perClass).toEqual(['a', 'b'].map((c) => {
      const of = counted.filter((g) => g.class === c);
      return { class: c, accuracy: acc(of), numImages: of.length, numCorrect: of.filter((g) => g.predicted === c).length };
    }));
    expect(r.generationAccuracy.perSeed.map((s) => [s.seed, s.overall])).toEqual([0, 1, 2].map((seed) => [seed, acc(counted.filter((g) => g.seed === seed))]));
    // Rows: intended a, b (counted), empty (not counted: zeros); columns: predicted a, b, empty.
    expect(r.confusionMatrix).toEqual(FIXTURE_CLASSES.map((t) => FIXTURE_CLASSES.map((p) => counted.filter((g) => g.class === t && g.predicted === p).length)));
  });

  it('computes FD and KID on the stub\'s known 1-D features of the counted images', () => {
    const g = FIXTURE_GENERATED.filter((x) => x.class !== 'empty').map((x) => x.value);
    const real = FIXTURE_REAL.filter((x) => x.class !== 'empty').map((x) => x.value);
    expect(r.numReal).toBe(real.length);
    // 1-D Fréchet distance: (mu1 - mu2)^2 + var1 + var2 - 2 sqrt(var1 var2), sample variances.
    const fd = (mean(real) - mean(g)) ** 2 + sampleVar(real) + sampleVar(g) - 2 * Math.sqrt(sampleVar(real) * sampleVar(g));
    expect(r.frechetDistance).toBeCloseTo(fd, 6);
    // Both sets have 6 images and kidSubsetSize is 6: every subset is the whole set, so the KID is
    // the unbiased MMD^2 with k(x, y) = (x y + 1)^3, and its sd over subsets 0.
    const k = (x: number, y: number) => (x * y + 1) ** 3;
    const within = (v: number[]) => v.reduce((a, x, i) => a + v.reduce((b, y, j) => b + (i === j ? 0 : k(x, y)), 0), 0) / (v.length * (v.length - 1));
    const across = real.reduce((a, x) => a + g.reduce((b, y) => b + k(x, y), 0), 0) / (real.length * g.length);
    expect(r.kid.mean).toBeCloseTo(within(real) + within(g) - 2 * across, 5);
    expect(r.kid).toMatchObject({ std: 0, subsetSize: 6, numSubsets: 3 });
  });

  it('counts settings.classes only when given, and refuses classes and sets that cannot be evaluated with codes', async () => {
    const onlyB = await evaluateGeneratedSet(params({ settings: settings({ classes: ['b'] }) }));
    expect(onlyB.countedClasses).toEqual(['b']);
    expect(onlyB.generationAccuracy.overall).toBeCloseTo(2 / 3, 12);
    const code = async (p: EvaluateGeneratedSetParams) => {
      const e = await evaluateGeneratedSet(p).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(EvaluationRunError);
      return [(e as EvaluationRunError).code, (e as Error).message];
    };
    expect(await code(params({ settings: settings({ classes: ['c'] }) }))).toEqual(['unknown-class', 'settings.classes names "c", which is not one of the classes (a, b, empty)']);
    expect((await code(params({ settings: settings({ excludeClasses: ['a', 'b', 'empty'] }) })))[0]).toBe('no-classes');
    const two = fixtureReal();
    const other = { ...stubExpert(), classNames: ['a', 'b'] };
    expect(await code(params({ expert: other as never }))).toEqual(['foreign-class', 'the generated class "empty" is not a class of the expert (a, b)']);
    const big: RealImageSet = { ...two, imageSize: 4, images: two.images.subarray(0, two.labels.length * 16) };
    expect(await code(params({ real: big }))).toEqual(['size-mismatch', 'generated images are 8x8x1 but the real ones are 4x4x1']);
    const oneReal: RealImageSet = { ...two, labels: Int32Array.from(two.labels.map((l, i) => (i === 0 ? 0 : 2))) };
    expect(await code(params({ real: oneReal }))).toEqual(['too-few-real', 'only 1 real image(s) of the evaluated classes; need at least 2']);
    // "empty" counted alone: 3 real, 3 generated; a set with one generated "a" only is too few for FD/KID.
    const one = join(root, 'one');
    mkdirSync(join(one, 'a'), { recursive: true });
    await writePngFile({ path: join(one, 'a', 's0-000.png'), pixels: new Float32Array(64).fill(0.2), size: 8, channels: 1 });
    writeFileSync(join(one, 'manifest.json'), JSON.stringify({ format: 'fad-generated/1', classNames: FIXTURE_CLASSES, generatedClasses: ['a'], seeds: [0], imageSize: 8, channels: 1, images: [{ file: 'a/s0-000.png', class: 'a', seed: 0, index: 0 }] }));
    expect(await code(params({ generatedDir: one }))).toEqual(['too-few-generated', 'only 1 generated image(s) of the evaluated classes; need at least 2 for FD and KID']);
  });

  it('checks its params up front, naming the field', async () => {
    const err = (p: unknown) => evaluateGeneratedSet(p as EvaluateGeneratedSetParams).then(() => null, (e: Error) => `${e.name}: ${e.message}`);
    expect(await err(null)).toMatch(/^TypeError: evaluateGeneratedSet: params must be an object/);
    expect(await err(params({ generatedDir: '' }))).toMatch(/^TypeError: evaluateGeneratedSet: generatedDir must be a non-empty string/);
    expect(await err(params({ expert: {} as never }))).toMatch(/^TypeError: evaluateGeneratedSet: expert must be an expert model/);
    expect(await err({ ...params(), expertpath: 'x' })).toMatch(/^RangeError: evaluateGeneratedSet: unknown field expertpath/);
    expect(await err(params({ real: { ...fixtureReal(), labels: new Int32Array(2) } }))).toMatch(/^RangeError: evaluateGeneratedSet: real\.images holds 512 values; 2 labels of 8x8x1 images need 128/);
    expect(await err(params({ real: { ...fixtureReal(), labels: Int32Array.from(fixtureReal().labels, (l) => l + 1) } }))).toMatch(/real\.labels\[\d\] is 3; labels must index classNames/);
    expect(await err(params({ settings: settings({ ssimWinSize: 4 }) }))).toMatch(/^RangeError: evaluateGeneratedSet: settings\.ssimWinSize must be odd, got 4/);
    expect(await err(params({ settings: settings({ batchSize: 0 }) }))).toMatch(/settings\.batchSize must be an integer >= 1, got 0/);
    expect(await err(params({ settings: settings({ classes: [] }) }))).toMatch(/settings\.classes must be null or a non-empty list/);
    expect(await err(params({ settings: { ...settings(), ssimwindow: 'uniform' } as never }))).toMatch(/unknown field settings\.ssimwindow/);
    expect(await err(params({ generatedDir: join(root, 'nothing') }))).toMatch(/^GenerationRunError: .*nothing is not a generated set/);
  });
});

describe('evaluateGeneratedSet: intensity', () => {
  const S = 8;
  const classNames = ['white', 'dark'];
  const fill = (v: number) => new Float32Array(S * S).fill(v);
  /** Checkerboard of a and b: mean (a+b)/2, population sd |a-b|/2. */
  const checker = (a: number, b: number) => Float32Array.from({ length: S * S }, (_, i) => ((i % S) + Math.floor(i / S)) % 2 === 0 ? a : b);
  // Generated: "white" = two all-gray (128/255) tiles; "dark" = an all-black tile and a black/white checkerboard.
  const generated: Array<{ class: string; pixels: Float32Array }> = [
    { class: 'white', pixels: fill(128 / 255) },
    { class: 'white', pixels: fill(128 / 255) },
    { class: 'dark', pixels: fill(0) },
    { class: 'dark', pixels: checker(0, 1) },
  ];
  // Real: "white" = three all-white tiles; "dark" = all 0.2, checker 0/0.4 (mean 0.2, contrast 0.2), all 0.5.
  const realImages = [fill(1), fill(1), fill(1), fill(0.2), checker(0, 0.4), fill(0.5)];
  const realLabels = [0, 0, 0, 1, 1, 1];

  it('writes per-class generated-vs-real mean intensity and contrast (hand-computed), every generated class included', async () => {
    const dir = join(root, 'intensity');
    mkdirSync(join(dir, 'white'), { recursive: true });
    mkdirSync(join(dir, 'dark'), { recursive: true });
    const images = [];
    for (const [i, g] of generated.entries()) {
      const file = `${g.class}/s0-${String(i).padStart(3, '0')}.png`;
      await writePngFile({ path: join(dir, file), pixels: g.pixels, size: S, channels: 1 });
      images.push({ file, class: g.class, seed: 0, index: i });
    }
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ format: 'fad-generated/1', classNames, generatedClasses: classNames, seeds: [0], imageSize: S, channels: 1, images }));
    const expert = createExpert({ config: { arch: 'resnet', block: 'basic', layers: [1], baseWidth: 4, numClasses: 2, input: { size: S, channels: 1, range: [0, 1] } }, classNames, seed: 3 });
    const real: RealImageSet = { images: new Float32Array(realImages.length * S * S), labels: Int32Array.from(realLabels), classNames, imageSize: S, channels: 1 };
    realImages.forEach((p, i) => real.images.set(p, i * S * S));
    // Only "dark" counts for accuracy; intensity still covers "white" (as it must cover "empty").
    const s = { ...settings({ classes: ['dark'], kidSubsetSize: 2 }) };
    let r: EvaluationResult | undefined;
    try {
      r = await evaluateGeneratedSet({ generatedDir: dir, expert, expertPath: 'x', expertSha256: '0', real, settings: s });
    } finally {
      expert.dispose();
    }
    const json = JSON.parse(JSON.stringify(r)); // as written to eval.json (NaN -> null)
    const it = json.intensity;
    expect(it.perClass.map((c: { class: string }) => c.class)).toEqual(['white', 'dark']);
    const [white, dark] = it.perClass;
    expect(white).toMatchObject({ numGenerated: 2, numReal: 3, realMean: 1, realMeanSd: 0, meanGap: null, generatedContrast: 0, realContrast: 0, contrastDifference: 0 });
    expect(white.generatedMean).toBeCloseTo(128 / 255, 6);
    expect(white.meanDifference).toBeCloseTo(128 / 255 - 1, 6);
    expect(white.generatedMeanSd).toBe(0);
    // dark: generated means 0 and 0.5 -> 0.25, contrasts 0 and 0.5 -> 0.25; real means .2,.2,.5 -> .3, sd sqrt(0.03)
    expect(dark.numGenerated).toBe(2);
    expect(dark.numReal).toBe(3);
    expect(dark.generatedMean).toBeCloseTo(0.25, 6);
    expect(dark.realMean).toBeCloseTo(0.3, 6);
    expect(dark.meanDifference).toBeCloseTo(-0.05, 6);
    expect(dark.realMeanSd).toBeCloseTo(Math.sqrt(0.03), 6);
    expect(dark.meanGap).toBeCloseTo(-0.05 / Math.sqrt(0.03), 5);
    expect(dark.generatedMeanSd).toBeCloseTo(Math.sqrt(0.125), 6);
    expect(dark.generatedContrast).toBeCloseTo(0.25, 6);
    expect(dark.realContrast).toBeCloseTo(0.2 / 3, 6);
    // Pool: generated (2*128/255 + 0.5) / 4; real (3 + 0.9) / 6
    expect(it.overall.generatedMean).toBeCloseTo((2 * (128 / 255) + 0.5) / 4, 6);
    expect(it.overall.realMean).toBeCloseTo(3.9 / 6, 6);
    expect(it.definition).toMatch(/population standard deviation/);
    const table = formatIntensityTable({ intensity: r!.intensity! });
    expect(table).toMatch(/\n {2}white +0\.502 +1\.000 +-0\.498 +– +0\.000 +0\.000/);
    expect(table).toMatch(/\n {2}dark +0\.250 +0\.300 +-0\.050 +-0\.3 +0\.250 +0\.067/);
    expect(table).toMatch(/\n {2}all /);
    // Predictions: every generated image in manifest order; the "dark" confusion row and numCorrect are their counts.
    const preds = r!.predictions!;
    expect(preds.map((p) => p.file)).toEqual(images.map((i) => i.file));
    expect(preds.every((p) => p.seed === 0 && classNames.includes(p.predicted))).toBe(true);
    const darkPreds = preds.filter((p) => p.class === 'dark');
    expect(r!.confusionMatrix[1]).toEqual(classNames.map((c) => darkPreds.filter((p) => p.predicted === c).length));
    expect(r!.generationAccuracy.perClass[0].numCorrect).toBe(darkPreds.filter((p) => p.predicted === 'dark').length);
  });
});
