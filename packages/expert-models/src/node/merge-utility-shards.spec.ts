import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GenerationRunError } from '@fad/diffusion-core/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCpuBackend } from '../testing/setup-cpu';
import { toyClassifier, toyRealData, toySettings, withoutTiming, writeToySyntheticSets } from '../testing/toy-utility-inputs';
import { mergeUtilityShards } from './merge-utility-shards';
import type { UtilityRunFile, UtilityShardJson } from './utility-files';
import { UtilityRunError } from './utility-run-error';
import { runUtilityStudy, type RunUtilityStudyParams, runUtilityStudyShard } from './utility-study';

beforeAll(useCpuBackend);

const root = mkdtempSync(join(tmpdir(), 'fad-utility-merge-'));
const unsharded = join(root, 'unsharded');
const shards = join(root, 'shards');
let sets: Array<{ name: string; dir: string }>;
const params = (out: string, over: Partial<RunUtilityStudyParams> = {}): RunUtilityStudyParams => ({
  data: toyRealData(), synthetic: [sets[0]], out, classifier: toyClassifier(), settings: toySettings({ fractions: [1] }), seed: 0, backend: 'cpu', ...over,
});
const list = (d: string) => readdirSync(d, { recursive: true }).map(String).sort();
const text = (path: string) => readFileSync(path, 'utf8');

/** Copies the shards folder to `name` (for a case that breaks it). */
function copyShards(name: string): string {
  const d = join(root, name);
  cpSync(shards, d, { recursive: true });
  return d;
}
function mergeError(p: Parameters<typeof mergeUtilityShards>[0]): UtilityRunError {
  let e: unknown = null;
  try {
    mergeUtilityShards(p);
  } catch (x) {
    e = x;
  }
  expect(e).toBeInstanceOf(UtilityRunError);
  return e as UtilityRunError;
}

beforeAll(async () => {
  sets = await writeToySyntheticSets(root);
  // real-f1, mix-synA-r1-f1, syn-synA; 2 seeds each: 6 classifiers.
  await runUtilityStudy(params(unsharded));
  // The shards share OUT/runs: with the unsharded run's files there, they train nothing.
  cpSync(join(unsharded, 'runs'), join(shards, 'runs'), { recursive: true });
  for (const index of [2, 0, 1]) expect((await runUtilityStudyShard({ ...params(shards), shard: { index, count: 3 } })).reused).toBe(2);
});

describe('mergeUtilityShards', () => {
  it('gives the unsharded run\'s folder: utility.json and runs/ byte for byte once the timing fields are blanked', () => {
    const lines: string[] = [];
    mkdirSync(join(root, 'merged.tmp-999999999'));
    const r = mergeUtilityShards({ dir: shards, out: join(root, 'merged'), log: (m) => lines.push(m) });
    expect(r).toMatchObject({ out: join(root, 'merged'), count: 3 });
    expect(lines).toEqual([`removed 1 temp file(s) left by an interrupted write in ${root} (merged.tmp-999999999)`]);
    expect(list(r.out)).toEqual(list(unsharded));
    expect(list(r.out)).toHaveLength(8);
    for (const f of list(r.out).filter((x) => x.endsWith('.json'))) expect(withoutTiming(text(join(r.out, f))), f).toBe(withoutTiming(text(join(unsharded, f))));
    const s = (i: number) => JSON.parse(text(join(shards, `${i}-of-3`, 'shard.json'))) as UtilityShardJson;
    expect(r.json.createdAt).toBe([0, 1, 2].map((i) => s(i).createdAt).sort()[2]);
    expect(r.json.wallTime.thisInvocation).toBeCloseTo([0, 1, 2].reduce((a, i) => a + s(i).elapsedSeconds, 0), 10);
    // The results are compared as they are: the blanking leaves accuracies and CIs.
    expect(r.json.summary.protocols.map((p) => p.accuracy)).toEqual(JSON.parse(text(join(unsharded, 'utility.json'))).summary.protocols.map((p: { accuracy: unknown }) => p.accuracy));
  });

  it('refuses an existing output without force, replaces a utility folder with it, and nothing else', () => {
    const out = join(root, 'merged');
    expect(mergeError({ dir: shards, out }).code).toBe('exists');
    expect(mergeUtilityShards({ dir: shards, out, force: true }).count).toBe(3);
    const foreign = join(root, 'foreign-out');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'notes.txt'), 'x');
    expect(mergeError({ dir: shards, out: foreign, force: true })).toMatchObject({ code: 'not-replaceable', details: { path: foreign } });
    expect(existsSync(join(foreign, 'notes.txt'))).toBe(true);
    expect(mergeError({ dir: shards, out: join(shards, 'm') })).toMatchObject({ code: 'out-inside-shards', details: { out: join(shards, 'm'), dir: shards } });
    // Replacing the folder that holds the shards would delete them.
    const e = (() => { try { mergeUtilityShards({ dir: shards, out: root, force: true }); } catch (x) { return x; } return null; })();
    expect(e).toBeInstanceOf(GenerationRunError);
    expect(e).toMatchObject({ code: 'holds-input' });
  });

  it('names a missing shard (and a killed one), foreign shards, and a run file that is not the plan\'s', async () => {
    expect(mergeError({ dir: join(root, 'nope'), out: join(root, 'm') })).toMatchObject({ code: 'not-shards', details: { dir: join(root, 'nope') } });
    mkdirSync(join(root, 'none', '0-of-2.tmp-123'), { recursive: true });
    expect(mergeError({ dir: join(root, 'none'), out: join(root, 'm') })).toMatchObject({ code: 'no-shards', details: { killed: ['0-of-2.tmp-123'] } });

    const missing = copyShards('missing');
    rmSync(join(missing, '1-of-3'), { recursive: true });
    mkdirSync(join(missing, '1-of-3.tmp-4242'));
    const m = mergeError({ dir: missing, out: join(root, 'm') });
    expect(m.code).toBe('bad-shards');
    expect(m.message).toMatch(/1-of-3 is missing/);
    expect(m.message).toMatch(/\(1-of-3: 1-of-3\.tmp-4242 was left by a run of it that was killed; run that shard again\)/);

    // Shard 1 of a run with 2 epochs: another config, named with the field that differs.
    const foreign = copyShards('foreign');
    const other = join(root, 'other');
    cpSync(join(shards, 'runs'), join(other, 'runs'), { recursive: true });
    await runUtilityStudyShard({ ...params(other, { settings: toySettings({ fractions: [1], epochs: 2 }) }), shard: { index: 1, count: 3 } });
    rmSync(join(foreign, '1-of-3'), { recursive: true });
    cpSync(join(other, '1-of-3'), join(foreign, '1-of-3'), { recursive: true });
    const f = mergeError({ dir: foreign, out: join(root, 'm') });
    expect(f.code).toBe('bad-shards');
    expect(f.message).toMatch(/1-of-3 \(.*\) was run with another config .*differs in epochs \(2 vs 1\)/);

    // A run file that holds another classifier than the plan puts there.
    const swapped = copyShards('swapped');
    const file = join(swapped, '0-of-3', 'runs', 'real-f1-s0.json');
    const run = JSON.parse(text(file)) as UtilityRunFile;
    writeFileSync(file, JSON.stringify({ ...run, record: { ...run.record, seed: 1 } }));
    expect(mergeError({ dir: swapped, out: join(root, 'm') })).toMatchObject({ code: 'bad-run-file', details: { path: file, shard: '0-of-3', protocolId: 'real-f1', seed: 0 } });
    expect(existsSync(join(root, 'm'))).toBe(false);
  });

  it('rejects bad params naming the field', () => {
    expect(() => mergeUtilityShards({ dir: '', out: 'x' })).toThrow(/mergeUtilityShards: dir must be a non-empty string/);
    expect(() => mergeUtilityShards({ dir: shards, out: 'x', force: 1 as never })).toThrow(/mergeUtilityShards: force must be a boolean/);
  });
});
