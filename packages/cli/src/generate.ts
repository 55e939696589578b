/**
 * Sampling images per class from a trained U-Net into `OUT/<class>/s<seed>-<n>.png`, with
 * `OUT/manifest.json` (seeds, sampler, steps, guidance, checkpoint sha256, one entry per image) and
 * `OUT/timing.json` (when, how long, ms per step). The manifest holds nothing that depends on the
 * clock or the run, so the same command gives a byte-identical manifest and images every time;
 * wall times are in timing.json only. Images are written into `OUT.tmp-<pid>` and renamed into
 * place when all are written, so `OUT` never holds a partial set.
 *
 * Shards (`job.shard`, `fad generate --shard I/N`): the work is the (seed, batch) units of
 * @fad/diffusion-core's `planSamplingShard` (whole seeds with matchMean); shard I samples its
 * contiguous run of units into `OUT/I-of-N/` (same layout, a manifest listing its images and a
 * `shard` record), replaying the generator past the batches of a seed before its first with
 * `skipSamplingDraws`, so its images are those an unsharded run makes. A finished shard is kept
 * when run again with the same model and settings; a killed one leaves only `OUT/I-of-N.tmp-<pid>`.
 * `mergeGeneratedShards` (fad merge) checks the shards and assembles the unsharded result.
 *
 * Optional `matchMean` filter (off by default): the reference implementation kept only generated
 * images whose mean intensity was close to the real class's; here an image is kept when
 * |mean(image) - m_c| <= k * s_c, where m_c and s_c are the mean and standard deviation over the
 * real images of class c of their mean intensity. Rejected images are replaced by new draws (from the
 * same seeded stream) up to `maxAttempts` rounds; slots still unfilled keep their last candidate,
 * flagged `matchMean: "failed"` in the manifest. This filter biases every metric computed on the
 * result (accuracy, diversity, FD/KID): it removes what the model actually produces.
 *
 * Optional expert guidance (`gen.expertGuidance`): @fad/expert-models' `expertGuidance` on the
 * sampler's x_t (model space [-1, 1], what `fad train` uses, mapped to the expert's [0, 1]);
 * classifier guidance targets each image's class, matched to the expert's classes by name; with
 * `twoStage`, each batch is sampled unguided, DDIM-inverted and decoded with guidance. The manifest
 * records the guidance and the mean time per denoising step, with the part spent in guidance.
 *
 * With `dreamBoothToken` (`generateDreamBooth`), the images are sampled with the checkpoint's
 * DreamBooth token and filed and recorded as the token's class.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  type AutoencoderKL, type BuiltinSchedulerName, checkShardSet, DDIMScheduler, Generator, type GuidanceFn, parseShardName, planSamplingShard, sampleImages, sampleTwoStage,
  type ShardPart, shardName, ShardSetError, type ShardSpec, skipSamplingDraws,
} from '@fad/diffusion-core';
import { expertGuidance } from '@fad/expert-models';
import sharp from 'sharp';
import type { GenerateSection } from './config';
import { CliError, DivergenceError, fsError, withFs } from './errors';
import { mapLimit } from './data';
import { makeScheduler } from './diffusion';
import { type LoadedExpertModel, loadExpertModel } from './expert';
import { readJsonIfExists, sha256, sha256File, stableStringify, writeJsonAtomic } from './fsutil';
import { type DreamBoothInfo, type LoadedModelFile, loadModelFile } from './model-files';
import { assertNotDeletingInputs, pathInside, type RunInput, removeStaleTemps } from './safety';
import { Progress } from './progress';

export interface GeneratedImage {
  file: string;
  class: string;
  label: number;
  seed: number;
  index: number;
  mean: number;
  matchMean?: 'passed' | 'failed';
  attempts?: number;
}

export interface GenerateManifest {
  format: 'fad-generated/1';
  checkpoint: string;
  checkpointSha256: string;
  classNames: string[];
  generatedClasses: string[];
  sampler: BuiltinSchedulerName;
  /** The sampler's full scheduler config (`toJSON()`, with `_class`); older manifests lack it. */
  samplerConfig?: Record<string, unknown>;
  steps: number;
  guidanceScale: number;
  /** Guidance rescale phi, when set (generate.guidanceRescale). */
  guidanceRescale?: number;
  eta: number;
  seeds: number[];
  imagesPerClass: number;
  batchSize: number;
  imageSize: number;
  channels: number;
  matchMean: (GenerateSection['matchMean'] & { realStats: Record<string, { mean: number; std: number }> }) | null;
  /** Expert guidance, or null without (older manifests lack the field). */
  expertGuidance?: ExpertGuidanceRecord | null;
  /** Manifests written before timing.json held the step timing here; now in timing.json. */
  timing?: StepTiming;
  backend: string;
  /** Manifests written before timing.json held the start time here; now in timing.json. */
  createdAt?: string;
  /** Manifests written before timing.json held the wall time here; now in timing.json. */
  elapsedSeconds?: number;
  images: GeneratedImage[];
  /** Step key (experiments reuse a set whose key matches). */
  key?: string;
  /** The DreamBooth token the images were sampled with (generateDreamBooth); absent otherwise. */
  dreambooth?: DreamBoothInfo;
  /** In a shard's manifest only (`OUT/I-of-N/manifest.json`): which part of the run it holds. */
  shard?: GenerateShardRecord;
}

/** The part of a sharded run that a shard's manifest holds. */
export interface GenerateShardRecord {
  index: number;
  count: number;
  /** Work unit: a batch of a seed, or a whole seed (with matchMean). */
  unit: 'batch' | 'seed';
  /** Units [start, end) of `total`, seed-major. */
  start: number;
  end: number;
  total: number;
  /** Hash of the shard's inputs (model path, generate settings, backend...): a rerun with the same keeps the finished shard. */
  settings: string;
}

/** `OUT/timing.json`: what depends on the clock and the machine, kept out of the manifest. Not part of the reproducible result. */
export interface GenerateTiming {
  format: 'fad-generated-timing/1';
  createdAt: string;
  elapsedSeconds: number;
  /** Mean wall time per denoising step (sampling steps of every batch; two-stage: both sampling stages); absent for DreamBooth sets. */
  timing?: StepTiming;
  /** After fad merge: each shard's own timing.json. */
  shards?: Array<{ shard: string; createdAt: string; elapsedSeconds: number; timing?: StepTiming }>;
}

export const TIMING_FILE = 'timing.json';

/** A generated set's timing.json, or for sets written before it, the fields of its manifest; null when neither has them. */
export function readGenerateTiming(dir: string): GenerateTiming | null {
  const t = readJsonIfExists<GenerateTiming>(join(dir, TIMING_FILE));
  if (t && t.format === 'fad-generated-timing/1') return t;
  const m = readJsonIfExists<GenerateManifest>(join(dir, 'manifest.json'));
  if (m?.createdAt === undefined || m.elapsedSeconds === undefined) return null;
  return { format: 'fad-generated-timing/1', createdAt: m.createdAt, elapsedSeconds: m.elapsedSeconds, ...(m.timing ? { timing: m.timing } : {}) };
}

export type { DreamBoothInfo } from './model-files';

export interface ExpertGuidanceRecord {
  kind: 'classifier' | 'entropy' | 'margin' | 'least-confidence';
  scale: number;
  expert: string;
  expertSha256: string;
  /** Whether the expert was trained noise-aware (fad expert train --noise-aware), per its checkpoint. */
  expertNoiseAware: boolean;
  twoStage: boolean;
  minTimestep: number;
  /** classifier: the expert class index of each U-Net class index. */
  labelMap: number[] | null;
}

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

export interface GenerateJob {
  checkpoint: string;
  out: string;
  gen: GenerateSection;
  /** Mean intensity statistics of the real images per class (needed for matchMean). */
  realStats?: Record<string, { mean: number; std: number }>;
  backend: string;
  force?: boolean;
  key?: string;
  quiet?: boolean;
  log: (m: string) => void;
  /**
   * Sample with the checkpoint's DreamBooth token: only the token's class, every image conditioned on
   * the token's label but filed and recorded as the class; the manifest records the token
   * (`dreambooth`) and has no `expertGuidance` or `timing`. Needs `gen.matchMean` and
   * `gen.expertGuidance` off (generateDreamBooth turns them off).
   */
  dreamBoothToken?: boolean;
  /** Other inputs of the run (e.g. the data folder) that `force` must not delete. */
  inputs?: RunInput[];
  /**
   * Sample only this shard of the run, into `out/<index>-of-<count>/` (see the file comment); `out`
   * is then the folder shared by all shards. Not with `dreamBoothToken`.
   */
  shard?: ShardSpec | null;
}

/** Per-class mean and std of the per-image mean intensity. */
export function classIntensityStats(images: Float32Array, labels: Int32Array, per: number, classNames: string[]): Record<string, { mean: number; std: number }> {
  const sums = classNames.map(() => [] as number[]);
  for (let i = 0; i < labels.length; i++) {
    let s = 0;
    for (let j = i * per; j < (i + 1) * per; j++) s += images[j];
    sums[labels[i]].push(s / per);
  }
  const out: Record<string, { mean: number; std: number }> = {};
  classNames.forEach((c, k) => {
    const v = sums[k];
    const m = v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
    const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, v.length - 1));
    out[c] = { mean: m, std: sd };
  });
  return out;
}

/**
 * A U-Net checkpoint with its metadata, sha256, class names and the noise schedule it was trained
 * with (`schedulerConfig`: the stored scheduler JSON, or {} for the defaults), checked as untrusted
 * input by `loadModelFile` (metadata, limits, completion marker, finite weights).
 */
export function loadModel(path: string, what = 'the model'): LoadedModelFile {
  return loadModelFile(path, what);
}

/** The token of a DreamBooth model, from its metadata; null for other models (or an unusable record). */
export function dreamBoothInfo(metadata: Record<string, string>): DreamBoothInfo | null {
  if (!metadata.dreambooth) return null;
  try {
    return JSON.parse(metadata.dreambooth);
  } catch {
    return null;
  }
}

export async function writePng(path: string, pixels: ArrayLike<number>, size: number, channels: number): Promise<void> {
  const buf = Buffer.alloc(size * size * channels);
  for (let i = 0; i < buf.length; i++) buf[i] = Math.max(0, Math.min(255, Math.round(pixels[i] * 255)));
  const img = sharp(buf, { raw: { width: size, height: size, channels: channels as 1 | 3 } });
  // sharp would write a 1-channel input as RGB unless told the colour space.
  await (channels === 1 ? img.toColourspace('b-w') : img).png().toFile(path);
}

/** Generates the images; returns the manifest. */
export async function generateImages(job: GenerateJob): Promise<GenerateManifest> {
  const { gen } = job;
  const shard = job.shard ?? null;
  if (shard && job.dreamBoothToken) throw new CliError('DreamBooth sets are not sharded');
  const out = shard ? join(resolve(job.out), shardName(shard)) : resolve(job.out);
  if (shard) {
    const done = finishedShard(out);
    if (done && !job.force) {
      const ckptSha = existsSync(job.checkpoint) ? sha256File(job.checkpoint) : null;
      if (done.checkpointSha256 === ckptSha && done.shard?.settings === shardSettingsHash(job)) {
        job.log(`fad: shard ${shardName(shard)} is already complete in ${out} (same model and settings); nothing to do`);
        return done;
      }
      throw new CliError(`${out} holds shard ${shardName(shard)} of another run (another model or settings); remove it, choose another --out, or pass --force to replace it`);
    }
    withFs(dirname(out), 'create the shards folder', () => mkdirSync(dirname(out), { recursive: true }));
  }
  if (existsSync(out) && !job.force && !shard) throw new CliError(`${job.out} already exists; choose another --out or pass --force to replace it`);
  if (gen.matchMean.enabled && !job.realStats) throw new CliError('--match-mean needs the real images (--data DIR or data.dir) to know each class mean intensity');
  const eg = gen.expertGuidance && gen.expertGuidance.kind !== 'none' ? gen.expertGuidance : null;
  if (eg?.twoStage && gen.sampler !== 'ddim') throw new CliError('--two-stage needs --sampler ddim (it inverts with DDIM)');
  if (eg && gen.sampler !== 'ddim' && gen.sampler !== 'ddpm') throw new CliError(`--guidance ${eg.kind} needs --sampler ddim or ddpm (the guided update uses their formulas), got ${gen.sampler}`);
  if (eg && !eg.expert) throw new CliError(`--guidance ${eg.kind} needs the guiding expert: --guidance-expert FILE (or expert.checkpoint)`);
  if (existsSync(out)) {
    // --force replaces OUT: never when OUT is (or holds, or is inside) what this run reads, and only
    // when OUT is what fad generate writes (a folder with a manifest), or empty.
    assertNotDeletingInputs({ target: out, inputs: [{ what: 'the model', path: job.checkpoint }, eg?.expert ? { what: 'the guiding expert', path: eg.expert } : null, ...(job.inputs ?? [])] });
    assertReplaceable(out);
  }
  removeStaleTemps({ dir: dirname(out), prefix: `${basename(out)}.tmp-`, log: job.log });
  const { model, sha256: ckptSha, classNames, schedulerConfig, dreambooth, autoencoder } = loadModel(job.checkpoint);
  let guiding: LoadedExpertModel | null = null;
  const t0 = Date.now();
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    const token = job.dreamBoothToken ? dreambooth : null;
    if (job.dreamBoothToken && !token) throw new CliError(`${job.checkpoint} is not a DreamBooth model (no dreambooth metadata); train one with fad train --dreambooth`);
    // Latent models (diffusion.space latent): sampled on latents and decoded; x_0 is never clipped there.
    if (autoencoder && gen.clipSample === true) throw new CliError(`generate.clipSample must be false for the latent model ${job.checkpoint} (latents are not in [-1, 1])`);
    if (autoencoder && eg) throw new CliError(`--guidance ${eg.kind} is not available for the latent model ${job.checkpoint} (gradient guidance runs in pixel space)`);
    // Sample with the noise schedule the model was trained with (stored in its metadata).
    const scheduler = makeScheduler(gen.sampler, {
      ...schedulerConfig,
      ...(gen.timestepSpacing !== undefined ? { timestepSpacing: gen.timestepSpacing } : {}),
      ...(gen.clipSample !== undefined ? { clipSample: gen.clipSample } : {}),
      ...(autoencoder ? { clipSample: false } : {}),
    });
    const wanted = token ? [token.class] : (gen.classes ?? classNames);
    const labels = wanted.map((c) => {
      const k = classNames.indexOf(c);
      if (k < 0) throw new CliError(`class "${c}" is not one of the model's classes (${classNames.join(', ')})`);
      return k;
    });
    let guidance: GuidanceFn | undefined;
    let guidanceRecord: ExpertGuidanceRecord | null = null;
    if (eg) {
      guiding = loadExpertModel(eg.expert!);
      const ex = guiding.expert;
      const kind = eg.kind as ExpertGuidanceRecord['kind'];
      let labelMap: number[] | null = null;
      if (eg.kind === 'classifier') {
        const missing = classNames.filter((c) => !ex.classNames.includes(c));
        if (missing.length === 0) labelMap = classNames.map((c) => ex.classNames.indexOf(c));
        else if (ex.numClasses === classNames.length && classNames.every((c, i) => c === `class_${i}`)) labelMap = classNames.map((_, i) => i);
        else throw new CliError(`--guidance classifier: the expert ${eg.expert} has no class named ${missing.map((c) => `"${c}"`).join(', ')} (its classes: ${ex.classNames.join(', ')})`);
      }
      let noiseAware = false;
      try {
        noiseAware = Boolean(guiding.metadata.training && JSON.parse(guiding.metadata.training).noiseAware);
      } catch {
        noiseAware = false;
      }
      if (!noiseAware) job.log(`fad: note: the guiding expert was not trained noise-aware (fad expert train --noise-aware); its gradients on noisy x_t are less informative`);
      guidance = expertGuidance({ expert: ex, kind, scale: eg.scale, dataRange: [-1, 1], minTimestep: eg.minTimestep, ...(labelMap ? { labelMap } : {}) });
      guidanceRecord = { kind, scale: eg.scale, expert: eg.expert!, expertSha256: guiding.sha256, expertNoiseAware: noiseAware, twoStage: eg.twoStage, minTimestep: eg.minTimestep, labelMap };
    }
    const timing = { steps: 0, ms: 0, guidanceMs: 0 };
    const onProgress = (p: { stepMs?: number; guidanceMs?: number }) => {
      if (p.stepMs === undefined) return; // inversion steps
      timing.steps++;
      timing.ms += p.stepMs;
      timing.guidanceMs += p.guidanceMs ?? 0;
    };
    // Class names come from the model file: each folder must stay inside the output folder.
    for (const c of wanted) {
      const d = pathInside(tmp, c, `the class name ${JSON.stringify(c)} of the model ${job.checkpoint}`);
      withFs(d, 'create the folder', () => mkdirSync(d, { recursive: true }));
    }
    const size = autoencoder ? model.config.sampleSize * autoencoder.downsamplingFactor : model.config.sampleSize;
    const channels = autoencoder ? autoencoder.config.outChannels : model.config.inChannels;
    const per = size * size * channels;
    const images: GeneratedImage[] = [];
    // The (seed, batch) units of this shard (all of them unsharded); matchMean redraws depend on earlier batches: whole seeds.
    const slotsPerSeed = labels.length * gen.imagesPerClass;
    const plan = planSamplingShard({ seeds: gen.seeds, imagesPerSeed: slotsPerSeed, batchSize: gen.batchSize, wholeSeeds: gen.matchMean.enabled, shard });
    const total = plan.seeds.reduce((a, s) => a + Math.min(slotsPerSeed, s.endBatch * gen.batchSize) - s.firstBatch * gen.batchSize, 0);
    const progress = new Progress({ label: token ? `generate ${token.token}` : shard ? `generate ${shardName(shard)}` : 'generate', total, quiet: job.quiet });
    const eta = gen.sampler === 'ddim' ? gen.eta : undefined;
    for (const { seed, firstBatch, endBatch } of plan.seeds) {
      const g = new Generator(seed);
      // Slots of the seed, one per (class, index); this shard fills those of batches [firstBatch, endBatch).
      const slots = labels.flatMap((label) => Array.from({ length: gen.imagesPerClass }, (_, index) => ({ label, index, attempts: 0 })));
      // Move the generator past the batches before this shard's first, as if they had been sampled.
      for (let b = 0; b < firstBatch; b++) {
        const n = Math.min(gen.batchSize, slotsPerSeed - b * gen.batchSize);
        skipSamplingDraws({ scheduler, shape: [n, model.config.sampleSize, model.config.sampleSize, model.config.inChannels], numInferenceSteps: gen.steps, eta, generator: g });
      }
      const mine = slots.slice(firstBatch * gen.batchSize, endBatch * gen.batchSize);
      let pending = mine;
      const last = new Map<string, { px: Float32Array; mean: number; attempts: number }>();
      const rounds = gen.matchMean.enabled ? gen.matchMean.maxAttempts : 1;
      for (let round = 0; round < rounds && pending.length > 0; round++) {
        const stillPending: typeof pending = [];
        for (let s = 0; s < pending.length; s += gen.batchSize) {
          const chunk = pending.slice(s, s + gen.batchSize);
          const sampleParams = {
            model,
            classLabels: chunk.map((c) => token?.tokenLabel ?? c.label),
            numInferenceSteps: gen.steps,
            guidanceScale: gen.guidanceScale,
            ...(gen.guidanceRescale !== undefined ? { guidanceRescale: gen.guidanceRescale } : {}),
            eta,
            generator: g,
            ...(autoencoder ? { autoencoder } : {}),
            onProgress,
          };
          let x;
          if (eg?.twoStage && guidance) {
            const r = await sampleTwoStage({ ...sampleParams, scheduler: scheduler as DDIMScheduler, guidance });
            r.unguided.dispose();
            x = r.images;
          } else {
            x = await sampleImages({ ...sampleParams, scheduler, guidance });
          }
          const px = x.dataSync() as Float32Array;
          x.dispose();
          const bad = countNonFinite(px);
          if (bad > 0) {
            throw new DivergenceError(`the model ${job.checkpoint} generated non-finite samples (${bad} of ${px.length} values NaN or infinite, seed ${seed}); nothing was written. The model or the sampler settings (--guidance-scale, --sampler) do not work together`);
          }
          chunk.forEach((slot, i) => {
            const p = px.slice(i * per, (i + 1) * per);
            let m = 0;
            for (let j = 0; j < per; j++) m += p[j];
            m /= per;
            slot.attempts++;
            const cls = classNames[slot.label];
            const ok = !gen.matchMean.enabled || Math.abs(m - job.realStats![cls].mean) <= gen.matchMean.k * job.realStats![cls].std;
            last.set(`${slot.label}:${slot.index}`, { px: p, mean: m, attempts: slot.attempts });
            if (!ok) stillPending.push(slot);
          });
          if (round === 0) progress.update(images.length + Math.min(pending.length, s + chunk.length), `seed ${seed}`);
        }
        pending = stillPending;
      }
      const failed = new Set(pending.map((p) => `${p.label}:${p.index}`));
      const writes: Array<() => Promise<void>> = [];
      for (const { label, index } of mine) {
        const r = last.get(`${label}:${index}`)!;
        const cls = classNames[label];
        const file = `${cls}/s${seed}-${String(index).padStart(3, '0')}.png`;
        images.push({
          file, class: cls, label, seed, index, mean: r.mean,
          ...(gen.matchMean.enabled ? { matchMean: failed.has(`${label}:${index}`) ? ('failed' as const) : ('passed' as const), attempts: r.attempts } : {}),
        });
        const target = pathInside(tmp, file, `the class name ${JSON.stringify(cls)} of the model ${job.checkpoint}`);
        writes.push(async () => {
          try {
            await writePng(target, r.px, size, channels);
          } catch (e) {
            throw withFsAsyncError(e, target);
          }
        });
      }
      await mapLimit(writes, 8, (w) => w());
      progress.update(images.length, `seed ${seed}`);
    }
    const manifest: GenerateManifest = {
      format: 'fad-generated/1',
      checkpoint: job.checkpoint,
      checkpointSha256: ckptSha,
      classNames,
      generatedClasses: wanted,
      sampler: gen.sampler,
      samplerConfig: scheduler.toJSON() as unknown as Record<string, unknown>,
      steps: gen.steps,
      guidanceScale: gen.guidanceScale,
      ...(gen.guidanceRescale !== undefined ? { guidanceRescale: gen.guidanceRescale } : {}),
      eta: gen.eta,
      seeds: gen.seeds,
      imagesPerClass: gen.imagesPerClass,
      batchSize: gen.batchSize,
      imageSize: size,
      channels,
      matchMean: gen.matchMean.enabled ? { ...gen.matchMean, realStats: job.realStats! } : null,
      ...(token ? {} : { expertGuidance: guidanceRecord }),
      backend: job.backend,
      images,
      ...(token ? { dreambooth: token } : {}),
      ...(job.key ? { key: job.key } : {}),
      ...(shard ? { shard: { index: shard.index, count: shard.count, unit: plan.unit, start: plan.start, end: plan.end, total: plan.total, settings: shardSettingsHash(job) } } : {}),
    };
    const timingRecord: GenerateTiming = {
      format: 'fad-generated-timing/1',
      createdAt: new Date(t0).toISOString(),
      elapsedSeconds: (Date.now() - t0) / 1000,
      ...(token ? {} : {
        timing: {
          steps: timing.steps,
          msPerStep: timing.ms / Math.max(1, timing.steps),
          guidanceMsPerStep: timing.guidanceMs / Math.max(1, timing.steps),
          unguidedMsPerStep: (timing.ms - timing.guidanceMs) / Math.max(1, timing.steps),
          batchSize: gen.batchSize,
        },
      }),
    };
    if (gen.matchMean.enabled) {
      const nFailed = images.filter((i) => i.matchMean === 'failed').length;
      if (nFailed) job.log(`fad: warning: --match-mean: ${nFailed} of ${images.length} image(s) stayed outside k = ${gen.matchMean.k} std of their class mean after ${gen.matchMean.maxAttempts} attempts (kept, flagged "failed" in the manifest)`);
    }
    writeJsonAtomic(join(tmp, TIMING_FILE), timingRecord, 'the timing record');
    // The manifest last: a folder with a manifest is complete.
    writeJsonAtomic(join(tmp, 'manifest.json'), manifest, 'the manifest');
    if (existsSync(out)) withFs(out, 'replace the output folder', () => rmSync(out, { recursive: true, force: true }));
    withFs(out, 'move the generated images into', () => renameSync(tmp, out));
    return manifest;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    model.dispose();
    autoencoder?.dispose();
    guiding?.expert.dispose();
  }
}


/** Values that are NaN or infinite. */
export function countNonFinite(px: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < px.length; i++) if (!Number.isFinite(px[i])) n++;
  return n;
}

/** A write error of sharp or fs as an error naming the file (sharp reports errno codes in its message). */
function withFsAsyncError(e: unknown, path: string): Error {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code === 'string') return fsError(err, path, 'write the image');
  const m = /(ENOSPC|EACCES|EROFS|EDQUOT|EPERM|EIO)/.exec(String(err?.message));
  return m ? fsError(Object.assign(new Error(err.message), { code: m[1] }), path, 'write the image') : (e as Error);
}

/** Throws unless `out` is a folder written by fad generate (it has a manifest.json) or empty. */
function assertReplaceable(out: string): void {
  const st = withFs(out, 'inspect the output folder', () => statSync(out));
  if (!st.isDirectory()) throw new CliError(`refusing to --force replace ${out}: it is a file, not a folder written by fad generate`);
  const entries = withFs(out, 'list the output folder', () => readdirSync(out));
  if (entries.length > 0 && !entries.includes('manifest.json')) {
    throw new CliError(`refusing to --force replace ${out}: it is not a folder written by fad generate (no manifest.json) and holds ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}; choose another --out`);
  }
}

/** Hash of what a shard was asked to do (so a rerun can tell whether a finished shard is its own). */
function shardSettingsHash(job: GenerateJob): string {
  return sha256(stableStringify({ checkpoint: job.checkpoint, gen: job.gen, backend: job.backend, key: job.key ?? null, realStats: job.realStats ?? null, count: job.shard?.count }));
}

/** The manifest of a finished shard folder (renamed into place only when complete), or null. */
function finishedShard(dir: string): GenerateManifest | null {
  const m = readJsonIfExists<GenerateManifest>(join(dir, 'manifest.json'));
  return m && m.format === 'fad-generated/1' && m.shard ? m : null;
}


export interface MergeGeneratedResult {
  manifest: GenerateManifest;
  out: string;
  count: number;
  timing: GenerateTiming;
}

/** A manifest without what differs between the shards of one run (its images and shard record): what must match. */
function manifestHeader(m: GenerateManifest): Record<string, unknown> {
  const { images: _i, shard: _s, ...header } = m;
  return header;
}

const brief = (v: unknown) => {
  const s = stableStringify(v);
  return s.length > 48 ? `${s.slice(0, 45)}...` : s;
};

/**
 * Merges the shards of a sharded `fad generate` run (folders `I-of-N` in `dir`) into `out`, the
 * folder the same command writes unsharded, byte for byte (images and manifest.json; timing.json
 * adds up the shards' timings and is not part of the reproducible result). Every shard 0..N-1 must
 * be there and complete, with the same model (checkpoint sha256) and settings (everything else in
 * the manifest); otherwise nothing is written and the error names each missing, unfinished or
 * foreign shard.
 */
export function mergeGeneratedShards(p: { dir: string; out: string; force?: boolean; log: (m: string) => void }): MergeGeneratedResult {
  const dir = resolve(p.dir);
  const out = resolve(p.out);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CliError(`${p.dir} is not a folder of shards (fad generate --shard I/N --out ${p.dir})`);
  const names = withFs(dir, 'list the shards folder', () => readdirSync(dir)).sort();
  const killed = new Map<string, string>();
  for (const n of names) {
    const m = /^(\d+-of-\d+)\.tmp-\d+$/.exec(n);
    if (m) killed.set(m[1], n);
  }
  const parts: ShardPart[] = [];
  const manifests = new Map<number, GenerateManifest>();
  for (const name of names) {
    const spec = parseShardName(name);
    if (!spec) continue;
    const where = join(dir, name);
    const m = finishedShard(where);
    const ok = m !== null && m.shard!.index === spec.index && m.shard!.count === spec.count && Array.isArray(m.images) && m.images.every((img) => existsSync(join(where, img.file)));
    if (!ok) {
      parts.push({ ...spec, where, complete: false, modelHash: '', configHash: '' });
      continue;
    }
    const header = manifestHeader(m);
    const { checkpointSha256: _c, ...config } = header;
    parts.push({
      ...spec, where, complete: true, modelHash: m.checkpointSha256, configHash: sha256(stableStringify({ config, total: m.shard!.total, unit: m.shard!.unit })),
      configFields: { ...Object.fromEntries(Object.entries(config).map(([k, v]) => [k, brief(v)])), units: `${m.shard!.total} ${m.shard!.unit}s` },
    });
    manifests.set(spec.index, m);
  }
  if (parts.length === 0) {
    const hint = killed.size ? ` (only temp folders of killed shards: ${[...killed.values()].join(', ')})` : '';
    throw new CliError(`${p.dir} holds no finished shard folders (I-of-N, written by fad generate --shard I/N --out ${p.dir})${hint}`);
  }
  let ordered: ShardPart[];
  try {
    ordered = checkShardSet({ parts, what: `generated shards in ${p.dir}` });
  } catch (e) {
    if (!(e instanceof ShardSetError)) throw e;
    const hints = e.problems.filter((x) => killed.has(x.shard)).map((x) => `  (${x.shard}: ${killed.get(x.shard)} was left by a run of it that was killed; run that shard again)`);
    throw new CliError([e.message, ...hints].join('\n'));
  }
  const all = ordered.map((x) => manifests.get(x.index)!);
  // Same run settings: each shard holds exactly the units and images planSamplingShard gives it.
  const total = all[0].shard!.total;
  let expectedStart = 0;
  for (const m of all) {
    if (m.shard!.start !== expectedStart) throw new CliError(`shard ${shardName(m.shard!)} holds units ${m.shard!.start}..${m.shard!.end} of ${total}, expected to start at ${expectedStart}; run it again`);
    expectedStart = m.shard!.end;
  }
  if (expectedStart !== total) throw new CliError(`the shards hold units 0..${expectedStart} of ${total}; run the last shard again`);
  const images = all.flatMap((m) => m.images);
  const seen = new Set<string>();
  for (const img of images) {
    if (seen.has(img.file)) throw new CliError(`the image ${img.file} is in two shards; the shards do not belong together`);
    seen.add(img.file);
  }
  const { shard: _s, ...first } = all[0];
  const manifest: GenerateManifest = { ...first, images };
  if (existsSync(out)) {
    if (!p.force) throw new CliError(`${p.out} already exists; choose another --out or pass --force to replace it`);
    assertNotDeletingInputs({ target: out, inputs: [{ what: 'the shards', path: dir }] });
    assertReplaceable(out);
  }
  if (pathInsideOrSame(out, dir)) throw new CliError(`--out ${p.out} must not be inside the shards folder ${p.dir}`);
  removeStaleTemps({ dir: dirname(out), prefix: `${basename(out)}.tmp-`, log: p.log });
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    for (const [k, m] of all.entries()) {
      const from = ordered[k].where;
      for (const img of m.images) {
        const target = pathInside(tmp, img.file, `${join(from, 'manifest.json')}: the image ${JSON.stringify(img.file)}`);
        withFs(dirname(target), 'create the folder', () => mkdirSync(dirname(target), { recursive: true }));
        withFs(target, 'copy the image to', () => copyFileSync(pathInside(from, img.file, `${join(from, 'manifest.json')}: the image`, 'read'), target));
      }
    }
    // Class folders that the unsharded run creates even when empty of images in every shard.
    for (const c of manifest.generatedClasses) withFs(join(tmp, c), 'create the folder', () => mkdirSync(pathInside(tmp, c, 'a class name'), { recursive: true }));
    const timings = ordered.map((x) => ({ shard: shardName(x), t: readGenerateTiming(x.where) }));
    const steps = timings.reduce((a, x) => a + (x.t?.timing?.steps ?? 0), 0);
    const sum = (f: (t: StepTiming) => number) => timings.reduce((a, x) => a + (x.t?.timing ? f(x.t.timing) * x.t.timing.steps : 0), 0);
    const timing: GenerateTiming = {
      format: 'fad-generated-timing/1',
      createdAt: timings.map((x) => x.t?.createdAt ?? '').filter(Boolean).sort()[0] ?? new Date().toISOString(),
      elapsedSeconds: timings.reduce((a, x) => a + (x.t?.elapsedSeconds ?? 0), 0),
      ...(timings.some((x) => x.t?.timing) ? {
        timing: {
          steps,
          msPerStep: sum((t) => t.msPerStep) / Math.max(1, steps),
          guidanceMsPerStep: sum((t) => t.guidanceMsPerStep) / Math.max(1, steps),
          unguidedMsPerStep: sum((t) => t.unguidedMsPerStep) / Math.max(1, steps),
          batchSize: manifest.batchSize,
        },
      } : {}),
      shards: timings.map((x) => ({ shard: x.shard, createdAt: x.t?.createdAt ?? '', elapsedSeconds: x.t?.elapsedSeconds ?? 0, ...(x.t?.timing ? { timing: x.t.timing } : {}) })),
    };
    writeJsonAtomic(join(tmp, TIMING_FILE), timing, 'the timing record');
    writeJsonAtomic(join(tmp, 'manifest.json'), manifest, 'the manifest');
    if (existsSync(out)) withFs(out, 'replace the output folder', () => rmSync(out, { recursive: true, force: true }));
    withFs(out, 'move the merged images into', () => renameSync(tmp, out));
    return { manifest, out, count: ordered.length, timing };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

function pathInsideOrSame(p: string, root: string): boolean {
  const r = `${root.replace(/\/+$/, '')}/`;
  return p === root || p.startsWith(r);
}
