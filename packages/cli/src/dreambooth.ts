/**
 * DreamBooth fine-tuning as a job (`fad train --dreambooth CLASS --pretrained MODEL`, and the
 * experiment's DreamBooth arm): a trained class-conditional U-Net is fine-tuned on
 * `dreambooth.instanceImages` training images of one class, bound to a new identifier token
 * (initialised from the class's embedding, @fad/diffusion-core `addConditioningToken`), with prior
 * preservation on `dreambooth.numClassImages` class images the model generated before fine-tuning
 * (conditioned on the class; loss `mse(instance) + priorLossWeight * mse(prior)`). With
 * `alignment.enabled` the feature-alignment objective applies to the whole batch, the instance and
 * the prior images alike (the prior images stand for the class, whose features should stay aligned).
 *
 * Output folder (`dir`):
 * - `model.safetensors`: the fine-tuned weights with the token (metadata `dreambooth`: class, token,
 *   token label, settings; `classes`; `scheduler`)
 * - `instances.json`: the data files used as instance images
 * - `metrics.jsonl`: step, loss, terms (`diffusion`, `diffusion.instance`, `diffusion.prior`,
 *   `feature_align.align`), lr, gradNorm
 * - `events.out.tfevents.*`: the same scalars for TensorBoard (`run.reportTo`, see tensorboard.ts)
 * - `complete.json`: written last, with the step key (a finished run with the same key is reused)
 * The class images are cached in `priorPath` (default `dir/class-images.safetensors`), keyed by the
 * pretrained model and the sampling settings, so arms that share them generate them once.
 *
 * DreamBooth runs are short and not resumable: an interrupted run starts over.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import {
  DDPMScheduler,
  DreamBoothTrainer,
  Generator,
  type TrainingObjective,
  addConditioningToken,
  decodeSafetensors,
  encodeSafetensors,
  sampleImages,
  serializeUNet,
} from '@fad/diffusion-core';
import type { FeatureAlignmentLoss } from '@fad/feature-align';
import type { FadConfig, GenerateSection } from './config';
import { CliError, InterruptedError, withLibraryErrors } from './errors';
import type { LoadedExpertModel } from './expert';
import { assertFiniteTraining, DataOrder, emptyMetricsWindow, logTrainingStep, makeBatch } from '@fad/diffusion-core/node';
import { type DiffusionResult, type TrainingData, makeAlignmentObjective, makeScheduler, pickData } from './diffusion';
import { COMPLETE_FILE, prepareStep, sha256, stepKey, writeComplete, writeFileAtomicSync, writeJsonAtomic } from './fsutil';
import { type GenerateManifest, generateImages, loadModel } from './generate';
import { chooseMicroBatch } from './memory-fit';
import { STATUS_COMPLETE, STATUS_KEY } from './model-files';
import { removeStaleTemps } from './safety';
import { openRunTensorBoard, type TensorBoardWriter } from './tensorboard';
import type { Interrupt } from './interrupt';
import { Progress } from './progress';

export interface DreamBoothJob {
  /** Uses `dreambooth.*`, `alignment.*`, the sampler of `generate.*` (class images), `data` flips, `diffusion.microBatchSize`. */
  cfg: FadConfig;
  data: TrainingData;
  /** The trained model to fine-tune (model.safetensors). */
  pretrained: string;
  /** Required when alignment is enabled. */
  expert?: LoadedExpertModel;
  dir: string;
  /** Where the class images are cached (default `dir/class-images.safetensors`). */
  priorPath?: string;
  /** Start over even if the folder holds a finished run. */
  force?: boolean;
  /** Redo a finished run whose key differs instead of stopping with an error (the experiment). */
  replaceStale?: boolean;
  interrupt?: Interrupt;
  backend: string;
  log: (m: string) => void;
  quiet?: boolean;
}

export interface DreamBoothResult extends DiffusionResult {
  className: string;
  token: string;
}

const MODEL_FILE = 'model.safetensors';

function samplerSettings(g: GenerateSection) {
  return { sampler: g.sampler, steps: g.steps, guidanceScale: g.guidanceScale, eta: g.eta };
}

/** The experiment's DreamBooth arms: without and with feature alignment. */
export const DREAMBOOTH_ARMS = ['dreambooth', 'dreambooth-aligned'] as const;
export type DreamBoothArm = (typeof DREAMBOOTH_ARMS)[number];

/** The config of an arm: alignment off, or on with the alignment.* settings (alignTo included). */
export function dreamBoothArmConfig(cfg: FadConfig, arm: DreamBoothArm): FadConfig {
  return { ...cfg, alignment: { ...cfg.alignment, enabled: arm === 'dreambooth-aligned' } };
}

/** The step key of a DreamBooth run: its settings and the hashes of its inputs. */
export function dreamBoothStepKey(cfg: FadConfig, data: TrainingData, pretrainedSha: string, expertSha: string | null): string {
  const db = cfg.dreambooth;
  const relevant = {
    dreambooth: { ...db, numClassImages: db.withPriorPreservation ? db.numClassImages : null },
    classImages: db.withPriorPreservation ? samplerSettings(cfg.generate) : null,
    alignment: cfg.alignment.enabled ? cfg.alignment : { enabled: false },
    data: pickData(cfg.data),
    microBatchSize: cfg.diffusion.microBatchSize,
  };
  return stepKey('train-dreambooth', relevant, { pretrained: pretrainedSha, data: data.fingerprint, split: sha256(JSON.stringify(data.indices)), expert: expertSha ?? '' });
}

/** The seeded choice of instance images: `n` of the class's training images (data indices, sorted). */
export function chooseInstances(data: Pick<TrainingData, 'labels' | 'indices'>, classLabel: number, n: number, seed: number, className = String(classLabel)): number[] {
  const pool = data.indices.filter((k) => data.labels[k] === classLabel);
  if (pool.length < n) {
    throw new CliError(`dreambooth.instanceImages is ${n} but class "${className}" has only ${pool.length} training image(s); lower --instance-images`);
  }
  const perm = new Generator(seed).permutation(pool.length);
  return perm.slice(0, n).map((i) => pool[i]).sort((a, b) => a - b);
}

/** Class images in [0, 1], [M,S,S,C] flat, generated (or read from the cache) with the pretrained model. */
async function classImages(job: DreamBoothJob, model: Parameters<typeof sampleImages>[0]['model'], schedulerJson: unknown, pretrainedSha: string, classLabel: number): Promise<Float32Array> {
  const db = job.cfg.dreambooth;
  const gen = job.cfg.generate;
  const path = job.priorPath ?? join(job.dir, 'class-images.safetensors');
  const key = stepKey('dreambooth-class-images', { class: db.class, count: db.numClassImages, seed: db.seed, batchSize: gen.batchSize, ...samplerSettings(gen) }, { pretrained: pretrainedSha });
  if (existsSync(path)) {
    try {
      const f = decodeSafetensors(new Uint8Array(readFileSync(path)));
      if (f.metadata.key === key) {
        job.log(`fad: dreambooth: reusing ${db.numClassImages} class images from ${path}`);
        return f.tensors.images.data as Float32Array;
      }
    } catch {
      /* unreadable: generate again */
    }
  }
  const c = model.config;
  const per = c.sampleSize * c.sampleSize * c.inChannels;
  const out = new Float32Array(db.numClassImages * per);
  const scheduler = makeScheduler(gen.sampler, schedulerJson as never);
  const g = new Generator((db.seed + 7) >>> 0);
  const progress = new Progress({ label: 'dreambooth class images', total: db.numClassImages, quiet: job.quiet });
  for (let s = 0; s < db.numClassImages; s += gen.batchSize) {
    const n = Math.min(gen.batchSize, db.numClassImages - s);
    const x = await sampleImages({
      model, scheduler, classLabels: new Array(n).fill(classLabel), numInferenceSteps: gen.steps, guidanceScale: gen.guidanceScale,
      eta: gen.sampler === 'ddim' ? gen.eta : undefined, generator: g,
    });
    out.set(x.dataSync() as Float32Array, s * per);
    x.dispose();
    progress.update(s + n);
    if (job.interrupt?.requested) throw new InterruptedError('interrupted while generating the DreamBooth class images');
  }
  progress.end();
  mkdirSync(resolve(path, '..'), { recursive: true });
  writeFileAtomicSync(path, encodeSafetensors({
    tensors: { images: { dtype: 'F32', shape: [db.numClassImages, c.sampleSize, c.sampleSize, c.inChannels], data: out } },
    metadata: { format: 'fad-dreambooth-class-images/1', key, class: String(db.class), range: '[0, 1]' },
  }));
  return out;
}

/** Runs (or reuses) a DreamBooth fine-tuning job. */
export async function trainDreamBooth(job: DreamBoothJob): Promise<DreamBoothResult> {
  const { cfg, data, dir, log } = job;
  const db = cfg.dreambooth;
  const a = cfg.alignment;
  if (!db.class) throw new CliError('DreamBooth needs a class: --dreambooth CLASS (or dreambooth.class)');
  if (a.enabled && !job.expert) throw new CliError('feature alignment needs an expert: pass --expert CHECKPOINT or set expert.checkpoint');
  const className = db.class;
  const classLabel = data.classNames.indexOf(className);
  if (classLabel < 0) throw new CliError(`--dreambooth ${className}: not a class of the data (${data.classNames.join(', ')})`);
  const loaded = loadModel(job.pretrained, 'the pretrained model');
  let model = loaded.model;
  try {
    if (loaded.autoencoder) {
      loaded.autoencoder.dispose();
      throw new CliError(`the pretrained model ${job.pretrained} is a latent-diffusion model; DreamBooth fine-tunes pixel models only`);
    }
    if (JSON.stringify(loaded.classNames) !== JSON.stringify(data.classNames)) {
      throw new CliError(`the pretrained model ${job.pretrained} was trained on the classes ${loaded.classNames.join(', ')}, the data has ${data.classNames.join(', ')}`);
    }
    if (model.config.sampleSize !== data.imageSize || model.config.inChannels !== data.channels) {
      throw new CliError(`the pretrained model ${job.pretrained} makes ${model.config.sampleSize}x${model.config.sampleSize}x${model.config.inChannels} images, the data is ${data.imageSize}x${data.imageSize}x${data.channels}`);
    }
    if ((model.config.conditioningTokens ?? []).some((t) => t.name === db.token)) {
      throw new CliError(`the pretrained model already has a token "${db.token}"; choose another --token`);
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
  const key = dreamBoothStepKey(cfg, data, loaded.sha256, a.enabled && job.expert ? job.expert.sha256 : null);
  const modelPath = join(dir, MODEL_FILE);
  const metricsPath = join(dir, 'metrics.jsonl');
  mkdirSync(dir, { recursive: true });
  removeStaleTemps({ dir, log });
  const outputs = [MODEL_FILE, 'metrics.jsonl', 'instances.json', 'align.safetensors'];
  const describe = { finished: 'a finished DreamBooth run', inputs: 'inputs' };
  let prepared: ReturnType<typeof prepareStep>;
  try {
    prepared = prepareStep({ dir, key, resume: false, force: job.force, outputs, describe });
  } catch (e) {
    // A stale finished run (another key) is replaced when the caller says so (replaceStale).
    if (!job.replaceStale || !(e instanceof CliError)) {
      model.dispose();
      throw e;
    }
    prepared = { action: 'start' };
  }
  if (prepared.action === 'reuse') {
    model.dispose();
    log(`fad: ${dir} is already fine-tuned with this config (key ${key}); reusing it`);
    return { dir, modelPath, steps: db.steps, finalLoss: Number(prepared.marker.finalLoss), reused: true, key, className, token: db.token };
  }
  for (const f of [COMPLETE_FILE, ...outputs]) rmSync(join(dir, f), { force: true });

  let loss: FeatureAlignmentLoss | null = null;
  let trainer: DreamBoothTrainer | null = null;
  // TensorBoard events beside metrics.jsonl, as fad train writes them (run.reportTo); a fresh run
  // removes the old events files (DreamBooth runs are not resumable).
  let tensorboard: TensorBoardWriter | null = null;
  try {
    tensorboard = openRunTensorBoard({ cfg, dir, resumeStep: null });
    const instances = chooseInstances(data, classLabel, db.instanceImages, db.seed, className);
    writeJsonAtomic(join(dir, 'instances.json'), { class: className, token: db.token, indices: instances, seed: db.seed });
    const prior = db.withPriorPreservation ? await classImages(job, model, loaded.schedulerConfig, loaded.sha256, classLabel) : null;
    const withToken = addConditioningToken({ model, fromClass: classLabel, name: db.token });
    model.dispose();
    model = withToken.model;
    const objectives: TrainingObjective[] = [];
    if (a.enabled && job.expert) {
      const made = makeAlignmentObjective({ model, alignment: a, expert: job.expert, seed: (db.seed + 2) >>> 0 });
      loss = made.loss;
      objectives.push(made.objective);
    }
    // Instance and prior images go through the model together: a step sees twice the batch with prior preservation.
    const micro = chooseMicroBatch({ backend: job.backend, batchSize: db.batchSize * (db.withPriorPreservation ? 2 : 1), configured: cfg.diffusion.microBatchSize, unet: model.config, what: 'of instance and prior images' });
    if (micro.message) log(micro.message);
    trainer = new DreamBoothTrainer({
      model,
      scheduler: new DDPMScheduler(loaded.schedulerConfig),
      token: db.token,
      priorLossWeight: db.priorLossWeight,
      trainEmbeddings: db.trainEmbeddings,
      seed: db.seed,
      optimizer: { learningRate: db.learningRate },
      lrSchedule: { type: 'constant', warmupSteps: 0 },
      gradClipNorm: db.gradClipNorm,
      emaDecay: db.emaDecay,
      condDropProb: db.condDropProb,
      diffusionLossWeight: a.enabled ? a.lambda1 : 1,
      objectives,
      microBatchSize: micro.microBatchSize ?? undefined,
    });
    const instanceOrder = new DataOrder({ indices: instances, seed: (db.seed + 1) >>> 0 });
    const numPrior = prior ? db.numClassImages : 0;
    const priorOrder = new DataOrder({ indices: Array.from({ length: numPrior }, (_, i) => i), seed: (db.seed + 3) >>> 0 });
    const priorData = prior ? { images: prior, imageSize: data.imageSize, channels: data.channels } : null;
    const t0 = Date.now();
    let window = emptyMetricsWindow();
    let lastLoss = NaN;
    const progress = new Progress({ label: `dreambooth ${className}${a.enabled ? ' + alignment' : ''}`, total: db.steps, quiet: job.quiet });
    log(`fad: dreambooth: ${instances.length} instance image(s) of "${className}" as token "${db.token}" (label ${withToken.label})${prior ? `, prior preservation on ${numPrior} class images (weight ${db.priorLossWeight})` : ', no prior preservation'}${a.enabled ? `, feature alignment (${a.alignTo})` : ''}; embeddings trained: ${db.trainEmbeddings}`);
    for (let step = 1; step <= db.steps; step++) {
      const inst = makeBatch({ images: data.images, imageSize: data.imageSize, channels: data.channels, indices: instanceOrder.next(db.batchSize), order: instanceOrder, hflip: cfg.data.hflip, vflip: cfg.data.vflip });
      const pri = priorData ? makeBatch({ ...priorData, indices: priorOrder.next(db.batchSize), order: priorOrder }) : null;
      let r;
      try {
        r = trainer.step({ instanceImages: inst, priorImages: pri });
      } finally {
        inst.dispose();
        pri?.dispose();
      }
      lastLoss = r.loss;
      const result = r;
      window = withLibraryErrors(() => logTrainingStep({ metricsPath, window, step, result, logEvery: db.logEvery, lastStep: db.steps, sink: tensorboard }));
      progress.update(step, `loss ${r.loss.toFixed(4)}`);
      await new Promise<void>((res) => setImmediate(res));
      if (job.interrupt?.requested && step < db.steps) {
        progress.end();
        throw new InterruptedError(`interrupted at DreamBooth step ${step}/${db.steps}; DreamBooth runs are not resumable: run the command again to start over`);
      }
    }
    progress.end();
    if (trainer.trainer.ema) trainer.copyEmaTo();
    const meta = {
      classes: JSON.stringify(data.classNames),
      dreambooth: JSON.stringify({ class: className, classLabel, token: db.token, tokenLabel: withToken.label, settings: db, pretrained: relative(dir, resolve(job.pretrained)), pretrainedSha256: loaded.sha256 }),
      alignment: JSON.stringify(a.enabled ? a : null),
      steps: String(db.steps),
      weights: trainer.trainer.ema ? 'ema' : 'raw',
      ...(loaded.metadata.scheduler ? { scheduler: loaded.metadata.scheduler } : {}),
      backend: job.backend,
      key,
    };
    withLibraryErrors(() => assertFiniteTraining({ modules: [model, loss], step: db.steps, what: `the final model ${modelPath}` }));
    writeFileAtomicSync(modelPath, serializeUNet(model, { ...meta, [STATUS_KEY]: STATUS_COMPLETE }), 'the final model');
    writeComplete(dir, { step: 'train-dreambooth', key, steps: db.steps, finalLoss: lastLoss, backend: job.backend, modelSha256: sha256(readFileSync(modelPath)), elapsedSeconds: (Date.now() - t0) / 1000 });
    return { dir, modelPath, steps: db.steps, finalLoss: lastLoss, reused: false, key, className, token: db.token };
  } finally {
    trainer?.dispose();
    model.dispose();
    loss?.dispose();
    tensorboard?.close();
  }
}

export interface DreamBoothGenerateJob {
  checkpoint: string;
  out: string;
  gen: GenerateSection;
  backend: string;
  key?: string;
  quiet?: boolean;
}

/**
 * Generates `gen.imagesPerClass` images per seed with the DreamBooth token into `OUT/<class>/` with a
 * `fad generate` manifest whose intended class is the token's original class, so `fad evaluate`
 * (and the experiment) measure whether the expert still recognises the class. `gen.classes`,
 * `gen.matchMean` and `gen.expertGuidance` do not apply; an existing `OUT` is replaced.
 */
export async function generateDreamBooth(job: DreamBoothGenerateJob): Promise<GenerateManifest> {
  const gen = { ...job.gen, matchMean: { ...job.gen.matchMean, enabled: false }, expertGuidance: undefined };
  return generateImages({ ...job, gen, force: true, dreamBoothToken: true, log: () => {} });
}
