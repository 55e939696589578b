/**
 * mergeEvaluationShards on the evaluation fixture: 3 shards run out of order merge into the
 * unsharded evaluation's JSON, byte for byte apart from the timing fields (which add up the
 * shards'); missing, killed and foreign shards, changed inputs and unsafe outputs are refused with
 * codes and nothing is written.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_SETTINGS, fixtureReal, stubExpert, writeFixtureSet } from '../testing/evaluation-fixture';
import { useCpuBackend } from '../testing/setup-cpu';
import { evaluateGeneratedSet, type RealImageSet } from './evaluate-generated-set';
import { evaluateGeneratedSetShard, readEvaluationShard } from './evaluate-generated-set-shard';
import { EvaluationRunError } from './evaluation-run-error';
import { type MergeEvaluationShardsParams, mergeEvaluationShards } from './merge-evaluation-shards';

const root = mkdtempSync(join(tmpdir(), 'fad-merge-evaluation-'));
const gen = join(root, 'gen');
const shards = join(root, 'shards');
const config = (extra: Record<string, unknown> = {}) => ({ evaluate: { ...FIXTURE_SETTINGS, excludeClasses: ['empty'], ...extra }, run: { backend: 'cpu' }, data: { dir: '/data' } });
type Config = ReturnType<typeof config>;
const runShard = (out: string, index: number, cfg = config()) =>
  evaluateGeneratedSetShard({ generatedDir: gen, expert: stubExpert(), expertPath: 'stub.safetensors', expertSha256: 'stub-sha256', real: fixtureReal(), config: cfg, shard: { index, count: 3 }, out });

beforeAll(async () => {
  await useCpuBackend();
  await writeFixtureSet(gen);
  for (const i of [2, 0, 1]) await runShard(shards, i);
});

/** eval.json with its documented timing fields blanked. */
const withoutTiming = (text: string) => text.replace(/"createdAt": "[^"]*"/, '"createdAt": ""').replace(/"elapsedSeconds": [-0-9.e+]+/, '"elapsedSeconds": 0');

const merge = (extra: Partial<MergeEvaluationShardsParams<Config>> = {}) => mergeEvaluationShards<Config>({ dir: shards, out: join(root, 'merged.json'), loadReal: () => fixtureReal(), ...extra });

async function refusal(p: Promise<unknown>): Promise<EvaluationRunError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(EvaluationRunError);
  return e as EvaluationRunError;
}

describe('mergeEvaluationShards', () => {
  it('merges the shards into the unsharded evaluation (timing fields aside), reading the real data with the recorded config', async () => {
    const seen: unknown[] = [];
    const r = await merge({ loadReal: ({ config: c }) => (seen.push(c), fixtureReal()) });
    expect(seen).toEqual([config()]);
    expect(r.count).toBe(3);
    const unsharded = await evaluateGeneratedSet({ generatedDir: gen, expert: stubExpert(), expertPath: 'stub.safetensors', expertSha256: 'stub-sha256', real: fixtureReal(), settings: config().evaluate });
    const a = `${JSON.stringify(unsharded, null, 2)}\n`;
    const b = readFileSync(r.out, 'utf8');
    expect(withoutTiming(b)).toBe(withoutTiming(a));
    expect(withoutTiming(a)).not.toBe(a);
    const records = [0, 1, 2].map((i) => readEvaluationShard({ dir: join(shards, `${i}-of-3`) })!);
    expect(r.result.createdAt).toBe(records.map((s) => s.createdAt).sort()[0]);
    expect(r.result.elapsedSeconds).toBeCloseTo(records.reduce((t, s) => t + s.elapsedSeconds, 0), 12);
    // An existing output: refused without force, replaced with it; a folder or a path inside the shards never.
    expect(await refusal(merge())).toMatchObject({ code: 'exists', details: { out: join(root, 'merged.json') } });
    expect((await merge({ force: true })).count).toBe(3);
    mkdirSync(join(root, 'folder.json'));
    expect((await refusal(merge({ out: join(root, 'folder.json'), force: true }))).code).toBe('out-is-folder');
    expect(await refusal(merge({ out: join(shards, 'x.json') }))).toMatchObject({ code: 'out-inside-shards', details: { out: join(shards, 'x.json'), dir: shards } });
  });

  it('refuses missing, killed and foreign shards by name, and writes nothing', async () => {
    const copy = (name: string) => {
      const d = join(root, name);
      cpSync(shards, d, { recursive: true });
      return d;
    };
    const missing = copy('missing');
    rmSync(join(missing, '0-of-3'), { recursive: true });
    mkdirSync(join(missing, '0-of-3.tmp-999999999'));
    let e = await refusal(merge({ dir: missing, out: join(root, 'm1.json') }));
    expect(e.code).toBe('bad-shards');
    expect(e.message).toMatch(/0-of-3 is missing/);
    expect(e.message).toMatch(/0-of-3: 0-of-3\.tmp-999999999 was left by a run of it that was killed/);
    expect(existsSync(join(root, 'm1.json'))).toBe(false);

    const foreign = copy('foreign');
    const other = join(root, 'other');
    await runShard(other, 2, config({ ssimMaxPairs: 30 }));
    rmSync(join(foreign, '2-of-3'), { recursive: true });
    cpSync(join(other, '2-of-3'), join(foreign, '2-of-3'), { recursive: true });
    e = await refusal(merge({ dir: foreign, out: join(root, 'm2.json') }));
    expect(e.code).toBe('bad-shards');
    expect(e.message).toMatch(/2-of-3 \(.*\) was run with another config .*differs in ssimMaxPairs \(30 vs 20\)/);
    expect(existsSync(join(root, 'm2.json'))).toBe(false);

    // Damaged outputs make a shard unfinished.
    const damaged = copy('damaged');
    writeFileSync(join(damaged, '1-of-3', 'outputs.f32'), Buffer.alloc(8));
    expect((await refusal(merge({ dir: damaged, out: join(root, 'm3.json') }))).message).toMatch(/1-of-3/);

    expect(await refusal(merge({ dir: join(root, 'nothing') }))).toMatchObject({ code: 'not-shards', details: { dir: join(root, 'nothing') } });
    const killedOnly = join(root, 'killed-only');
    mkdirSync(join(killedOnly, '1-of-2.tmp-999999999'), { recursive: true });
    e = await refusal(merge({ dir: killedOnly }));
    expect(e).toMatchObject({ code: 'no-shards', details: { killed: ['1-of-2.tmp-999999999'] } });
    expect(e.message).toMatch(/holds no finished shard folders \(I-of-N\) \(only temp folders of killed shards: 1-of-2\.tmp-999999999\)/);
  });

  it('refuses inputs that changed since the shards ran', async () => {
    const out = join(root, 'changed.json');
    const changedReal: RealImageSet = fixtureReal();
    changedReal.images[0] = 0.9;
    expect(await refusal(merge({ out, loadReal: () => changedReal }))).toMatchObject({ code: 'real-changed', details: { config: config() } });
    const manifest = readFileSync(join(gen, 'manifest.json'), 'utf8');
    try {
      writeFileSync(join(gen, 'manifest.json'), `${manifest}\n`);
      expect(await refusal(merge({ out }))).toMatchObject({ code: 'generated-changed', details: { generatedDir: gen } });
    } finally {
      writeFileSync(join(gen, 'manifest.json'), manifest);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('checks its params up front', async () => {
    await expect(mergeEvaluationShards({ dir: shards, out: 'x.json' } as never)).rejects.toThrow(/^mergeEvaluationShards: loadReal must be a function/);
    await expect(mergeEvaluationShards({ dir: '', out: 'x.json', loadReal: () => fixtureReal() })).rejects.toThrow(/dir must be a non-empty string/);
    await expect(merge({ out: join(root, 'bad.json'), loadReal: () => ({}) as never })).rejects.toThrow(/mergeEvaluationShards: loadReal\(\)\.images must be a Float32Array/);
  });
});
