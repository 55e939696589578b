/**
 * Kill and resume of `fad expert train`, for real: the child process is SIGKILLed as soon as its
 * training state (expert-state.safetensors) first appears, resumed with --resume, and must end with
 * a byte-identical expert.safetensors and the same eval.json and metrics as an uninterrupted run on
 * the same backend. Ctrl-C (SIGINT) must write the state and exit cleanly (130). `fad experiment`'s
 * way of calling the expert step (resume by default, a stale state restarts) is checked in process.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { effectiveConfig, initBackend, loadDataAndSplit } from './context';
import { writeDemoData } from './demo';
import { InterruptedError } from './errors';
import { type ExpertTrainJob, trainExpertJob } from './expert';
import { killWhenExists } from './testing/kill-when-exists';
import { metricsWithoutTime } from './testing/metrics-without-time';
import { runFad } from './testing/run-fad';

const root = mkdtempSync(join(tmpdir(), 'fad-expert-resume-'));
const data = join(root, 'data');
const config = join(root, 'config.yaml');
const train = (out: string, extra: string[] = []) => ['--config', config, '--backend', 'cpu', 'expert', 'train', '--data', data, '--out', out, ...extra];
const STATE = 'expert-state.safetensors';

const withoutTimes = (dir: string) => {
  const ev = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8'));
  return { ...ev, history: ev.history.map((h: { elapsedMs: number }) => ({ ...h, elapsedMs: 0 })), metrics: metricsWithoutTime({ dir }) };
};

function expectSameExpert(dir: string): void {
  const a = join(root, 'a');
  expect(readFileSync(join(dir, 'expert.safetensors')).equals(readFileSync(join(a, 'expert.safetensors')))).toBe(true);
  expect(withoutTimes(dir)).toEqual(withoutTimes(a));
  expect(existsSync(join(dir, STATE))).toBe(false); // removed once complete
}

describe('fad expert train --resume', () => {
  beforeAll(async () => {
    await writeDemoData(data, 16, 12);
    // 4 classes x 12 images, a quarter held out: 36 training images in batches of 4 = 9 steps per epoch; state every 3 steps.
    writeFileSync(config, [
      'data: { imageSize: 16, validationFraction: 0.25 }',
      'expert: { preset: resnet18-kather, architecture: { layers: [1, 1], baseWidth: 8 }, epochs: 3, batchSize: 4, learningRate: 0.003, checkpointEvery: 3 }',
      '',
    ].join('\n'));
    const a = await runFad(train(join(root, 'a')));
    if (a.code !== 0) throw new Error(`fad expert train failed:\n${a.stderr}`);
    expect(a.stdout).toMatch(/expert accuracy on \d+ held-out images: [\d.]+%/);
    expect(existsSync(join(root, 'a', STATE))).toBe(false);
  }, 120_000);

  it('a SIGKILLed run resumed from its state ends exactly where an uninterrupted run does', async () => {
    const b = join(root, 'b');
    const killed = await runFad(train(b), { onStart: killWhenExists({ file: join(b, STATE), signal: 'SIGKILL' }) });
    expect(killed.signal).toBe('SIGKILL');
    expect(existsSync(join(b, 'complete.json'))).toBe(false);
    expect(existsSync(join(b, STATE))).toBe(true);
    const refused = await runFad(train(b));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/has the state of an unfinished expert training run; pass --resume to continue it, or --force to start over/);
    const resumed = await runFad(train(b, ['--resume']));
    expect(resumed.code, resumed.stderr).toBe(0);
    const at = /resuming .* at step (\d+)\/27 \(\d epoch\(s\) done\)/.exec(resumed.stderr);
    expect(Number(at?.[1])).toBeLessThan(27);
    expectSameExpert(b);
    expect(JSON.parse(readFileSync(join(b, 'complete.json'), 'utf8'))).toMatchObject({ step: 'train-expert', resumed: true, backend: 'cpu' });
  }, 120_000);

  it('Ctrl-C writes the state and exits cleanly; --resume then finishes the same run', async () => {
    const c = join(root, 'c');
    const stopped = await runFad(train(c), { onStart: killWhenExists({ file: join(c, STATE), signal: 'SIGINT' }) });
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toMatch(/SIGINT received: writing a checkpoint/);
    expect(stopped.stderr).toMatch(/fad: interrupted at step \d+\/27; expert training state written to .*expert-state\.safetensors; continue with --resume/);
    expect(stopped.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(c, 'complete.json'))).toBe(false);
    // A different config does not resume from this state.
    const changed = await runFad(train(c, ['--resume', '--lr', '0.001']));
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(/the expert training state in .* was written with a different config or data/);
    const resumed = await runFad(train(c, ['--resume']));
    expect(resumed.code, resumed.stderr).toBe(0);
    expectSameExpert(c);
    // A finished run is reused, not retrained.
    const again = await runFad(train(c, ['--resume']));
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/already holds an expert trained with this config/);
  }, 120_000);
});

describe("fad experiment's expert step", () => {
  it('continues an interrupted expert on the next run, and restarts when the settings changed', async () => {
    const quiet = { info: () => {}, warn: () => {}, quiet: true };
    const cfg = effectiveConfig({ config, backend: 'cpu' } as never, { 'data.dir': data });
    const backend = await initBackend(cfg, quiet);
    expect(backend).toBe('cpu');
    const dir = join(root, 'exp', 'expert');
    const { dataset, split } = await loadDataAndSplit(cfg, quiet, join(root, 'exp'));
    const logs: string[] = [];
    // As experiment.ts calls it.
    const job = (over: Partial<ExpertTrainJob> = {}): ExpertTrainJob => ({
      cfg, images: dataset.images, labels: dataset.labels, imageSize: dataset.imageSize, channels: dataset.channels, classNames: dataset.classNames,
      train: split.train, validation: split.validation, fingerprint: dataset.fingerprint, dir, log: (m) => logs.push(m), quiet: true, backend,
      resume: true, staleState: 'restart', resumeHint: 'run the same command again to continue', ...over,
    });
    let steps = 0;
    const interrupt = { get requested() { return ++steps > 5; }, signal: 'SIGINT' };
    const stopped = trainExpertJob(job({ interrupt }));
    await expect(stopped).rejects.toThrow(InterruptedError);
    await expect(stopped).rejects.toThrow(/interrupted at step 6\/27; .*; run the same command again to continue/);
    expect(existsSync(join(dir, STATE))).toBe(true);
    // The next run continues (no --resume needed) and ends where the uninterrupted CLI run did.
    const r = await trainExpertJob(job());
    expect(r.reused).toBe(false);
    expect(logs.join('\n')).toMatch(/resuming .* at step 6\/27 \(0 epoch\(s\) done\)/);
    expectSameExpert(dir);
    // Interrupted again, then the settings change: the stale state is discarded, not resumed.
    const dir2 = join(root, 'exp2', 'expert');
    steps = 0;
    await expect(trainExpertJob(job({ dir: dir2, interrupt }))).rejects.toThrow(InterruptedError);
    logs.length = 0;
    const changed = { ...cfg, expert: { ...cfg.expert, learningRate: 0.002 } };
    await trainExpertJob(job({ dir: dir2, cfg: changed }));
    expect(logs.join('\n')).toMatch(/the expert config or its inputs changed since the unfinished run; training the expert again/);
    expect(logs.join('\n')).not.toMatch(/resuming/);
    expect(JSON.parse(readFileSync(join(dir2, 'complete.json'), 'utf8')).resumed).toBe(false);
  }, 120_000);
});
