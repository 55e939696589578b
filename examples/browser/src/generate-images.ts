/**
 * Sampling N images per class from a parsed model file, the way `fad generate` does for one seed
 * (packages/cli/src/generate.ts): one `Generator(seed)` for the whole set, the slots ordered class
 * by class (all images of the first chosen class, then the next), sampled in chunks of
 * `batchSize` with `sampleImages`, the scheduler built by `schedulerFromName` from the schedule
 * stored in the model file (`clipSample: false` for latent models). The same seed, settings and
 * backend family therefore give the same pixels here, in Node and in `fad generate` (its PNGs are
 * these values times 255, rounded).
 *
 * Used by the page (src/main.ts) and by the test's Node reference (test/browser.spec.ts).
 */
import { type BuiltinSchedulerName, Generator, type ParsedModelFile, type SampleProgress, sampleImages, schedulerFromName } from '@fad/diffusion-core';

export interface GenerateImagesParams {
  /** A model file read by `parseModelFile`. */
  file: ParsedModelFile;
  /** Class indices to sample, in order. */
  classLabels: number[];
  imagesPerClass: number;
  seed: number;
  sampler: BuiltinSchedulerName;
  steps: number;
  guidanceScale: number;
  /** DDIM eta (ignored by the other samplers, as in fad generate). Default 0. */
  eta?: number;
  /** Images per forward pass (fad generate's default: 32). */
  batchSize?: number;
  /** Called after every denoising step of every chunk. */
  onStep?: (p: SampleProgress & { chunk: number; chunks: number }) => void;
}

export interface GeneratedSet {
  /** One `[size * size * channels]` array per image, values in [0, 1], in slot order. */
  images: Float32Array[];
  /** The class index of each image. */
  labels: number[];
  /** The index of each image within its class. */
  indices: number[];
  size: number;
  channels: number;
  /** Wall time of every denoising step (ms). */
  stepMs: number[];
}

/** fad generate's default batch size. */
export const DEFAULT_BATCH_SIZE = 32;

/** Samples the images; see the file comment. */
export async function generateImages(p: GenerateImagesParams): Promise<GeneratedSet> {
  const { file } = p;
  const { model, autoencoder } = file;
  const n = file.classNames.length;
  if (!Array.isArray(p.classLabels) || p.classLabels.length === 0 || !p.classLabels.every((c) => Number.isInteger(c) && c >= 0 && c < n)) {
    throw new RangeError(`generateImages: classLabels must be a non-empty list of class indices in 0..${n - 1}, got ${JSON.stringify(p.classLabels)}`);
  }
  if (!(Number.isInteger(p.imagesPerClass) && p.imagesPerClass > 0)) throw new RangeError(`generateImages: imagesPerClass must be a positive integer, got ${p.imagesPerClass}`);
  if (!(Number.isInteger(p.seed) && p.seed >= 0 && p.seed <= 0xffffffff)) throw new RangeError(`generateImages: seed must be an integer in [0, 2^32), got ${p.seed}`);
  if (!(Number.isInteger(p.steps) && p.steps > 0)) throw new RangeError(`generateImages: steps must be a positive integer, got ${p.steps}`);
  if (!(Number.isFinite(p.guidanceScale) && p.guidanceScale >= 0)) throw new RangeError(`generateImages: guidanceScale must be a number >= 0, got ${p.guidanceScale}`);
  const batchSize = p.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new RangeError(`generateImages: batchSize must be a positive integer, got ${batchSize}`);
  const eta = p.eta ?? 0;
  // Sample with the noise schedule the model was trained with (stored in its metadata).
  const scheduler = schedulerFromName({ name: p.sampler, config: { ...file.schedulerConfig, ...(autoencoder ? { clipSample: false } : {}) } });
  const size = autoencoder ? model.config.sampleSize * autoencoder.downsamplingFactor : model.config.sampleSize;
  const channels = autoencoder ? autoencoder.config.outChannels : model.config.inChannels;
  const per = size * size * channels;
  const slots = p.classLabels.flatMap((label) => Array.from({ length: p.imagesPerClass }, (_, index) => ({ label, index })));
  const g = new Generator(p.seed);
  const images: Float32Array[] = [];
  const stepMs: number[] = [];
  const chunks = Math.ceil(slots.length / batchSize);
  for (let s = 0, chunk = 0; s < slots.length; s += batchSize, chunk++) {
    const part = slots.slice(s, s + batchSize);
    const x = await sampleImages({
      model,
      scheduler,
      classLabels: part.map((c) => c.label),
      numInferenceSteps: p.steps,
      guidanceScale: p.guidanceScale,
      eta: p.sampler === 'ddim' ? eta : undefined,
      generator: g,
      ...(autoencoder ? { autoencoder } : {}),
      onProgress: (q) => {
        stepMs.push(q.stepMs);
        p.onStep?.({ ...q, chunk, chunks });
      },
    });
    const px = (await x.data()) as Float32Array;
    x.dispose();
    part.forEach((_, i) => images.push(px.slice(i * per, (i + 1) * per)));
  }
  return { images, labels: slots.map((s) => s.label), indices: slots.map((s) => s.index), size, channels, stepMs };
}
