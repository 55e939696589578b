/**
 * runAlignmentExperiment with tiny fake stages (files only, no training): the order of the stages,
 * the run folder's files (run.json, config.yaml, steps.json, eval.json, complete.json) and the log,
 * the step keys (pinned: the values `fad experiment` computed before the run moved here, from
 * the same inputs), reuse, redo on a changed key or with `force`, an interrupted run, the checks of
 * the params and of the stages' results. The report is mocked here (experiment-report.spec.ts
 * tests it; the CLI's end-to-end demo runs both).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors } from '@fad/diffusion-core';
import { readCompleteMarker, sha256, writeCompleteMarker } from '@fad/diffusion-core/node';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { fixtureEvaluation } from '../test-support/report-run-folder';
import { checkpointKeyMatches, type ExperimentExpert, type RunAlignmentExperimentParams, runAlignmentExperiment } from './experiment-run';
import { ExperimentRunError } from './experiment-run-error';

const report = vi.hoisted(() => ({ warnings: [] as string[], calls: 0 }));
vi.mock('./experiment-report', () => ({
  writeExperimentReport: async ({ runDir }: { runDir: string }) => {
    report.calls++;
    return { html: `${runDir}/report/report.html`, figures: [], warnings: report.warnings };
  },
}));

const root = mkdtempSync(join(tmpdir(), 'fad-experiment-run-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const G = { sampler: 'ddim', steps: 4, seeds: [0, 1], matchMean: { enabled: true, k: 2 } };
const E = { classes: null, excludeClasses: ['background'], realSet: 'validation', ssimWinSize: 7 };
const REAL_STATS = { dark: { mean: 0.25, std: 0.5 }, light: { mean: 0.75, std: 0.125 } };
const CONFIG = { seed: 1, generate: G, evaluate: E };
const manifestText = (key: string) => `${JSON.stringify({ format: 'fad-generated/1', key, classNames: ['dark', 'light'], imageSize: 8, channels: 1, images: [] }, null, 2)}\n`;

/**
 * The keys `fad experiment` (packages/cli/src/experiment.ts at main 0781fcf) computed from these
 * inputs: G, E, REAL_STATS, the real indices [1, 3, 4], the fingerprint "fingerprint-1", the expert
 * sha256("expert"), the model files `model:<name>:train-<name>` and the manifests `manifestText(key)`.
 */
const PINNED = {
  'generate:baseline': 'a39e46a0d2484c4b',
  'evaluate:baseline': 'a0d271824e519444',
  'generate:aligned-clean': 'a868bd4f86d53506',
  'evaluate:aligned-clean': 'd59602247b0b0844',
  'generate:dreambooth': '6939f8a3ea1d00b3',
  'evaluate:dreambooth': 'a326c8e5c317afc0',
  'generate:dreambooth-aligned': 'a3d4ace09c9b15df',
  'evaluate:dreambooth-aligned': '38d6ecfbf08fa98c',
  'generate:baseline without real statistics': '5faa4fa93ce956d4',
  experiment: '8a7d19174d454253',
};

interface Fake {
  params: RunAlignmentExperimentParams<ExperimentExpert & { name: string }>;
  calls: string[];
  logs: string[];
  warnings: string[];
  disposed: number;
  /** The key each training stage stores (default `train-<name>`). */
  keys: Record<string, string>;
}

/**
 * Stages that write what the real ones would (an expert file and eval.json, a model file and
 * complete.json per training run, manifest.json per generated set), record their calls and reuse a
 * finished training run of the same key.
 */
function fake(runDir: string, opts: { dreamBooth?: boolean; utility?: boolean; realStats?: unknown } = {}): Fake {
  const f: Fake = { calls: [], logs: [], warnings: [], disposed: 0, keys: {}, params: undefined as never };
  const train = (name: string, dir: string, force: boolean) => {
    const key = f.keys[name] ?? `train-${name}`;
    const modelPath = join(dir, 'model.safetensors');
    if (readCompleteMarker(dir)?.key === key && !force) return { key, reused: true, modelPath };
    mkdirSync(dir, { recursive: true });
    writeFileSync(modelPath, `model:${name}:${key}`);
    writeCompleteMarker(dir, { step: 'train', key });
    return { key, reused: false, modelPath };
  };
  const generate = (dir: string, key: string) => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'manifest.json'), manifestText(key));
    return { key };
  };
  f.params = {
    runDir,
    variants: ['baseline', 'aligned-clean'],
    record: { backend: 'cpu', command: 'experiment --run-dir x', dataDir: 'data', imageSize: 8, channels: 1 },
    config: CONFIG,
    configYaml: 'seed: 1\n',
    generateSettings: G,
    evaluateSettings: E,
    log: (m) => f.logs.push(m),
    warn: (m) => f.warnings.push(m),
    formatConfusionMatrix: ({ matrix, classNames }) => `matrix ${classNames.join(',')} ${JSON.stringify(matrix)}`,
    stages: {
      prepare: async () => {
        f.calls.push('prepare');
        return { fingerprint: 'fingerprint-1', realIndices: [1, 3, 4], realStats: 'realStats' in opts ? opts.realStats : REAL_STATS };
      },
      expert: async ({ dir, force }) => {
        f.calls.push(`expert force=${force}`);
        const path = join(dir, 'expert.safetensors');
        if (readCompleteMarker(dir)?.key === 'expert-key' && !force) return { key: 'expert-key', reused: true, path };
        mkdirSync(dir, { recursive: true });
        writeFileSync(path, 'expert');
        writeFileSync(join(dir, 'eval.json'), JSON.stringify({ classNames: ['dark', 'light'], confusionMatrix: [[2, 0], [1, 1]], accuracy: 0.75, numSamples: 4 }));
        writeCompleteMarker(dir, { step: 'expert', key: 'expert-key' });
        return { key: 'expert-key', reused: false, path };
      },
      openExpert: ({ path }) => {
        f.calls.push('openExpert');
        return { name: path, sha256: sha256(readFileSync(path)), dispose: () => void f.disposed++ };
      },
      trainVariantKey: ({ variant }) => f.keys[variant] ?? `train-${variant}`,
      trainVariant: async ({ variant, alignment, dir, force, expert }) => {
        f.calls.push(`train ${variant} ${JSON.stringify(alignment)} force=${force} expert=${expert.name.endsWith('expert.safetensors')}`);
        return train(variant, dir, force);
      },
      generate: async ({ variant, dir, key }) => {
        f.calls.push(`generate ${variant}`);
        return generate(dir, key);
      },
      evaluate: async ({ name, settings }) => {
        f.calls.push(`evaluate ${name} ${JSON.stringify(settings)}`);
        return { ...fixtureEvaluation([0.5, 0.75], false, 12.3456), frechetDistance: 12.3456, name };
      },
      ...(opts.dreamBooth
        ? {
            dreamBooth: {
              className: 'light',
              token: 'sks',
              train: async ({ arm, alignment, dir, priorPath, pretrained, force }) => {
                f.calls.push(`train ${arm} ${JSON.stringify(alignment)} force=${force} prior=${priorPath === join(runDir, 'dreambooth', 'class-images.safetensors')} from=${pretrained === join(runDir, 'variants', 'baseline', 'train', 'model.safetensors')}`);
                return train(arm, dir, force);
              },
              generate: async ({ arm, dir, key }) => {
                f.calls.push(`generate ${arm}`);
                return generate(dir, key);
              },
            },
          }
        : {}),
      ...(opts.utility
        ? {
            utility: async ({ sets, dir, force }) => {
              f.calls.push(`utility ${sets.map((s) => `${s.name}=${s.dir === join(runDir, 'variants', s.name, 'generated')}`).join(' ')} force=${force}`);
              const reused = existsSync(join(dir, 'utility.json')) && !force;
              mkdirSync(dir, { recursive: true });
              writeFileSync(join(dir, 'utility.json'), '{}');
              return { key: 'utility-key', trained: reused ? 0 : 3, reused: reused ? 3 : 0, path: join(dir, 'utility.json') };
            },
          }
        : {}),
    },
  };
  return f;
}

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const steps = (runDir: string) => readJson(join(runDir, 'steps.json')) as Record<string, { key: string; reused: boolean; seconds: number }>;

describe('runAlignmentExperiment', () => {
  it('runs the stages in order and writes the run folder as fad experiment did, with the pinned keys', async () => {
    const runDir = join(root, 'full');
    const f = fake(runDir, { dreamBooth: true, utility: true });
    report.warnings = ['a variant has no evaluation yet'];
    const r = await runAlignmentExperiment(f.params);
    report.warnings = [];
    const generated = (v: string) => `${v}=true`;
    expect(f.calls).toEqual([
      'prepare', 'expert force=false', 'openExpert',
      'train baseline {"enabled":false} force=false expert=true', 'generate baseline', `evaluate baseline ${JSON.stringify(E)}`,
      'train aligned-clean {"enabled":true,"alignTo":"clean"} force=false expert=true', 'generate aligned-clean', `evaluate aligned-clean ${JSON.stringify(E)}`,
      'train dreambooth {"enabled":false} force=false prior=true from=true', 'generate dreambooth', `evaluate dreambooth ${JSON.stringify({ ...E, classes: ['light'], excludeClasses: [] })}`,
      'train dreambooth-aligned {"enabled":true} force=false prior=true from=true', 'generate dreambooth-aligned', `evaluate dreambooth-aligned ${JSON.stringify({ ...E, classes: ['light'], excludeClasses: [] })}`,
      `utility ${generated('baseline')} ${generated('aligned-clean')} force=false`,
    ]);
    expect(f.disposed).toBe(1);
    expect(report.calls).toBeGreaterThan(0);

    const s = steps(runDir);
    expect(Object.keys(s)).toEqual([
      'expert', 'train:baseline', 'generate:baseline', 'evaluate:baseline', 'train:aligned-clean', 'generate:aligned-clean', 'evaluate:aligned-clean',
      'train:dreambooth', 'generate:dreambooth', 'evaluate:dreambooth', 'train:dreambooth-aligned', 'generate:dreambooth-aligned', 'evaluate:dreambooth-aligned', 'utility', 'report',
    ]);
    for (const [name, step] of Object.entries(s)) {
      expect(Object.keys(step), name).toEqual(['key', 'reused', 'seconds']);
      expect(step.reused, name).toBe(false);
      expect(step.seconds, name).toBeGreaterThanOrEqual(0);
    }
    expect(s.expert.key).toBe('expert-key');
    expect(s['train:baseline'].key).toBe('train-baseline');
    expect(s.utility.key).toBe('utility-key');
    expect(s.report.key).toBe('');
    for (const name of ['generate:baseline', 'evaluate:baseline', 'generate:aligned-clean', 'evaluate:aligned-clean', 'generate:dreambooth', 'evaluate:dreambooth', 'generate:dreambooth-aligned', 'evaluate:dreambooth-aligned'] as const) {
      expect(s[name].key, name).toBe(PINNED[name]);
    }
    // eval.json: the evaluation with its key; the evaluations are returned by variant and arm.
    expect(readJson(join(runDir, 'variants', 'baseline', 'eval.json'))).toEqual({ ...fixtureEvaluation([0.5, 0.75], false, 12.3456), name: 'baseline', key: PINNED['evaluate:baseline'] });
    expect(readJson(join(runDir, 'dreambooth', 'dreambooth-aligned', 'eval.json')).key).toBe(PINNED['evaluate:dreambooth-aligned']);
    expect(Object.keys(r.evaluations)).toEqual(['baseline', 'aligned-clean', 'dreambooth', 'dreambooth-aligned']);
    expect(r).toMatchObject({ runDir, report: join(runDir, 'report', 'report.html') });
    expect(r.steps).toEqual(s);

    const done = readJson(join(runDir, 'complete.json'));
    expect(Object.keys(done)).toEqual(['step', 'key', 'backend', 'report', 'elapsedSeconds', 'finishedAt']);
    expect(done).toMatchObject({ step: 'experiment', key: PINNED.experiment, backend: 'cpu', report: join(runDir, 'report', 'report.html') });
    const run = readJson(join(runDir, 'run.json'));
    expect(Object.keys(run)).toEqual(['backend', 'startedAt', 'node', 'platform', 'command', 'dataDir', 'imageSize', 'channels']);
    expect(run).toMatchObject({ backend: 'cpu', node: process.version, platform: `${process.platform}-${process.arch}`, command: 'experiment --run-dir x', dataDir: join(process.cwd(), 'data'), imageSize: 8, channels: 1 });
    expect(Date.parse(run.startedAt)).toBeLessThanOrEqual(Date.parse(done.finishedAt));
    expect(readFileSync(join(runDir, 'config.yaml'), 'utf8')).toBe('seed: 1\n');

    const line = 'generation accuracy 62.5%, SSIM diversity 0.400 (real 0.375), FD 12.35, KID 0.0123';
    expect(f.logs.slice(0, -1)).toEqual([
      'fad: expert accuracy on 4 held-out real images: 75.0%',
      'matrix dark,light [[2,0],[1,1]]',
      `fad: baseline: ${line}`,
      `fad: aligned-clean: ${line}`,
      'fad: dreambooth: generation accuracy on "light" with token "sks" 62.5%, SSIM diversity 0.400 (real 0.375)',
      'fad: dreambooth-aligned: generation accuracy on "light" with token "sks" 62.5%, SSIM diversity 0.400 (real 0.375)',
      `fad: utility: 3 classifier(s) trained, 0 reused; ${join(runDir, 'utility', 'utility.json')}`,
    ]);
    expect(f.logs.at(-1)).toMatch(/^fad: experiment done in \d+s$/);
    expect(f.warnings).toEqual(['a variant has no evaluation yet']);
  });

  it('reuses every step of a finished run; a changed training key, or a stale checkpoint, redoes that variant; force redoes everything', async () => {
    const runDir = join(root, 'reuse');
    await runAlignmentExperiment(fake(runDir).params);
    const first = steps(runDir);

    const again = fake(runDir);
    await runAlignmentExperiment(again.params);
    expect(again.calls).toEqual(['prepare', 'expert force=false', 'openExpert', 'train baseline {"enabled":false} force=false expert=true', 'train aligned-clean {"enabled":true,"alignTo":"clean"} force=false expert=true']);
    const s = steps(runDir);
    for (const name of Object.keys(first)) {
      expect(s[name].key, name).toBe(first[name].key);
      expect(s[name].reused, name).toBe(name !== 'report');
    }
    expect(again.logs.filter((l) => /changed/.test(l))).toEqual([]);
    expect(existsSync(join(runDir, 'complete.json'))).toBe(true);

    // Another training key for aligned-clean: its finished run is stale, trained with force; its
    // model changes, so its generated set and evaluation are redone too.
    const changed = fake(runDir);
    changed.keys['aligned-clean'] = 'train-aligned-clean-2';
    await runAlignmentExperiment(changed.params);
    expect(changed.logs).toContain('fad: aligned-clean: the config or inputs changed since the last run; training again');
    expect(changed.calls.slice(3)).toEqual([
      'train baseline {"enabled":false} force=false expert=true',
      'train aligned-clean {"enabled":true,"alignTo":"clean"} force=true expert=true', 'generate aligned-clean', `evaluate aligned-clean ${JSON.stringify(E)}`,
    ]);
    expect(steps(runDir)['generate:aligned-clean']).toMatchObject({ reused: false });
    expect(steps(runDir)['generate:aligned-clean'].key).not.toBe(first['generate:aligned-clean'].key);

    // An unfinished run (a checkpoint, no complete.json): stale unless its state holds the key.
    const trainDir = join(runDir, 'variants', 'baseline', 'train');
    rmSync(join(trainDir, 'complete.json'));
    const checkpoint = (key: string) => writeFileSync(join(trainDir, 'checkpoint.safetensors'), encodeSafetensors({ metadata: { state: JSON.stringify({ key, step: 1 }) }, tensors: { w: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } } } as never));
    checkpoint('train-baseline');
    const resumed = fake(runDir);
    resumed.keys['aligned-clean'] = 'train-aligned-clean-2';
    await runAlignmentExperiment(resumed.params);
    expect(resumed.calls[3]).toBe('train baseline {"enabled":false} force=false expert=true');
    expect(resumed.logs.filter((l) => /changed/.test(l))).toEqual([]);
    rmSync(join(trainDir, 'complete.json'));
    checkpoint('another-key');
    const stale = fake(runDir);
    stale.keys['aligned-clean'] = 'train-aligned-clean-2';
    await runAlignmentExperiment(stale.params);
    expect(stale.calls[3]).toBe('train baseline {"enabled":false} force=true expert=true');
    expect(stale.logs).toContain('fad: baseline: the config or inputs changed since the last run; training again');

    const forced = fake(runDir);
    forced.keys['aligned-clean'] = 'train-aligned-clean-2';
    await runAlignmentExperiment({ ...forced.params, force: true });
    expect(forced.calls).toEqual([
      'prepare', 'expert force=true', 'openExpert',
      'train baseline {"enabled":false} force=true expert=true', 'generate baseline', `evaluate baseline ${JSON.stringify(E)}`,
      'train aligned-clean {"enabled":true,"alignTo":"clean"} force=true expert=true', 'generate aligned-clean', `evaluate aligned-clean ${JSON.stringify(E)}`,
    ]);
    expect(Object.values(steps(runDir)).every((x) => !x.reused)).toBe(true);
  });

  it('a changed generation input redoes the generated sets and evaluations; without real statistics the generate key holds none', async () => {
    const runDir = join(root, 'stats');
    await runAlignmentExperiment(fake(runDir).params);
    const f = fake(runDir, { realStats: null });
    await runAlignmentExperiment(f.params);
    expect(f.calls.filter((c) => c.startsWith('generate') || c.startsWith('evaluate'))).toHaveLength(4);
    expect(steps(runDir)['generate:baseline'].key).toBe(PINNED['generate:baseline without real statistics']);
  });

  it('a run that stops leaves no complete.json (removed when it starts), the steps done so far in steps.json, and the expert disposed', async () => {
    const runDir = join(root, 'interrupted');
    await runAlignmentExperiment(fake(runDir).params);
    expect(existsSync(join(runDir, 'complete.json'))).toBe(true);
    const f = fake(runDir);
    f.keys['aligned-clean'] = 'train-aligned-clean-2';
    const stop = new Error('interrupted at step 3');
    f.params.stages.generate = async () => {
      throw stop;
    };
    await expect(runAlignmentExperiment(f.params)).rejects.toBe(stop);
    expect(existsSync(join(runDir, 'complete.json'))).toBe(false);
    expect(Object.keys(steps(runDir))).toContain('train:aligned-clean');
    expect(f.disposed).toBe(1);
    // The stop before the expert is open: nothing to dispose, still no complete.json.
    const g = fake(runDir);
    g.params.stages.expert = async () => {
      throw stop;
    };
    await expect(runAlignmentExperiment(g.params)).rejects.toBe(stop);
    expect(g.disposed).toBe(0);
    expect(existsSync(join(runDir, 'complete.json'))).toBe(false);
  });

  it('logs FD and KID as n/a when an evaluation holds them as null (a NaN written to eval.json), instead of failing', async () => {
    const runDir = join(root, 'nan-fd');
    const f = fake(runDir);
    const evaluate = f.params.stages.evaluate;
    f.params.stages.evaluate = async (a) => ({ ...(await evaluate(a)), frechetDistance: null as unknown as number, kid: { mean: null as unknown as number } });
    await runAlignmentExperiment(f.params);
    expect(f.logs.filter((l) => /generation accuracy/.test(l)).every((l) => /FD n\/a, KID n\/a$/.test(l))).toBe(true);
    expect(f.logs.some((l) => /generation accuracy/.test(l))).toBe(true);
  });

  it('warns when the folder was started on another backend', async () => {
    const runDir = join(root, 'backend');
    await runAlignmentExperiment(fake(runDir).params);
    const f = fake(runDir);
    await runAlignmentExperiment({ ...f.params, record: { ...f.params.record, backend: 'wasm' } });
    expect(f.warnings).toEqual(['this run directory was started on the "cpu" backend; continuing on "wasm"']);
    expect(readJson(join(runDir, 'run.json')).backend).toBe('wasm');
  });

  it('a file it cannot write is an ExperimentRunError fs naming the path and what it was doing', async () => {
    const runDir = join(root, 'fs');
    mkdirSync(join(runDir, 'config.yaml', 'x'), { recursive: true });
    const f = fake(runDir);
    const e = await runAlignmentExperiment(f.params).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ExperimentRunError);
    expect(e).toMatchObject({ code: 'fs', details: { path: join(runDir, 'config.yaml'), doing: 'write' } });
    expect((e as Error).message).toMatch(new RegExp(`^cannot write ${join(runDir, 'config.yaml')}: `));
    expect(f.calls).toEqual([]);
  });

  it('checks every param up front, naming it, before it writes anything', async () => {
    const runDir = join(root, 'never');
    const base = fake(runDir).params;
    const cases: Array<[string, unknown, RegExp, ErrorConstructor]> = [
      ['not an object', null, /expected one params object/, TypeError],
      ['a typo', { ...base, forse: true }, /unknown parameter "forse"/, RangeError],
      ['runDir', { ...base, runDir: '' }, /runDir must be a non-empty string/, TypeError],
      ['variants empty', { ...base, variants: [] }, /variants must be a non-empty list/, TypeError],
      ['variants unknown', { ...base, variants: ['baseline', 'aligned'] }, /variants\[1\] must be one of baseline, aligned-noisy, aligned-clean, got "aligned"/, RangeError],
      ['force', { ...base, force: 'yes' }, /force must be a boolean/, TypeError],
      ['record', { ...base, record: undefined }, /record must be/, TypeError],
      ['record.backend', { ...base, record: { ...base.record, backend: '' } }, /record\.backend must be a non-empty string/, TypeError],
      ['record.imageSize', { ...base, record: { ...base.record, imageSize: 0 } }, /record\.imageSize must be a positive integer/, RangeError],
      ['record.dataDir', { ...base, record: { ...base.record, dataDir: 3 } }, /record\.dataDir must be a string or null/, TypeError],
      ['config', { ...base, config: undefined }, /config must be/, TypeError],
      ['configYaml', { ...base, configYaml: {} }, /configYaml must be a string/, TypeError],
      ['generateSettings', { ...base, generateSettings: null }, /generateSettings must be an object/, TypeError],
      ['log', { ...base, log: 'console' }, /log must be a function/, TypeError],
      ['stages', { ...base, stages: undefined }, /stages must be an object/, TypeError],
      ['stages typo', { ...base, stages: { ...base.stages, utilty: () => null } }, /stages: unknown parameter "utilty"/, RangeError],
      ['stages.generate', { ...base, stages: { ...base.stages, generate: undefined } }, /stages\.generate must be a function/, TypeError],
      ['stages.dreamBooth.className', { ...fake(runDir, { dreamBooth: true }).params, stages: { ...fake(runDir, { dreamBooth: true }).params.stages, dreamBooth: { ...fake(runDir, { dreamBooth: true }).params.stages.dreamBooth, className: '' } } }, /stages\.dreamBooth\.className must be a non-empty string/, TypeError],
      ['dreamBooth without baseline', { ...fake(runDir, { dreamBooth: true }).params, variants: ['aligned-clean'] }, /variants must include "baseline" with stages\.dreamBooth/, RangeError],
    ];
    for (const [name, params, message, type] of cases) {
      const e = await runAlignmentExperiment(params as never).catch((x: unknown) => x);
      expect(e, name).toBeInstanceOf(type);
      expect((e as Error).message, name).toMatch(/^runAlignmentExperiment: /);
      expect((e as Error).message, name).toMatch(message);
    }
    expect(existsSync(runDir)).toBe(false);
  });

  it('a stage that resolves to the wrong shape is a TypeError naming it', async () => {
    const cases: Array<[string, (p: Fake['params']) => void, RegExp]> = [
      ['prepare', (p) => (p.stages.prepare = async () => ({ fingerprint: 'f', realIndices: 'all' as never })), /stages\.prepare must resolve to realIndices/],
      ['expert', (p) => (p.stages.expert = async () => ({ key: 'k', reused: false }) as never), /stages\.expert must resolve to \{ key, reused, path \}/],
      ['openExpert', (p) => (p.stages.openExpert = () => ({ name: 'x' }) as never), /stages\.openExpert must return \{ sha256, dispose \}/],
      ['trainVariantKey', (p) => (p.stages.trainVariantKey = () => ''), /stages\.trainVariantKey must return a non-empty string/],
      ['trainVariant', (p) => (p.stages.trainVariant = async () => ({ key: 'k', reused: false }) as never), /stages\.trainVariant must resolve to \{ key, reused, modelPath \}/],
    ];
    for (const [name, patch, message] of cases) {
      const f = fake(join(root, `shape-${name}`));
      patch(f.params);
      const e = await runAlignmentExperiment(f.params).catch((x: unknown) => x);
      expect(e, name).toBeInstanceOf(TypeError);
      expect((e as Error).message, name).toMatch(message);
    }
  });
});

describe('checkpointKeyMatches: is a variant\'s checkpoint its own?', () => {
  it('reads the key of the checkpoint\'s state; another key, no state or a damaged file is not a match', () => {
    const file = (name: string, metadata: Record<string, string>) => {
      const path = join(root, name);
      writeFileSync(path, encodeSafetensors({ metadata, tensors: { w: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } } } as never));
      return path;
    };
    const ckpt = file('c.safetensors', { state: JSON.stringify({ format: 'fad-train-checkpoint/1', key: 'k1', step: 3 }) });
    expect(checkpointKeyMatches(ckpt, 'k1')).toBe(true);
    expect(checkpointKeyMatches(ckpt, 'k2')).toBe(false);
    expect(checkpointKeyMatches(file('n.safetensors', {}), 'k1')).toBe(false);
    writeFileSync(join(root, 'bad.safetensors'), 'garbage');
    expect(checkpointKeyMatches(join(root, 'bad.safetensors'), 'k1')).toBe(false);
    expect(checkpointKeyMatches(join(root, 'missing.safetensors'), 'k1')).toBe(false);
  });
});
