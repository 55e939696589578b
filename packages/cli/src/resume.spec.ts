/**
 * Kill and resume, for real: `fad train` (with feature alignment, so the projection and its Adam
 * state are checkpointed too) is SIGKILLed in a child process after its first checkpoint, resumed
 * with --resume, and must end with byte-identical weights and the same logged losses as an
 * uninterrupted run on the same backend. A SIGINT must write a checkpoint and exit cleanly (130).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeDemoData } from './demo';
import { killWhenExists } from './testing/kill-when-exists';
import { metricsWithoutTime } from './testing/metrics-without-time';
import { runFad } from './testing/run-fad';

const root = mkdtempSync(join(tmpdir(), 'fad-resume-'));
const data = join(root, 'data');
const config = join(root, 'config.yaml');
const expert = join(root, 'expert', 'expert.safetensors');
const train = (out: string, extra: string[] = []) =>
  ['--config', config, '--backend', 'cpu', 'train', '--data', data, '--out', out, '--feature-alignment', '--expert', expert, ...extra];

describe('fad train --resume', () => {
  beforeAll(async () => {
    await writeDemoData(data, 8, 8);
    writeFileSync(config, [
      'data: { imageSize: 8, validationFraction: 0.25 }',
      'expert: { preset: resnet18-kather, architecture: { layers: [1, 1], baseWidth: 8 }, epochs: 1, batchSize: 16, augment: false }',
      'diffusion:',
      '  unet: { preset: tiny, overrides: { blockChannels: [8, 16], normGroups: 4 } }',
      '  steps: 16',
      '  batchSize: 6',
      '  learningRate: 0.002',
      '  warmupSteps: 3',
      '  checkpointEvery: 4',
      '  logEvery: 3',
      '  emaDecay: 0.9',
      'alignment: { lambda2: 0.5 }',
      '',
    ].join('\n'));
    const e = await runFad(['--config', config, '--backend', 'cpu', 'expert', 'train', '--data', data, '--out', join(root, 'expert')]);
    if (e.code !== 0) throw new Error(`fad expert train failed:\n${e.stderr}`);
    expect(e.stdout).toMatch(/expert accuracy on 8 held-out images: [\d.]+%/);
    const a = await runFad(train(join(root, 'a')));
    if (a.code !== 0) throw new Error(`fad train failed:\n${a.stderr}`);
    expect(a.stdout).toMatch(/trained 16 steps/);
  }, 120_000);

  it('a SIGKILLed run resumed from its checkpoint ends exactly where an uninterrupted run does', async () => {
    const b = join(root, 'b');
    const killed = await runFad(train(b), { onStart: killWhenExists({ file: join(b, 'checkpoint.safetensors'), signal: 'SIGKILL', pollMs: 25 }) });
    expect(killed.signal).toBe('SIGKILL');
    expect(existsSync(join(b, 'complete.json'))).toBe(false);
    expect(existsSync(join(b, 'model.safetensors'))).toBe(false);
    const refused = await runFad(train(b));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/has a checkpoint of an unfinished run; pass --resume to continue it/);
    const resumed = await runFad(train(b, ['--resume']));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming .* at step \d+\/16/);
    const a = join(root, 'a');
    expect(readFileSync(join(b, 'model.safetensors')).equals(readFileSync(join(a, 'model.safetensors')))).toBe(true);
    expect(readFileSync(join(b, 'align.safetensors')).equals(readFileSync(join(a, 'align.safetensors')))).toBe(true);
    expect(metricsWithoutTime({ dir: b })).toEqual(metricsWithoutTime({ dir: a }));
    const done = JSON.parse(readFileSync(join(b, 'complete.json'), 'utf8'));
    expect(done).toMatchObject({ resumed: true, backend: 'cpu', steps: 16 });
    expect(done.finalLoss).toBe(JSON.parse(readFileSync(join(a, 'complete.json'), 'utf8')).finalLoss);
  }, 120_000);

  it('Ctrl-C writes a checkpoint and exits cleanly; --resume then finishes the same run', async () => {
    const c = join(root, 'c');
    const stopped = await runFad(train(c), { onStart: killWhenExists({ file: join(c, 'checkpoint.safetensors'), signal: 'SIGINT', pollMs: 25 }) });
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toMatch(/SIGINT received: writing a checkpoint/);
    expect(stopped.stderr).toMatch(/fad: interrupted at step \d+\/16; checkpoint written to .*checkpoint\.safetensors; continue with --resume/);
    expect(stopped.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(c, 'complete.json'))).toBe(false);
    const resumed = await runFad(train(c, ['--resume']));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(readFileSync(join(c, 'model.safetensors')).equals(readFileSync(join(root, 'a', 'model.safetensors')))).toBe(true);
    // A finished run is reused, not retrained; a changed config is refused.
    const again = await runFad(train(c));
    expect(again.stdout).toMatch(/already trained/);
    const changed = await runFad(train(c, ['--steps', '30']));
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(/holds a finished training run with a different config/);
  }, 120_000);
});
