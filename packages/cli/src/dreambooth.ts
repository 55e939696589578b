/**
 * DreamBooth fine-tuning as a job (`fad train --dreambooth CLASS --pretrained MODEL`, and the
 * experiment's DreamBooth arm), as wiring over `trainDreamBoothRun` of @fad/diffusion-core/node: a
 * trained class-conditional U-Net is fine-tuned on `dreambooth.instanceImages` training images of
 * one class, bound to a new identifier token (initialised from the class's embedding), with prior
 * preservation on `dreambooth.numClassImages` class images the model generated before fine-tuning
 * (conditioned on the class; loss `mse(instance) + priorLossWeight * mse(prior)`). With
 * `alignment.enabled` the feature-alignment objective applies to the whole batch, the instance and
 * the prior images alike (the prior images stand for the class, whose features should stay aligned).
 * What stays here: the config as the run's params, the step key, the checks of the pretrained
 * model file against the data and the flags, the alignment objective, the wasm micro-batch choice,
 * the model file's metadata, progress and log lines, the TensorBoard writer, and the library's
 * errors as the CLI's.
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
import { mkdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { DDPMScheduler, type TrainingObjective } from '@fad/diffusion-core';
import { prepareDreamBoothRun, trainDreamBoothRun } from '@fad/diffusion-core/node';
import type { FeatureAlignmentLoss } from '@fad/feature-align';
import type { FadConfig, GenerateSection } from './config';
import { CliError, fromLibraryError, InterruptedError, withLibraryErrors } from './errors';
import type { LoadedExpertModel } from './expert';
import { type DiffusionResult, type TrainingData, makeAlignmentObjective, makeScheduler, pickData } from './diffusion';
import { CLI_FLAGS, sha256, stepKey } from './fsutil';
import { type GenerateManifest, generateImages, loadModel } from './generate';
import { chooseMicroBatch } from './memory-fit';
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

function samplerSettings(g: GenerateSection) {
  return { sampler: g.sampler, steps: g.steps, guidanceScale: g.guidanceScale, eta: g.eta };
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

/** Runs (or reuses) a DreamBooth fine-tuning job. */
export async function trainDreamBooth(job: DreamBoothJob): Promise<DreamBoothResult> {
  const { cfg, data } = job;
  const db = cfg.dreambooth;
  const a = cfg.alignment;
  if (!db.class) throw new CliError('DreamBooth needs a class: --dreambooth CLASS (or dreambooth.class)');
  if (a.enabled && !job.expert) throw new CliError('feature alignment needs an expert: pass --expert CHECKPOINT or set expert.checkpoint');
  const className = db.class;
  const classLabel = data.classNames.indexOf(className);
  if (classLabel < 0) throw new CliError(`--dreambooth ${className}: not a class of the data (${data.classNames.join(', ')})`);
  const loaded = loadModel(job.pretrained, 'the pretrained model');
  const model = loaded.model;
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
    return await trainDreamBoothIn(job, loaded, classLabel);
  } finally {
    model.dispose();
  }
}

async function trainDreamBoothIn(job: DreamBoothJob, loaded: ReturnType<typeof loadModel>, classLabel: number): Promise<DreamBoothResult> {
  const { cfg, data, dir, log } = job;
  const db = cfg.dreambooth;
  const a = cfg.alignment;
  const gen = cfg.generate;
  const className = db.class as string;
  const { model } = loaded;
  const key = dreamBoothStepKey(cfg, data, loaded.sha256, a.enabled && job.expert ? job.expert.sha256 : null);
  const onLog = (m: string) => log(`fad: ${m}`);
  mkdirSync(dir, { recursive: true });
  removeStaleTemps({ dir, log });
  // The align.safetensors of earlier versions is removed with the run's own outputs.
  const prepared = withLibraryErrors(() => prepareDreamBoothRun({ dir, key, force: job.force, replaceStale: job.replaceStale, outputs: ['align.safetensors'], flags: CLI_FLAGS }));
  if (prepared.action === 'reuse') {
    log(`fad: ${dir} is already fine-tuned with this config (key ${key}); reusing it`);
    return { dir, modelPath: join(dir, 'model.safetensors'), steps: db.steps, finalLoss: Number(prepared.marker.finalLoss), reused: true, key, className, token: db.token };
  }
  let loss: FeatureAlignmentLoss | null = null;
  // TensorBoard events beside metrics.jsonl, as fad train writes them (run.reportTo); a fresh run
  // removes the old events files (DreamBooth runs are not resumable).
  let tensorboard: TensorBoardWriter | null = null;
  // Progress bars, made when the run reaches them (the class images, the steps).
  const bars: { classImages: Progress | null; steps: Progress | null } = { classImages: null, steps: null };
  try {
    tensorboard = openRunTensorBoard({ cfg, dir, resumeStep: null });
    const objectives: TrainingObjective[] = [];
    if (a.enabled && job.expert) {
      const made = makeAlignmentObjective({ model, alignment: a, expert: job.expert, seed: (db.seed + 2) >>> 0 });
      loss = made.loss;
      objectives.push(made.objective);
    }
    // Instance and prior images go through the model together: a step sees twice the batch with prior preservation.
    const micro = chooseMicroBatch({ backend: job.backend, batchSize: db.batchSize * (db.withPriorPreservation ? 2 : 1), configured: cfg.diffusion.microBatchSize, unet: model.config, what: 'of instance and prior images' });
    const interrupt = job.interrupt;
    const run = await trainDreamBoothRun({
      model,
      scheduler: new DDPMScheduler(loaded.schedulerConfig),
      data: { images: data.images, labels: data.labels, imageSize: data.imageSize, channels: data.channels, indices: data.indices },
      classLabel,
      classNames: data.classNames,
      token: db.token,
      instanceImages: db.instanceImages,
      seed: db.seed,
      steps: db.steps,
      batchSize: db.batchSize,
      trainer: {
        priorLossWeight: db.priorLossWeight,
        trainEmbeddings: db.trainEmbeddings,
        optimizer: { learningRate: db.learningRate },
        lrSchedule: { type: 'constant', warmupSteps: 0 },
        gradClipNorm: db.gradClipNorm,
        emaDecay: db.emaDecay,
        condDropProb: db.condDropProb,
        diffusionLossWeight: a.enabled ? a.lambda1 : 1,
        microBatchSize: micro.microBatchSize ?? undefined,
      },
      objectives,
      modules: loss ? [loss] : [],
      prior: db.withPriorPreservation
        ? {
            count: db.numClassImages, scheduler: makeScheduler(gen.sampler, loaded.schedulerConfig as never), sampler: gen.sampler, steps: gen.steps,
            guidanceScale: gen.guidanceScale, eta: gen.eta, batchSize: gen.batchSize, path: job.priorPath,
          }
        : null,
      modelSha256: loaded.sha256,
      hflip: cfg.data.hflip,
      vflip: cfg.data.vflip,
      dir,
      key,
      prepared,
      logEvery: db.logEvery,
      backend: job.backend,
      sink: tensorboard,
      signal: { get aborted() { return interrupt?.requested ?? false; } },
      onLog,
      onClassImages: ({ done, total }) => {
        if (done === 0) bars.classImages = new Progress({ label: 'dreambooth class images', total, quiet: job.quiet });
        else bars.classImages?.update(done);
      },
      onStart: ({ instances, tokenLabel, priorImages }) => {
        if (micro.message) log(micro.message);
        bars.steps = new Progress({ label: `dreambooth ${className}${a.enabled ? ' + alignment' : ''}`, total: db.steps, quiet: job.quiet });
        log(`fad: dreambooth: ${instances.length} instance image(s) of "${className}" as token "${db.token}" (label ${tokenLabel})${priorImages ? `, prior preservation on ${priorImages} class images (weight ${db.priorLossWeight})` : ', no prior preservation'}${a.enabled ? `, feature alignment (${a.alignTo})` : ''}; embeddings trained: ${db.trainEmbeddings}`);
      },
      onProgress: ({ step, loss: l }) => bars.steps?.update(step, `loss ${l.toFixed(4)}`),
      modelMetadata: ({ tokenLabel, weights }) => ({
        classes: JSON.stringify(data.classNames),
        dreambooth: JSON.stringify({ class: className, classLabel, token: db.token, tokenLabel, settings: db, pretrained: relative(dir, resolve(job.pretrained)), pretrainedSha256: loaded.sha256 }),
        alignment: JSON.stringify(a.enabled ? a : null),
        steps: String(db.steps),
        weights,
        ...(loaded.metadata.scheduler ? { scheduler: loaded.metadata.scheduler } : {}),
        backend: job.backend,
        key,
      }),
      flags: CLI_FLAGS,
    }).catch((e: unknown) => {
      throw fromLibraryError(e);
    });
    if (run.status === 'interrupted') {
      if (run.phase === 'class-images') throw new InterruptedError('interrupted while generating the DreamBooth class images');
      bars.steps?.end();
      throw new InterruptedError(`interrupted at DreamBooth step ${run.step}/${db.steps}; DreamBooth runs are not resumable: run the command again to start over`);
    }
    bars.steps?.end();
    return { dir, modelPath: run.modelPath, steps: db.steps, finalLoss: run.finalLoss, reused: false, key, className, token: db.token };
  } finally {
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
