/**
 * `fad autoencoder train`: trains the latent-diffusion autoencoder (@fad/diffusion-core's
 * `AutoencoderKL` and `AutoencoderTrainer`) on the training split as a resumable job, measures the
 * latent scaling factor, and runs the fidelity check on the held-out split. The data order, the
 * metrics log, the loop (checkpoint cadence, interruption) and the checkpoint reader are
 * @fad/diffusion-core/node's, shared with `fad train`; the checkpoint format is this file's.
 *
 * Output folder (`dir`):
 * - `autoencoder-checkpoint.safetensors`: resumable state (weights, Adam moments, RNG and data order)
 * - `metrics.jsonl`: one JSON line per `logEvery` steps: step, loss, terms (l1, ssim, kl[, perceptual]), lr, gradNorm
 * - `events.out.tfevents.*`: the same scalars for TensorBoard (`run.reportTo`, see tensorboard.ts)
 * - `autoencoder.safetensors`: the trained autoencoder, its config holding the scaling factor
 * - `fidelity.json`: PSNR, SSIM and the expert's/judge's accuracy on reconstructions against originals
 * - `complete.json`: written when training finished
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  AUTOENCODER_PRESETS,
  AutoencoderKL,
  type AutoencoderKLConfig,
  AutoencoderTrainer,
  type AutoencoderTrainerState,
  computeScalingFactor,
  decodeSafetensors,
  deserializeAutoencoder,
  encodeSafetensors,
  resolveAutoencoderConfig,
  serializeAutoencoder,
} from '@fad/diffusion-core';
import {
  assertFiniteTraining,
  DataOrder,
  type DataOrderState,
  emptyMetricsWindow,
  makeBatch,
  type MetricsWindow,
  numberedTensors,
  numberTensors,
  prefixTensors,
  runTrainingLoop,
  tensorsWithPrefix,
  truncateMetricsLog,
} from '@fad/diffusion-core/node';
import type { ExpertModel } from '@fad/expert-models';
import { ssim } from '@fad/metrics';
import type { FadConfig } from './config';
import { type DiffusionResult, type ResumableTrainingJob, type TrainingData, pickData } from './diffusion';
import { CliError, fromLibraryError, InterruptedError, withLibraryErrors } from './errors';
import { type LoadedExpertModel, expertOutputs } from './expert';
import { assertSameStateKey, prepareStep, sha256, stepKey, writeComplete, writeFileAtomicSync, writeJsonAtomic } from './fsutil';
import { loadAutoencoderFile, loadCheckpointWeights, readTrainCheckpoint, STATUS_COMPLETE, STATUS_KEY } from './model-files';
import { removeStaleTemps } from './safety';
import { Progress } from './progress';
import { openRunTensorBoard } from './tensorboard';

export const AUTOENCODER_FILE = 'autoencoder.safetensors';
export const AUTOENCODER_CHECKPOINT_FILE = 'autoencoder-checkpoint.safetensors';
export const FIDELITY_FILE = 'fidelity.json';
const CHECKPOINT_FORMAT = 'fad-autoencoder-checkpoint/1';

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
  fidelity: FidelityReport;
}

export function autoencoderStepKey(cfg: FadConfig, data: TrainingData, expertHash: string | null): string {
  const relevant = {
    data: pickData(cfg.data),
    autoencoder: { ...cfg.autoencoder, checkpointEvery: undefined, fidelityImages: undefined, maxAccuracyDrop: undefined },
  };
  return stepKey('train-autoencoder', relevant, { data: data.fingerprint, split: sha256(JSON.stringify(data.indices)), expert: expertHash ?? '' });
}

interface CheckpointState {
  format: typeof CHECKPOINT_FORMAT;
  key: string;
  step: number;
  generator: AutoencoderTrainerState['generator'];
  optimizerStep: number;
  data: DataOrderState;
  window: MetricsWindow;
  backend: string;
  config: AutoencoderKLConfig;
  elapsedSeconds: number;
  lastLoss: number;
}


function writeCheckpoint(path: string, state: CheckpointState, model: AutoencoderKL, trainer: AutoencoderTrainer): void {
  withLibraryErrors(() => assertFiniteTraining({ modules: [model], step: state.step, what: `the checkpoint ${path}` }));
  const ts = trainer.getState();
  const tensors = { ...prefixTensors('model.', model.stateDict()), ...numberTensors('adam.m.', ts.optimizer.m), ...numberTensors('adam.v.', ts.optimizer.v) };
  const st: CheckpointState = { ...state, generator: ts.generator, optimizerStep: ts.optimizer.step };
  writeFileAtomicSync(path, encodeSafetensors({ tensors, metadata: { format: CHECKPOINT_FORMAT, state: JSON.stringify(st) } }), 'the training checkpoint');
}

function readCheckpoint(path: string, totalSteps: number): { state: CheckpointState; tensors: Record<string, { shape: number[]; data: Float32Array }> } {
  return readTrainCheckpoint<CheckpointState>({
    path, format: CHECKPOINT_FORMAT, what: 'the autoencoder checkpoint', totalSteps, totalKey: 'autoencoder.steps',
    check: (st) => {
      if (!Number.isInteger(st.optimizerStep) || st.optimizerStep < 0 || st.optimizerStep > totalSteps) return ['optimizerStep', `an integer in 0..${totalSteps}`];
      if (!Array.isArray(st.generator?.s) || st.generator.s.length !== 4) return ['generator', 'a generator state { s: [4 integers], spare }'];
      return null;
    },
  });
}

/** Images [n,S,S,C] in [0,1] (the rows `indices` of `images`) as a tensor in [-1, 1]. */
function gather(data: Pick<TrainingData, 'images' | 'imageSize' | 'channels'>, indices: number[]): tf.Tensor4D {
  const per = data.imageSize * data.imageSize * data.channels;
  const out = new Float32Array(indices.length * per);
  indices.forEach((k, i) => {
    const src = data.images.subarray(k * per, (k + 1) * per);
    for (let j = 0; j < per; j++) out[i * per + j] = src[j] * 2 - 1;
  });
  return tf.tensor4d(out, [indices.length, data.imageSize, data.imageSize, data.channels]);
}

/** Reconstructions (posterior mean, decoded, clipped) of images [n,S,S,C] in [0,1], in [0,1], in batches. */
export function reconstructImages(p: { model: AutoencoderKL; images: Float32Array; n: number; imageSize: number; channels: number; batchSize?: number }): Float32Array {
  const per = p.imageSize * p.imageSize * p.channels;
  const out = new Float32Array(p.n * per);
  const bs = p.batchSize ?? 32;
  for (let s = 0; s < p.n; s += bs) {
    const m = Math.min(bs, p.n - s);
    const y = tf.tidy(() => {
      const x = tf.sub(tf.mul(tf.tensor4d(p.images.subarray(s * per, (s + m) * per), [m, p.imageSize, p.imageSize, p.channels]), 2), 1) as tf.Tensor4D;
      const { mean, logVar } = p.model.encode(x);
      logVar.dispose();
      return tf.clipByValue(tf.div(tf.add(p.model.decode(mean), 1), 2), 0, 1);
    });
    out.set(y.dataSync(), s * per);
    y.dispose();
  }
  return out;
}

function classifierFidelity(p: {
  loaded: LoadedExpertModel; originals: Float32Array; reconstructions: Float32Array; labels: number[]; classNames: string[]; imageSize: number; channels: number; maxDrop: number;
}): ClassifierFidelity {
  const expert: ExpertModel = p.loaded.expert;
  const known = [...expert.classNames];
  // Labels in the classifier's class order; images of classes it does not know are left out.
  const keep: number[] = [];
  const target: number[] = [];
  p.labels.forEach((l, i) => {
    const k = known.indexOf(p.classNames[l]);
    if (k >= 0) {
      keep.push(i);
      target.push(k);
    }
  });
  if (keep.length === 0) throw new CliError(`${p.loaded.path}: the classifier knows none of the data's classes (${p.classNames.join(', ')}); its classes: ${known.join(', ')}`);
  const per = p.imageSize * p.imageSize * p.channels;
  const pick = (src: Float32Array) => {
    const out = new Float32Array(keep.length * per);
    keep.forEach((i, j) => out.set(src.subarray(i * per, (i + 1) * per), j * per));
    return out;
  };
  const acc = (src: Float32Array) => {
    const { logits } = expertOutputs(expert, pick(src), keep.length, p.imageSize, p.channels);
    let correct = 0;
    logits.forEach((row, i) => {
      let best = 0;
      for (let k = 1; k < row.length; k++) if (row[k] > row[best]) best = k;
      if (best === target[i]) correct++;
    });
    return correct / keep.length;
  };
  const accuracyOriginal = acc(p.originals);
  const accuracyReconstruction = acc(p.reconstructions);
  const dropPoints = (accuracyOriginal - accuracyReconstruction) * 100;
  return { path: p.loaded.path, numImages: keep.length, accuracyOriginal, accuracyReconstruction, dropPoints, withinTolerance: dropPoints <= p.maxDrop };
}

/**
 * The fidelity check of Medfusion (Müller-Franzes et al. 2022): on held-out real tiles, the
 * reconstruction's PSNR and SSIM, and each classifier's accuracy on reconstructions against
 * originals (the drop should stay within `maxAccuracyDrop` points).
 */
export function autoencoderFidelity(p: {
  model: AutoencoderKL; data: Pick<TrainingData, 'images' | 'labels' | 'imageSize' | 'channels' | 'classNames'>; indices: number[];
  expert?: LoadedExpertModel; judge?: LoadedExpertModel; cfg: FadConfig;
}): FidelityReport {
  const { model, data, cfg } = p;
  if (p.indices.length === 0) throw new CliError('the fidelity check needs held-out images, but the validation split is empty (data.validationFraction is 0)');
  const s = data.imageSize;
  const c = data.channels;
  const per = s * s * c;
  const n = p.indices.length;
  const originals = new Float32Array(n * per);
  p.indices.forEach((k, i) => originals.set(data.images.subarray(k * per, (k + 1) * per), i * per));
  const recon = reconstructImages({ model, images: originals, n, imageSize: s, channels: c });
  let psnrSum = 0;
  for (let i = 0; i < n; i++) {
    let se = 0;
    for (let j = i * per; j < (i + 1) * per; j++) se += (originals[j] - recon[j]) ** 2;
    const mse = se / per;
    psnrSum += mse > 0 ? Math.min(100, 10 * Math.log10(1 / mse)) : 100;
  }
  const ev = cfg.evaluate;
  const ssimWindow = ev.ssimWindow === 'gaussian' && s < 11 ? 'uniform' : ev.ssimWindow;
  const ss = ssim({ x: { data: originals, shape: [n, s, s, c] }, y: { data: recon, shape: [n, s, s, c] }, dataRange: 1, window: ssimWindow, winSize: Math.min(ev.ssimWinSize, s % 2 === 1 ? s : s - 1) });
  const labels = p.indices.map((k) => data.labels[k]);
  const maxDrop = cfg.autoencoder.maxAccuracyDrop;
  const fid = (loaded?: LoadedExpertModel) =>
    loaded ? classifierFidelity({ loaded, originals, reconstructions: recon, labels, classNames: data.classNames, imageSize: s, channels: c, maxDrop }) : null;
  return {
    numImages: n, psnr: psnrSum / n, ssim: ss.mean, maxAccuracyDrop: maxDrop,
    expert: fid(p.expert), judge: fid(p.judge), scalingFactor: model.config.scalingFactor, latentShape: model.latentShape(s),
  };
}

/** The fidelity report as text lines (what the command prints). */
export function formatFidelity(r: FidelityReport): string {
  const lines = [
    `fidelity on ${r.numImages} held-out images: PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(4)}; latents ${r.latentShape.join('x')}, scaling factor ${r.scalingFactor.toPrecision(5)}`,
  ];
  for (const [name, f] of [['expert', r.expert], ['judge', r.judge]] as const) {
    if (!f) continue;
    const flag = f.withinTolerance ? 'ok' : `WARNING: drop above ${r.maxAccuracyDrop} points`;
    lines.push(`${name} accuracy: originals ${(f.accuracyOriginal * 100).toFixed(1)}%, reconstructions ${(f.accuracyReconstruction * 100).toFixed(1)}%, drop ${f.dropPoints.toFixed(1)} points (${flag}) [${f.numImages} images]`);
  }
  return lines.join('\n');
}

/** Runs (or resumes, or reuses) an autoencoder training job, then the fidelity check. */
export async function trainAutoencoder(job: AutoencoderJob): Promise<AutoencoderResult> {
  const { cfg, data, dir, log } = job;
  const a = cfg.autoencoder;
  if (a.perceptualWeight > 0 && !job.expert) throw new CliError('autoencoder.perceptualWeight > 0 needs an expert for the perceptual features: --expert FILE');
  const key = autoencoderStepKey(cfg, data, a.perceptualWeight > 0 && job.expert ? job.expert.sha256 : null);
  const ckptPath = join(dir, AUTOENCODER_CHECKPOINT_FILE);
  const metricsPath = join(dir, 'metrics.jsonl');
  const modelPath = join(dir, AUTOENCODER_FILE);
  mkdirSync(dir, { recursive: true });
  removeStaleTemps({ dir, log });
  const aeConfig = autoencoderConfigFor(cfg);

  const finish = (model: AutoencoderKL, r: Omit<AutoencoderResult, 'fidelity'>): AutoencoderResult => {
    const fidelity = autoencoderFidelity({ model, data, indices: a.fidelityImages ? job.validation.slice(0, a.fidelityImages) : job.validation, expert: job.expert, judge: job.judge, cfg });
    writeJsonAtomic(join(dir, FIDELITY_FILE), { ...fidelity, modelPath, key, time: new Date().toISOString() });
    return { ...r, fidelity };
  };

  const prepared = prepareStep({
    dir, key, resume: job.resume, force: job.force, stateFile: AUTOENCODER_CHECKPOINT_FILE, outputs: ['metrics.jsonl', AUTOENCODER_FILE, FIDELITY_FILE],
    describe: { finished: 'a finished autoencoder run', unfinished: 'a checkpoint of an unfinished autoencoder run' },
  });
  if (prepared.action === 'reuse') {
    const done = prepared.marker;
    log(`fad: ${dir} holds an autoencoder trained with this config (key ${key}); reusing it`);
    const loaded = loadAutoencoderFile(modelPath);
    try {
      return finish(loaded.model, { dir, modelPath, steps: a.steps, finalLoss: Number(done.finalLoss), reused: true, key });
    } finally {
      loaded.model.dispose();
    }
  }
  let resumeFrom: ReturnType<typeof readCheckpoint> | null = null;
  if (prepared.action === 'resume') {
    resumeFrom = readCheckpoint(ckptPath, a.steps);
    assertSameStateKey({ where: `the checkpoint ${ckptPath}`, stored: resumeFrom.state.key, storedName: 'state.key', key });
    if (resumeFrom.state.backend !== job.backend) log(`fad: warning: the checkpoint was written on the "${resumeFrom.state.backend}" backend, resuming on "${job.backend}": the result will not be bit-identical to an uninterrupted run`);
  } else if (existsSync(metricsPath)) {
    rmSync(metricsPath);
  }

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
  const warmupSteps = Math.min(a.warmupSteps, Math.max(0, a.steps - 1));
  const trainer = new AutoencoderTrainer({
    model, seed: a.seed, optimizer: { learningRate: a.learningRate }, lrSchedule: { type: 'constant', warmupSteps },
    gradClipNorm: a.gradClipNorm, lossWeights: { l1: a.l1Weight, ssim: a.ssimWeight, kl: a.klWeight, perceptual: a.perceptualWeight }, perceptual,
    ssim: data.imageSize < 11 ? { window: 'uniform', winSize: 3 } : undefined,
  });
  const order = new DataOrder({ indices: data.indices, seed: (a.seed + 1) >>> 0 });
  let window = emptyMetricsWindow();
  let step = 0;
  let elapsedBefore = 0;
  let lastLoss = NaN;
  if (resumeFrom) {
    const { state, tensors } = resumeFrom;
    try {
      loadCheckpointWeights(() => {
        model.loadStateDict(tensorsWithPrefix(tensors, 'model.'));
        trainer.setState({ step: state.optimizerStep, generator: state.generator, optimizer: { step: state.optimizerStep, m: numberedTensors(tensors, 'adam.m.'), v: numberedTensors(tensors, 'adam.v.') } });
        order.setState(state.data);
      }, `the autoencoder checkpoint ${ckptPath}`);
    } catch (e) {
      trainer.dispose();
      model.dispose();
      throw e;
    }
    window = state.window;
    step = state.step;
    elapsedBefore = state.elapsedSeconds;
    lastLoss = state.lastLoss;
    truncateMetricsLog(metricsPath, step);
    log(`fad: resuming ${dir} at step ${step}/${a.steps}`);
  }
  const t0 = Date.now();
  const stateNow = (): CheckpointState => ({
    format: CHECKPOINT_FORMAT, key, step, generator: { s: [0, 0, 0, 0], spare: null }, optimizerStep: 0, data: order.getState(), window,
    backend: job.backend, config: aeConfig, elapsedSeconds: elapsedBefore + (Date.now() - t0) / 1000, lastLoss,
  });
  const progress = new Progress({ label: 'train autoencoder', total: a.steps, start: step, quiet: job.quiet });
  const tensorboard = openRunTensorBoard({ cfg, dir, resumeStep: resumeFrom ? resumeFrom.state.step : null });
  try {
    // The loop (metrics, checkpoints, interruption) is @fad/diffusion-core/node's, as for fad train.
    const interrupt = job.interrupt;
    const outcome = await runTrainingLoop({
      startStep: step, steps: a.steps, metricsPath, window, logEvery: a.logEvery, sink: tensorboard, checkpointEvery: a.checkpointEvery, lastLoss,
      signal: { get aborted() { return interrupt?.requested ?? false; } },
      stopAfterStep: job.stopAfterStep,
      trainStep: () => {
        const idx = order.next(a.batchSize);
        const x = makeBatch({ images: data.images, imageSize: data.imageSize, channels: data.channels, indices: idx, order, hflip: cfg.data.hflip, vflip: cfg.data.vflip });
        try {
          return trainer.step({ x });
        } finally {
          x.dispose();
        }
      },
      writeCheckpoint: (s) => {
        ({ step, window, lastLoss } = s);
        writeCheckpoint(ckptPath, stateNow(), model, trainer);
      },
      onProgress: ({ step: at, result: r }) => progress.update(at, `loss ${r.loss.toFixed(4)} (l1 ${r.terms.l1.toFixed(4)}, 1-ssim ${r.terms.ssim.toFixed(4)})`),
    }).catch((e: unknown) => {
      throw fromLibraryError(e);
    });
    ({ step, window, lastLoss } = outcome);
    if (outcome.status === 'interrupted') {
      progress.end();
      throw new InterruptedError(outcome.reason === 'stop-after-step' ? `stopped at step ${step} (test hook)` : `interrupted at step ${step}/${a.steps}; checkpoint written to ${ckptPath}; continue with --resume`);
    }
    // The latent scaling factor 1/std(z) over (up to) scalingImages training images, posterior means.
    const scaleIdx = data.indices.slice(0, a.scalingImages);
    const xs = gather(data, scaleIdx);
    try {
      model.setScalingFactor(computeScalingFactor({ model, images: xs }));
    } finally {
      xs.dispose();
    }
    const meta = { classes: JSON.stringify(data.classNames), steps: String(a.steps), backend: job.backend, key, scalingImages: String(scaleIdx.length) };
    withLibraryErrors(() => assertFiniteTraining({ modules: [model], step, what: `the final autoencoder ${modelPath}` }));
    writeFileAtomicSync(modelPath, serializeAutoencoder(model, { ...meta, [STATUS_KEY]: STATUS_COMPLETE }), 'the final autoencoder');
    const elapsedSeconds = elapsedBefore + (Date.now() - t0) / 1000;
    writeComplete(dir, { step: 'train-autoencoder', key, steps: a.steps, finalLoss: lastLoss, backend: job.backend, modelSha256: sha256(readFileSync(modelPath)), elapsedSeconds, resumed: resumeFrom !== null });
    return finish(model, { dir, modelPath, steps: a.steps, finalLoss: lastLoss, reused: false, key });
  } finally {
    trainer.dispose();
    model.dispose();
    tensorboard?.close();
  }
}
