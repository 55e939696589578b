/**
 * A procedural image-folder data set that needs no download (Node only: part of
 * `@fad/diffusion-core/node`): four texture classes (horizontal stripes, vertical stripes,
 * checkerboard, rings) with random frequency, phase, centre and noise, written as grayscale PNG
 * class folders, so that the real folder loader is exercised too. `fad demo`, the examples and
 * many tests train on it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Generator } from '@fad/diffusion-core';
import { mapLimit } from './map-limit';
import { readJsonFileIfExists } from './generated-set';
import { writeFileAtomicSync } from './write-file-atomic';
import { writePngFile } from './write-png-file';

/** The class folders, in label order. */
export const TEXTURE_CLASSES = ['01_STRIPES_H', '02_STRIPES_V', '03_CHECKER', '04_RINGS'] as const;

/** Parameters of {@link textureImage}. */
export interface TextureImageParams {
  /** 0: horizontal stripes, 1: vertical stripes, 2: checkerboard, 3: rings. */
  classIndex: number;
  /** Height and width. */
  size: number;
  /** The random stream (frequency, phase, centre, then per-pixel noise are drawn from it in that order). */
  generator: Generator;
}

/** One texture [size * size] in [0, 1]. */
export function textureImage(p: TextureImageParams): Float32Array {
  const { classIndex: cls, size, generator: g } = p;
  if (!Number.isInteger(cls) || cls < 0 || cls > 3) throw new RangeError(`textureImage: classIndex must be 0..3, got ${String(cls)}`);
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`textureImage: size must be an integer >= 1, got ${String(size)}`);
  if (!(g instanceof Generator)) throw new TypeError('textureImage: generator must be a Generator');
  const f = (0.5 + g.nextFloat() * 0.6) * (16 / size);
  const ph = g.nextFloat() * 2 * Math.PI;
  const cx = size / 2 + (g.nextFloat() - 0.5) * (size / 4);
  const cy = size / 2 + (g.nextFloat() - 0.5) * (size / 4);
  const img = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let v: number;
      if (cls === 0) v = Math.sin(f * y + ph);
      else if (cls === 1) v = Math.sin(f * x + ph);
      else if (cls === 2) v = Math.sign(Math.sin(f * x + ph) * Math.sin(f * y + ph));
      else v = Math.sin(f * Math.hypot(x - cx, y - cy) + ph);
      img[y * size + x] = Math.min(1, Math.max(0, 0.5 + 0.42 * v + 0.05 * g.nextNormal()));
    }
  }
  return img;
}

/** Parameters of {@link writeTextureDataset}. */
export interface WriteTextureDatasetParams {
  /** The data set folder (created). */
  dir: string;
  /** Image height and width. */
  size: number;
  /** Images per class. */
  perClass: number;
  /** Seed of the one generator all images are drawn from, class by class (default 0). */
  seed?: number;
}

/**
 * Writes `perClass` textures per class into `dir/<class>/NNN.png` and a `dataset.json` stamp; a
 * folder whose stamp has the same settings is left as it is.
 */
export async function writeTextureDataset(p: WriteTextureDatasetParams): Promise<void> {
  if (p === null || typeof p !== 'object') throw new TypeError(`writeTextureDataset: expected one params object, got ${String(p)}`);
  const { dir, size, perClass, seed = 0 } = p;
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`writeTextureDataset: dir must be a non-empty string, got ${JSON.stringify(dir)}`);
  if (!Number.isInteger(perClass) || perClass < 1) throw new RangeError(`writeTextureDataset: perClass must be an integer >= 1, got ${String(perClass)}`);
  const stamp = { size, perClass, seed, classes: TEXTURE_CLASSES };
  const marker = join(dir, 'dataset.json');
  const old = readJsonFileIfExists<typeof stamp>(marker);
  if (old && JSON.stringify(old) === JSON.stringify(stamp)) return;
  const g = new Generator(seed);
  const jobs: Array<() => Promise<void>> = [];
  TEXTURE_CLASSES.forEach((c, k) => {
    mkdirSync(join(dir, c), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const pixels = textureImage({ classIndex: k, size, generator: g });
      jobs.push(() => writePngFile({ path: join(dir, c, `${String(i).padStart(3, '0')}.png`), pixels, size, channels: 1 }));
    }
  });
  await mapLimit(jobs, 8, (j) => j());
  writeFileAtomicSync(marker, `${JSON.stringify(stamp, null, 2)}\n`);
}
