/**
 * Reading a generated set (a folder written by `fad generate`) with the CLI's errors: diffusion-core's
 * `readGeneratedSetManifest` and `readGeneratedSetImages`, their errors mapped by `fromLibraryError`.
 * `fad evaluate`, `fad utility` and `fad report` read sets this way.
 */
import { readGeneratedSetImages, readGeneratedSetManifest } from '@fad/diffusion-core/node';
import { fromLibraryError, withLibraryErrors } from './errors';
import type { DreamBoothInfo, ExpertGuidanceRecord, GenerateManifest } from './generate';

/** The set's checked manifest (diffusion-core's `readGeneratedSetManifest`), errors as the CLI's. */
export function readManifest(dir: string): GenerateManifest {
  return withLibraryErrors(() => readGeneratedSetManifest<ExpertGuidanceRecord, DreamBoothInfo>({ dir }));
}

/** Decodes the generated images listed in a manifest (diffusion-core's `readGeneratedSetImages`). */
export async function readGenerated(dir: string, m: GenerateManifest): Promise<Float32Array> {
  try {
    return await readGeneratedSetImages({ dir, manifest: m });
  } catch (e) {
    throw fromLibraryError(e);
  }
}
