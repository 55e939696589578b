/**
 * What every command shares: the effective config (defaults < YAML file < --set < flags), the
 * backend, the data set with its saved train/validation split, logging.
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import YAML from 'yaml';
import { selectBackend } from '@fad/diffusion-core/backend';
import { type FadConfig, type FadConfigInput, mergeConfig, parseConfig, readConfigFile, setPath } from './config';
import { stratifiedSplit } from '@fad/expert-models';
import { type DataSplit, type LoadedDataset, loadDataset } from './data';
import { CliError } from './errors';
import { readJsonIfExists, writeJsonAtomic } from './fsutil';
import { Progress } from './progress';

export interface GlobalOptions {
  config?: string;
  backend?: string;
  precision?: string;
  reportTo?: string;
  set?: string[];
  debug?: boolean;
  quiet?: boolean;
}

export interface Logger {
  info: (m: string) => void;
  warn: (m: string) => void;
  quiet: boolean;
}

export function makeLogger(quiet = false): Logger {
  return {
    info: (m) => {
      if (!quiet) process.stderr.write(`${m}\n`);
    },
    warn: (m) => process.stderr.write(`fad: warning: ${m}\n`),
    quiet,
  };
}

/** Parses `--set a.b=value` (value is YAML: numbers, booleans, lists, null). */
export function parseSet(items: string[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of items ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new CliError(`--set expects key.path=value, got ${JSON.stringify(item)}`);
    let value: unknown;
    try {
      value = YAML.parse(item.slice(eq + 1));
    } catch {
      value = item.slice(eq + 1);
    }
    setPath(out, item.slice(0, eq).trim(), value);
  }
  return out;
}

/**
 * The effective config: defaults, then the YAML file (its relative paths resolved against its own
 * folder), then `--set` items, then the command's flags (`overrides`, paths already absolute).
 */
export function effectiveConfig(opts: GlobalOptions, overrides: Record<string, unknown> = {}, base: FadConfigInput = {}): FadConfig {
  let input: FadConfigInput = base;
  if (opts.config) {
    const file = readConfigFile(opts.config);
    const dir = dirname(resolve(opts.config));
    const rel = (p: unknown) => (typeof p === 'string' && !isAbsolute(p) ? join(dir, p) : p);
    const f = file as { data?: { dir?: unknown }; expert?: { checkpoint?: unknown; pretrained?: unknown }; generate?: { expertGuidance?: { expert?: unknown } }; diffusion?: { validation?: { judge?: unknown }; autoencoder?: unknown; pretrainedDiffusers?: unknown } };
    if (f.data?.dir) f.data.dir = rel(f.data.dir);
    if (f.expert?.checkpoint) f.expert.checkpoint = rel(f.expert.checkpoint);
    if (f.expert?.pretrained) f.expert.pretrained = rel(f.expert.pretrained);
    if (f.generate?.expertGuidance?.expert) f.generate.expertGuidance.expert = rel(f.generate.expertGuidance.expert);
    if (f.diffusion?.validation?.judge) f.diffusion.validation.judge = rel(f.diffusion.validation.judge);
    if (f.diffusion?.autoencoder) f.diffusion.autoencoder = rel(f.diffusion.autoencoder);
    if (f.diffusion?.pretrainedDiffusers) f.diffusion.pretrainedDiffusers = rel(f.diffusion.pretrainedDiffusers);
    input = mergeConfig(input, file);
  }
  input = mergeConfig(input, parseSet(opts.set));
  const flat: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) setPath(flat, k, v);
  input = mergeConfig(input, flat);
  if (opts.backend !== undefined) input = mergeConfig(input, { run: { backend: opts.backend } });
  if (opts.precision !== undefined) input = mergeConfig(input, { run: { precision: opts.precision } });
  if (opts.reportTo !== undefined) input = mergeConfig(input, { run: { reportTo: parseReportTo(opts.reportTo) } });
  return parseConfig(input, opts.config ? `config ${opts.config} (with flags)` : 'config');
}

/** `--report-to`: `none`, or a comma-separated list of `run.reportTo` values (`tensorboard`). */
export function parseReportTo(value: string): string[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 1 && items[0] === 'none') return [];
  if (items.length === 0 || items.includes('none')) throw new CliError(`--report-to expects none or a comma-separated list of: tensorboard; got ${JSON.stringify(value)}`);
  return items; // the config schema names unknown values
}

/** Selects the backend named in the config (`--backend` overrides), reports it, returns its name. */
export async function initBackend(cfg: FadConfig, log: Logger): Promise<string> {
  // PROD silences tfjs' console advice (e.g. "install tfjs-node") and skips debug-only checks.
  tf.env().set('PROD', true);
  const r = await selectBackend({ preferred: cfg.run.backend, threads: cfg.run.threads ?? undefined, log: (m) => log.info(m) });
  if (cfg.run.precision === 'bf16') {
    if (r.name !== 'native') {
      throw new CliError(`run.precision bf16 needs the native backend (@fad/tfjs-native), but the backend is "${r.name}"; use --backend native or run.precision: fp32`);
    }
    const { setNativePrecision } = await import('@fad/tfjs-native');
    setNativePrecision('bf16'); // throws, saying why, on a CPU without AVX512-BF16
    log.info('fad: native backend precision bf16 (bf16 convolutions and matmuls, fp32 accumulation and weights)');
  }
  return r.name;
}

export interface DataWithSplit {
  dataset: LoadedDataset;
  split: DataSplit;
}

/**
 * Loads the data and its split. With `runDir`, the split is saved as `runDir/split.json` (with the
 * data fingerprint) and reused while the data and split settings are unchanged.
 */
export async function loadDataAndSplit(cfg: FadConfig, log: Logger, runDir?: string): Promise<DataWithSplit> {
  let progress: Progress | null = null;
  const dataset = await loadDataset(cfg.data, {
    warn: log.warn,
    onProgress: (done, total) => {
      if (total < 200) return;
      progress ??= new Progress({ label: 'read images', total, quiet: log.quiet });
      progress.update(done);
    },
  });
  if (dataset.skipped.length) log.warn(`${dataset.skipped.length} bad file(s) skipped (data.onBadFile: skip); they are listed in split.json`);
  log.info(`fad: data ${cfg.data.dir}: ${dataset.files.length} images of ${dataset.classNames.length} classes (${dataset.classNames.join(', ')}), ${dataset.sourceSize} resized to ${cfg.data.imageSize}x${cfg.data.imageSize} (${cfg.data.resize}), ${cfg.data.channels === 1 ? 'grayscale' : 'RGB'}`);
  const want = { fingerprint: dataset.fingerprint, seed: cfg.data.splitSeed, validationFraction: cfg.data.validationFraction };
  const path = runDir ? join(runDir, 'split.json') : null;
  if (path && existsSync(path)) {
    const saved = readJsonIfExists<DataSplit & { fingerprint: string }>(path);
    if (saved && saved.fingerprint === want.fingerprint && saved.seed === want.seed && saved.validationFraction === want.validationFraction) {
      return { dataset, split: saved };
    }
  }
  // Seeded and stratified: each class shuffled on its own, round(n * fraction) held out, at least
  // one image on each side for classes of two or more (@fad/expert-models' stratifiedSplit).
  const split: DataSplit = {
    seed: cfg.data.splitSeed,
    validationFraction: cfg.data.validationFraction,
    ...stratifiedSplit({ labels: dataset.labels, validationFraction: cfg.data.validationFraction, seed: cfg.data.splitSeed }),
  };
  if (path) {
    writeJsonAtomic(path, {
      ...want,
      ...split,
      classNames: dataset.classNames,
      files: dataset.files,
      labels: Array.from(dataset.labels),
      skipped: dataset.skipped,
    });
  }
  return { dataset, split };
}
