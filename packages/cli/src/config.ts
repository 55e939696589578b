/**
 * The `fad` configuration: one YAML file (in the spirit of the reference implementation's
 * `config.yml`), validated with zod. Every key has a default, so an empty file is a valid config for
 * the paper's experiment at full scale; command-line flags override single keys afterwards.
 *
 * Validation errors name the key, its path, the value received and what is allowed, e.g.
 * `config: diffusion.steps: must be an integer > 0, got -3` or
 * `config: alignment.alignTo: must be one of "noisy", "clean", got "both"` or
 * `config: diffusion: unknown key "stepz"; allowed keys: unet, steps, batchSize, ...`.
 */
import { readFileSync } from 'node:fs';
import {
  AUTOENCODER_PRESETS,
  BUILTIN_BETA_SCHEDULE_NAMES,
  BUILTIN_SCHEDULER_NAMES,
  EMBEDDING_TRAINING_MODES,
  LR_SCHEDULE_TYPES,
  PREDICTION_TYPES,
  TIMESTEP_SPACINGS,
  UNET_PRESETS,
} from '@fad/diffusion-core';
import { BACKEND_NAMES } from '@fad/diffusion-core/backend';
import { EXPERT_ARCHS, GUIDANCE_KINDS } from '@fad/expert-models';
import { ALIGNMENT_CENTERINGS, ALIGNMENT_TARGETS, INPUT_ADAPTATION_NAMES, LATENT_EXPERT_INPUTS, PROJECTION_KINDS } from '@fad/feature-align';
import { EXPERIMENT_VARIANTS } from '@fad/feature-align/node';
import YAML from 'yaml';
import { z } from 'zod';
import { CliError } from './errors';
import { LIMITS } from './limits';

/**
 * A zod enum over a vocabulary a library exports (scheduler names, prediction types, expert archs,
 * ...): the libraries spell each list once, the config follows them.
 */
function oneOf<const T extends string>(values: readonly T[]) {
  return z.enum(values as unknown as [T, ...T[]]);
}

/** The U-Net preset names, in the config's documented order (UNET_PRESETS of @fad/diffusion-core). */
const UNET_PRESET_NAMES = Object.keys(UNET_PRESETS) as Array<keyof typeof UNET_PRESETS>;
/** The autoencoder preset names (AUTOENCODER_PRESETS of @fad/diffusion-core). */
const AUTOENCODER_PRESET_NAMES = Object.keys(AUTOENCODER_PRESETS) as Array<keyof typeof AUTOENCODER_PRESETS>;

const posInt = () => z.number().int().positive();
/** Sizes and counts have upper bounds (limits.ts, the README's "Limits"), so a value that cannot work is an error before any allocation. */
const batchInt = () => posInt().max(LIMITS.maxBatchSize);
const stepsInt = () => posInt().max(LIMITS.maxSteps);
/** A list of names (classes) with no repeats: the repeat is an error naming its index. */
const uniqueNames = <T extends z.ZodType<string[] | null>>(schema: T) =>
  schema.superRefine((names, ctx) => {
    if (!names) return;
    const seen = new Map<string, number>();
    names.forEach((n, i) => {
      if (seen.has(n)) ctx.addIssue({ code: 'custom', path: [i], message: `repeats "${n}" (item ${seen.get(n)}); each class may be named once` });
      else seen.set(n, i);
    });
  });
const nonNegInt = () => z.number().int().nonnegative();
const seedInt = () => z.number().int().min(0).max(0xffffffff);

/** Schema of every section. `z.strictObject` makes an unknown key an error. */
export const DataConfigSchema = z.strictObject({
  /** Folder of class subfolders (PNG/TIFF/JPEG). Relative paths are relative to the config file. */
  dir: z.string().min(1).nullable().default(null),
  /** Images are resized to imageSize x imageSize. */
  imageSize: posInt().max(LIMITS.maxImageSize).default(64),
  /** 1: converted to grayscale (ITU-R BT.601 luma); 3: RGB. */
  channels: z.union([z.literal(1), z.literal(3)]).default(1),
  /** `area` (box filter: every source pixel weighs in, no aliasing; PIL BOX / OpenCV INTER_AREA) or `bilinear`. */
  resize: z.enum(['area', 'bilinear']).default('area'),
  /** Class names (after the Kather mapping, e.g. `tumor`) to use, in label order; null: every folder, sorted. */
  classes: uniqueNames(z.array(z.string().min(1)).min(2).max(LIMITS.maxClasses).nullable()).default(null),
  /** Use at most this many images per class (the first in sorted file-name order); null: all. */
  maxPerClass: posInt().nullable().default(null),
  /** Share of each class held out for validation (stratified, seeded, saved as split.json). */
  validationFraction: z.number().min(0).lt(1).default(0.2),
  splitSeed: seedInt().default(0),
  /** A file that cannot be used: `error` stops with its name and the reason; `skip` warns, skips it and counts it. */
  onBadFile: z.enum(['error', 'skip']).default('error'),
  /** Random flips of diffusion training batches. */
  hflip: z.boolean().default(true),
  vflip: z.boolean().default(true),
});

export const ExpertConfigSchema = z.strictObject({
  arch: oneOf(EXPERT_ARCHS).default('resnet'),
  /** A preset of @fad/expert-models (default: `resnet50-kather` for resnet, `vit-small-kather` for vit). */
  preset: z.string().min(1).nullable().default(null),
  /** Architecture fields overriding the preset (e.g. `{ layers: [1, 1], baseWidth: 8 }`); checked by @fad/expert-models. */
  architecture: z.record(z.string(), z.unknown()).default({}),
  epochs: posInt().max(100_000).default(10),
  batchSize: batchInt().default(32),
  learningRate: z.number().positive().default(1e-4),
  weightDecay: z.number().nonnegative().default(0),
  /** Training augmentation of @fad/expert-models (flips, resampling, blur, contrast...). */
  augment: z.boolean().default(true),
  /**
   * Train on diffusion-noised inputs x_t (t uniform over diffusion.scheduler's timesteps), the
   * expert to guide sampling with (generate.expertGuidance); validation stays on clean images.
   */
  noiseAware: z.boolean().default(false),
  /** Use this expert checkpoint instead of training one (relative to the config file). */
  checkpoint: z.string().min(1).nullable().default(null),
  /**
   * Fine-tune from a torchvision ResNet state dict in safetensors (relative to the config file);
   * its backbone (block, layers, widths) replaces the preset's, the head is new (the preset's head
   * type, the data's classes). null: random initial weights.
   */
  pretrained: z.string().min(1).nullable().default(null),
  /** With `pretrained` on 1-channel data and a 3-channel file: sum the RGB conv1 kernels (`sum-rgb`) or a new seeded conv1 (`new`, also with matching channels). */
  pretrainedConv1: z.enum(['sum-rgb', 'new']).default('sum-rgb'),
  seed: seedInt().default(0),
  /** Write the resumable training state every N steps (null: after every epoch); always at the end and on Ctrl-C. */
  checkpointEvery: posInt().nullable().default(null),
});

export const UNetSectionSchema = z.strictObject({
  /** A UNET_PRESETS name of @fad/diffusion-core. */
  preset: oneOf(UNET_PRESET_NAMES).default('histology64'),
  /** UNetConfig fields overriding the preset (sampleSize, inChannels and numClasses come from the data). */
  overrides: z.record(z.string(), z.unknown()).default({}),
});

export const SchedulerSectionSchema = z.strictObject({
  betaSchedule: oneOf(BUILTIN_BETA_SCHEDULE_NAMES).default('linear'),
  numTrainTimesteps: posInt().max(LIMITS.maxTrainTimesteps).default(1000),
  predictionType: oneOf(PREDICTION_TYPES).default('epsilon'),
  /**
   * Rescale the betas to zero terminal SNR (Lin et al. 2024): the model trains on pure noise at
   * t = T-1, where sampling starts. Needs predictionType v_prediction or sample; sample with
   * generate.timestepSpacing trailing.
   */
  rescaleBetasZeroSnr: z.boolean().default(false),
}).superRefine((s, ctx) => {
  if (s.rescaleBetasZeroSnr && s.predictionType === 'epsilon') {
    ctx.addIssue({
      code: 'custom',
      path: ['rescaleBetasZeroSnr'],
      message: 'needs predictionType v_prediction or sample (at zero terminal SNR an epsilon prediction says nothing about x_0)',
    });
  }
});

/**
 * Validation samples while training (`diffusion.validation`; absent: off, and the step key is that
 * of a run without it). Every `every` steps, a fixed-seed grid (one row per class, `imagesPerClass`
 * columns) is sampled from the EMA weights (the raw weights without EMA) with its own RNG, so the
 * trained weights are identical with and without validation; it is written to
 * `validation/step-NNNNNN.png` and a record with the grid's per-class mean intensity and contrast
 * (and the judge's accuracy on it) is appended to metrics.jsonl, with the seconds it took.
 */
export const DiffusionValidationSchema = z.strictObject({
  /** Sample a grid every N training steps; 0: off. */
  every: nonNegInt().default(0),
  /** Seed of the grid's own generator (the same noise at every validation). */
  seed: seedInt().default(0),
  /** Columns of the grid (images per class). */
  imagesPerClass: posInt().max(64).default(4),
  sampler: z.enum(['ddim', 'ddpm']).default('ddim'),
  /** Denoising steps per grid. */
  steps: posInt().max(LIMITS.maxTrainTimesteps).default(25),
  /** Classifier-free guidance scale (1: conditional prediction only). */
  guidanceScale: z.number().nonnegative().default(1),
  /** DDIM eta (0: deterministic). */
  eta: z.number().nonnegative().default(0),
  /** An expert checkpoint (relative to the config file) whose accuracy on the grid is logged; null: none. */
  judge: z.string().min(1).nullable().default(null),
});

export const DiffusionConfigSchema = z.strictObject({
  unet: UNetSectionSchema.prefault({}),
  scheduler: SchedulerSectionSchema.prefault({}),
  /** Optimisation steps (batches). */
  steps: stepsInt().default(20000),
  batchSize: batchInt().default(16),
  /**
   * Split each batch into chunks of this size (same result, less memory); null: whole batches,
   * except on the wasm backend, where fad picks micro-batches that fit its memory (memory-fit.ts).
   */
  microBatchSize: batchInt().nullable().default(null),
  learningRate: z.number().positive().default(1e-4),
  lrSchedule: oneOf(LR_SCHEDULE_TYPES).default('cosine'),
  warmupSteps: nonNegInt().default(500),
  minLearningRate: z.number().nonnegative().default(0),
  gradClipNorm: z.number().positive().nullable().default(1),
  /** EMA of the weights (the EMA weights are what is saved and sampled); null: no EMA. */
  emaDecay: z.number().min(0).lt(1).nullable().default(0.999),
  /** EMA decay warm-up as in diffusers' EMAModel: min(emaDecay, (1 + s) / (10 + s)) at update s + 1 (diffusion-core's EmaOptions.warmup). */
  emaWarmup: z.boolean().default(false),
  /** Label dropout for classifier-free guidance. */
  condDropProb: z.number().min(0).lt(1).default(0.1),
  /** Offset noise: add noiseOffset * N(0, 1) per image and channel to the noise (diffusers' --noise_offset; e.g. 0.1). 0: off. */
  noiseOffset: z.number().min(0).default(0),
  /** Min-SNR-gamma loss weighting (Hang et al. 2023; the paper uses 5). null: the plain MSE. */
  snrGamma: z.number().positive().nullable().default(null),
  /** Write a resumable checkpoint every N steps (and always at the end and on Ctrl-C). */
  checkpointEvery: posInt().default(500),
  /** Append the mean loss to metrics.jsonl every N steps. */
  logEvery: posInt().default(10),
  seed: seedInt().default(0),
  /** Validation samples while training (see DiffusionValidationSchema); optional so that configs without it keep their step keys. */
  validation: DiffusionValidationSchema.optional(),
  /**
   * `pixel`: the U-Net trains on the images; `latent`: on the scaled latents of the frozen
   * autoencoder `diffusion.autoencoder` (latent diffusion; its samples are decoded to pixels).
   */
  space: z.enum(['pixel', 'latent']).default('pixel'),
  /** With space latent: the autoencoder of `fad autoencoder train` (autoencoder.safetensors; relative to the config file). */
  autoencoder: z.string().min(1).nullable().default(null),
  /**
   * Fine-tune a pretrained diffusers UNet2DConditionModel instead of a new U-Net of `unet.preset`:
   * its folder (config.json + diffusion_pytorch_model.safetensors, or a pipeline folder with unet/;
   * relative to the config file). conv_in/conv_out are replaced when the data's channels differ,
   * class embeddings (`unet.overrides.classEmbeddingDim` wide, mapped to cross_attention_dim) are
   * added; `fad train --pretrained-diffusers DIR`. null: train from scratch.
   */
  pretrainedDiffusers: z.string().min(1).nullable().default(null),
}).superRefine((d, ctx) => {
  if (d.space === 'latent' && !d.autoencoder) {
    ctx.addIssue({ code: 'custom', path: ['autoencoder'], message: 'is required when diffusion.space is latent: the autoencoder.safetensors written by fad autoencoder train' });
  }
});

export const AlignmentConfigSchema = z.strictObject({
  /** Feature alignment on (`fad train --feature-alignment`); off is the vanilla baseline. */
  enabled: z.boolean().default(false),
  /** What the expert sees: the noisy input x_t (the paper) or the clean image x_0. */
  alignTo: oneOf(ALIGNMENT_TARGETS).default('noisy'),
  /** Weight of the diffusion loss. */
  lambda1: z.number().nonnegative().default(1),
  /** Weight of the alignment loss. */
  lambda2: z.number().nonnegative().default(1),
  /** U-Net activation aligned with the expert's features. */
  tap: z.string().min(1).default('down_out'),
  projection: oneOf(PROJECTION_KINDS).default('linear'),
  /** `spec`: images adapted to the expert's input spec; `raw`: unchanged (the reference implementation). */
  inputAdaptation: oneOf(INPUT_ADAPTATION_NAMES).default('spec'),
  /** `none`: the paper's loss; `batch`: both operands centred over the batch first (@fad/feature-align). */
  centering: oneOf(ALIGNMENT_CENTERINGS).default('none'),
  /**
   * With diffusion.space latent and alignTo noisy, what the expert sees as x_t: `decoded`, the
   * decoded noisy latent D(z_t); `pixel-noised`, the pixel image noised to the same alpha-bar_t
   * (see @fad/feature-align, "Feature alignment in latent space"). Ignored in pixel space.
   */
  latentExpertInput: oneOf(LATENT_EXPERT_INPUTS).default('decoded'),
});

export const MatchMeanSchema = z.strictObject({
  /**
   * The reference implementation's filter: keep only generated images whose mean intensity lies
   * within k standard deviations of the real class's mean image intensity. Off by default: it
   * discards samples the model produced, so it biases every metric computed afterwards.
   */
  enabled: z.boolean().default(false),
  k: z.number().positive().default(1),
  /** Give up on an image slot after this many rejected candidates (the last one is kept and flagged). */
  maxAttempts: posInt().default(10),
});

/** Gradient guidance by an expert at sampling time (absent or kind "none": off). */
export const ExpertGuidanceSchema = z.strictObject({
  /**
   * `classifier`: climb log p(class | x_t) (Dhariwal & Nichol); `entropy`, `margin`,
   * `least-confidence`: climb the expert's uncertainty (Yang et al., TPAMI 2024), towards hard,
   * boundary samples.
   */
  kind: oneOf(['none', ...GUIDANCE_KINDS] as const).default('none'),
  /** s in g = s * grad_x E(x_t); 0 = unguided. Separate from guidanceScale (classifier-free). */
  scale: z.number().nonnegative().default(1),
  /** The guiding expert's checkpoint (relative to the config file); null: expert.checkpoint. */
  expert: z.string().min(1).nullable().default(null),
  /** Yang et al.'s two-stage variant: sample unguided, DDIM-invert to x_T, decode with guidance (ddim only). */
  twoStage: z.boolean().default(false),
  /** Guide only at timesteps >= this (0: every step). */
  minTimestep: nonNegInt().default(0),
});

export const GenerateConfigSchema = z.strictObject({
  /**
   * A built-in scheduler name of @fad/diffusion-core's registry (`schedulerFromName`): `ddim`, `ddpm`,
   * `dpm-solver++` (DPM-Solver++(2M), diffusers' DPMSolverMultistepScheduler defaults) or `dpm-solver`.
   */
  sampler: oneOf(BUILTIN_SCHEDULER_NAMES).default('ddim'),
  /** Denoising steps. */
  steps: posInt().max(LIMITS.maxTrainTimesteps).default(50),
  guidanceScale: z.number().nonnegative().default(2),
  /**
   * Guidance rescale phi in [0, 1] (Lin et al. 2024, section 3.4; diffusers' `guidance_rescale`):
   * rescales the classifier-free-guided prediction to the conditional one's standard deviation.
   * Absent: plain guidance (0). Lin et al. use 0.7 with zero terminal SNR.
   */
  guidanceRescale: z.number().min(0).max(1).optional(),
  /** DDIM eta (0: deterministic); ignored by the other samplers. */
  eta: z.number().nonnegative().default(0),
  /**
   * How the sampling timesteps are spaced: `leading` (diffusers' DDIM/DDPM default; the first step
   * is at T - T/n), `trailing` (starts at T-1; Lin et al. 2024) or `linspace`. Absent: the sampler's
   * default.
   */
  timestepSpacing: oneOf(TIMESTEP_SPACINGS).optional(),
  /** Clip the predicted x_0 to [-1, 1] at every step. Absent: the sampler's default (on for DDIM and DDPM). */
  clipSample: z.boolean().optional(),
  imagesPerClass: posInt().max(LIMITS.maxImagesPerClass).default(10),
  /** One full set of images per seed (the paper: 15 seeds). */
  seeds: z.array(seedInt()).min(1).max(LIMITS.maxSeeds).default(Array.from({ length: 15 }, (_, i) => i)),
  /** Class names to generate; null: every class. */
  classes: uniqueNames(z.array(z.string().min(1)).min(1).max(LIMITS.maxClasses).nullable()).default(null),
  /** Images per forward pass. */
  batchSize: batchInt().default(32),
  matchMean: MatchMeanSchema.prefault({}),
  /** Expert guidance; optional so that configs without it keep their step keys. */
  expertGuidance: ExpertGuidanceSchema.optional(),
});

export const EvaluateConfigSchema = z.strictObject({
  /** Classes counted in generation accuracy and diversity; null: all but `excludeClasses`. */
  classes: z.array(z.string().min(1)).min(1).nullable().default(null),
  /** Left out when `classes` is null (the paper leaves out "empty"). */
  excludeClasses: z.array(z.string().min(1)).default(['empty']),
  /** Real images compared with: the validation split or every image. */
  realSet: z.enum(['validation', 'all']).default('validation'),
  /** SSIM pairs per class at most (seeded subsample). */
  ssimMaxPairs: posInt().default(2000),
  /** SSIM window: `gaussian` (11x11, sigma 1.5, Wang et al.; images >= 11 px) or `uniform` (ssimWinSize x ssimWinSize, scikit-image's default). */
  ssimWindow: z.enum(['gaussian', 'uniform']).default('gaussian'),
  ssimWinSize: z.number().int().min(3).refine((v) => v % 2 === 1, 'must be odd').default(7),
  kidSubsets: posInt().max(100_000).default(100),
  kidSubsetSize: posInt().max(1_000_000).default(1000),
  batchSize: batchInt().default(64),
});

/**
 * DreamBooth fine-tuning of a trained model on a few images of one class bound to a new token
 * (`fad train --dreambooth CLASS --pretrained MODEL`, and the experiment's DreamBooth arm). The
 * names follow diffusers' `train_dreambooth.py`.
 */
export const DreamBoothConfigSchema = z.strictObject({
  /** The class to fine-tune on (the paper: `tumor`); `--dreambooth CLASS`. Required by experiment.dreambooth. */
  class: z.string().min(1).nullable().default(null),
  /** Name of the identifier token (the new conditioning embedding, initialised from the class's). */
  token: z.string().min(1).default('sks'),
  /** How many of the class's training images are the instance images (a seeded choice). */
  instanceImages: posInt().max(LIMITS.maxImagesPerClass).default(10),
  /** Prior preservation: add the loss on class images generated by the model before fine-tuning. */
  withPriorPreservation: z.boolean().default(true),
  /** Class images generated for prior preservation (with the generate.* sampler settings). */
  numClassImages: posInt().max(LIMITS.maxImagesPerClass).default(50),
  /** Weight of the prior-preservation loss. */
  priorLossWeight: z.number().nonnegative().default(1),
  /** Which conditioning embeddings train: `token` (its row only), `all` (the class table too), `none` (frozen; only the U-Net adapts). */
  trainEmbeddings: oneOf(EMBEDDING_TRAINING_MODES).default('token'),
  steps: stepsInt().default(400),
  /** Instance images per step (and as many prior images). */
  batchSize: batchInt().default(4),
  learningRate: z.number().positive().default(1e-5),
  gradClipNorm: z.number().positive().nullable().default(1),
  /** Label dropout, so classifier-free guidance keeps working after fine-tuning. */
  condDropProb: z.number().min(0).lt(1).default(0.1),
  /** EMA of the weights (null: none; short fine-tuning runs rarely want one). */
  emaDecay: z.number().min(0).lt(1).nullable().default(null),
  logEvery: posInt().default(10),
  /** Seed of the instance choice, the class images, noise and batch order. */
  seed: seedInt().default(0),
});

/**
 * The autoencoder of latent diffusion (`fad autoencoder train`): a small KL autoencoder of
 * @fad/diffusion-core (`AutoencoderKL`) trained with L1 + (1 - SSIM) + klWeight * KL
 * (+ perceptualWeight * the expert's feature distance), then checked for fidelity on the held-out
 * split (PSNR, SSIM, expert/judge accuracy on reconstructions against originals).
 */
export const AutoencoderConfigSchema = z.strictObject({
  /** An AUTOENCODER_PRESETS name of @fad/diffusion-core: `histology64` maps 64x64x1 to 16x16x4. */
  preset: oneOf(AUTOENCODER_PRESET_NAMES).default('histology64'),
  /** AutoencoderKLConfig fields overriding the preset (inChannels and outChannels come from the data). */
  overrides: z.record(z.string(), z.unknown()).default({}),
  steps: stepsInt().default(3000),
  batchSize: batchInt().default(16),
  learningRate: z.number().positive().default(1e-3),
  /** Linear warm-up of the learning rate over this many steps. */
  warmupSteps: nonNegInt().default(100),
  gradClipNorm: z.number().positive().nullable().default(1),
  /** Weights of the loss terms: mean absolute error, 1 - SSIM, KL to N(0, I), expert feature distance (needs --expert). */
  l1Weight: z.number().nonnegative().default(1),
  ssimWeight: z.number().nonnegative().default(1),
  klWeight: z.number().nonnegative().default(1e-6),
  perceptualWeight: z.number().nonnegative().default(0),
  /** Training images (the first of the split, unflipped) over which the latent scaling factor 1/std(z) is measured. */
  scalingImages: posInt().default(512),
  /** Held-out images in the fidelity check at most (null: the whole validation split). */
  fidelityImages: posInt().nullable().default(null),
  /** The fidelity check flags an expert/judge accuracy drop (originals minus reconstructions) above this many points. */
  maxAccuracyDrop: z.number().nonnegative().default(2),
  /** Write a resumable checkpoint every N steps (and always at the end and on Ctrl-C). */
  checkpointEvery: posInt().default(500),
  /** Append the mean loss terms to metrics.jsonl every N steps. */
  logEvery: posInt().default(10),
  seed: seedInt().default(0),
});

/**
 * `fad utility` (and the experiment's optional utility stage): does synthetic data help a downstream
 * classifier? Real-only at each fraction of the real training split, real + synthetic at each
 * fraction and ratio, synthetic-only; K seeds each; tested on the held-out real split.
 */
export const UtilityConfigSchema = z.strictObject({
  /** Shares of the real training split (stratified, seeded), each in (0, 1]. */
  fractions: z.array(z.number().gt(0).max(1)).min(1).default([0.05, 0.1, 0.25, 1]),
  /** Synthetic:real image ratios per class (an empty list: real-only and synthetic-only). */
  ratios: z.array(z.number().positive()).default([1, 4]),
  /** K training seeds per protocol (seeds 0..K-1): real subset, synthetic draw, initialisation. */
  seeds: posInt().default(3),
  /** The downstream classifier: it must differ from the generator's expert. */
  arch: oneOf(EXPERT_ARCHS).default('resnet'),
  /** A preset of @fad/expert-models (default: resnet18-kather for resnet, vit-small-kather for vit). */
  preset: z.string().min(1).nullable().default(null),
  /** Architecture fields overriding the preset (checked by @fad/expert-models). */
  architecture: z.record(z.string(), z.unknown()).default({}),
  epochs: posInt().default(12),
  batchSize: posInt().default(32),
  learningRate: z.number().positive().default(1e-3),
  weightDecay: z.number().nonnegative().default(0),
  /** The experts' robustness augmentation. */
  augment: z.boolean().default(true),
  /** Also train on each synthetic set alone (train synthetic, test real). */
  syntheticOnly: z.boolean().default(true),
  /** Bootstrap replicates of the 95% intervals. */
  bootstrapSamples: posInt().default(1000),
  /** What the bootstrap redraws: test images and seeds (default), or test images only. */
  bootstrapOver: z.enum(['seeds-and-images', 'images']).default('seeds-and-images'),
});

/** The experiment's variants (feature-align/node's `EXPERIMENT_VARIANTS`). */
export const VARIANT_NAMES = EXPERIMENT_VARIANTS;
export type VariantName = (typeof VARIANT_NAMES)[number];

export const ExperimentConfigSchema = z.strictObject({
  variants: z.array(z.enum(VARIANT_NAMES)).min(1).default([...VARIANT_NAMES]),
  /**
   * The DreamBooth arm (paper Fig. 4, second panel): fine-tune the baseline variant's model with
   * DreamBooth on `dreambooth.class`, with and without feature alignment, generate with the token
   * and the generate.* seeds, evaluate. Off by default.
   */
  dreambooth: z.boolean().default(false),
  /** The utility stage: `fad utility` over the variants' generated sets (utility.*), in RUN_DIR/utility. Off by default. */
  utility: z.boolean().default(false),
});

export const RunConfigSchema = z.strictObject({
  /** TensorFlow.js backend: auto picks the fastest installed (see selectBackend). */
  backend: oneOf(['auto', ...BACKEND_NAMES] as const).default('auto'),
  /** Threads of the native backend; null: all cores. */
  threads: posInt().nullable().default(null),
  /**
   * Precision of the native backend's convolutions and matmuls: fp32, or bf16 mixed precision
   * (bf16 inputs/weights, fp32 accumulation, fp32 weights/optimizer/norms; needs AVX512-BF16).
   * bf16 is an error on any other backend. fp32 leaves the backend's own setting alone.
   */
  precision: z.enum(['fp32', 'bf16']).default('fp32'),
  /**
   * Where training commands report besides metrics.jsonl (always written): `tensorboard` writes
   * events files (`events.out.tfevents.*`) beside it, for `tensorboard --logdir RUN_DIR`; `[]` none.
   * `--report-to tensorboard|none` sets it.
   */
  reportTo: z.array(z.enum(['tensorboard'])).default(['tensorboard']),
});

export const FadConfigSchema = z.strictObject({
  seed: seedInt().default(0),
  run: RunConfigSchema.prefault({}),
  data: DataConfigSchema.prefault({}),
  expert: ExpertConfigSchema.prefault({}),
  diffusion: DiffusionConfigSchema.prefault({}),
  alignment: AlignmentConfigSchema.prefault({}),
  dreambooth: DreamBoothConfigSchema.prefault({}),
  autoencoder: AutoencoderConfigSchema.prefault({}),
  generate: GenerateConfigSchema.prefault({}),
  evaluate: EvaluateConfigSchema.prefault({}),
  experiment: ExperimentConfigSchema.prefault({}),
  utility: UtilityConfigSchema.prefault({}),
});

export type FadConfig = z.infer<typeof FadConfigSchema>;
export type DataConfig = FadConfig['data'];
export type ExpertSection = FadConfig['expert'];
export type DiffusionSection = FadConfig['diffusion'];
export type AlignmentSection = FadConfig['alignment'];
export type DreamBoothSection = FadConfig['dreambooth'];
export type AutoencoderSection = FadConfig['autoencoder'];
export type GenerateSection = FadConfig['generate'];
export type EvaluateSection = FadConfig['evaluate'];
export type UtilitySection = FadConfig['utility'];

/** A deep-partial config (what a YAML file or the flags give). */
export type FadConfigInput = z.input<typeof FadConfigSchema>;

/** Walks a zod schema to the object at `path` and returns its keys (for "allowed keys" messages). */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | null {
  let s: z.ZodType | undefined = schema;
  const unwrap = (x: z.ZodType): z.ZodType => {
    let cur = x;
    for (let i = 0; i < 10; i++) {
      const def = (cur as unknown as { def: { type: string; innerType?: z.ZodType; element?: z.ZodType } }).def;
      if (def.innerType && ['default', 'prefault', 'optional', 'nullable'].includes(def.type)) cur = def.innerType;
      else break;
    }
    return cur;
  };
  for (const p of path) {
    if (!s) return null;
    const u = unwrap(s);
    const def = (u as unknown as { def: { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType } }).def;
    if (def.type === 'object' && def.shape) s = def.shape[String(p)];
    else if (def.type === 'array' && def.element) s = def.element;
    else return null;
  }
  if (!s) return null;
  const def = (unwrap(s) as unknown as { def: { type: string; shape?: Record<string, z.ZodType> } }).def;
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : null;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p as string];
  }
  return v;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  try {
    const s = JSON.stringify(v);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(v);
  }
}

/** One line per zod issue: `<path>: <what is wrong>, got <value>`. */
export function formatConfigIssues(issues: readonly z.core.$ZodIssue[], input: unknown): string[] {
  return issues.map((issue) => {
    const path = issue.path.map(String).join('.') || '(top level)';
    const got = show(valueAt(input, issue.path));
    switch (issue.code) {
      case 'unrecognized_keys': {
        const allowed = keysAt(FadConfigSchema, issue.path) ?? [];
        const keys = issue.keys.map((k) => `"${k}"`).join(', ');
        return `${path}: unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}; allowed keys: ${allowed.join(', ')}`;
      }
      case 'invalid_value':
        return `${path}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${got}`;
      case 'invalid_type':
        return `${path}: must be ${issue.expected === 'int' ? 'an integer' : `a ${issue.expected}`}${got === 'null' ? ' (null is not allowed here)' : ''}, got ${got}`;
      case 'too_small': {
        const what = issue.origin === 'array' ? 'a list with at least' : issue.origin === 'string' ? 'a string of at least' : 'a number';
        if (issue.origin === 'array' || issue.origin === 'string') return `${path}: must be ${what} ${issue.minimum} item(s), got ${got}`;
        return `${path}: must be ${what} ${issue.inclusive ? '>=' : '>'} ${issue.minimum}, got ${got}`;
      }
      case 'too_big':
        if (issue.origin === 'array') return `${path}: must be a list of at most ${issue.maximum} item(s), got ${got}`;
        return `${path}: must be ${issue.inclusive ? '<=' : '<'} ${issue.maximum}${issue.origin === 'number' && Number(issue.maximum) >= 64 ? ' (a limit of fad, see the README\'s "Limits")' : ''}, got ${got}`;
      case 'invalid_union':
        return `${path}: must be one of the allowed values (${issue.message}), got ${got}`;
      default:
        return `${path}: ${issue.message}, got ${got}`;
    }
  });
}

/** Validates a plain object as a config (defaults filled in). Throws a CliError listing every problem. */
export function parseConfig(input: unknown, source = 'config'): FadConfig {
  const r = FadConfigSchema.safeParse(input ?? {});
  if (!r.success) {
    const lines = formatConfigIssues(r.error.issues, input);
    throw new CliError(`${source} is invalid:\n  ${lines.join('\n  ')}`);
  }
  return r.data;
}

/** Reads a YAML config file. Relative paths in it (data.dir, expert.checkpoint) are resolved against its folder by the caller. */
export function readConfigFile(path: string): FadConfigInput {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read the config file ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text, { prettyErrors: true });
  } catch (e) {
    throw new CliError(`the config file ${path} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new CliError(`the config file ${path} must be a YAML mapping (key: value), got ${Array.isArray(doc) ? 'a list' : typeof doc}`);
  return doc as FadConfigInput;
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Deep merge: objects merge key by key, everything else (arrays included) replaces. */
export function mergeConfig<T>(base: T, over: unknown): T {
  if (!isPlain(base) || !isPlain(over)) return (over === undefined ? base : over) as T;
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isPlain(out[k]) && isPlain(v) ? mergeConfig(out[k], v) : v;
  }
  return out as T;
}

/** Sets `a.b.c` in a nested object (creating the path). */
export function setPath(obj: Plain, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (!isPlain(cur[p])) cur[p] = {};
    cur = cur[p] as Plain;
  }
  cur[parts[parts.length - 1]] = value;
}

/** The effective config as YAML, with a header. */
export function configToYaml(config: FadConfig, header?: string): string {
  const body = YAML.stringify(config, { lineWidth: 0 });
  return header ? `${header.split('\n').map((l) => `# ${l}`).join('\n')}\n${body}` : body;
}
