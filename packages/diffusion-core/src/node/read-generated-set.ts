/**
 * Reading a generated set (a folder written by `generateImageSet` / `fad generate`): its
 * `manifest.json`, checked like any other input file, and its images decoded in manifest order.
 * Evaluation, the utility run and the report read generated sets through these two functions.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkClassNames, MODEL_FILE_LIMITS, ModelFileError } from '@fad/diffusion-core';
import { decodeImageFile } from './decode-image-file';
import { GENERATED_SET_FILES, GENERATED_SET_FORMAT, type GeneratedSetManifest } from './generated-set';
import { GenerationRunError } from './generation-run-error';
import { ImageFolderError } from './image-folder-error';
import { mapLimit } from './map-limit';
import { pathInside } from './output-folder';

/** Parameters of {@link readGeneratedSetManifest}. */
export interface ReadGeneratedSetManifestParams {
  /** The generated set's folder. */
  dir: string;
}

/**
 * The set's `manifest.json`, checked before use: the format, class names that are safe path
 * segments, an image size within `MODEL_FILE_LIMITS.maxImageSize`, 1 or 3 channels, and every
 * image's file inside `dir` with a class of `classNames`. A folder without a readable manifest is
 * a GenerationRunError `not-generated-set`, a manifest that fails a check `bad-manifest`
 * (`details.path`).
 */
export function readGeneratedSetManifest<G = unknown, D = unknown>(params: ReadGeneratedSetManifestParams): GeneratedSetManifest<G, D> {
  if (params === null || typeof params !== 'object') throw new TypeError(`readGeneratedSetManifest: expected one params object, got ${String(params)}`);
  const { dir } = params;
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`readGeneratedSetManifest: dir must be a non-empty string, got ${JSON.stringify(dir)}`);
  const where = join(dir, GENERATED_SET_FILES.manifest);
  let m: GeneratedSetManifest<G, D>;
  try {
    m = JSON.parse(readFileSync(where, 'utf8')) as GeneratedSetManifest<G, D>;
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new GenerationRunError('not-generated-set', `${dir} is not a generated set (cannot read ${where}: ${why})`, { dir, path: where }, e);
  }
  const bad = (message: string): GenerationRunError => new GenerationRunError('bad-manifest', `${where}: ${message}`, { path: where });
  if (m === null || typeof m !== 'object' || m.format !== GENERATED_SET_FORMAT) throw new GenerationRunError('bad-manifest', `${where} is not a fad generate manifest`, { path: where });
  // A manifest is input like a model file: its names and paths are checked before use.
  try {
    checkClassNames({ names: m.classNames, where: `${where}: classNames` });
  } catch (e) {
    if (e instanceof ModelFileError) throw new GenerationRunError('bad-manifest', e.message, { path: where }, e);
    throw e;
  }
  const maxSize = MODEL_FILE_LIMITS.maxImageSize;
  if (!Number.isInteger(m.imageSize) || m.imageSize < 1 || m.imageSize > maxSize) throw bad(`imageSize must be an integer in 1..${maxSize}, got ${JSON.stringify(m.imageSize)}`);
  if (m.channels !== 1 && m.channels !== 3) throw bad(`channels must be 1 or 3, got ${JSON.stringify(m.channels)}`);
  if (!Array.isArray(m.images)) throw bad('images must be a list');
  m.images.forEach((img, i) => {
    if (!img || typeof img.file !== 'string' || !m.classNames.includes(img.class)) throw bad(`images[${i}] must have a file and a class of classNames`);
    pathInside({ root: dir, path: img.file, what: `${where}: images[${i}].file`, verb: 'read' });
  });
  return m;
}

/** Parameters of {@link readGeneratedSetImages}. */
export interface ReadGeneratedSetImagesParams {
  /** The generated set's folder. */
  dir: string;
  /** Its manifest ({@link readGeneratedSetManifest}), or a part of it: the images listed are read. */
  manifest: Pick<GeneratedSetManifest<unknown, unknown>, 'imageSize' | 'channels' | 'images'>;
  /** Files decoded at once (default 8). */
  concurrency?: number;
}

/**
 * The images the manifest lists, decoded in manifest order into one array [n, size, size, channels]
 * of values in [0, 1]. A file that cannot be decoded, or whose size differs from the manifest's, is
 * a GenerationRunError `bad-image` naming it (`details.path`); nothing is returned half-read.
 */
export async function readGeneratedSetImages(params: ReadGeneratedSetImagesParams): Promise<Float32Array> {
  if (params === null || typeof params !== 'object') throw new TypeError(`readGeneratedSetImages: expected one params object, got ${String(params)}`);
  const { dir, manifest: m } = params;
  const concurrency = params.concurrency ?? 8;
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`readGeneratedSetImages: dir must be a non-empty string, got ${JSON.stringify(dir)}`);
  if (m === null || typeof m !== 'object' || !Array.isArray(m.images)) throw new TypeError('readGeneratedSetImages: manifest must be a generated-set manifest with an images list');
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`readGeneratedSetImages: concurrency must be an integer >= 1, got ${JSON.stringify(concurrency)}`);
  const per = m.imageSize * m.imageSize * m.channels;
  const out = new Float32Array(m.images.length * per);
  await mapLimit(m.images, concurrency, async (img, i) => {
    const path = join(dir, img.file);
    let d;
    try {
      d = await decodeImageFile({ path, channels: m.channels as 1 | 3 });
    } catch (e) {
      if (e instanceof ImageFolderError && e.code === 'no-sharp') throw e;
      throw new GenerationRunError('bad-image', `generated image ${path} ${(e as Error).message}`, { path }, e);
    }
    if (d.width !== m.imageSize || d.height !== m.imageSize) {
      throw new GenerationRunError('bad-image', `generated image ${path} is ${d.width}x${d.height}, the manifest says ${m.imageSize}x${m.imageSize}`, { path });
    }
    out.set(d.pixels, i * per);
  });
  return out;
}
