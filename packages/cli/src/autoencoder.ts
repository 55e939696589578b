/**
 * `fad autoencoder train` as wiring: the training run (data order, metrics log, checkpoint format
 * `fad-autoencoder-checkpoint/1`, resume, the latent scaling factor, the final file) is
 * `trainAutoencoderRun` of @fad/diffusion-core/node, the fidelity check (PSNR, SSIM and the
 * classifiers' accuracy on reconstructions against originals) `autoencoderFidelity` of
 * @fad/expert-models. What stays here: the config as the run's params, the step key, the expert as
 * the perceptual term's feature function, `fidelity.json` (the expert and judge by their files),
 * progress, the TensorBoard writer, and the libraries' errors as the CLI's (same messages).
 *
 * Output folder (`dir`):
 * - `autoencoder-checkpoint.safetensors`: resumable state (weights, Adam moments, RNG and data order)
 * - `metrics.jsonl`: one JSON line per `logEvery` steps: step, loss, terms (l1, ssim, kl[, perceptual]), lr, gradNorm
 * - `events.out.tfevents.*`: the same scalars for TensorBoard (`run.reportTo`, see tensorboard.ts)
 * - `autoencoder.safetensors`: the trained autoencoder, its config holding the scaling factor
 * - `fidelity.json`: PSNR, SSIM and the expert's/judge's accuracy on reconstructions against originals
 * - `complete.json`: written when training finished
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AUTOENCODER_PRESETS, AutoencoderKL, type AutoencoderKLConfig, resolveAutoencoderConfig } from '@fad/diffusion-core';
import { AUTOENCODER_RUN_FILES, prepareAutoencoderRun, trainAutoencoderRun } from '@fad/diffusion-core/node';
import { type AutoencoderFidelity, autoencoderFidelity, type ClassifierFidelity as LibraryClassifierFidelity } from '@fad/expert-models';
import type { FadConfig } from './config';
import { type DiffusionResult, type ResumableTrainingJob, type TrainingData, pickData } from './diffusion';
import { CliError, fromLibraryError, InterruptedError, withLibraryErrors } from './errors';
import type { LoadedExpertModel } from './expert';
import { CLI_FLAGS, sha256, stepKey, writeJsonAtomic } from './fsutil';
import { loadAutoencoderFile } from './model-files';
import { removeStaleTemps } from './safety';
import { Progress } from './progress';
import { openRunTensorBoard } from './tensorboard';

export const FIDELITY_FILE = 'fidelity.json';

/** The autoencoder config for a data set: the preset, its overrides, and the data's channels. */
export function autoencoderConfigFor(cfg: FadConfig): AutoencoderKLConfig {
  const a = cfg.autoencoder;
  let c: AutoencoderKLConfig;
  try {
    c = resolveAutoencoderConfig({
      ...AUTOENCODER_PRESETS[a.preset],
      ...(a.overrides as Partial<AutoencoderKLConfig>),
      inChannels: cfg.data.channels,
      outChannels: cfg.data.channels,
    });
  } catch (e) {
    throw new CliError(`autoencoder.overrides (preset ${a.preset}): ${(e as Error).message}`);
  }
  const f = 2 ** (c.blockChannels.length - 1);
  if (cfg.data.imageSize % f !== 0) {
    throw new CliError(`autoencoder: data.imageSize ${cfg.data.imageSize} must be divisible by the autoencoder's downsampling factor ${f} (2^(levels-1) for blockChannels [${c.blockChannels}])`);
  }
  return c;
}

export interface AutoencoderJob extends ResumableTrainingJob {
  /** Held-out indices for the fidelity check. */
  validation: number[];
  /** Expert: the perceptual term's features (autoencoder.perceptualWeight > 0) and a fidelity classifier. */
  expert?: LoadedExpertModel;
  /** An independent judge for the fidelity check. */
  judge?: LoadedExpertModel;
}

/** A classifier's part of `fidelity.json`: the library's, named by its file. */
export interface ClassifierFidelity {
  path: string;
  /** Images whose class the classifier knows. */
  numImages: number;
  accuracyOriginal: number;
  accuracyReconstruction: number;
  /** accuracyOriginal - accuracyReconstruction, in percentage points. */
  dropPoints: number;
  /** dropPoints <= maxAccuracyDrop. */
  withinTolerance: boolean;
}

/** `fidelity.json` (besides modelPath, key and time). */
export interface FidelityReport {
  numImages: number;
  /** Mean PSNR in dB over images in [0, 1] (an exact reconstruction counts as 100 dB). */
  psnr: number;
  /** Mean SSIM (evaluate.ssimWindow settings, data range 1). */
  ssim: number;
  /** The tolerance (points) the drops are checked against. */
  maxAccuracyDrop: number;
  expert: ClassifierFidelity | null;
  judge: ClassifierFidelity | null;
  /** Latent scaling factor stored in the autoencoder. */
  scalingFactor: number;
  latentShape: number[];
}

export interface AutoencoderResult extends DiffusionResult {
  fidelity: AutoencoderFidelity;
}

export function autoencoderStepKey(cfg: FadConfig, data: TrainingData, expertHash: string | null): string {
  const relevant = {
    data: pickData(cfg.data),
    autoencoder: { ...cfg.autoencoder, checkpointEvery: undefined, fidelityImages: undefined, maxAccuracyDrop: undefined },
  };
  return stepKey('train-autoencoder', relevant, { data: data.fingerprint, split: sha256(JSON.stringify(data.indices)), expert: expertHash ?? '' });
}

/**
 * The fidelity check (`autoencoderFidelity` of @fad/expert-models) on the held-out images `indices`
 * with the expert and the judge, the SSIM window of `evaluate.*`.
 */
function autoencoderFidelityCheck(p: {
  model: AutoencoderKL; data: Pick<TrainingData, 'images' | 'labels' | 'imageSize' | 'channels' | 'classNames'>; indices: number[];
  expert?: LoadedExpertModel; judge?: LoadedExpertModel; cfg: FadConfig;
}): AutoencoderFidelity {
  const { data } = p;
  if (p.indices.length === 0) throw new CliError('the fidelity check needs held-out images, but the validation split is empty (data.validationFraction is 0)');
  const classifiers = [['expert', p.expert], ['judge', p.judge]].flatMap(([name, loaded]) => (loaded ? [{ name: name as string, loaded: loaded as LoadedExpertModel }] : []));
  // Each classifier must know a class of the held-out images (the library's check, with the file in the message).
  const present = p.indices.map((k) => data.classNames[data.labels[k]]);
  for (const { loaded } of classifiers) {
    const known = [...loaded.expert.classNames];
    if (!present.some((c) => known.includes(c))) throw new CliError(`${loaded.path}: the classifier knows none of the data's classes (${data.classNames.join(', ')}); its classes: ${known.join(', ')}`);
  }
  const per = data.imageSize * data.imageSize * data.channels;
  const images = new Float32Array(p.indices.length * per);
  p.indices.forEach((k, i) => images.set(data.images.subarray(k * per, (k + 1) * per), i * per));
  return autoencoderFidelity({
    autoencoder: p.model, images, imageSize: data.imageSize, channels: data.channels, labels: p.indices.map((k) => data.labels[k]), classNames: data.classNames,
    classifiers: classifiers.map(({ name, loaded }) => ({ name, expert: loaded.expert })), maxAccuracyDrop: p.cfg.autoencoder.maxAccuracyDrop,
    ssim: { window: p.cfg.evaluate.ssimWindow, winSize: p.cfg.evaluate.ssimWinSize },
  });
}

/** The fidelity report as `fidelity.json` records it: the expert and the judge by their files. */
function fidelityRecord(r: AutoencoderFidelity, paths: { expert?: LoadedExpertModel; judge?: LoadedExpertModel }): FidelityReport {
  const named = (name: 'expert' | 'judge'): ClassifierFidelity | null => {
    const f: LibraryClassifierFidelity | undefined = r.classifiers.find((c) => c.name === name);
    if (!f) return null;
    const { name: _, ...rest } = f;
    return { path: paths[name]!.path, ...rest };
  };
  return { numImages: r.numImages, psnr: r.psnr, ssim: r.ssim, maxAccuracyDrop: r.maxAccuracyDrop, expert: named('expert'), judge: named('judge'), scalingFactor: r.scalingFactor, latentShape: r.latentShape };
}

/** Runs (or resumes, or reuses) an autoencoder training job, then the fidelity check. */
export async function trainAutoencoder(job: AutoencoderJob): Promise<AutoencoderResult> {
  const { cfg, data, dir, log } = job;
  const a = cfg.autoencoder;
  if (a.perceptualWeight > 0 && !job.expert) throw new CliError('autoencoder.perceptualWeight > 0 needs an expert for the perceptual features: --expert FILE');
  const key = autoencoderStepKey(cfg, data, a.perceptualWeight > 0 && job.expert ? job.expert.sha256 : null);
  const modelPath = join(dir, AUTOENCODER_RUN_FILES.model);
  const onLog = (m: string) => log(`fad: ${m}`);
  mkdirSync(dir, { recursive: true });
  removeStaleTemps({ dir, log });
  const aeConfig = autoencoderConfigFor(cfg);

  const finish = (model: AutoencoderKL, r: Omit<AutoencoderResult, 'fidelity'>): AutoencoderResult => {
    const fidelity = autoencoderFidelityCheck({ model, data, indices: a.fidelityImages ? job.validation.slice(0, a.fidelityImages) : job.validation, expert: job.expert, judge: job.judge, cfg });
    writeJsonAtomic(join(dir, FIDELITY_FILE), { ...fidelityRecord(fidelity, job), modelPath, key, time: new Date().toISOString() });
    return { ...r, fidelity };
  };

  // Reuse, resume (the checkpoint read and checked) or start: decided before the model is built.
  const prepared = withLibraryErrors(() => prepareAutoencoderRun({
    dir, key, resume: job.resume, force: job.force, steps: a.steps, outputs: [FIDELITY_FILE], flags: CLI_FLAGS, totalKey: 'autoencoder.steps', backend: job.backend, onLog,
  }));
  if (prepared.action === 'reuse') {
    log(`fad: ${dir} holds an autoencoder trained with this config (key ${key}); reusing it`);
    const loaded = loadAutoencoderFile(modelPath);
    try {
      return finish(loaded.model, { dir, modelPath, steps: a.steps, finalLoss: Number(prepared.marker.finalLoss), reused: true, key });
    } finally {
      loaded.model.dispose();
    }
  }
  const resumeStep = prepared.action === 'resume' ? prepared.checkpoint.state.step : null;
  const model = new AutoencoderKL(aeConfig, { seed: a.seed });
  const expert = job.expert?.expert;
  // The perceptual features: the expert sees images in [0, 1] at its own input size and channels.
  const perceptual = a.perceptualWeight > 0 && expert
    ? (x: tf.Tensor4D) => {
        const spec = expert.inputSpec;
        let y = tf.div(tf.add(x, 1), 2) as tf.Tensor4D;
        if (y.shape[1] !== spec.size) y = tf.image.resizeBilinear(y, [spec.size, spec.size], false, true);
        if (y.shape[3] !== spec.channels) y = tf.tile(y, [1, 1, 1, spec.channels / y.shape[3]]);
        if (spec.range[0] !== 0 || spec.range[1] !== 1) y = tf.add(tf.mul(y, spec.range[1] - spec.range[0]), spec.range[0]) as tf.Tensor4D;
        return expert.features(y);
      }
    : undefined;
  const progress = new Progress({ label: 'train autoencoder', total: a.steps, start: resumeStep ?? 0, quiet: job.quiet });
  const tensorboard = openRunTensorBoard({ cfg, dir, resumeStep });
  try {
    const interrupt = job.interrupt;
    const run = await trainAutoencoderRun({
      model,
      data: { images: data.images, imageSize: data.imageSize, channels: data.channels, indices: data.indices },
      steps: a.steps,
      batchSize: a.batchSize,
      trainer: {
        seed: a.seed, optimizer: { learningRate: a.learningRate }, lrSchedule: { type: 'constant', warmupSteps: Math.min(a.warmupSteps, Math.max(0, a.steps - 1)) },
        gradClipNorm: a.gradClipNorm, lossWeights: { l1: a.l1Weight, ssim: a.ssimWeight, kl: a.klWeight, perceptual: a.perceptualWeight },
      },
      perceptual,
      scalingImages: a.scalingImages,
      hflip: cfg.data.hflip,
      vflip: cfg.data.vflip,
      dataSeed: (a.seed + 1) >>> 0,
      dir,
      key,
      prepared,
      checkpointEvery: a.checkpointEvery,
      logEvery: a.logEvery,
      backend: job.backend,
      sink: tensorboard,
      signal: { get aborted() { return interrupt?.requested ?? false; } },
      stopAfterStep: job.stopAfterStep,
      onLog,
      onProgress: ({ step, result: r }) => progress.update(step, `loss ${r.loss.toFixed(4)} (l1 ${r.terms.l1.toFixed(4)}, 1-ssim ${r.terms.ssim.toFixed(4)})`),
      modelMetadata: ({ scalingImages }) => ({ classes: JSON.stringify(data.classNames), steps: String(a.steps), backend: job.backend, key, scalingImages: String(scalingImages) }),
      flags: CLI_FLAGS,
      totalKey: 'autoencoder.steps',
    }).catch((e: unknown) => {
      throw fromLibraryError(e);
    });
    if (run.status === 'interrupted') {
      progress.end();
      throw new InterruptedError(run.reason === 'stop-after-step' ? `stopped at step ${run.step} (test hook)` : `interrupted at step ${run.step}/${a.steps}; checkpoint written to ${run.checkpointPath}; continue with --resume`);
    }
    return finish(model, { dir, modelPath, steps: a.steps, finalLoss: run.finalLoss, reused: false, key });
  } finally {
    model.dispose();
    tensorboard?.close();
  }
}
