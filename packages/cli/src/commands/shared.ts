/**
 * What the command files share: the option parsers, the global options of a command, absolute
 * paths, the inputs that `--force` must never delete, and the flag vocabularies taken from the
 * config schema (so a `.choices(...)` list is never written twice).
 */
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { z } from 'zod';
import type { GlobalOptions } from '../context';
import { CliError } from '../errors';
import type { RunInput } from '../safety';

/** What every `register<Name>(program, ctx)` receives. */
export interface CommandContext {
  /** Normal output (tests capture it). */
  out: (s: string) => void;
}

export const int = (name: string, min = 1) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got "${v}"`);
  return n;
};
export const float = (name: string, min = 0) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`${name} must be a number >= ${min}, got "${v}"`);
  return n;
};
export const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
export const intList = (name: string) => (v: string) =>
  list(v).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a comma-separated list of integers >= 0, got "${v}"`);
    return n;
  });
export const collect = (v: string, prev: string[] = []) => [...prev, v];
export const floatList = (name: string) => (v: string) =>
  list(v).map((s) => {
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a comma-separated list of numbers > 0, got "${v}"`);
    return n;
  });
export const namedDir = (v: string, prev: Array<{ name: string; dir: string }> = []) => {
  const eq = v.indexOf('=');
  if (eq <= 0 || eq === v.length - 1) throw new InvalidArgumentError(`--synthetic expects NAME=DIR (a folder written by fad generate), got "${v}"`);
  return [...prev, { name: v.slice(0, eq).trim(), dir: resolve(v.slice(eq + 1).trim()) }];
};

export type Opts = Record<string, unknown> & GlobalOptions;

/** The command's options with the program's global ones (`--config`, `--set`, `--backend`, ...). */
export function globals(cmd: Command): Opts {
  return cmd.optsWithGlobals() as Opts;
}

/** A path flag made absolute (relative to the working directory); undefined when not given. */
export function abs(p: unknown): string | undefined {
  return typeof p === 'string' ? resolve(p) : undefined;
}

export const dataInput = (dir: string | null | undefined): RunInput | null => (dir ? { what: 'the data folder', path: dir } : null);
export const fileInput = (what: string, path: string | null | undefined): RunInput | null => (path ? { what, path } : null);

/**
 * The allowed values of a config key's enum (through `.default`, `.optional`, `.nullable` and
 * arrays), e.g. `choicesOf(ExpertConfigSchema.shape.arch)`: the flag accepts exactly what the
 * config accepts.
 */
export function choicesOf(schema: z.ZodType): string[] {
  let def = schema._zod.def as { type: string; innerType?: z.ZodType; element?: z.ZodType; entries?: Record<string, string> };
  for (let guard = 0; def.type !== 'enum' && guard < 8; guard++) {
    const next = def.innerType ?? def.element;
    if (!next) break;
    def = next._zod.def as typeof def;
  }
  if (def.type !== 'enum' || !def.entries) throw new Error(`choicesOf: not an enum schema (${def.type})`);
  return Object.values(def.entries);
}

/** `--seed <n>`: an integer >= 0 (the config checks the upper bound, naming the key). */
export const seedArg = int('--seed', 0);

/**
 * The config keys `--seed N` sets on `fad experiment` and `fad demo`: every training seed (and the
 * top-level `seed`: the demo's procedural data, the bootstrap of `fad utility`). Not
 * `data.splitSeed`, `generate.seeds` or `diffusion.validation.seed`: the comparison holds the split
 * and the sampling seeds fixed.
 */
export const RUN_SEED_KEYS = ['seed', 'expert.seed', 'diffusion.seed', 'dreambooth.seed'] as const;

/** `{key: seed}` for each key, or `{}` when `--seed` was not given. */
export function seedOverrides(keys: readonly string[], seed: unknown): Record<string, unknown> {
  return seed === undefined ? {} : Object.fromEntries(keys.map((k) => [k, seed]));
}

/** A renamed flag: the old spelling still works, with a one-line deprecation note on stderr. */
export interface RenamedFlag {
  /** The old spelling, e.g. `--steps`. */
  was: string;
  /** The new spelling, e.g. `--train-steps`. */
  now: string;
}

const attribute = (flag: string) => flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Moves the values of deprecated flags to their new names in the parsed options `o`, warning once
 * per flag used; both spellings at once is an error.
 */
export function applyRenamedFlags(o: Record<string, unknown>, renamed: readonly RenamedFlag[], warn: (m: string) => void): void {
  for (const { was, now } of renamed) {
    const [a, b] = [attribute(was), attribute(now)];
    if (o[a] === undefined) continue;
    if (o[b] !== undefined) throw new CliError(`give ${now} only (${was} is its deprecated old name)`);
    warn(`${was} is deprecated; use ${now} (same meaning)`);
    o[b] = o[a];
    delete o[a];
  }
}

/** The hidden option of a deprecated spelling (`--steps <n>`), parsed like the new one. */
export function renamedOption({ was, now }: RenamedFlag, arg: string, parse: (v: string) => unknown): Option {
  return new Option(`${was} <${arg}>`, `deprecated: use ${now}`).argParser(parse).hideHelp();
}
