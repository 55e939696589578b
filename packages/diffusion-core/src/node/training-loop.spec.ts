import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyMetricsWindow } from './metrics-log';
import { runTrainingLoop } from './training-loop';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'fad-loop-'));
  dirs.push(d);
  return d;
}

/** A fake trainer: step k has loss k. */
function fake(start = 0) {
  let step = start;
  return () => {
    step++;
    return { step, loss: step, terms: {}, learningRate: 0.1, gradNorm: 1 };
  };
}

describe('runTrainingLoop', () => {
  it('runs to the end, checkpointing every checkpointEvery steps and at the last, in order: metrics, onStep, checkpoint, progress', async () => {
    const metricsPath = join(tmp(), 'metrics.jsonl');
    const events: string[] = [];
    const r = await runTrainingLoop({
      startStep: 0, steps: 5, trainStep: fake(), metricsPath, window: emptyMetricsWindow(), logEvery: 2, checkpointEvery: 2,
      writeCheckpoint: ({ step, lastLoss, window }) => events.push(`ckpt ${step} ${lastLoss} n=${window.n}`),
      onStep: ({ step }) => {
        events.push(`step ${step} lines=${existsSync(metricsPath) ? readFileSync(metricsPath, 'utf8').split('\n').length - 1 : 0}`);
      },
      onProgress: ({ step }) => events.push(`progress ${step}`),
    });
    expect(r).toMatchObject({ status: 'finished', reason: null, step: 5, lastLoss: 5 });
    expect(events).toEqual([
      'step 1 lines=0', 'progress 1',
      'step 2 lines=1', 'ckpt 2 2 n=0', 'progress 2',
      'step 3 lines=1', 'progress 3',
      'step 4 lines=2', 'ckpt 4 4 n=0', 'progress 4',
      'step 5 lines=3', 'ckpt 5 5 n=0', 'progress 5',
    ]);
  });

  it('resumes from startStep with the stored window; stops after stopAfterStep or an abort with a checkpoint', async () => {
    const metricsPath = join(tmp(), 'metrics.jsonl');
    const ckpts: number[] = [];
    const r = await runTrainingLoop({
      startStep: 2, steps: 10, trainStep: fake(2), metricsPath, window: { n: 1, loss: 2, terms: {}, gradNorm: 1 }, logEvery: 2, checkpointEvery: 100,
      writeCheckpoint: ({ step }) => ckpts.push(step), stopAfterStep: 4,
    });
    expect(r).toMatchObject({ status: 'interrupted', reason: 'stop-after-step', step: 4, lastLoss: 4 });
    expect(ckpts).toEqual([4]);
    // Step 3 joined the stored window (n=1, loss 2): mean (2 + 3) / 2.
    expect(JSON.parse(readFileSync(metricsPath, 'utf8').split('\n')[0])).toMatchObject({ step: 4, loss: 3 });
    const signal = { aborted: false };
    const s = await runTrainingLoop({
      startStep: 0, steps: 10, trainStep: fake(), metricsPath, window: emptyMetricsWindow(), logEvery: 1, checkpointEvery: 100,
      writeCheckpoint: ({ step }) => ckpts.push(step), signal, onProgress: ({ step }) => (signal.aborted = step === 3),
    });
    expect(s).toMatchObject({ status: 'interrupted', reason: 'signal', step: 3 });
    expect(ckpts).toEqual([4, 3]);
  });

  it('validates its params', async () => {
    const base = { startStep: 0, steps: 2, trainStep: fake(), metricsPath: 'x', window: emptyMetricsWindow(), logEvery: 1, checkpointEvery: 1, writeCheckpoint: () => {} };
    await expect(runTrainingLoop({ ...base, startStep: 3 })).rejects.toThrow(/startStep must be an integer in 0..steps \(2\), got 3/);
    await expect(runTrainingLoop({ ...base, checkpointEvery: 0 })).rejects.toThrow(/checkpointEvery must be an integer >= 1/);
    await expect(runTrainingLoop({ ...base, writeCheckpoint: undefined as never })).rejects.toThrow(/writeCheckpoint must be a function/);
  });
});
