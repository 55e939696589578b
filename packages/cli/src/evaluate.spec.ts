/**
 * What `fad` does with an evaluation (the evaluation itself is @fad/expert-models/node's
 * `evaluateGeneratedSet`, tested there; `fad evaluate` end to end is in cli.spec.ts and
 * evaluate-shards.spec.ts): `fad report` shows the intensity table and figure of an eval.json, and
 * still reports an older eval.json without them. The CLI's `evaluate` config section is the
 * library's settings type.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EvaluationResult, EvaluationSettings } from '@fad/expert-models/node';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { type EvaluateSection, parseConfig } from './config';
import { writeReport } from './report';

const root = mkdtempSync(join(tmpdir(), 'fad-evaluate-'));
const row = (generatedMean: number, realMean: number, generatedContrast: number, realContrast: number) => ({
  numGenerated: 2, numReal: 3, generatedMean, realMean, meanDifference: generatedMean - realMean, generatedMeanSd: 0, realMeanSd: 0.1, meanGap: (generatedMean - realMean) / 0.1,
  generatedContrast, realContrast, contrastDifference: generatedContrast - realContrast,
});
/** An eval.json of two classes, "dark" counted, "white" in the intensity section only (as "empty" is). */
const evaluation: EvaluationResult = {
  format: 'fad-evaluation/1', generatedDir: '/gen', expert: '/expert.safetensors', expertSha256: '0', classNames: ['white', 'dark'], countedClasses: ['dark'], numGenerated: 2, numReal: 3,
  generationAccuracy: { overall: 0.5, macro: 0.5, perClass: [{ class: 'dark', accuracy: 0.5, numImages: 2, numCorrect: 1 }], perSeed: [{ seed: 0, overall: 0.5, macro: 0.5 }] },
  confusionMatrix: [[0, 0], [1, 1]],
  predictions: [{ file: 'dark/s0-000.png', class: 'dark', seed: 0, predicted: 'dark' }, { file: 'dark/s0-001.png', class: 'dark', seed: 0, predicted: 'white' }],
  diversity: { perClass: [{ class: 'dark', generated: 0.4, generatedCi95: [0.4, 0.4], real: 0.5, realCi95: [0.3, 0.7], numGenerated: 2, numReal: 3 }], overall: { generated: 0.4, real: 0.5 }, macro: { generated: 0.4, real: 0.5 }, window: 'uniform 7x7' },
  frechetDistance: 1.5,
  kid: { mean: 0.01, std: 0.001, subsetSize: 2, numSubsets: 10 },
  intensity: { perClass: [{ class: 'white', ...row(128 / 255, 1, 0, 0) }, { class: 'dark', ...row(0.25, 0.3, 0.25, 0.2 / 3) }], overall: row(0.376, 0.65, 0.125, 0.033), definition: 'mean: ...' },
  settings: parseConfig({}).evaluate,
  createdAt: '2025-01-01T00:00:00.000Z',
  elapsedSeconds: 1,
};

describe('fad report of evaluations', () => {
  it('shows the intensity table and figure, and still reports an older eval.json without it', async () => {
    const run = join(root, 'run');
    for (const v of ['baseline', 'old']) mkdirSync(join(run, 'variants', v), { recursive: true });
    writeFileSync(join(run, 'variants', 'baseline', 'eval.json'), JSON.stringify(evaluation));
    const { intensity: _i, ...old } = evaluation;
    writeFileSync(join(run, 'variants', 'old', 'eval.json'), JSON.stringify(old));
    const rep = await writeReport(run);
    expect(rep.figures.map((f) => f.split('/').at(-1))).toContain('intensity.png');
    expect(existsSync(join(run, 'report', 'figures', 'intensity.png'))).toBe(true);
    const html = readFileSync(rep.html, 'utf8');
    expect(html).toContain('<h2>Mean intensity and contrast</h2>');
    expect(html).toContain('<th>baseline mean (diff)</th>');
    expect(html).not.toContain('<th>old mean (diff)</th>');
    expect(html).toMatch(/<tr><td>white<\/td><td>1\.000<\/td><td>0\.000<\/td><td>0\.502 \(-0\.498\)<\/td><td>0\.000<\/td><\/tr>/);
    // Without any intensity section the report has neither table nor figure.
    writeFileSync(join(run, 'variants', 'baseline', 'eval.json'), JSON.stringify(old));
    const rep2 = await writeReport(run);
    expect(rep2.figures.map((f) => f.split('/').at(-1))).not.toContain('intensity.png');
    expect(readFileSync(rep2.html, 'utf8')).not.toContain('Mean intensity and contrast');
  }, 60_000);

  it('the evaluate config section is the library\'s EvaluationSettings', () => {
    expectTypeOf<EvaluateSection>().toEqualTypeOf<EvaluationSettings>();
    expect(Object.keys(parseConfig({}).evaluate)).toEqual(['classes', 'excludeClasses', 'realSet', 'ssimMaxPairs', 'ssimWindow', 'ssimWinSize', 'kidSubsets', 'kidSubsetSize', 'batchSize']);
  });
});
