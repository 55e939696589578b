// Test helper (not part of the package API): a tiny experiment run folder with every part the
// report reads — run.json, split.json and a real data folder (12x12 images, one unreadable), the
// training metrics of two variants, their evaluations (one with the intensity section, one
// without) and generated sets (one filtered with matchMean), a third variant not evaluated yet,
// the expert's metrics and evaluation, both DreamBooth arms (one not evaluated yet), the utility
// results and a config.yaml. Values are hand-made, so the report's tables can be checked by hand.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writePngFile } from '@fad/diffusion-core/node';
import type { ReportUtilityResults } from '../node/report-inputs';

const S = 8;
const CLASSES = ['dark', 'light'];

/** A size x size grayscale image: a diagonal ramp from `lo` to `hi`. */
function ramp(size: number, lo: number, hi: number): Float32Array {
  return Float32Array.from({ length: size * size }, (_, i) => lo + ((hi - lo) * ((i % size) + Math.floor(i / size))) / (2 * size - 2));
}

/** A size x size grayscale checkerboard of `a` and `b`. */
function checker(size: number, a: number, b: number): Float32Array {
  return Float32Array.from({ length: size * size }, (_, i) => ((i % size) + Math.floor(i / size)) % 2 === 0 ? a : b);
}

function json(path: string, value: unknown): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

const intensityRow = (generatedMean: number, realMean: number, generatedContrast: number, realContrast: number) => ({
  numGenerated: 2, numReal: 1, generatedMean, realMean, meanDifference: generatedMean - realMean, generatedMeanSd: 0, realMeanSd: 0.1, meanGap: (generatedMean - realMean) / 0.1,
  generatedContrast, realContrast, contrastDifference: generatedContrast - realContrast,
});

/** An eval.json with generation accuracy `seedAcc` for seeds 0 and 1 (intensity section optional). */
export function fixtureEvaluation(seedAcc: [number, number], withIntensity: boolean, frechet: number | null) {
  const overall = (seedAcc[0] + seedAcc[1]) / 2;
  return {
    format: 'fad-evaluation/1', generatedDir: '/gen', expert: '/expert.safetensors', expertSha256: '0', classNames: CLASSES, countedClasses: CLASSES, numGenerated: 4, numReal: 2,
    generationAccuracy: {
      overall, macro: overall - 0.05,
      perClass: CLASSES.map((c) => ({ class: c, accuracy: overall, numImages: 2, numCorrect: 1 })),
      perSeed: [{ seed: 0, overall: seedAcc[0], macro: seedAcc[0] }, { seed: 1, overall: seedAcc[1], macro: seedAcc[1] }],
    },
    confusionMatrix: [[1, 1], [0, 2]],
    diversity: {
      perClass: [
        { class: 'dark', generated: 0.4, generatedCi95: [0.4, 0.4], real: 0.5, realCi95: [0.3, 0.7], numGenerated: 2, numReal: 1 },
        { class: 'light', generated: null, generatedCi95: [null, null], real: 0.25, realCi95: [0.2, 0.3], numGenerated: 2, numReal: 1 },
      ],
      overall: { generated: 0.4, real: 0.375 }, macro: { generated: 0.4, real: 0.375 }, window: 'uniform 7x7',
    },
    frechetDistance: frechet,
    kid: { mean: 0.0123, std: 0.00456, subsetSize: 2, numSubsets: 10 },
    ...(withIntensity ? { intensity: { perClass: [{ class: 'dark', ...intensityRow(0.25, 0.3, 0.25, 0.2) }, { class: 'light', ...intensityRow(0.875, 0.75, 0.1, 0.125) }], overall: intensityRow(0.5, 0.5, 0.2, 0.2), definition: 'mean: ...' } } : {}),
    settings: {}, createdAt: '2025-01-01T00:00:00.000Z', elapsedSeconds: 1,
  };
}

/** A generated set: 2 images per class and seed 0, the `shift`ed ramps. */
async function generatedSet(dir: string, shift: number, extra: Record<string, unknown>, classes = CLASSES): Promise<void> {
  const images = [];
  for (const c of classes) {
    mkdirSync(join(dir, c), { recursive: true });
    for (let i = 0; i < 2; i++) {
      const file = `${c}/s0-${String(i).padStart(3, '0')}.png`;
      const lo = c === 'dark' ? 0 : 0.5;
      await writePngFile({ path: join(dir, file), pixels: ramp(S, lo, lo + 0.25 + 0.1 * i + shift), size: S, channels: 1 });
      images.push({ file, class: c, seed: 0, index: i });
    }
  }
  json(join(dir, 'manifest.json'), {
    format: 'fad-generated/1', checkpoint: 'model.safetensors', checkpointSha256: '0'.repeat(64), classNames: CLASSES, generatedClasses: classes, sampler: 'ddim', steps: 4, guidanceScale: 1, eta: 0,
    seeds: [0], imagesPerClass: 2, batchSize: 4, imageSize: S, channels: 1, matchMean: null, backend: 'cpu', images, ...extra,
  });
}

const utilityEstimate = (mean: number) => ({ mean, ci95: [mean - 0.05, mean + 0.05] as [number, number], perSeed: [mean, mean] });
const protocol = (id: string, kind: 'real' | 'mixed' | 'synthetic', fraction: number | null, synthetic: string | null, acc: number, gain: number | null) => ({
  id, kind, fraction, synthetic, ratio: kind === 'mixed' ? 1 : null, reference: kind === 'real' ? null : 'real-f1',
  seeds: [0, 1], numReal: kind === 'synthetic' ? 0 : 4 * (fraction ?? 1), numSynthetic: kind === 'real' ? 0 : 4, numTrain: 8, repeatedClasses: kind === 'synthetic' ? ['dark'] : [],
  accuracy: utilityEstimate(acc), macroF1: utilityEstimate(acc - 0.1), perClassRecall: CLASSES.map((c, k) => ({ class: c, ...utilityEstimate(acc - 0.1 * k) })),
  gain: gain === null ? null : { accuracy: utilityEstimate(gain), macroF1: utilityEstimate(gain / 2), perClassRecall: [] },
  seconds: { total: 2.5, perClassifier: 1.25 },
});

/** utility.json of a study with real-only, mixed and synthetic-only protocols of the set "baseline". */
export function fixtureUtilityResults(): ReportUtilityResults {
  const json = {
    format: 'fad-utility/1' as const, backend: 'cpu', classifier: { preset: 'resnet18-kather' }, data: { classNames: CLASSES },
    summary: {
      protocols: [
        protocol('real-f0.5', 'real', 0.5, null, 0.6, null), protocol('real-f1', 'real', 1, null, 0.7, null),
        protocol('mix-baseline-r1-f0.5', 'mixed', 0.5, 'baseline', 0.65, 0.05), protocol('mix-baseline-r1-f1', 'mixed', 1, 'baseline', 0.72, 0.02),
        protocol('syn-baseline', 'synthetic', null, 'baseline', 0.4, -0.3),
      ],
      bootstrap: { samples: 100, seed: 0, over: 'seeds-and-images', level: 0.95, method: 'percentile bootstrap' }, numTest: 6, testPerClass: [3, 3],
    },
    runs: new Array(10).fill({}),
    wallTime: { perClassifierMean: 1.25, classifiersTotal: 125, thisInvocation: 125 },
  };
  return json;
}

/** Writes the run folder `dir` (created) and returns it. */
export async function writeReportRunFolder(dir: string): Promise<string> {
  const data = join(dir, 'data');
  mkdirSync(data, { recursive: true });
  // Real images: 12x12 (dark: checkerboards, light: ramps), resized to 8x8 by area for the grids;
  // light/bad.png cannot be decoded.
  const files = ['dark/0.png', 'dark/1.png', 'light/0.png', 'light/1.png', 'light/bad.png'];
  for (const [i, f] of files.entries()) {
    mkdirSync(join(data, f, '..'), { recursive: true });
    if (f.endsWith('bad.png')) writeFileSync(join(data, f), 'not a png');
    else await writePngFile({ path: join(data, f), pixels: i < 2 ? checker(12, 0.1 * i, 0.9) : ramp(12, 0.6, 0.7 + 0.1 * i), size: 12, channels: 1 });
  }
  json(join(dir, 'run.json'), { backend: 'cpu', startedAt: '2025-01-01T00:00:00.000Z', dataDir: data, imageSize: S, channels: 1 });
  json(join(dir, 'split.json'), { files, labels: [0, 0, 1, 1, 1], classNames: CLASSES, validation: [1, 3, 4] });
  writeFileSync(join(dir, 'config.yaml'), "experiment:\n  name: <tiny> & 'fixture'\n");

  const v = (name: string) => join(dir, 'variants', name);
  for (const [name, aligned] of [['baseline', false], ['aligned-clean', true], ['aligned-noisy', true]] as const) {
    mkdirSync(join(v(name), 'train'), { recursive: true });
    const lines = [1, 2, 3].map((step) => JSON.stringify({ step, terms: { diffusion: 1 / step + (aligned ? 0.05 : 0), ...(aligned ? { 'feature_align.align': 0.5 / step } : {}) } }));
    writeFileSync(join(v(name), 'train', 'metrics.jsonl'), `${lines[0]}\nnot json\n${lines.slice(1).join('\n')}\n`);
  }
  mkdirSync(join(dir, 'variants', '.hidden'), { recursive: true });
  json(join(v('baseline'), 'eval.json'), fixtureEvaluation([0.5, 0.75], true, 12.3456));
  json(join(v('aligned-clean'), 'eval.json'), fixtureEvaluation([0.75, 1], false, null));
  await generatedSet(join(v('baseline'), 'generated'), 0, {});
  await generatedSet(join(v('aligned-clean'), 'generated'), 0.1, { matchMean: { enabled: true, k: 3, maxAttempts: 10, realStats: {} } });

  json(join(dir, 'expert', 'eval.json'), { classNames: CLASSES, confusionMatrix: [[2, 0], [1, 1]], accuracy: 0.75, numSamples: 4 });
  writeFileSync(join(dir, 'expert', 'metrics.jsonl'), [{ epoch: 1, trainAccuracy: 0.5, validationAccuracy: null }, { epoch: 2, trainAccuracy: 0.75, validationAccuracy: 0.5 }].map((l) => JSON.stringify(l)).join('\n'));

  const db = join(dir, 'dreambooth', 'dreambooth');
  json(join(db, 'eval.json'), { ...fixtureEvaluation([0.5, 1], false, 3.5), countedClasses: ['light'] });
  await generatedSet(join(db, 'generated'), 0.05, { dreambooth: { class: 'light', token: 'sks', classLabel: 1, tokenLabel: 2 } }, ['light']);
  mkdirSync(join(dir, 'dreambooth', 'dreambooth-aligned'), { recursive: true });

  json(join(dir, 'utility', 'utility.json'), fixtureUtilityResults());
  return dir;
}
