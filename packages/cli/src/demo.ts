/**
 * `fad demo`: the whole experiment at toy scale on diffusion-core's procedural texture data set
 * (`writeTextureDataset`: four texture classes, written as PNG class folders into the run directory
 * so that the real loader is exercised too). Here: its scales as configs.
 */
import { TEXTURE_CLASSES, writeTextureDataset } from '@fad/diffusion-core/node';
import type { FadConfigInput } from './config';

export const DEMO_CLASSES = TEXTURE_CLASSES;

/** Writes `perClass` textures per class into `dir/<class>/NNN.png` (diffusion-core's `writeTextureDataset`; skipped when already there). */
export async function writeDemoData(dir: string, size: number, perClass: number, seed = 0): Promise<void> {
  await writeTextureDataset({ dir, size, perClass, seed });
}

export const DEMO_SCALES = ['smallest', 'small', 'medium'] as const;
export type DemoScale = (typeof DEMO_SCALES)[number];

export interface DemoPlan {
  imageSize: number;
  perClass: number;
  config: FadConfigInput;
}

/**
 * The toy scales. `smallest` is the CI smoke test (8x8 images, a handful of steps: well under 3
 * minutes on the pure-JS cpu backend; its numbers mean nothing). `small` (the default) takes a few
 * minutes on 2 cores with the wasm backend; `medium` trains longer and shows the effects more clearly.
 */
export function demoPlan(scale: DemoScale): DemoPlan {
  const base = {
    smallest: { size: 8, perClass: 12, steps: 12, batch: 8, expertEpochs: 2, seeds: [0, 1], perImg: 2, sampleSteps: 4, channels: [8, 16], ema: null, db: { steps: 4, instances: 4, classImages: 4, batch: 2 } },
    small: { size: 16, perClass: 40, steps: 200, batch: 16, expertEpochs: 4, seeds: [0, 1, 2], perImg: 6, sampleSteps: 15, channels: [8, 16], ema: 0.97, db: { steps: 60, instances: 8, classImages: 16, batch: 4 } },
    medium: { size: 16, perClass: 64, steps: 500, batch: 16, expertEpochs: 6, seeds: [0, 1, 2, 3, 4], perImg: 8, sampleSteps: 25, channels: [16, 32], ema: 0.99, db: { steps: 150, instances: 10, classImages: 24, batch: 4 } },
  }[scale];
  return {
    imageSize: base.size,
    perClass: base.perClass,
    config: {
      data: { imageSize: base.size, channels: 1, validationFraction: 0.25, hflip: true, vflip: true },
      expert: {
        arch: 'resnet',
        preset: 'resnet18-kather',
        architecture: { layers: [1, 1], baseWidth: 8 },
        epochs: base.expertEpochs,
        batchSize: 16,
        learningRate: 3e-3,
        augment: false,
      },
      diffusion: {
        unet: { preset: 'tiny', overrides: { blockChannels: base.channels, normGroups: 4 } },
        scheduler: { betaSchedule: 'squaredcos_cap_v2' },
        steps: base.steps,
        batchSize: base.batch,
        learningRate: 2e-3,
        lrSchedule: 'cosine',
        warmupSteps: Math.min(20, Math.floor(base.steps / 5)),
        minLearningRate: 1e-4,
        // The EMA starts from the initial weights: its decay must be short enough that they have
        // faded by the end (0.97^200 = 0.2%), or short runs sample from half-random weights.
        emaDecay: base.ema,
        checkpointEvery: Math.max(5, Math.floor(base.steps / 4)),
        logEvery: scale === 'smallest' ? 2 : 10,
      },
      alignment: { lambda1: 1, lambda2: 0.5 },
      // The DreamBooth arm on "rings" (the demo's stand-in for the paper's "tumor").
      dreambooth: {
        class: 'rings', instanceImages: base.db.instances, numClassImages: base.db.classImages, steps: base.db.steps, batchSize: base.db.batch,
        learningRate: 5e-4, logEvery: scale === 'smallest' ? 2 : 10,
      },
      experiment: { dreambooth: true },
      generate: { sampler: 'ddim', steps: base.sampleSteps, guidanceScale: 2, imagesPerClass: base.perImg, seeds: base.seeds, batchSize: 32 },
      evaluate: {
        excludeClasses: [],
        ssimWindow: base.size >= 11 ? 'gaussian' : 'uniform',
        ssimWinSize: 7,
        ssimMaxPairs: 200,
        kidSubsets: 10,
        kidSubsetSize: 50,
        realSet: 'validation',
      },
    },
  };
}
