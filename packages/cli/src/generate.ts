/**
 * `fad generate` and `fad merge` as wiring over @fad/diffusion-core/node's generation run
 * (`prepareGeneratedSet`, `generateImageSet`, `mergeGeneratedShards`): sampling per class and seed
 * in batches, the `matchMean` filter, latent decoding, writing `OUT/<class>/s<seed>-<n>.png` +
 * `manifest.json` + `timing.json` atomically (into `OUT.tmp-<pid>`, renamed when complete), the
 * shard plan and finished-shard reuse, and merging shards are the library's (see
 * generate-image-set.ts there). The manifest holds nothing that depends on the clock or the run,
 * so the same command gives a byte-identical manifest and images every time.
 *
 * What stays here, as the CLI's concerns:
 * - the `generate` config section as the library's params (sampler from the model's stored noise
 *   schedule, `--timestep-spacing`, `--clip-sample`), and the checks of flag combinations that
 *   name flags (`--match-mean` without data, `--two-stage` without DDIM, `--guidance` without an
 *   expert or on a latent model, `generate.clipSample` on a latent model);
 * - loading and checking the model file (model-files.ts) and DreamBooth token selection
 *   (`dreamBoothToken`: the checkpoint's token; `generateDreamBooth`);
 * - expert guidance: the expert file (expert.ts) is loaded and turned into a `GuidanceFn` by
 *   @fad/expert-models' `expertGuidance` on the sampler's x_t (model space [-1, 1] mapped to the
 *   expert's [0, 1]; classifier guidance targets each image's class, matched to the expert's
 *   classes by name), passed with the record the manifest keeps (`ExpertGuidanceRecord`), so
 *   diffusion-core depends on neither expert-models nor feature-align;
 * - `--force` input safety (`assertNotDeletingInputs`: never replace a folder that holds or is
 *   inside what the run reads, the list of inputs being the command's) and removing stale temp
 *   folders of killed runs, with their `fad:` log lines;
 * - the shard settings hash (`job.shard`, `fad generate --shard I/N`: a finished shard is kept
 *   when run again with the same model and these settings), progress bars and log lines;
 * - library errors become the CLI's (exit codes, messages naming flags) by `fromLibraryError`.
 *
 * With `matchMean` (off by default) an image is kept when |mean(image) - m_c| <= k * s_c over the
 * real images of class c; rejected images are redrawn up to `maxAttempts` rounds, the rest flagged
 * `matchMean: "failed"`. This filter biases every metric computed on the result.
 */
import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { BuiltinSchedulerName } from '@fad/diffusion-core';
import { shardName, type ShardSpec } from '@fad/diffusion-core';
import {
  assertReplaceableSet,
  classIntensityStats as classIntensityStatsCore,
  generatedSetDir,
  generateImageSet,
  GENERATED_SET_FILES,
  type GeneratedImage,
  type GeneratedSetManifest,
  type GeneratedSetTiming,
  type GeneratedShardRecord,
  mergeGeneratedShards as mergeGeneratedShardsCore,
  prepareGeneratedSet,
  readGeneratedSetTiming,
  type StepTiming,
  writePngFile,
} from '@fad/diffusion-core/node';
import { type ExpertGuidanceRecord, type GenerationGuidance, type GuidanceKind, generationGuidance } from '@fad/expert-models';
import type { GenerateSection } from './config';
import { CliError, fromLibraryError, withLibraryErrors } from './errors';
import { makeScheduler } from './diffusion';
import { type LoadedExpertModel, loadExpertModel } from './expert';
import { sha256, sha256File, stableStringify } from './fsutil';
import { type DreamBoothInfo, type LoadedModelFile, loadModelFile } from './model-files';
import { assertNotDeletingInputs, type RunInput, removeStaleTemps } from './safety';
import { Progress } from './progress';

export type { GeneratedImage, StepTiming } from '@fad/diffusion-core/node';
export { countNonFinite } from '@fad/diffusion-core/node';

/** The manifest of a generated set (@fad/diffusion-core/node's, with the CLI's expert guidance and DreamBooth records). */
export type GenerateManifest = GeneratedSetManifest<ExpertGuidanceRecord, DreamBoothInfo>;

/** The part of a sharded run that a shard's manifest holds. */
export type GenerateShardRecord = GeneratedShardRecord;

/** `OUT/timing.json`: what depends on the clock and the machine, kept out of the manifest. Not part of the reproducible result. */
export type GenerateTiming = GeneratedSetTiming;

export const TIMING_FILE = GENERATED_SET_FILES.timing;

/** A generated set's timing.json, or for sets written before it, the fields of its manifest; null when neither has them. */
export function readGenerateTiming(dir: string): GenerateTiming | null {
  return readGeneratedSetTiming({ dir });
}

export type { DreamBoothInfo } from './model-files';

export type { ExpertGuidanceRecord } from '@fad/expert-models';

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

/** Per-class mean and std of the per-image mean intensity (@fad/diffusion-core/node's `classIntensityStats`). */
export function classIntensityStats(images: Float32Array, labels: Int32Array, per: number, classNames: string[]): Record<string, { mean: number; std: number }> {
  return classIntensityStatsCore({ images, labels, pixelsPerImage: per, classNames });
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

/** Writes pixels in [0, 1] as a PNG (@fad/diffusion-core/node's `writePngFile`). */
export async function writePng(path: string, pixels: ArrayLike<number>, size: number, channels: number): Promise<void> {
  await writePngFile({ path, pixels, size, channels: channels as 1 | 3 });
}

/** Generates the images; returns the manifest. */
export async function generateImages(job: GenerateJob): Promise<GenerateManifest> {
  const { gen } = job;
  const shard = job.shard ?? null;
  if (shard && job.dreamBoothToken) throw new CliError('DreamBooth sets are not sharded');
  const settings = shard ? shardSettingsHash(job) : undefined;
  const prepared = withLibraryErrors(() => prepareGeneratedSet({
    out: job.out, shard, force: job.force ?? false,
    ...(shard ? { checkpointSha256: existsSync(job.checkpoint) ? sha256File(job.checkpoint) : null, settings } : {}),
  }));
  const out = prepared.dir;
  if (prepared.action === 'reuse') {
    job.log(`fad: shard ${shardName(shard!)} is already complete in ${out} (same model and settings); nothing to do`);
    return prepared.manifest as GenerateManifest;
  }
  if (gen.matchMean.enabled && !job.realStats) throw new CliError('--match-mean needs the real images (--data DIR or data.dir) to know each class mean intensity');
  const eg = gen.expertGuidance && gen.expertGuidance.kind !== 'none' ? gen.expertGuidance : null;
  if (eg?.twoStage && gen.sampler !== 'ddim') throw new CliError('--two-stage needs --sampler ddim (it inverts with DDIM)');
  if (eg && gen.sampler !== 'ddim' && gen.sampler !== 'ddpm') throw new CliError(`--guidance ${eg.kind} needs --sampler ddim or ddpm (the guided update uses their formulas), got ${gen.sampler}`);
  if (eg && !eg.expert) throw new CliError(`--guidance ${eg.kind} needs the guiding expert: --guidance-expert FILE (or expert.checkpoint)`);
  if (existsSync(out)) {
    // --force replaces OUT: never when OUT is (or holds, or is inside) what this run reads, and only
    // when OUT is what fad generate writes (a folder with a manifest), or empty.
    assertNotDeletingInputs({ target: out, inputs: [{ what: 'the model', path: job.checkpoint }, eg?.expert ? { what: 'the guiding expert', path: eg.expert } : null, ...(job.inputs ?? [])] });
    withLibraryErrors(() => assertReplaceableSet({ dir: out }));
  }
  removeStaleTemps({ dir: dirname(out), prefix: `${basename(out)}.tmp-`, log: job.log });
  const { model, sha256: ckptSha, classNames, schedulerConfig, dreambooth, autoencoder } = loadModel(job.checkpoint);
  let guiding: LoadedExpertModel | null = null;
  let progress: Progress | null = null;
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
    for (const c of wanted) {
      if (!classNames.includes(c)) throw new CliError(`class "${c}" is not one of the model's classes (${classNames.join(', ')})`);
    }
    let guidance: GenerationGuidance | null = null;
    if (eg) {
      guiding = loadExpertModel(eg.expert!);
      try {
        guidance = generationGuidance({
          expert: guiding.expert, expertFile: { name: eg.expert!, sha256: guiding.sha256, metadata: guiding.metadata }, modelClassNames: classNames,
          kind: eg.kind as GuidanceKind, scale: eg.scale, minTimestep: eg.minTimestep, twoStage: eg.twoStage, dataRange: [-1, 1],
        });
      } catch (e) {
        if (e instanceof RangeError && eg.kind === 'classifier') throw new CliError(`--guidance classifier: ${e.message}`);
        throw e;
      }
      if (guidance.note) job.log(`fad: note: ${guidance.note.replace('not trained noise-aware', 'not trained noise-aware (fad expert train --noise-aware)')}`);
    }
    const label = token ? `generate ${token.token}` : shard ? `generate ${shardName(shard)}` : 'generate';
    const { manifest } = await generateImageSet({
      model,
      autoencoder,
      scheduler,
      sampler: gen.sampler as BuiltinSchedulerName,
      classNames,
      classes: wanted,
      seeds: gen.seeds,
      imagesPerClass: gen.imagesPerClass,
      batchSize: gen.batchSize,
      steps: gen.steps,
      guidanceScale: gen.guidanceScale,
      ...(gen.guidanceRescale !== undefined ? { guidanceRescale: gen.guidanceRescale } : {}),
      eta: gen.eta,
      matchMean: gen.matchMean.enabled ? { k: gen.matchMean.k, maxAttempts: gen.matchMean.maxAttempts, realStats: job.realStats! } : null,
      guidance: token ? null : guidance,
      dreambooth: token,
      out: job.out,
      force: job.force ?? false,
      shard,
      ...(settings !== undefined ? { shardSettings: settings } : {}),
      checkpoint: job.checkpoint,
      checkpointSha256: ckptSha,
      backend: job.backend,
      ...(job.key ? { key: job.key } : {}),
      onStart: ({ total }) => { progress = new Progress({ label, total, quiet: job.quiet }); },
      onProgress: ({ done, seed }) => progress?.update(done, `seed ${seed}`),
    });
    if (gen.matchMean.enabled) {
      const nFailed = manifest.images.filter((i) => i.matchMean === 'failed').length;
      if (nFailed) job.log(`fad: warning: --match-mean: ${nFailed} of ${manifest.images.length} image(s) stayed outside k = ${gen.matchMean.k} std of their class mean after ${gen.matchMean.maxAttempts} attempts (kept, flagged "failed" in the manifest)`);
    }
    return manifest as GenerateManifest;
  } catch (e) {
    throw fromLibraryError(e);
  } finally {
    model.dispose();
    autoencoder?.dispose();
    guiding?.expert.dispose();
  }
}

/** Hash of what a shard was asked to do (so a rerun can tell whether a finished shard is its own). */
function shardSettingsHash(job: GenerateJob): string {
  return sha256(stableStringify({ checkpoint: job.checkpoint, gen: job.gen, backend: job.backend, key: job.key ?? null, realStats: job.realStats ?? null, count: job.shard?.count }));
}

export interface MergeGeneratedResult {
  manifest: GenerateManifest;
  out: string;
  count: number;
  timing: GenerateTiming;
}

/**
 * Merges the shards of a sharded `fad generate` run (folders `I-of-N` in `dir`) into `out`, the
 * folder the same command writes unsharded, byte for byte (@fad/diffusion-core/node's
 * `mergeGeneratedShards`; its errors as the CLI's).
 */
export function mergeGeneratedShards(p: { dir: string; out: string; force?: boolean; log: (m: string) => void }): MergeGeneratedResult {
  const out = generatedSetDir({ out: p.out });
  removeStaleTemps({ dir: dirname(out), prefix: `${basename(out)}.tmp-`, log: p.log });
  const r = withLibraryErrors(() => mergeGeneratedShardsCore({ dir: p.dir, out: p.out, force: p.force ?? false }));
  return { manifest: r.manifest as GenerateManifest, out: r.out, count: r.count, timing: r.timing };
}
