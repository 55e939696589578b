import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { GenerationRunError } from '@fad/diffusion-core/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { createExpert } from '../create-expert';
import { presetConfig } from '../expert-config';
import { saveExpert } from './expert-files';
import { useCpuBackend } from '../testing/setup-cpu';
import { toyClassifier, toyRealData, toySettings, withoutTiming, writeToySyntheticSet, writeToySyntheticSets } from '../testing/toy-utility-inputs';
import type { UtilityJson, UtilityRunFile, UtilityShardJson } from './utility-files';
import { UtilityRunError } from './utility-run-error';
import { runUtilityStudy, type RunUtilityStudyParams, runUtilityStudyShard } from './utility-study';

beforeAll(useCpuBackend);

/**
 * What the `fad utility` of before the move into this library wrote for the toy inputs (its
 * `cfg.utility` is `toySettings()`, seed 0): the run's key and every run file's name and key. A
 * run folder of that version resumes only while these stay the same.
 */
const PINNED = {
  key: 'd0819752c55886b1',
  manifestSha256: ['89e0a46868e06e0000188140ad64464dafc5b88cf1d0be267bd744bbba0c9dfb', '5220bdf15eb0aa7a80767aaa02ea3a7d9ad1b0200345d65faf65fb63e3c313ae'],
  runs: {
    'mix-synA-r1-f0.5-s0.json': '441966c1bfb5abde', 'mix-synA-r1-f0.5-s1.json': '23389416c55eb7c0', 'mix-synA-r1-f1-s0.json': '07bdce99ced34cd1', 'mix-synA-r1-f1-s1.json': 'aeeaa058d8f2e106',
    'mix-synB-r1-f0.5-s0.json': 'df1fcbd0c2a15d2f', 'mix-synB-r1-f0.5-s1.json': '5fa1b857d7d44069', 'mix-synB-r1-f1-s0.json': '68e7a2c2a5dfc93f', 'mix-synB-r1-f1-s1.json': '0ec665f4aaa21615',
    'real-f0.5-s0.json': '00341552bf59bc4e', 'real-f0.5-s1.json': 'b9de43795c1b8c51', 'real-f1-s0.json': '42267a6a1651990e', 'real-f1-s1.json': '97151afd90682fbb',
    'syn-synA-s0.json': 'df03a3a93bffbbbb', 'syn-synA-s1.json': '3742074d5db6ba26', 'syn-synB-s0.json': '1f1f6531e750be63', 'syn-synB-s1.json': '788a60afa231ae6a',
  } as Record<string, string>,
};

const root = mkdtempSync(join(tmpdir(), 'fad-utility-study-'));
let sets: Array<{ name: string; dir: string }>;
beforeAll(async () => {
  sets = await writeToySyntheticSets(root);
});

const params = (out: string, over: Partial<RunUtilityStudyParams> = {}): RunUtilityStudyParams => ({
  data: toyRealData(), synthetic: sets, out: join(root, out), classifier: toyClassifier(), settings: toySettings(), seed: 0, backend: 'cpu', ...over,
});
const readJson = <T>(path: string) => JSON.parse(readFileSync(path, 'utf8')) as T;
const text = (path: string) => readFileSync(path, 'utf8');
/** Rejects with a UtilityRunError of `code` (and `details`), returning it. */
async function rejectsWith(p: Promise<unknown>, code: string, details: Record<string, unknown> = {}): Promise<UtilityRunError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(UtilityRunError);
  expect((e as UtilityRunError).code).toBe(code);
  expect((e as UtilityRunError).details).toMatchObject(details);
  return e as UtilityRunError;
}

describe('runUtilityStudy', () => {
  let a: UtilityJson;

  it('writes a run file per (protocol, seed) and utility.json with the names and keys of earlier versions, leaking no tensor', async () => {
    const lines: string[] = [];
    const before = tf.memory().numTensors;
    const r = await runUtilityStudy(params('a', { log: (m) => lines.push(m) }));
    expect(tf.memory().numTensors).toBe(before);
    expect(r).toMatchObject({ trained: 16, reused: 0, key: PINNED.key, path: join(root, 'a', 'utility.json') });
    a = r.json;
    expect(a.synthetic.map((s) => s.manifestSha256)).toEqual(PINNED.manifestSha256);
    expect(a.key).toBe(PINNED.key);
    expect(readdirSync(join(root, 'a', 'runs')).sort()).toEqual(Object.keys(PINNED.runs).sort());
    for (const [file, key] of Object.entries(PINNED.runs)) {
      const f = readJson<UtilityRunFile>(join(root, 'a', 'runs', file));
      expect(f.format).toBe('fad-utility-run/1');
      expect(f.key, file).toBe(key);
      expect(`${f.record.protocolId}-s${f.record.seed}.json`).toBe(file);
      expect(f.record.predictions).toHaveLength(6);
    }
    expect(text(r.path)).toBe(`${JSON.stringify(a, null, 2)}\n`);
    expect(a.runs.map((x) => `${x.protocolId}/${x.seed}`)).toEqual(a.summary.protocols.flatMap((p) => [0, 1].map((s) => `${p.id}/${s}`)));
    expect(lines[0]).toBe('synthetic set synA: class(es) x are not in the real data and are not used');
    expect(lines[1]).toBe('utility: 8 protocols x 2 seed(s) = 16 classifiers (resnet18-kather, 1 epoch(s)); 18 real training images, 6 held-out real test images; synthetic: synA (16), synB (9)');
    expect(lines.filter((l) => /: accuracy \d/.test(l))).toHaveLength(16);
  });

  it('labels synthetic images by class name in the real class order, leaves out classes the real data lacks, and draws the fractions and ratios per class', async () => {
    expect(a.data).toMatchObject({ dir: '/toy/real', numTrain: 18, numTest: 6, classNames: ['a', 'b', 'c'], validationFraction: 0.25, splitSeed: 0 });
    expect(a.synthetic[0]).toMatchObject({ name: 'synA', numImages: 16, perClass: { c: 4, a: 4, b: 4, x: 4 }, ignoredClasses: ['x'], sampler: 'ddim', steps: 1, expertGuidance: null });
    expect(a.summary.testPerClass).toEqual([2, 2, 2]);
    const run = (id: string, seed = 0) => a.runs.find((x) => x.protocolId === id && x.seed === seed)!;
    // 6 training images per class: fraction 0.5 keeps round(3) of each; ratio 1 adds as many synthetic ones.
    expect(run('real-f0.5').trainPerClass).toEqual([3, 3, 3]);
    expect(run('real-f1', 1).trainPerClass).toEqual([6, 6, 6]);
    expect(run('mix-synA-r1-f0.5')).toMatchObject({ numReal: 9, numSynthetic: 9, trainPerClass: [6, 6, 6], repeatedClasses: [] });
    // 6 wanted per class, 4 in synA: they repeat.
    expect(run('mix-synA-r1-f1')).toMatchObject({ numReal: 18, numSynthetic: 18, trainPerClass: [12, 12, 12], repeatedClasses: ['a', 'b', 'c'] });
    // Synthetic-only: every image of a real class (not the 4 of "x").
    expect(run('syn-synA')).toMatchObject({ numReal: 0, numSynthetic: 12, trainPerClass: [4, 4, 4] });
    expect(run('syn-synB', 1)).toMatchObject({ numReal: 0, numSynthetic: 9, trainPerClass: [3, 3, 3] });

    // A set listing "c" first with only 2 of its images: by name they count for class index 2.
    const dir = join(root, 'synC');
    cpSync(sets[0].dir, dir, { recursive: true });
    const m = readJson<{ images: Array<{ class: string }> }>(join(dir, 'manifest.json'));
    let dropped = 0;
    m.images = m.images.filter((img) => !(img.class === 'c' && dropped++ < 2));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    const r = await runUtilityStudy(params('c', { synthetic: [{ name: 'synC', dir }], settings: toySettings({ fractions: [1], ratios: [], seeds: 1 }) }));
    expect(r.json.runs.map((x) => [x.protocolId, x.trainPerClass])).toEqual([['real-f1', [6, 6, 6]], ['syn-synC', [4, 4, 2]]]);
    expect(r.json.synthetic[0].perClass).toEqual({ c: 2, a: 4, b: 4, x: 4 });
  });

  it('resumes after a stop: the finished classifiers are kept, a rerun trains only the rest (and those whose key changed) and ends as an uninterrupted run', async () => {
    let done = 0;
    const stopped = params('b', { log: (m) => { if (/: accuracy \d/.test(m)) done++; }, shouldStop: () => done >= 3 });
    await rejectsWith(runUtilityStudy(stopped), 'interrupted', { finished: 3, total: 16, runsDir: join(root, 'b', 'runs') });
    expect(existsSync(join(root, 'b', 'utility.json'))).toBe(false);
    const kept = readdirSync(join(root, 'b', 'runs')).sort();
    expect(kept).toEqual(['real-f0.5-s0.json', 'real-f0.5-s1.json', 'real-f1-s0.json']);
    for (const f of kept) expect(withoutTiming(text(join(root, 'b', 'runs', f)))).toBe(withoutTiming(text(join(root, 'a', 'runs', f))));
    const before = Object.fromEntries(kept.map((f) => [f, text(join(root, 'b', 'runs', f))]));
    const r = await runUtilityStudy(params('b'));
    expect([r.trained, r.reused]).toEqual([13, 3]);
    for (const [f, t] of Object.entries(before)) expect(text(join(root, 'b', 'runs', f))).toBe(t);
    expect(withoutTiming(text(r.path))).toBe(withoutTiming(text(join(root, 'a', 'utility.json'))));
    // A run file whose key does not match (other inputs or settings) is trained again.
    const f = join(root, 'b', 'runs', 'syn-synB-s1.json');
    writeFileSync(f, JSON.stringify({ ...readJson<UtilityRunFile>(f), key: 'other' }));
    const again = await runUtilityStudy(params('b'));
    expect([again.trained, again.reused]).toEqual([1, 15]);
  });

  it('force trains every classifier again, but never deletes an input', async () => {
    const small = (over: Partial<RunUtilityStudyParams> = {}) => params('f', { settings: toySettings({ fractions: [1], ratios: [], syntheticOnly: false }), ...over });
    expect((await runUtilityStudy(small())).trained).toBe(2);
    expect((await runUtilityStudy(small())).reused).toBe(2);
    expect((await runUtilityStudy(small({ force: true }))).trained).toBe(2);
    const inside = join(root, 'f', 'runs', 'synA');
    cpSync(sets[0].dir, inside, { recursive: true });
    const e = await runUtilityStudy(small({ force: true, synthetic: [{ name: 'synA', dir: inside }] })).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GenerationRunError);
    expect(e).toMatchObject({ code: 'holds-input', details: { what: 'the synthetic set synA', path: inside } });
    expect(existsSync(join(inside, 'manifest.json'))).toBe(true);
  });

  it('checks every input before reading the data, writing or training, with codes and details an application can word', async () => {
    const out = join(root, 'never');
    let loads = 0;
    const lazy = () => { loads++; return Promise.resolve(toyRealData()); };
    await rejectsWith(runUtilityStudy(params('never', { synthetic: [] })), 'no-synthetic');
    await rejectsWith(runUtilityStudy(params('never', { settings: toySettings({ fractions: [0.5, 0.5] }) })), 'bad-settings', { problem: 'fractions must not repeat a value, got [0.5,0.5]' });
    await rejectsWith(runUtilityStudy(params('never', { synthetic: [{ name: 'real', dir: sets[0].dir }] })), 'bad-settings');
    mkdirSync(join(root, 'empty'), { recursive: true });
    const noManifest = await rejectsWith(runUtilityStudy(params('never', { data: lazy, synthetic: [sets[0], { name: 'e', dir: join(root, 'empty') }] })), 'no-manifest', { name: 'e', dir: join(root, 'empty') });
    expect(noManifest.message).toMatch(/empty is not a generated set \(cannot read .*manifest\.json: no such file\)/);
    expect(loads).toBe(0);
    await writeToySyntheticSet({ dir: join(root, 'big'), classes: ['a', 'b', 'c'], perClass: 1, seed: 1, size: 16 });
    await rejectsWith(runUtilityStudy(params('never', { data: lazy, synthetic: [{ name: 'big', dir: join(root, 'big') }] })), 'size-mismatch', { name: 'big', setSize: 16, setChannels: 1, imageSize: 8, channels: 1 });
    expect(loads).toBe(1);
    await writeToySyntheticSet({ dir: join(root, 'partial'), classes: ['a'], perClass: 1, seed: 1 });
    const partial = await rejectsWith(runUtilityStudy(params('never', { synthetic: [{ name: 'partial', dir: join(root, 'partial') }] })), 'missing-class', { missing: ['b', 'c'], classes: ['a'] });
    expect(partial.message).toMatch(/^synthetic set partial \(.*partial\) has no image of classes "b", "c" \(its classes: a\); generate every class of the real data$/);
    const classifier = toyClassifier();
    await rejectsWith(runUtilityStudy(params('never', { generatorExpert: { config: classifier.config, path: '/e/x.safetensors' } })), 'same-architecture', { what: 'the generator\'s expert', path: '/e/x.safetensors' });
    // An expert that guided a set (recorded in its manifest) counts too.
    const expertFile = join(root, 'guide.safetensors');
    const expert = createExpert({ config: classifier.config, classNames: ['a', 'b', 'c'], seed: 0 });
    await saveExpert({ expert, path: expertFile });
    expert.dispose();
    await writeToySyntheticSet({ dir: join(root, 'guided'), classes: ['a', 'b', 'c'], perClass: 1, seed: 1, expertGuidance: { kind: 'classifier', expert: expertFile } });
    await rejectsWith(runUtilityStudy(params('never', { synthetic: [{ name: 'g', dir: join(root, 'guided') }] })), 'same-architecture', { what: 'the expert that guided synthetic set g', path: expertFile });
    const other = presetConfig({ name: 'resnet18-kather', overrides: { baseWidth: 8, layers: [1, 1], numClasses: 3, input: { size: 8, channels: 1, range: [0, 1] } } });
    await rejectsWith(runUtilityStudy(params('never', { settings: toySettings({ fractions: [0.05] }), generatorExpert: { config: other, path: '/e/other' } })), 'fraction-empties-class', { fraction: 0.05, className: 'a', count: 6 });
    const data = toyRealData();
    await rejectsWith(runUtilityStudy(params('never', { data: { ...data, split: { ...data.split, validation: [] } } })), 'no-test-images');
    expect(existsSync(out)).toBe(false);
  });

  it('rejects bad params naming the field', async () => {
    await expect(runUtilityStudy(params('never', { out: '' }))).rejects.toThrow(/runUtilityStudy: out must be a non-empty string/);
    await expect(runUtilityStudy(params('never', { settings: { ...toySettings(), learningrate: 1 } as never }))).rejects.toThrow(/runUtilityStudy: unknown field settings\.learningrate/);
    await expect(runUtilityStudy(params('never', { settings: toySettings({ epochs: 0 }) }))).rejects.toThrow(/runUtilityStudy: settings\.epochs must be an integer >= 1, got 0/);
    await expect(runUtilityStudy(params('never', { seed: -1 }))).rejects.toThrow(/runUtilityStudy: seed must be an integer in \[0, 4294967295\]/);
    const data = toyRealData();
    await expect(runUtilityStudy(params('never', { data: { ...data, split: { ...data.split, train: [99] } } }))).rejects.toThrow(/runUtilityStudy: data\.split\.train must be an array of image indices in \[0, 24\)/);
    await expect(runUtilityStudy({ ...params('never'), shard: { index: 0, count: 2 } } as never)).rejects.toThrow(/a shard runs with runUtilityStudyShard/);
    await expect(runUtilityStudyShard({ ...params('never'), shard: { index: 2, count: 2 } })).rejects.toThrow(/runUtilityStudyShard: shard must be \{ index, count \} with 0 <= index < count/);
    expect(existsSync(join(root, 'never'))).toBe(false);
  });
});

describe('runUtilityStudyShard', () => {
  it('trains its slice of the plan into OUT/I-of-N with shard.json; a rerun keeps it, another run\'s shard is refused, force retrains only its classifiers', async () => {
    const small = toySettings({ fractions: [1], ratios: [1], syntheticOnly: false });
    const shard = (index: number, over: Partial<RunUtilityStudyParams> = {}) => runUtilityStudyShard({ ...params('s', { synthetic: [sets[1]], settings: small, ...over }), shard: { index, count: 2 } });
    // real-f1 and mix-synB-r1-f1, 2 seeds each: 4 classifiers, 2 per shard.
    const r = await shard(1);
    expect(r).toMatchObject({ dir: join(root, 's', '1-of-2'), trained: 2, reused: 0, alreadyComplete: false });
    const s = readJson<UtilityShardJson>(join(root, 's', '1-of-2', 'shard.json'));
    expect(s).toMatchObject({ format: 'fad-utility-shard/1', index: 1, count: 2, units: { start: 2, end: 4, total: 4 }, runs: [
      { protocolId: 'mix-synB-r1-f1', seed: 0, file: 'runs/mix-synB-r1-f1-s0.json' }, { protocolId: 'mix-synB-r1-f1', seed: 1, file: 'runs/mix-synB-r1-f1-s1.json' },
    ] });
    expect(s.summaryInput.testLabels).toEqual(toyRealData().split.validation.map((i) => toyRealData().labels[i]));
    expect(readdirSync(join(root, 's', 'runs')).sort()).toEqual(['mix-synB-r1-f1-s0.json', 'mix-synB-r1-f1-s1.json']);
    for (const f of s.runs) expect(text(join(root, 's', '1-of-2', f.file))).toBe(text(join(root, 's', f.file)));
    const lines: string[] = [];
    expect(await shard(1, { log: (m) => lines.push(m) })).toMatchObject({ alreadyComplete: true, trained: 0 });
    expect(lines).toContain(`shard 1-of-2 is already complete in ${join(root, 's', '1-of-2')} (same settings); nothing to do`);
    await rejectsWith(shard(1, { settings: { ...small, epochs: 2 } }), 'foreign-shard', { path: join(root, 's', '1-of-2'), shard: '1-of-2' });
    expect((await shard(0)).trained).toBe(2);
    const other = text(join(root, 's', 'runs', 'real-f1-s0.json'));
    expect((await shard(1, { force: true })).trained).toBe(2);
    expect(text(join(root, 's', 'runs', 'real-f1-s0.json'))).toBe(other);
    rmSync(join(root, 's'), { recursive: true, force: true });
  });
});
