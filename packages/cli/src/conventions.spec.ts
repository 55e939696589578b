/**
 * The CLI's conventions (issue J, part 5), in process through `main` without training anything:
 * `initBackend` is replaced by a stub that records the effective config each command built from its
 * flags and stops the command there. Bare `fad` prints help, unknown commands are errors, renamed
 * flags keep their old spelling with a deprecation note, `--seed` reaches the config keys its help
 * names, directories are flags, and `.choices` come from the config schema.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildProgram, main } from './cli';
import { choicesOf } from './commands/shared';
import {
  AlignmentConfigSchema, DreamBoothConfigSchema, EvaluateConfigSchema, ExpertConfigSchema, ExpertGuidanceSchema, type FadConfig,
  GenerateConfigSchema, parseConfig, RunConfigSchema, UtilityConfigSchema,
} from './config';
import { CliError } from './errors';

const seen = vi.hoisted(() => ({ configs: [] as unknown[] }));

vi.mock('./context', async (importOriginal) => {
  const mod = await importOriginal<typeof import('./context')>();
  return {
    ...mod,
    initBackend: vi.fn(async (cfg: unknown) => {
      seen.configs.push(cfg);
      throw new CliError('stopped by the conventions spec before the backend');
    }),
  };
});

const root = mkdtempSync(join(tmpdir(), 'fad-conventions-'));
let stderr: ReturnType<typeof vi.spyOn>;
const warnings = (): string => stderr.mock.calls.map((c: unknown[]) => String(c[0])).join('');

beforeEach(() => {
  seen.configs.length = 0;
  // Warnings (log.warn) go to process.stderr; errors to io.err.
  stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => stderr.mockRestore());

async function fad(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'fad', ...args], { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

/** Runs a command up to its backend and returns the effective config it built. */
async function configOf(args: string[]): Promise<FadConfig> {
  const r = await fad(args);
  expect(r.err, `fad ${args.join(' ')}`).toMatch(/stopped by the conventions spec/);
  expect(seen.configs).toHaveLength(1);
  return seen.configs[0] as FadConfig;
}

const defaults = parseConfig({});

describe('bare fad', () => {
  it('prints the help on stdout and exits 0 without running anything', async () => {
    for (const args of [[], ['--quiet'], ['--backend', 'cpu']]) {
      const r = await fad(args);
      expect(r.code).toBe(0);
      expect(r.err).toBe('');
      expect(r.out).toMatch(/^Usage: fad \[options\] \[command\]/);
      expect(r.out).toMatch(/Start with `fad demo`/);
      for (const c of ['demo', 'train', 'generate', 'evaluate', 'report', 'experiment', 'utility', 'help']) expect(r.out).toMatch(new RegExp(`\\n  ${c} `));
      expect(seen.configs).toHaveLength(0);
    }
  });

  it('fad help COMMAND still prints that command\'s help', async () => {
    const r = await fad(['help', 'report']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Usage: fad report --run-dir DIR \[options\]/);
  });

  it('fad demo is a command, not the default any more', async () => {
    const cfg = await configOf(['demo', '--scale', 'smallest', '--run-dir', join(root, 'demo')]);
    expect(cfg.data.dir).toBe(join(root, 'demo', 'data'));
  });
});

describe('unknown commands', () => {
  it('are an error naming the command (exit 1, as every usage error), with did-you-mean when one is close', async () => {
    const r = await fad(['bogus']);
    expect(r.code).toBe(1);
    expect(r.err).toBe("fad: error: unknown command 'bogus'\n(run with --help for usage)\n");
    const near = await fad(['trian', '--out', 'x']);
    expect(near.code).toBe(1);
    expect(near.err).toMatch(/^fad: error: unknown command 'trian'\n\(Did you mean train\?\)\n/);
    expect(seen.configs).toHaveLength(0);
  });

  it('keeps unknown options and bad values at exit 1', async () => {
    const opt = await fad(['--bogus', 'x']);
    expect(opt.code).toBe(1);
    expect(opt.err).toMatch(/^fad: error: unknown option '--bogus'\n/);
    expect((await fad(['--quiet', 'trian'])).err).toMatch(/^fad: error: unknown command 'trian'\n\(Did you mean train\?\)/);
    // Subcommands still refuse extra arguments (root settings are not inherited).
    const extra = await fad(['train', 'extra', '--out', root]);
    expect(extra.code).toBe(1);
    expect(warnings()).toMatch(/fad: error: too many arguments for 'train'/);
    // Commander's errors in subcommands go to process.stderr, as before.
    const bad = await fad(['train', '--out', root, '--train-steps', 'ten']);
    expect(bad.code).toBe(1);
    expect(warnings()).toMatch(/option '--train-steps <n>' argument 'ten' is invalid/);
    expect(seen.configs).toHaveLength(0);
  });
});

describe('renamed flags', () => {
  const cases: Array<{ name: string; args: string[]; was: string[]; now: string[]; value: (c: FadConfig) => unknown; want: unknown }> = [
    { name: 'train --steps', args: ['train', '--out', join(root, 't')], was: ['--steps', '7'], now: ['--train-steps', '7'], value: (c) => c.diffusion.steps, want: 7 },
    { name: 'train --dreambooth --steps', args: ['train', '--out', join(root, 'db'), '--dreambooth', 'a', '--pretrained', join(root, 'm.safetensors')], was: ['--steps', '5'], now: ['--train-steps', '5'], value: (c) => c.dreambooth.steps, want: 5 },
    { name: 'autoencoder train --steps', args: ['autoencoder', 'train', '--out', join(root, 'ae')], was: ['--steps', '9'], now: ['--train-steps', '9'], value: (c) => c.autoencoder.steps, want: 9 },
    { name: 'generate --steps', args: ['generate', '--model', join(root, 'm'), '--out', join(root, 'g')], was: ['--steps', '3'], now: ['--sampling-steps', '3'], value: (c) => c.generate.steps, want: 3 },
    { name: 'utility --seeds', args: ['utility', '--synthetic', `a=${root}`, '--out', join(root, 'u')], was: ['--seeds', '2'], now: ['--num-seeds', '2'], value: (c) => c.utility.seeds, want: 2 },
  ];

  for (const c of cases) {
    it(`${c.name}: the new name sets the key; the old one still does, with a one-line note on stderr`, async () => {
      const now = await configOf([...c.args, ...c.now]);
      expect(c.value(now)).toBe(c.want);
      expect(warnings()).not.toMatch(/deprecated/);
      seen.configs.length = 0;
      const was = await configOf([...c.args, ...c.was]);
      expect(c.value(was)).toBe(c.want);
      expect(was).toEqual(now);
      const notes = warnings().split('\n').filter((l) => /deprecated/.test(l));
      expect(notes).toEqual([`fad: warning: ${c.was[0]} is deprecated; use ${c.now[0]} (same meaning)`]);
      const both = await fad([...c.args, ...c.was, ...c.now]);
      expect(both.code).toBe(1);
      expect(both.err).toMatch(new RegExp(`give ${c.now[0]} only \\(${c.was[0]} is its deprecated old name\\)`));
    });
  }

  it('the old names are hidden from --help; the new ones are listed', async () => {
    const help = (await fad(['train', '--help'])).out;
    expect(help).toMatch(/--train-steps <n>/);
    expect(help).not.toMatch(/--steps <n>/);
    expect((await fad(['generate', '--help'])).out).toMatch(/--sampling-steps <n>/);
  });
});

describe('--seed', () => {
  it('sets the seed keys each command names in its help, and nothing else', async () => {
    const expert = await configOf(['expert', 'train', '--out', join(root, 'e'), '--seed', '3']);
    expect(expert.expert.seed).toBe(3);
    expect(expert.diffusion.seed).toBe(defaults.diffusion.seed);
    seen.configs.length = 0;
    const train = await configOf(['train', '--out', join(root, 't'), '--seed', '4']);
    expect([train.diffusion.seed, train.expert.seed, train.seed]).toEqual([4, 0, 0]);
    seen.configs.length = 0;
    const db = await configOf(['train', '--out', join(root, 'db'), '--dreambooth', 'a', '--pretrained', join(root, 'm.safetensors'), '--seed', '5']);
    expect([db.dreambooth.seed, db.diffusion.seed]).toEqual([5, 0]);
    seen.configs.length = 0;
    const ae = await configOf(['autoencoder', 'train', '--out', join(root, 'ae'), '--seed', '6']);
    expect(ae.autoencoder.seed).toBe(6);
    seen.configs.length = 0;
    const gen = await configOf(['generate', '--model', join(root, 'm'), '--out', join(root, 'g'), '--seed', '7']);
    expect(gen.generate.seeds).toEqual([7]);
    seen.configs.length = 0;
    const util = await configOf(['utility', '--synthetic', `a=${root}`, '--out', join(root, 'u'), '--seed', '8']);
    expect([util.seed, util.utility.seeds]).toEqual([8, defaults.utility.seeds]);
    seen.configs.length = 0;
    for (const args of [['experiment', '--run-dir', join(root, 'x')], ['demo', '--scale', 'smallest', '--run-dir', join(root, 'demo')]]) {
      const c = await configOf([...args, '--seed', '9']);
      expect([c.seed, c.expert.seed, c.diffusion.seed, c.dreambooth.seed]).toEqual([9, 9, 9, 9]);
      // The comparison's fixed parts stay as they were.
      seen.configs.length = 0;
      const plain = await configOf(args);
      expect([c.data.splitSeed, c.generate.seeds, c.diffusion.validation]).toEqual([plain.data.splitSeed, plain.generate.seeds, plain.diffusion.validation]);
      expect(plain.diffusion.seed).not.toBe(9);
      seen.configs.length = 0;
    }
  });

  it('beats --set, and generate refuses --seed with --seeds or --num-seeds', async () => {
    const c = await configOf(['--set', 'diffusion.seed=1', 'train', '--out', join(root, 't'), '--seed', '2']);
    expect(c.diffusion.seed).toBe(2);
    const r = await fad(['generate', '--model', join(root, 'm'), '--out', join(root, 'g'), '--seed', '1', '--seeds', '1,2']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/give either --seed or --seeds\/--num-seeds, not both/);
    const neg = await fad(['train', '--out', join(root, 't'), '--seed', '-1']);
    expect(neg.code).toBe(1);
    expect(warnings()).toMatch(/--seed must be an integer >= 0, got "-1"/);
  });

  it('is on every command that samples or trains', () => {
    const program = buildProgram(() => {});
    const find = (path: string[]) => path.reduce<Command>((c, n) => c.commands.find((s) => s.name() === n) as Command, program);
    for (const path of [['expert', 'train'], ['autoencoder', 'train'], ['train'], ['generate'], ['utility'], ['experiment'], ['demo']]) {
      const seed = find(path).options.find((o) => o.long === '--seed');
      expect(seed, path.join(' ')).toBeDefined();
      expect(seed?.description, path.join(' ')).toMatch(/seed/);
    }
  });
});

describe('directories are flags', () => {
  it('fad report --run-dir DIR; the old positional still works with a deprecation note', async () => {
    const missing = join(root, 'no-such-run');
    const flag = await fad(['report', '--run-dir', missing]);
    expect(flag.code).toBe(1);
    expect(flag.err).toBe(`fad: error: run directory ${missing} does not exist\n`);
    expect(warnings()).toBe('');
    const short = await fad(['report', '-r', missing]);
    expect(short.err).toBe(flag.err);
    const old = await fad(['report', missing]);
    expect(old.err).toBe(flag.err);
    expect(warnings()).toBe('fad: warning: fad report RUN_DIR is deprecated; use fad report --run-dir RUN_DIR (same meaning)\n');
    expect((await fad(['report'])).err).toMatch(/give the run directory: fad report --run-dir DIR/);
    expect((await fad(['report', '-r', missing, missing])).err).toMatch(/give the run directory once/);
  });

  it('every directory and file flag has the same short name everywhere it exists', () => {
    const program = buildProgram(() => {});
    const shorts = new Map<string, Set<string>>();
    const walk = (c: Command) => {
      for (const o of c.options as Option[]) if (o.long && !o.hidden) shorts.set(o.long, (shorts.get(o.long) ?? new Set()).add(o.short ?? ''));
      c.commands.forEach(walk);
    };
    walk(program);
    for (const [long, short] of [['--data', '-d'], ['--out', '-o'], ['--run-dir', '-r'], ['--model', '-m'], ['--generated', '-g'], ['--expert', '-e']]) {
      expect([...(shorts.get(long) ?? [])], long).toEqual([short]);
    }
  });
});

describe('flag choices', () => {
  it('are the config schema\'s enums', () => {
    const program = buildProgram(() => {});
    const opt = (path: string[], long: string) => {
      const cmd = path.reduce<Command>((c, n) => c.commands.find((s) => s.name() === n) as Command, program);
      return (cmd.options as Option[]).find((o) => o.long === long)?.argChoices;
    };
    expect(opt([], '--backend')).toEqual(RunConfigSchema.shape.backend.unwrap().options);
    expect(opt([], '--precision')).toEqual(RunConfigSchema.shape.precision.unwrap().options);
    expect(opt(['expert', 'train'], '--arch')).toEqual(ExpertConfigSchema.shape.arch.unwrap().options);
    expect(opt(['expert', 'train'], '--pretrained-conv1')).toEqual(ExpertConfigSchema.shape.pretrainedConv1.unwrap().options);
    expect(opt(['train'], '--align-to')).toEqual(AlignmentConfigSchema.shape.alignTo.unwrap().options);
    expect(opt(['train'], '--train-embeddings')).toEqual(DreamBoothConfigSchema.shape.trainEmbeddings.unwrap().options);
    expect(opt(['generate'], '--sampler')).toEqual(GenerateConfigSchema.shape.sampler.unwrap().options);
    expect(opt(['generate'], '--guidance')).toEqual(ExpertGuidanceSchema.shape.kind.unwrap().options);
    expect(opt(['evaluate'], '--real-set')).toEqual(EvaluateConfigSchema.shape.realSet.unwrap().options);
    expect(opt(['utility'], '--arch')).toEqual(UtilityConfigSchema.shape.arch.unwrap().options);
    expect(opt(['generate'], '--sampler')).toContain('dpm-solver++');
  });

  it('choicesOf reads through defaults, optionals and arrays, and refuses a non-enum', () => {
    expect(choicesOf(GenerateConfigSchema.shape.timestepSpacing)).toEqual(['leading', 'trailing', 'linspace']);
    expect(choicesOf(RunConfigSchema.shape.reportTo)).toEqual(['tensorboard']);
    expect(() => choicesOf(RunConfigSchema.shape.threads)).toThrow(/not an enum schema/);
  });
});
