/**
 * Sampling images per class from a trained U-Net into `OUT/<class>/s<seed>-<n>.png`, with
 * `OUT/manifest.json` (seeds, sampler, steps, guidance, checkpoint sha256, time, one entry per image).
 * Images are written into `OUT.tmp-<pid>` and renamed into place when all are written, so `OUT`
 * never holds a partial set.
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
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type AutoencoderKL, type BuiltinSchedulerName, DDIMScheduler, Generator, type GuidanceFn, sampleImages, sampleTwoStage } from '@fad/diffusion-core';
import { expertGuidance } from '@fad/expert-models';
import sharp from 'sharp';
import type { GenerateSection } from './config';
import { CliError, DivergenceError, fsError, withFs } from './errors';
import { mapLimit } from './data';
import { makeScheduler } from './diffusion';
import { type LoadedExpertModel, loadExpertModel } from './expert';
import { writeJsonAtomic } from './fsutil';
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
  /** Mean wall time per denoising step (sampling steps of every batch; two-stage: both sampling stages). */
  timing?: StepTiming;
  backend: string;
  createdAt: string;
  elapsedSeconds: number;
  images: GeneratedImage[];
  /** Step key (experiments reuse a set whose key matches). */
  key?: string;
  /** The DreamBooth token the images were sampled with (generateDreamBooth); absent otherwise. */
  dreambooth?: DreamBoothInfo;
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
  const out = resolve(job.out);
  if (existsSync(out) && !job.force) throw new CliError(`${job.out} already exists; choose another --out or pass --force to replace it`);
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
    const total = gen.seeds.length * labels.length * gen.imagesPerClass;
    const progress = new Progress({ label: token ? `generate ${token.token}` : 'generate', total, quiet: job.quiet });
    for (const seed of gen.seeds) {
      const g = new Generator(seed);
      // Slots still to fill: one per (class, index).
      let pending = labels.flatMap((label) => Array.from({ length: gen.imagesPerClass }, (_, index) => ({ label, index, attempts: 0 })));
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
            eta: gen.sampler === 'ddim' ? gen.eta : undefined,
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
      for (const label of labels) {
        for (let index = 0; index < gen.imagesPerClass; index++) {
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
      ...(token ? {} : {
        expertGuidance: guidanceRecord,
        timing: {
          steps: timing.steps,
          msPerStep: timing.ms / Math.max(1, timing.steps),
          guidanceMsPerStep: timing.guidanceMs / Math.max(1, timing.steps),
          unguidedMsPerStep: (timing.ms - timing.guidanceMs) / Math.max(1, timing.steps),
          batchSize: gen.batchSize,
        },
      }),
      backend: job.backend,
      createdAt: new Date(t0).toISOString(),
      elapsedSeconds: (Date.now() - t0) / 1000,
      images,
      ...(token ? { dreambooth: token } : {}),
      ...(job.key ? { key: job.key } : {}),
    };
    if (gen.matchMean.enabled) {
      const nFailed = images.filter((i) => i.matchMean === 'failed').length;
      if (nFailed) job.log(`fad: warning: --match-mean: ${nFailed} of ${images.length} image(s) stayed outside k = ${gen.matchMean.k} std of their class mean after ${gen.matchMean.maxAttempts} attempts (kept, flagged "failed" in the manifest)`);
    }
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
