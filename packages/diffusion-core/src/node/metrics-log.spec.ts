import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyMetricsWindow, logTrainingStep, type MetricsWindow, trainingScalars } from './metrics-log';
import { TrainingRunError } from './training-run-error';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'fad-metrics-'));
  dirs.push(d);
  return d;
}

describe('logTrainingStep', () => {
  it('writes the means of the window every logEvery steps and at the last step, and sends the same scalars to the sink', () => {
    const metricsPath = join(tmp(), 'metrics.jsonl');
    const sent: Array<{ step: number; scalars: Record<string, number | null> }> = [];
    const sink = { addScalars: (p: { step: number; scalars: Record<string, number | null> }) => sent.push(p) };
    let window: MetricsWindow = emptyMetricsWindow();
    const losses = [1, 2, 3, 4, 5];
    losses.forEach((loss, i) => {
      window = logTrainingStep({ metricsPath, window, step: i + 1, result: { step: i + 1, loss, terms: { a: loss * 10 }, learningRate: 0.1 * (i + 1), gradNorm: 2 * loss }, logEvery: 2, lastStep: 5, sink });
    });
    const lines = readFileSync(metricsPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    // Steps 1-2, 3-4, then the last step 5 alone; hand-computed means.
    expect(lines.map((l) => [l.step, l.loss, l.terms.a, l.gradNorm, l.steps])).toEqual([[2, 1.5, 15, 3, 2], [4, 3.5, 35, 7, 2], [5, 5, 50, 10, 1]]);
    expect(lines.map((l) => l.lr)).toEqual([0.2, 0.4, 0.5]);
    expect(Object.keys(lines[0])).toEqual(['step', 'loss', 'terms', 'lr', 'gradNorm', 'steps', 'time']);
    expect(sent.map((s) => s.step)).toEqual([2, 4, 5]);
    expect(sent[0].scalars).toEqual({ 'train/loss': 1.5, 'train/lr': 0.2, 'train/gradNorm': 3, 'train/terms/a': 15 });
    expect(window).toEqual(emptyMetricsWindow());
  });

  it('keeps summing between lines (the window a checkpoint stores)', () => {
    const metricsPath = join(tmp(), 'metrics.jsonl');
    const w = logTrainingStep({ metricsPath, window: emptyMetricsWindow(), step: 1, result: { step: 1, loss: 2, terms: { x: 1 }, learningRate: 1, gradNorm: 3 }, logEvery: 10, lastStep: 20 });
    expect(w).toEqual({ n: 1, loss: 2, terms: { x: 1 }, gradNorm: 3 });
  });

  it('a log it cannot append to is a TrainingRunError fs naming the path', () => {
    const metricsPath = join(tmp(), 'missing-folder', 'metrics.jsonl');
    let err: unknown;
    try {
      logTrainingStep({ metricsPath, window: emptyMetricsWindow(), step: 1, result: { step: 1, loss: 1, terms: {}, learningRate: 1, gradNorm: 1 }, logEvery: 1, lastStep: 1 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TrainingRunError);
    expect((err as TrainingRunError).code).toBe('fs');
    expect((err as TrainingRunError).details).toEqual({ path: metricsPath, doing: 'append to the metrics log' });
    expect((err as Error).message).toMatch(/^cannot append to the metrics log .*metrics.jsonl: ENOENT/);
  });

  it('validates its params', () => {
    expect(() => logTrainingStep({ metricsPath: 'x', window: emptyMetricsWindow(), step: 1, result: { step: 1, loss: 1, terms: {}, learningRate: 1, gradNorm: 1 }, logEvery: 0, lastStep: 1 })).toThrow(/logEvery must be an integer >= 1/);
  });
});

describe('trainingScalars', () => {
  it('names the scalars train/<name> and train/terms/<term>', () => {
    expect(trainingScalars({ loss: 1, lr: 2, gradNorm: 3, terms: { mse: 4 } })).toEqual({ 'train/loss': 1, 'train/lr': 2, 'train/gradNorm': 3, 'train/terms/mse': 4 });
  });
});
