import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FadConfigSchema, parseConfig, readConfigFile } from './config';
import { effectiveConfig, parseSet } from './context';
import { CliError } from './errors';

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('config validation', () => {
  it('an empty config is the paper experiment at full scale', () => {
    const c = parseConfig({});
    expect(c.data.imageSize).toBe(64);
    expect(c.generate.seeds).toHaveLength(15);
    expect(c.generate.imagesPerClass).toBe(10);
    expect(c.evaluate.excludeClasses).toEqual(['empty']);
    expect(c.experiment.variants).toEqual(['baseline', 'aligned-noisy', 'aligned-clean']);
    expect(c.alignment).toMatchObject({ enabled: false, alignTo: 'noisy', tap: 'down_out', lambda1: 1, lambda2: 1 });
    expect(c.generate.matchMean.enabled).toBe(false);
  });

  it('dreambooth: off in the experiment by default, diffusers-like defaults, strict keys and enums', () => {
    const c = parseConfig({});
    expect(c.experiment.dreambooth).toBe(false);
    expect(c.dreambooth).toMatchObject({ class: null, token: 'sks', withPriorPreservation: true, numClassImages: 50, priorLossWeight: 1, trainEmbeddings: 'token', emaDecay: null });
    expect(errorOf(() => parseConfig({ dreambooth: { priorWeight: 1 } }))).toMatch(/dreambooth: unknown key "priorWeight"; allowed keys: class, token, instanceImages, withPriorPreservation, numClassImages, priorLossWeight, trainEmbeddings/);
    expect(errorOf(() => parseConfig({ dreambooth: { trainEmbeddings: 'text' } }))).toContain('dreambooth.trainEmbeddings: must be one of "none", "token", "all", got "text"');
    expect(errorOf(() => parseConfig({ dreambooth: { priorLossWeight: -1 } }))).toContain('dreambooth.priorLossWeight: must be a number >= 0, got -1');
  });

  it('an unknown key is an error naming it, its path and the allowed keys', () => {
    const m = errorOf(() => parseConfig({ diffusion: { stepz: 3 } }));
    expect(m).toContain('diffusion: unknown key "stepz"');
    expect(m).toMatch(/allowed keys: unet, scheduler, steps, batchSize/);
    const top = errorOf(() => parseConfig({ diffuson: {} }));
    expect(top).toContain('(top level): unknown key "diffuson"; allowed keys: seed, run, data, expert, diffusion');
    const deep = errorOf(() => parseConfig({ generate: { matchMean: { kk: 1 } } }));
    expect(deep).toContain('generate.matchMean: unknown key "kk"; allowed keys: enabled, k, maxAttempts');
  });

  it('a bad value names the path, what is allowed and what was given; every problem is listed', () => {
    const m = errorOf(() => parseConfig({ alignment: { alignTo: 'both' }, diffusion: { steps: -3, batchSize: 2.5 }, data: { onBadFile: 'ignore', channels: 2 } }));
    expect(m).toContain('alignment.alignTo: must be one of "noisy", "clean", got "both"');
    expect(m).toContain('diffusion.steps: must be a number > 0, got -3');
    expect(m).toContain('diffusion.batchSize: must be an integer, got 2.5');
    expect(m).toContain('data.onBadFile: must be one of "error", "skip", got "ignore"');
    expect(m).toContain('data.channels:');
    expect(m.split('\n').length).toBeGreaterThanOrEqual(6);
    expect(errorOf(() => parseConfig({ generate: { seeds: [] } }))).toContain('generate.seeds: must be a list with at least 1 item(s), got []');
    expect(errorOf(() => parseConfig({ data: { validationFraction: 1 } }))).toContain('data.validationFraction: must be < 1, got 1');
    expect(errorOf(() => parseConfig({ diffusion: { steps: 'many' } }))).toContain('diffusion.steps: must be a number, got "many"');
  });

  it('reads YAML files and reports YAML and shape errors with the file name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fad-config-'));
    writeFileSync(join(dir, 'ok.yaml'), 'diffusion:\n  steps: 7\ndata:\n  dir: images\n');
    writeFileSync(join(dir, 'bad.yaml'), 'diffusion: [steps: 1\n');
    writeFileSync(join(dir, 'list.yaml'), '- 1\n- 2\n');
    expect(readConfigFile(join(dir, 'ok.yaml'))).toEqual({ diffusion: { steps: 7 }, data: { dir: 'images' } });
    expect(errorOf(() => readConfigFile(join(dir, 'bad.yaml')))).toMatch(/bad\.yaml is not valid YAML/);
    expect(errorOf(() => readConfigFile(join(dir, 'list.yaml')))).toMatch(/must be a YAML mapping/);
    expect(errorOf(() => readConfigFile(join(dir, 'missing.yaml')))).toMatch(/cannot read the config file .*missing\.yaml: no such file/);
    // Relative paths in the file are relative to the file; flags override the file; --set sits between.
    const cfg = effectiveConfig({ config: join(dir, 'ok.yaml'), set: ['diffusion.steps=9', 'generate.seeds=[1, 2]'] }, { 'diffusion.batchSize': 4 });
    expect(cfg.data.dir).toBe(join(dir, 'images'));
    expect(cfg.diffusion.steps).toBe(9);
    expect(cfg.diffusion.batchSize).toBe(4);
    expect(cfg.generate.seeds).toEqual([1, 2]);
    expect(effectiveConfig({ config: join(dir, 'ok.yaml') }, { 'diffusion.steps': 11 }).diffusion.steps).toBe(11);
    expect(errorOf(() => effectiveConfig({ set: ['diffusion.stepz=1'] }))).toContain('diffusion: unknown key "stepz"');
  });

  it('parses --set values as YAML', () => {
    expect(parseSet(['a.b=3', 'c=true', 'd=[1,2]', 'e=null', 'f=text'])).toEqual({ a: { b: 3 }, c: true, d: [1, 2], e: null, f: 'text' });
    expect(errorOf(() => parseSet(['novalue']))).toContain('--set expects key.path=value');
  });

  it('the schema is strict at every level', () => {
    const shape = (FadConfigSchema as unknown as { def: { shape: Record<string, unknown> } }).def.shape;
    for (const k of Object.keys(shape).filter((k) => k !== 'seed')) {
      expect(() => parseConfig({ [k]: { notAKey: 1 } }), k).toThrow(/unknown key "notAKey"/);
    }
  });
});
