/**
 * `fad utility` end to end on toy data (demo textures as the real data, toy folders shaped like
 * fad generate's output as synthetic sets): the table and utility.json, reuse of finished
 * classifiers, resume after SIGKILL matching an uninterrupted run, and the input errors (nothing
 * written).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeDemoData } from './demo';
import { killWhenExists } from './testing/kill-when-exists';
import { runFad } from './testing/run-fad';
import { writeToyGeneratedSet } from './testing/toy-generated-set';
import type { UtilityJson } from './utility';

const root = mkdtempSync(join(tmpdir(), 'fad-utility-'));
const data = join(root, 'data');
const config = join(root, 'config.yaml');
const utility = (out: string, extra: string[] = [], sets = ['synA', 'synB']) => [
  '--config', config, '--backend', 'cpu', 'utility', '--data', data, '--out', out, ...sets.flatMap((s) => ['--synthetic', `${s}=${join(root, s)}`]), ...extra,
];
const readUtility = (out: string) => JSON.parse(readFileSync(join(out, 'utility.json'), 'utf8')) as UtilityJson;
/** utility.json without what depends on the clock. */
const timeless = (j: UtilityJson) => ({
  ...j, createdAt: null, wallTime: null,
  runs: j.runs.map((r) => ({ ...r, trainSeconds: 0, evalSeconds: 0 })),
  summary: { ...j.summary, protocols: j.summary.protocols.map((p) => ({ ...p, seconds: null })) },
});

describe('fad utility', () => {
  beforeAll(async () => {
    await writeDemoData(data, 8, 10);
    await writeToyGeneratedSet({ dir: join(root, 'synA'), size: 8, perClass: 6, seed: 1 });
    await writeToyGeneratedSet({ dir: join(root, 'synB'), size: 8, perClass: 6, seed: 2 });
    writeFileSync(config, [
      'data: { imageSize: 8, validationFraction: 0.25 }',
      'utility: { fractions: [0.5, 1], ratios: [1], seeds: 2, architecture: { layers: [1, 1], baseWidth: 4 }, epochs: 1, batchSize: 8, bootstrapSamples: 200 }',
      '',
    ].join('\n'));
  });

  it('trains a classifier per protocol and seed, prints the table and writes utility.json; a rerun reuses them all', async () => {
    const a = join(root, 'a');
    const r = await runFad(utility(a));
    expect(r.code, r.stderr).toBe(0);
    // 2 real-only + 2 x 2 mixed + 2 synthetic-only protocols, 2 seeds each.
    expect(r.stdout).toMatch(/16 classifier\(s\) trained, 0 reused/);
    for (const id of ['real-f0.5', 'real-f1', 'mix-synA-r1-f0.5', 'mix-synB-r1-f1', 'syn-synA', 'syn-synB']) expect(r.stdout).toMatch(new RegExp(`\\n${id} +\\d+ +[\\d.]+% \\[`));
    expect(r.stdout).toMatch(/wall time: \S+ per classifier/);
    const j = readUtility(a);
    expect(j).toMatchObject({ format: 'fad-utility/1', backend: 'cpu', classifier: { preset: 'resnet18-kather' }, data: { numTrain: 28, numTest: 12, classNames: ['stripes_h', 'stripes_v', 'checker', 'rings'] } });
    expect(j.summary.protocols.map((p) => p.id)).toEqual(['real-f0.5', 'real-f1', 'mix-synA-r1-f0.5', 'mix-synA-r1-f1', 'mix-synB-r1-f0.5', 'mix-synB-r1-f1', 'syn-synA', 'syn-synB']);
    const mix = j.summary.protocols[2];
    // 7 training images per class; 0.5 -> round(3.5) = 4 real per class, 4 synthetic at 1:1.
    expect(mix).toMatchObject({ numReal: 16, numSynthetic: 16, numTrain: 32, reference: 'real-f0.5' });
    expect(mix.accuracy.perSeed).toHaveLength(2);
    expect(mix.gain!.accuracy.perSeed).toEqual(mix.accuracy.perSeed.map((v, s) => v - j.summary.protocols[0].accuracy.perSeed[s]));
    expect(j.summary.protocols[6]).toMatchObject({ numReal: 0, numSynthetic: 24, reference: 'real-f1' });
    expect(j.runs).toHaveLength(16);
    expect(readdirSync(join(a, 'runs'))).toHaveLength(16);
    const again = await runFad(utility(a));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/0 classifier\(s\) trained, 16 reused/);
    expect(timeless(readUtility(a))).toEqual(timeless(j));
  }, 170_000);

  it('after SIGKILL, keeps the finished classifiers, trains only the rest, and ends as an uninterrupted run', async () => {
    const b = join(root, 'b');
    const first = join(b, 'runs', 'real-f0.5-s0.json');
    const killed = await runFad(utility(b), { onStart: killWhenExists({ file: first, signal: 'SIGKILL', pollMs: 5 }) });
    expect(killed.signal).toBe('SIGKILL');
    expect(existsSync(join(b, 'utility.json'))).toBe(false);
    const kept = readdirSync(join(b, 'runs')).filter((f) => f.endsWith('.json'));
    expect(kept.length).toBeGreaterThanOrEqual(1);
    expect(kept.length).toBeLessThan(16);
    const before = Object.fromEntries(kept.map((f) => [f, readFileSync(join(b, 'runs', f), 'utf8')]));
    const resumed = await runFad(utility(b));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(new RegExp(`${16 - kept.length} classifier\\(s\\) trained, ${kept.length} reused`));
    expect(resumed.stderr).toMatch(/real-f0.5 seed 0: finished before .*; reused/);
    // The finished classifiers were not retrained (their files are untouched)...
    for (const [f, text] of Object.entries(before)) expect(readFileSync(join(b, 'runs', f), 'utf8')).toBe(text);
    // ...and the result is the uninterrupted run's.
    expect(timeless(readUtility(b))).toEqual(timeless(readUtility(join(root, 'a'))));
  }, 170_000);

  it('refuses bad synthetic sets and fractions with clear errors, writing nothing', async () => {
    const c = join(root, 'c');
    const expectError = async (args: string[], message: RegExp) => {
      const r = await runFad(args);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(existsSync(c)).toBe(false);
    };
    mkdirSync(join(root, 'nomanifest', 'checker'), { recursive: true });
    await expectError(utility(c, [], ['synA', 'nomanifest']), /nomanifest is not a generated set \(cannot read .*manifest\.json: no such file\)/);
    await writeToyGeneratedSet({ dir: join(root, 'partial'), size: 8, perClass: 2, seed: 3, classes: ['stripes_h', 'checker'] });
    await expectError(utility(c, [], ['partial']), /synthetic set partial \(.*partial\) has no image of classes "stripes_v", "rings"/);
    await writeToyGeneratedSet({ dir: join(root, 'big'), size: 16, perClass: 2, seed: 3 });
    await expectError(utility(c, [], ['big']), /synthetic set big \(.*big\) has 16x16x1 images, the real data is read at 8x8x1 \(data.imageSize, data.channels\)/);
    await expectError(utility(c, ['--fractions', '0.05,1']), /utility.fractions: 0.05 leaves class "stripes_h" with no training images \(it has 7 in the training split; round\(7 \* 0.05\) = 0\)/);
    await expectError(utility(c, ['--set', 'utility.fractions=[0.5,0.5]']), /utility: fractions must not repeat a value/);
    const bad = await runFad(['--config', config, 'utility', '--out', c, '--synthetic', 'synA']);
    expect(bad.stderr).toMatch(/--synthetic expects NAME=DIR/);
  }, 170_000);

  it('refuses a downstream classifier with the architecture of the generator\'s expert', async () => {
    const e = join(root, 'expert');
    const t = await runFad(['--config', config, '--backend', 'cpu', 'expert', 'train', '--data', data, '--out', e, '--preset', 'resnet18-kather', '--set', 'expert.architecture={layers: [1, 1], baseWidth: 4}', '--epochs', '1']);
    expect(t.code, t.stderr).toBe(0);
    const r = await runFad(utility(join(root, 'd'), ['--expert', join(e, 'expert.safetensors')]));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the downstream classifier \(utility.arch\/preset\/architecture\) is the same architecture as the generator's expert .*expert\.safetensors/);
    rmSync(join(root, 'd'), { recursive: true, force: true });
    // fad experiment checks its utility stage against its expert before training anything.
    const x = await runFad(['--config', config, '--backend', 'cpu', 'experiment', '--data', data, '--run-dir', join(root, 'x'), '--set', 'experiment.utility=true', '--set', 'expert.preset=resnet18-kather', '--set', 'expert.architecture={layers: [1, 1], baseWidth: 4}']);
    expect(x.code).toBe(1);
    expect(x.stderr).toMatch(/is the same architecture as the experiment's expert expert\.\*/);
    expect(existsSync(join(root, 'x', 'expert'))).toBe(false);
  }, 170_000);
});
