/**
 * `evaluateGenerated` in process (no build needed): the intensity section of eval.json on a tiny
 * hand-made set — real "white" tiles against generated gray ones, and a "dark" class with
 * hand-computed means, sds and contrasts — the printed table, and the report's table and figure
 * (with an older eval.json that has no intensity beside it).
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { createExpert } from '@fad/expert-models';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from './config';
import { type EvaluationResult, type RealSet, evaluateGenerated, formatIntensity } from './evaluate';
import { writeReport } from './report';

const S = 8;
const root = mkdtempSync(join(tmpdir(), 'fad-evaluate-'));
const classNames = ['white', 'dark'];

const fill = (v: number) => new Float32Array(S * S).fill(v);
/** Checkerboard of a and b: mean (a+b)/2, population sd |a-b|/2. */
const checker = (a: number, b: number) => Float32Array.from({ length: S * S }, (_, i) => ((i % S) + Math.floor(i / S)) % 2 === 0 ? a : b);

async function writePng(file: string, pixels: Float32Array): Promise<void> {
  const buf = Buffer.from(Array.from(pixels, (v) => Math.round(v * 255)));
  await sharp(buf, { raw: { width: S, height: S, channels: 1 } }).png().toFile(file);
}

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

let dir = '';
let evaluation: EvaluationResult;
beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = join(root, 'gen');
  mkdirSync(join(dir, 'white'), { recursive: true });
  mkdirSync(join(dir, 'dark'), { recursive: true });
  const images = [];
  for (const [i, g] of generated.entries()) {
    const file = `${g.class}/s0-${String(i).padStart(3, '0')}.png`;
    await writePng(join(dir, file), g.pixels);
    images.push({ file, class: g.class, seed: 0, index: i });
  }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ format: 'fad-generated/1', classNames, generatedClasses: classNames, seeds: [0], imageSize: S, channels: 1, images }));
});

describe('evaluateGenerated: intensity', () => {
  it('writes per-class generated-vs-real mean intensity and contrast (hand-computed), every generated class included', async () => {
    const expert = createExpert({ config: { arch: 'resnet', block: 'basic', layers: [1], baseWidth: 4, numClasses: 2, input: { size: S, channels: 1, range: [0, 1] } }, classNames, seed: 3 });
    const real: RealSet = { images: new Float32Array(realImages.length * S * S), labels: Int32Array.from(realLabels), classNames, imageSize: S, channels: 1 };
    realImages.forEach((p, i) => real.images.set(p, i * S * S));
    // Only "dark" counts for accuracy; intensity still covers "white" (as it must cover "empty").
    const settings = parseConfig({ evaluate: { classes: ['dark'], ssimWindow: 'uniform', kidSubsetSize: 2 } }).evaluate;
    let r: EvaluationResult | undefined;
    try {
      r = await evaluateGenerated({ generatedDir: dir, expert, expertPath: 'x', expertSha256: '0', real, settings });
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
    const table = formatIntensity(r!.intensity!);
    expect(table).toMatch(/\n {2}white +0\.502 +1\.000 +-0\.498 +– +0\.000 +0\.000/);
    expect(table).toMatch(/\n {2}dark +0\.250 +0\.300 +-0\.050 +-0\.3 +0\.250 +0\.067/);
    expect(table).toMatch(/\n {2}all /);
    evaluation = r!;
  });

  it('lists the expert\'s top class for every generated image, in manifest order, consistent with the counts', () => {
    const preds = evaluation.predictions!;
    expect(preds.map((p) => p.file)).toEqual(generated.map((g, i) => `${g.class}/s0-${String(i).padStart(3, '0')}.png`));
    expect(preds.map((p) => p.class)).toEqual(generated.map((g) => g.class));
    expect(preds.every((p) => p.seed === 0 && classNames.includes(p.predicted))).toBe(true);
    // "dark" (the counted class): its confusion-matrix row and numCorrect are the predictions' counts.
    const dark = preds.filter((p) => p.class === 'dark');
    expect(evaluation.confusionMatrix[1]).toEqual(classNames.map((c) => dark.filter((p) => p.predicted === c).length));
    expect(evaluation.generationAccuracy.perClass[0].numCorrect).toBe(dark.filter((p) => p.predicted === 'dark').length);
  });

  it('fad report shows the intensity table and figure, and still reports an older eval.json without it', async () => {
    const run = join(root, 'run');
    for (const v of ['baseline', 'old']) mkdirSync(join(run, 'variants', v), { recursive: true });
    writeFileSync(join(run, 'variants', 'baseline', 'eval.json'), JSON.stringify(evaluation));
    const { intensity: _i, ...old } = evaluation;
    writeFileSync(join(run, 'variants', 'old', 'eval.json'), JSON.stringify(old));
    const rep = await writeReport(run);
    expect(rep.figures.map((f) => f.split('/').at(-1))).toContain('intensity.png');
    expect(existsSync(join(run, 'report', 'figures', 'intensity.png'))).toBe(true);
    const html = (await import('node:fs')).readFileSync(rep.html, 'utf8');
    expect(html).toContain('<h2>Mean intensity and contrast</h2>');
    expect(html).toContain('<th>baseline mean (diff)</th>');
    expect(html).not.toContain('<th>old mean (diff)</th>');
    expect(html).toMatch(/<tr><td>white<\/td><td>1\.000<\/td><td>0\.000<\/td><td>0\.502 \(-0\.498\)<\/td><td>0\.000<\/td><\/tr>/);
    // Without any intensity section the report has neither table nor figure.
    writeFileSync(join(run, 'variants', 'baseline', 'eval.json'), JSON.stringify(old));
    const rep2 = await writeReport(run);
    expect(rep2.figures.map((f) => f.split('/').at(-1))).not.toContain('intensity.png');
    expect((await import('node:fs')).readFileSync(rep2.html, 'utf8')).not.toContain('Mean intensity and contrast');
  }, 60_000);
});
