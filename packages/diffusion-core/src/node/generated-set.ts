/**
 * The format of a generated image set (Node only: part of `@fad/diffusion-core/node`), the folder
 * `generateImageSet` writes: `OUT/<class>/s<seed>-<n>.png`, `OUT/manifest.json` (a
 * {@link GeneratedSetManifest}: nothing in it depends on the clock or the machine's speed, so the
 * same settings give it byte for byte) and `OUT/timing.json` (a {@link GeneratedSetTiming}: when,
 * how long, ms per step). The manifest is written last: a folder with one is complete.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BuiltinSchedulerName, DreamBoothRecord } from '@fad/diffusion-core';
import { GenerationRunError, withGenerationFs } from './generation-run-error';

/** `manifest.json`'s `format`. */
export const GENERATED_SET_FORMAT = 'fad-generated/1';
/** `timing.json`'s `format`. */
export const GENERATED_TIMING_FORMAT = 'fad-generated-timing/1';
/** The file names of a generated set. */
export const GENERATED_SET_FILES = { manifest: 'manifest.json', timing: 'timing.json' } as const;

/** One image of a generated set. */
export interface GeneratedImage {
  /** `<class>/s<seed>-<index, 3 digits>.png`, relative to the set's folder. */
  file: string;
  class: string;
  label: number;
  seed: number;
  index: number;
  /** Mean pixel value in [0, 1] (before 8-bit rounding). */
  mean: number;
  matchMean?: 'passed' | 'failed';
  attempts?: number;
}

/** Mean and standard deviation of the per-image mean intensity of one class. */
export interface IntensityStats {
  mean: number;
  std: number;
}

/** The part of a sharded run that a shard's manifest holds. */
export interface GeneratedShardRecord {
  index: number;
  count: number;
  /** Work unit: a batch of a seed, or a whole seed (with matchMean). */
  unit: 'batch' | 'seed';
  /** Units [start, end) of `total`, seed-major. */
  start: number;
  end: number;
  total: number;
  /** The caller's hash of the shard's inputs: a rerun with the same keeps the finished shard. */
  settings: string;
}

/** Mean wall time per denoising step. */
export interface StepTiming {
  /** Denoising steps timed (all batches). */
  steps: number;
  /** Mean ms per step, guidance included. */
  msPerStep: number;
  /** Mean ms per step spent computing the guidance gradient (0 without guidance). */
  guidanceMsPerStep: number;
  /** msPerStep - guidanceMsPerStep: the step without guidance (model, scheduler). */
  unguidedMsPerStep: number;
  /** Images per batch the steps ran on (the last batch may be smaller). */
  batchSize: number;
}

/** `manifest.json` of a generated set. `G` is the guidance record's type, `D` the DreamBooth record's. */
export interface GeneratedSetManifest<G = unknown, D = DreamBoothRecord> {
  format: 'fad-generated/1';
  /** The model file as the caller named it. */
  checkpoint: string;
  checkpointSha256: string;
  classNames: string[];
  generatedClasses: string[];
  sampler: BuiltinSchedulerName;
  /** The sampler's full scheduler config (`toJSON()`, with `_class`); older manifests lack it. */
  samplerConfig?: Record<string, unknown>;
  steps: number;
  guidanceScale: number;
  /** Guidance rescale phi, when set. */
  guidanceRescale?: number;
  eta: number;
  seeds: number[];
  imagesPerClass: number;
  batchSize: number;
  imageSize: number;
  channels: number;
  matchMean: { enabled: boolean; k: number; maxAttempts: number; realStats: Record<string, IntensityStats> } | null;
  /** The caller's record of the gradient guidance, or null without (absent in DreamBooth sets and older manifests). */
  expertGuidance?: G | null;
  /** Manifests written before timing.json held the step timing here; now in timing.json. */
  timing?: StepTiming;
  backend: string;
  /** Manifests written before timing.json held the start time here; now in timing.json. */
  createdAt?: string;
  /** Manifests written before timing.json held the wall time here; now in timing.json. */
  elapsedSeconds?: number;
  images: GeneratedImage[];
  /** The caller's step key. */
  key?: string;
  /** The DreamBooth token the images were sampled with; absent otherwise. */
  dreambooth?: D;
  /** In a shard's manifest only (`OUT/I-of-N/manifest.json`): which part of the run it holds. */
  shard?: GeneratedShardRecord;
}

/** `timing.json`: what depends on the clock and the machine, kept out of the manifest. */
export interface GeneratedSetTiming {
  format: 'fad-generated-timing/1';
  createdAt: string;
  elapsedSeconds: number;
  /** Mean wall time per denoising step; absent for DreamBooth sets. */
  timing?: StepTiming;
  /** After a merge: each shard's own timing.json. */
  shards?: Array<{ shard: string; createdAt: string; elapsedSeconds: number; timing?: StepTiming }>;
}

/** A JSON file's value, or null when it is missing or not JSON. */
export function readJsonFileIfExists<T>(path: string): T | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** A generated set's timing.json, or for sets written before it, the fields of its manifest; null when neither has them. */
export function readGeneratedSetTiming(p: { dir: string }): GeneratedSetTiming | null {
  if (p === null || typeof p !== 'object' || typeof p.dir !== 'string') throw new TypeError(`readGeneratedSetTiming: dir must be a string (the set's folder), got ${JSON.stringify(p?.dir)}`);
  const t = readJsonFileIfExists<GeneratedSetTiming>(join(p.dir, GENERATED_SET_FILES.timing));
  if (t && t.format === GENERATED_TIMING_FORMAT) return t;
  const m = readJsonFileIfExists<GeneratedSetManifest>(join(p.dir, GENERATED_SET_FILES.manifest));
  if (m?.createdAt === undefined || m.elapsedSeconds === undefined) return null;
  return { format: GENERATED_TIMING_FORMAT, createdAt: m.createdAt, elapsedSeconds: m.elapsedSeconds, ...(m.timing ? { timing: m.timing } : {}) };
}

/** The manifest of a finished shard folder (renamed into place only when complete), or null. */
export function readFinishedShard(p: { dir: string }): GeneratedSetManifest | null {
  const m = readJsonFileIfExists<GeneratedSetManifest>(join(p.dir, GENERATED_SET_FILES.manifest));
  return m && m.format === GENERATED_SET_FORMAT && m.shard ? m : null;
}

/**
 * Throws a GenerationRunError `not-replaceable` unless `dir` is a folder holding a manifest.json
 * (a generated set) or empty: what may be replaced without losing anything else.
 */
export function assertReplaceableSet(p: { dir: string }): void {
  const { dir } = p;
  const st = withGenerationFs(dir, 'inspect the output folder', () => statSync(dir));
  if (!st.isDirectory()) throw new GenerationRunError('not-replaceable', `refusing to replace ${dir}: it is a file, not a generated image set`, { path: dir, isFile: true, entries: 0 });
  const entries = withGenerationFs(dir, 'list the output folder', () => readdirSync(dir));
  if (entries.length > 0 && !entries.includes(GENERATED_SET_FILES.manifest)) {
    throw new GenerationRunError('not-replaceable', `refusing to replace ${dir}: it is not a generated image set (no manifest.json) and holds ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`, { path: dir, isFile: false, entries: entries.length });
  }
}
