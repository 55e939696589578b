/**
 * A generation run into a folder (Node only: part of `@fad/diffusion-core/node`): what
 * `fad generate` does, as library functions taking plain params. Images are sampled per class and
 * seed in batches with the given scheduler (one seeded `Generator` per seed, the seed's slots
 * class-major), decoded by the autoencoder for latent models, and written as
 * `OUT/<class>/s<seed>-<n>.png` with `OUT/manifest.json` and `OUT/timing.json` (see
 * generated-set.ts). Everything goes into `OUT.tmp-<pid>` first, renamed into place when complete,
 * so `OUT` never holds a partial set; the same params give a byte-identical manifest and images.
 *
 * Shards (`shard`): the work is the (seed, batch) units of `planSamplingShard` (whole seeds with
 * `matchMean`); a shard samples its contiguous run of units into `OUT/I-of-N/` (same layout, a
 * manifest listing its images and a `shard` record), replaying the generator past the batches of
 * a seed before its first with `skipSamplingDraws`, so its images are those an unsharded run
 * makes. `prepareGeneratedSet` keeps a finished shard of the same model and settings;
 * `mergeGeneratedShards` assembles the unsharded set.
 *
 * `matchMean` (optional): an image is kept when |mean(image) - m_c| <= k * s_c (m_c, s_c: the
 * mean and standard deviation over the real images of class c of their mean intensity, see
 * `classIntensityStats`); rejected images are replaced by new draws from the same seeded stream,
 * up to `maxAttempts` rounds; slots still unfilled keep their last candidate, flagged `failed`.
 * It biases every metric computed on the result: it removes what the model actually produces.
 *
 * `guidance` (optional): a gradient guidance function on the sampler's x_t, with the record the
 * manifest keeps (`expertGuidance`); with `twoStage` (DDIM only), each batch is sampled unguided,
 * inverted and decoded with guidance (`sampleTwoStage`). `dreambooth`: every image is conditioned on
 * the token's label but filed and recorded as its class.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  type AutoencoderKL,
  BUILTIN_SCHEDULER_NAMES,
  type BuiltinSchedulerName,
  DDIMScheduler,
  type DreamBoothRecord,
  Generator,
  type GuidanceFn,
  type NoiseScheduler,
  planSamplingShard,
  sampleImages,
  sampleTwoStage,
  shardName,
  type ShardSpec,
  skipSamplingDraws,
  type UNet2DConditional,
} from '@fad/diffusion-core';
import { countNonFinite } from './class-intensity-stats';
import {
  assertReplaceableSet,
  GENERATED_SET_FILES,
  GENERATED_SET_FORMAT,
  GENERATED_TIMING_FORMAT,
  type GeneratedImage,
  type GeneratedSetManifest,
  type GeneratedSetTiming,
  type IntensityStats,
  readFinishedShard,
} from './generated-set';
import { GenerationRunError, generationFsError, withGenerationFs } from './generation-run-error';
import { mapLimit } from './map-limit';
import { pathInside } from './output-folder';
import { writeFileAtomicSync } from './write-file-atomic';
import { writePngFile } from './write-png-file';
import { failParam as fail, isIntAtLeast as isInt } from './param-check';

function checkShard(fn: string, shard: unknown): void {
  if (shard === undefined || shard === null) return;
  const s = shard as ShardSpec;
  if (typeof s !== 'object' || !isInt(s.count, 1) || !isInt(s.index, 0) || s.index >= s.count) fail(fn, 'shard', 'null or { index, count } with 0 <= index < count', shard);
}

/** The folder a run writes: `out`, or `out/<I>-of-<N>` for a shard. */
export function generatedSetDir(p: { out: string; shard?: ShardSpec | null }): string {
  return p.shard ? join(resolve(p.out), shardName(p.shard)) : resolve(p.out);
}

/** Parameters of {@link prepareGeneratedSet}. */
export interface PrepareGeneratedSetParams {
  /** The output folder (for a shard: the folder shared by all shards). */
  out: string;
  shard?: ShardSpec | null;
  /** Replace an existing set (or a finished shard) instead of refusing (or reusing) it. */
  force?: boolean;
  /** sha256 of the model file, compared with a finished shard's (null: the file is missing). */
  checkpointSha256?: string | null;
  /** The caller's hash of the run's settings, compared with a finished shard's `shard.settings`. */
  settings?: string;
}

/** What {@link prepareGeneratedSet} decided: a finished shard of the same run is kept. */
export type PreparedGeneratedSet = { action: 'reuse'; dir: string; manifest: GeneratedSetManifest } | { action: 'start'; dir: string };

/**
 * Decides whether a run writes its set (`start`) or a finished shard of the same model and settings
 * is kept (`reuse`); creates the shards folder.
 * @throws GenerationRunError `exists` (an unsharded output that exists, without `force`),
 *   `foreign-shard` (a finished shard of another model or settings, without `force`), `fs`.
 */
export function prepareGeneratedSet(p: PrepareGeneratedSetParams): PreparedGeneratedSet {
  const fn = 'prepareGeneratedSet';
  if (p === null || typeof p !== 'object') fail(fn, 'params', 'one params object', p, TypeError);
  if (typeof p.out !== 'string' || p.out.length === 0) fail(fn, 'out', 'a non-empty string (the output folder)', p.out, TypeError);
  checkShard(fn, p.shard);
  if (p.force !== undefined && typeof p.force !== 'boolean') fail(fn, 'force', 'a boolean', p.force, TypeError);
  const shard = p.shard ?? null;
  const dir = generatedSetDir({ out: p.out, shard });
  if (shard) {
    const done = readFinishedShard({ dir });
    if (done && !p.force) {
      if (done.checkpointSha256 === (p.checkpointSha256 ?? null) && done.shard?.settings === p.settings) return { action: 'reuse', dir, manifest: done };
      throw new GenerationRunError('foreign-shard', `${dir} holds shard ${shardName(shard)} of another run (another model or settings)`, { path: dir, shard: shardName(shard) });
    }
    withGenerationFs(dirname(dir), 'create the shards folder', () => mkdirSync(dirname(dir), { recursive: true }));
  }
  if (existsSync(dir) && !p.force && !shard) throw new GenerationRunError('exists', `${p.out} already exists`, { path: dir, out: p.out });
  return { action: 'start', dir };
}

/** Gradient guidance of a run: the function and the record the manifest keeps. */
export interface GenerationGuidance {
  fn: GuidanceFn;
  /** Sample unguided, invert with DDIM and decode with guidance (needs a DDIMScheduler). */
  twoStage?: boolean;
  /** Written to the manifest as `expertGuidance` (a JSON object). */
  record: object;
}

/** Parameters of {@link generateImageSet}. */
export interface GenerateImageSetParams {
  /** The trained U-Net (the caller owns and disposes it). */
  model: UNet2DConditional;
  /** Latent models: the autoencoder decoding the samples (the caller owns it). */
  autoencoder?: AutoencoderKL | null;
  /** The sampler's scheduler, configured with the model's training noise schedule. */
  scheduler: NoiseScheduler;
  /** The scheduler's name, recorded in the manifest (`eta` applies to `ddim` only). */
  sampler: BuiltinSchedulerName;
  /** The model's class names (label k is `classNames[k]`). */
  classNames: readonly string[];
  /** The classes to generate (default all). */
  classes?: readonly string[] | null;
  seeds: readonly number[];
  imagesPerClass: number;
  batchSize: number;
  /** Denoising steps. */
  steps: number;
  guidanceScale: number;
  guidanceRescale?: number;
  /** DDIM eta (recorded for every sampler; default 0). */
  eta?: number;
  /** The mean-intensity filter, with the real images' statistics per class (`classIntensityStats`). */
  matchMean?: { k: number; maxAttempts: number; realStats: Record<string, IntensityStats> } | null;
  guidance?: GenerationGuidance | null;
  /** Sample every image with this DreamBooth token (only `classes: [record.class]`, no guidance or matchMean). */
  dreambooth?: DreamBoothRecord | null;
  /** The output folder (for a shard: the folder shared by all shards). */
  out: string;
  /** Replace an existing set. */
  force?: boolean;
  shard?: ShardSpec | null;
  /** Recorded in a shard's manifest (`shard.settings`), see `prepareGeneratedSet`. */
  shardSettings?: string;
  /** The model file's name as recorded in the manifest, and its sha256. */
  checkpoint: string;
  checkpointSha256: string;
  /** Recorded in the manifest (default `tf.getBackend()`). */
  backend?: string;
  /** Recorded in the manifest (a step key). */
  key?: string;
  /** Before sampling: how many images this run (or shard) makes. */
  onStart?: (p: { total: number }) => void;
  /** After each batch (and each seed's writes): images done of `total`. */
  onProgress?: (p: { done: number; total: number; seed: number }) => void;
}

/** What {@link generateImageSet} wrote. */
export interface GenerateImageSetResult {
  /** The folder written (`out`, or the shard's folder). */
  dir: string;
  manifest: GeneratedSetManifest;
  timing: GeneratedSetTiming;
}

function checkParams(p: GenerateImageSetParams): void {
  const fn = 'generateImageSet';
  if (p === null || typeof p !== 'object') fail(fn, 'params', 'one params object', p, TypeError);
  if (!p.model || typeof p.model !== 'object' || !p.model.config) fail(fn, 'model', 'a UNet2DConditional', typeof p.model, TypeError);
  if (!p.scheduler || typeof (p.scheduler as { setTimesteps?: unknown }).setTimesteps !== 'function') fail(fn, 'scheduler', 'a noise scheduler', typeof p.scheduler, TypeError);
  if (!(BUILTIN_SCHEDULER_NAMES as readonly string[]).includes(p.sampler)) fail(fn, 'sampler', `one of ${BUILTIN_SCHEDULER_NAMES.join(', ')}`, p.sampler);
  if (!Array.isArray(p.classNames) || p.classNames.length === 0 || !p.classNames.every((c) => typeof c === 'string')) fail(fn, 'classNames', 'a non-empty array of strings', p.classNames, TypeError);
  if (p.classes !== undefined && p.classes !== null && (!Array.isArray(p.classes) || p.classes.length === 0 || !p.classes.every((c) => typeof c === 'string'))) fail(fn, 'classes', 'null or a non-empty array of class names', p.classes, TypeError);
  if (!Array.isArray(p.seeds) || p.seeds.length === 0 || !p.seeds.every((s) => Number.isInteger(s))) fail(fn, 'seeds', 'a non-empty array of integers', p.seeds);
  if (!isInt(p.imagesPerClass, 1)) fail(fn, 'imagesPerClass', 'an integer >= 1', p.imagesPerClass);
  if (!isInt(p.batchSize, 1)) fail(fn, 'batchSize', 'an integer >= 1', p.batchSize);
  if (!isInt(p.steps, 1)) fail(fn, 'steps', 'an integer >= 1', p.steps);
  if (typeof p.guidanceScale !== 'number' || !Number.isFinite(p.guidanceScale)) fail(fn, 'guidanceScale', 'a finite number', p.guidanceScale);
  if (p.guidanceRescale !== undefined && (typeof p.guidanceRescale !== 'number' || !Number.isFinite(p.guidanceRescale))) fail(fn, 'guidanceRescale', 'a finite number', p.guidanceRescale);
  if (p.eta !== undefined && (typeof p.eta !== 'number' || !Number.isFinite(p.eta) || p.eta < 0)) fail(fn, 'eta', 'a number >= 0', p.eta);
  if (p.matchMean) {
    const m = p.matchMean;
    if (typeof m.k !== 'number' || !(m.k > 0)) fail(fn, 'matchMean.k', 'a number > 0', m.k);
    if (!isInt(m.maxAttempts, 1)) fail(fn, 'matchMean.maxAttempts', 'an integer >= 1', m.maxAttempts);
    if (!m.realStats || typeof m.realStats !== 'object') fail(fn, 'matchMean.realStats', 'an object of { mean, std } per class', m.realStats, TypeError);
    for (const c of p.classes ?? p.classNames) {
      const s = m.realStats[c];
      if (!s || !Number.isFinite(s.mean) || !Number.isFinite(s.std)) fail(fn, `matchMean.realStats[${JSON.stringify(c)}]`, 'a { mean, std } of finite numbers', s);
    }
  }
  if (p.guidance) {
    if (typeof p.guidance.fn !== 'function') fail(fn, 'guidance.fn', 'a GuidanceFn', typeof p.guidance.fn, TypeError);
    if (!p.guidance.record || typeof p.guidance.record !== 'object') fail(fn, 'guidance.record', 'an object (the manifest\'s expertGuidance)', p.guidance.record, TypeError);
    if (p.guidance.twoStage && !(p.scheduler instanceof DDIMScheduler)) fail(fn, 'guidance.twoStage', 'false unless scheduler is a DDIMScheduler (it inverts with DDIM)', p.guidance.twoStage);
  }
  if (p.dreambooth) {
    const d = p.dreambooth;
    if (!isInt(d.tokenLabel, 0) || typeof d.class !== 'string') fail(fn, 'dreambooth', 'null or a DreamBoothRecord ({ class, classLabel, token, tokenLabel })', d);
    if (p.guidance || p.matchMean) fail(fn, 'dreambooth', 'null when guidance or matchMean is set', d);
  }
  if (typeof p.out !== 'string' || p.out.length === 0) fail(fn, 'out', 'a non-empty string (the output folder)', p.out, TypeError);
  checkShard(fn, p.shard);
  if (p.shard && p.dreambooth) fail(fn, 'shard', 'null for DreamBooth sets (they are not sharded)', p.shard);
  if (typeof p.checkpoint !== 'string') fail(fn, 'checkpoint', 'a string (the model file, recorded in the manifest)', p.checkpoint, TypeError);
  if (typeof p.checkpointSha256 !== 'string') fail(fn, 'checkpointSha256', 'a string (the model file\'s sha256)', p.checkpointSha256, TypeError);
  for (const k of ['force'] as const) if (p[k] !== undefined && typeof p[k] !== 'boolean') fail(fn, k, 'a boolean', p[k], TypeError);
}

/**
 * Samples the images and writes the set (see the file comment). An existing output is replaced only
 * with `force`, and only when it is a generated set or empty.
 * @throws GenerationRunError `exists`, `not-replaceable`, `unknown-class`, `outside-folder`,
 *   `non-finite` (nothing written), `fs`.
 */
export async function generateImageSet(p: GenerateImageSetParams): Promise<GenerateImageSetResult> {
  checkParams(p);
  const { model, scheduler } = p;
  const autoencoder = p.autoencoder ?? null;
  const shard = p.shard ?? null;
  const token = p.dreambooth ?? null;
  const out = generatedSetDir({ out: p.out, shard });
  if (existsSync(out)) {
    // A shard folder without a finished manifest is what a killed shard left: replaced.
    if (!p.force && !shard) throw new GenerationRunError('exists', `${p.out} already exists`, { path: out, out: p.out });
    assertReplaceableSet({ dir: out });
  }
  const classNames = [...p.classNames];
  const wanted = token ? [token.class] : [...(p.classes ?? classNames)];
  const matchMean = p.matchMean ?? null;
  const guidance = p.guidance ?? null;
  const eta = p.eta ?? 0;
  const t0 = Date.now();
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    const labels = wanted.map((c) => {
      const k = classNames.indexOf(c);
      if (k < 0) throw new GenerationRunError('unknown-class', `class "${c}" is not one of the model's classes (${classNames.join(', ')})`, { class: c, classNames });
      return k;
    });
    const timing = { steps: 0, ms: 0, guidanceMs: 0 };
    const onStep = (s: { stepMs?: number; guidanceMs?: number }) => {
      if (s.stepMs === undefined) return; // inversion steps
      timing.steps++;
      timing.ms += s.stepMs;
      timing.guidanceMs += s.guidanceMs ?? 0;
    };
    // Class names come from the model file: each folder must stay inside the output folder.
    for (const c of wanted) {
      const d = pathInside({ root: tmp, path: c, what: `the class name ${JSON.stringify(c)} of the model ${p.checkpoint}` });
      withGenerationFs(d, 'create the folder', () => mkdirSync(d, { recursive: true }));
    }
    const size = autoencoder ? model.config.sampleSize * autoencoder.downsamplingFactor : model.config.sampleSize;
    const channels = autoencoder ? autoencoder.config.outChannels : model.config.inChannels;
    const per = size * size * channels;
    const images: GeneratedImage[] = [];
    // The (seed, batch) units of this shard (all of them unsharded); matchMean redraws depend on earlier batches: whole seeds.
    const slotsPerSeed = labels.length * p.imagesPerClass;
    const plan = planSamplingShard({ seeds: [...p.seeds], imagesPerSeed: slotsPerSeed, batchSize: p.batchSize, wholeSeeds: matchMean !== null, shard });
    const total = plan.seeds.reduce((a, s) => a + Math.min(slotsPerSeed, s.endBatch * p.batchSize) - s.firstBatch * p.batchSize, 0);
    p.onStart?.({ total });
    const samplerEta = p.sampler === 'ddim' ? eta : undefined;
    for (const { seed, firstBatch, endBatch } of plan.seeds) {
      const g = new Generator(seed);
      // Slots of the seed, one per (class, index); this shard fills those of batches [firstBatch, endBatch).
      const slots = labels.flatMap((label) => Array.from({ length: p.imagesPerClass }, (_, index) => ({ label, index, attempts: 0 })));
      // Move the generator past the batches before this shard's first, as if they had been sampled.
      for (let b = 0; b < firstBatch; b++) {
        const n = Math.min(p.batchSize, slotsPerSeed - b * p.batchSize);
        skipSamplingDraws({ scheduler, shape: [n, model.config.sampleSize, model.config.sampleSize, model.config.inChannels], numInferenceSteps: p.steps, eta: samplerEta, generator: g });
      }
      const mine = slots.slice(firstBatch * p.batchSize, endBatch * p.batchSize);
      let pending = mine;
      const last = new Map<string, { px: Float32Array; mean: number; attempts: number }>();
      const rounds = matchMean ? matchMean.maxAttempts : 1;
      for (let round = 0; round < rounds && pending.length > 0; round++) {
        const stillPending: typeof pending = [];
        for (let s = 0; s < pending.length; s += p.batchSize) {
          const chunk = pending.slice(s, s + p.batchSize);
          const sampleParams = {
            model,
            classLabels: chunk.map((c) => token?.tokenLabel ?? c.label),
            numInferenceSteps: p.steps,
            guidanceScale: p.guidanceScale,
            ...(p.guidanceRescale !== undefined ? { guidanceRescale: p.guidanceRescale } : {}),
            eta: samplerEta,
            generator: g,
            ...(autoencoder ? { autoencoder } : {}),
            onProgress: onStep,
          };
          let x: tf.Tensor4D;
          if (guidance?.twoStage) {
            const r = await sampleTwoStage({ ...sampleParams, scheduler: scheduler as DDIMScheduler, guidance: guidance.fn });
            r.unguided.dispose();
            x = r.images;
          } else {
            x = await sampleImages({ ...sampleParams, scheduler, guidance: guidance?.fn });
          }
          const px = x.dataSync() as Float32Array;
          x.dispose();
          const bad = countNonFinite(px);
          if (bad > 0) {
            throw new GenerationRunError('non-finite', `the model ${p.checkpoint} generated non-finite samples (${bad} of ${px.length} values NaN or infinite, seed ${seed}); nothing was written`, { checkpoint: p.checkpoint, bad, total: px.length, seed });
          }
          chunk.forEach((slot, i) => {
            const v = px.slice(i * per, (i + 1) * per);
            let m = 0;
            for (let j = 0; j < per; j++) m += v[j];
            m /= per;
            slot.attempts++;
            const cls = classNames[slot.label];
            const ok = !matchMean || Math.abs(m - matchMean.realStats[cls].mean) <= matchMean.k * matchMean.realStats[cls].std;
            last.set(`${slot.label}:${slot.index}`, { px: v, mean: m, attempts: slot.attempts });
            if (!ok) stillPending.push(slot);
          });
          if (round === 0) p.onProgress?.({ done: images.length + Math.min(pending.length, s + chunk.length), total, seed });
        }
        pending = stillPending;
      }
      const failed = new Set(pending.map((x) => `${x.label}:${x.index}`));
      const writes: Array<() => Promise<void>> = [];
      for (const { label, index } of mine) {
        const r = last.get(`${label}:${index}`)!;
        const cls = classNames[label];
        const file = `${cls}/s${seed}-${String(index).padStart(3, '0')}.png`;
        images.push({
          file, class: cls, label, seed, index, mean: r.mean,
          ...(matchMean ? { matchMean: failed.has(`${label}:${index}`) ? ('failed' as const) : ('passed' as const), attempts: r.attempts } : {}),
        });
        const target = pathInside({ root: tmp, path: file, what: `the class name ${JSON.stringify(cls)} of the model ${p.checkpoint}` });
        writes.push(async () => {
          try {
            await writePngFile({ path: target, pixels: r.px, size, channels: channels as 1 | 3 });
          } catch (e) {
            throw generationFsError(e, target, 'write the image');
          }
        });
      }
      await mapLimit(writes, 8, (w) => w());
      p.onProgress?.({ done: images.length, total, seed });
    }
    const manifest: GeneratedSetManifest = {
      format: GENERATED_SET_FORMAT,
      checkpoint: p.checkpoint,
      checkpointSha256: p.checkpointSha256,
      classNames,
      generatedClasses: wanted,
      sampler: p.sampler,
      samplerConfig: scheduler.toJSON() as unknown as Record<string, unknown>,
      steps: p.steps,
      guidanceScale: p.guidanceScale,
      ...(p.guidanceRescale !== undefined ? { guidanceRescale: p.guidanceRescale } : {}),
      eta,
      seeds: [...p.seeds],
      imagesPerClass: p.imagesPerClass,
      batchSize: p.batchSize,
      imageSize: size,
      channels,
      matchMean: matchMean ? { enabled: true, k: matchMean.k, maxAttempts: matchMean.maxAttempts, realStats: matchMean.realStats } : null,
      ...(token ? {} : { expertGuidance: guidance ? guidance.record : null }),
      backend: p.backend ?? tf.getBackend(),
      images,
      ...(token ? { dreambooth: token } : {}),
      ...(p.key ? { key: p.key } : {}),
      ...(shard ? { shard: { index: shard.index, count: shard.count, unit: plan.unit, start: plan.start, end: plan.end, total: plan.total, settings: p.shardSettings ?? '' } } : {}),
    };
    const timingRecord: GeneratedSetTiming = {
      format: GENERATED_TIMING_FORMAT,
      createdAt: new Date(t0).toISOString(),
      elapsedSeconds: (Date.now() - t0) / 1000,
      ...(token ? {} : {
        timing: {
          steps: timing.steps,
          msPerStep: timing.ms / Math.max(1, timing.steps),
          guidanceMsPerStep: timing.guidanceMs / Math.max(1, timing.steps),
          unguidedMsPerStep: (timing.ms - timing.guidanceMs) / Math.max(1, timing.steps),
          batchSize: p.batchSize,
        },
      }),
    };
    writeJson(join(tmp, GENERATED_SET_FILES.timing), timingRecord, 'the timing record');
    // The manifest last: a folder with a manifest is complete.
    writeJson(join(tmp, GENERATED_SET_FILES.manifest), manifest, 'the manifest');
    if (existsSync(out)) withGenerationFs(out, 'replace the output folder', () => rmSync(out, { recursive: true, force: true }));
    withGenerationFs(out, 'move the generated images into', () => renameSync(tmp, out));
    return { dir: out, manifest, timing: timingRecord };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Writes JSON (2-space indent, final newline) atomically; a file system error is a GenerationRunError `fs` naming `what`. */
export function writeJson(path: string, value: unknown, what: string): void {
  withGenerationFs(path, `write ${what}`, () => writeFileAtomicSync(path, `${JSON.stringify(value, null, 2)}\n`));
}

/** The prefix of the temp folders of a run writing `dir` (`<dir>.tmp-<pid>`), in its parent folder. */
export function generatedSetTempPrefix(dir: string): string {
  return `${basename(dir)}.tmp-`;
}
