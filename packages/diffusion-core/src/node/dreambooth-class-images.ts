/**
 * DreamBooth's class images for prior preservation (Node only: part of `@fad/diffusion-core/node`,
 * beside the DreamBooth run): images of the class that the model generates before it is
 * fine-tuned, cached in one safetensors file (format `fad-dreambooth-class-images/1`: tensor
 * `images` F32 [count, S, S, C] in [0, 1]; metadata `format`, `key`, `class`, `range`). The file's
 * key is a hash of the class, the count, the seed, the sampler settings and the model's hash, so
 * runs that share these (the `fad` experiment's two DreamBooth arms) generate them once.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { decodeSafetensors, encodeSafetensors, Generator, type NoiseScheduler, sampleImages, type UNet2DConditional } from '@fad/diffusion-core';
import type { AbortFlag } from './training-loop';
import { stepKey } from './resumable-step';
import { withRunFs } from './training-run-error';
import { writeFileAtomicSync } from './write-file-atomic';

/** `metadata.format` of a class-images file. */
export const DREAMBOOTH_CLASS_IMAGES_FORMAT = 'fad-dreambooth-class-images/1';

/** How the class images are sampled. */
export interface DreamBoothPriorSettings {
  /** How many class images. */
  count: number;
  /** The sampler (a scheduler with the model's noise schedule). */
  scheduler: NoiseScheduler;
  /** The sampler's name, in the cache key (`eta` applies to `ddim` only). */
  sampler: string;
  /** Denoising steps. */
  steps: number;
  guidanceScale: number;
  /** DDIM eta (default 0). */
  eta?: number;
  /** Images per sampling batch. */
  batchSize: number;
  /** The cache file (the DreamBooth run's default: `<dir>/class-images.safetensors`). */
  path?: string;
}

/** Parameters of {@link dreamBoothClassImages}. */
export interface DreamBoothClassImagesParams {
  /** The model before fine-tuning. */
  model: UNet2DConditional;
  classLabel: number;
  /** The class's name (in the cache key). */
  className: string;
  /** The DreamBooth run's seed: in the cache key; the draws come from `Generator(seed + 7)`. */
  seed: number;
  /** Identifies the model in the cache key (the model file's sha256). */
  modelSha256: string;
  prior: DreamBoothPriorSettings & { path: string };
  /** Checked after each batch: when aborted, returns null (nothing is written). */
  signal?: AbortFlag | null;
  /** Told when the cache is reused. */
  onLog?: (message: string) => void;
  /** Images done so far, from 0, after each batch. */
  onProgress?: (p: { done: number; total: number }) => void;
}

/**
 * The class images, [count, S, S, C] flat in [0, 1]: read from `prior.path` when it holds those of
 * the same key, else sampled (conditioned on `classLabel`) and written there. Null when aborted.
 * @throws TrainingRunError `fs` when the cache cannot be written.
 */
export async function dreamBoothClassImages(p: DreamBoothClassImagesParams): Promise<Float32Array | null> {
  const { model, prior } = p;
  const path = prior.path;
  const eta = prior.eta ?? 0;
  const key = stepKey('dreambooth-class-images', {
    class: p.className, count: prior.count, seed: p.seed, batchSize: prior.batchSize, sampler: prior.sampler, steps: prior.steps, guidanceScale: prior.guidanceScale, eta,
  }, { pretrained: p.modelSha256 });
  const c = model.config;
  const shape = [prior.count, c.sampleSize, c.sampleSize, c.inChannels];
  if (existsSync(path)) {
    try {
      const f = decodeSafetensors(new Uint8Array(readFileSync(path)));
      const images = f.tensors.images;
      if (f.metadata.key === key && images?.data instanceof Float32Array && JSON.stringify(images.shape) === JSON.stringify(shape)) {
        p.onLog?.(`dreambooth: reusing ${prior.count} class images from ${path}`);
        return images.data;
      }
    } catch {
      /* unreadable: generate again */
    }
  }
  const per = c.sampleSize * c.sampleSize * c.inChannels;
  const out = new Float32Array(prior.count * per);
  const g = new Generator((p.seed + 7) >>> 0);
  p.onProgress?.({ done: 0, total: prior.count });
  for (let s = 0; s < prior.count; s += prior.batchSize) {
    const n = Math.min(prior.batchSize, prior.count - s);
    const x = await sampleImages({
      model, scheduler: prior.scheduler, classLabels: new Array(n).fill(p.classLabel), numInferenceSteps: prior.steps, guidanceScale: prior.guidanceScale,
      eta: prior.sampler === 'ddim' ? eta : undefined, generator: g,
    });
    out.set(x.dataSync() as Float32Array, s * per);
    x.dispose();
    p.onProgress?.({ done: s + n, total: prior.count });
    if (p.signal?.aborted) return null;
  }
  mkdirSync(resolve(path, '..'), { recursive: true });
  const bytes = encodeSafetensors({
    tensors: { images: { dtype: 'F32', shape, data: out } },
    metadata: { format: DREAMBOOTH_CLASS_IMAGES_FORMAT, key, class: p.className, range: '[0, 1]' },
  });
  withRunFs(path, 'write', () => writeFileAtomicSync(path, bytes));
  return out;
}
