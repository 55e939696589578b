/**
 * Feature-alignment loss files (Node only: part of `@fad/feature-align/node`). The format itself
 * (`serializeFeatureAlignmentLoss` / `deserializeFeatureAlignmentLoss`) is in the main entry point.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '@fad/diffusion-core/node';
// The package's own main entry, not a relative path: dist/node.js then imports dist/index.js
// instead of bundling a second copy of FeatureAlignmentLoss (instanceof would fail across the two).
import {
  deserializeFeatureAlignmentLoss,
  type FeatureAlignmentLoss,
  type SerializeFeatureAlignmentLossParams,
  serializeFeatureAlignmentLoss,
} from '@fad/feature-align';
import { assertKnownKeys, assertParamsObject, describe, fail } from '../validate';

export interface SaveFeatureAlignmentLossParams extends SerializeFeatureAlignmentLossParams {
  /** Destination file (conventionally `*.safetensors`); written atomically. */
  path: string;
}

/** Saves a loss to a file, atomically: written beside it, then renamed into place. */
export async function saveFeatureAlignmentLoss(params: SaveFeatureAlignmentLossParams): Promise<void> {
  const where = 'saveFeatureAlignmentLoss';
  assertParamsObject(where, params);
  assertKnownKeys(where, params as unknown as Record<string, unknown>, ['loss', 'metadata', 'path']);
  const { path, ...rest } = params;
  if (typeof path !== 'string' || path.length === 0) fail(where, `path must be a file path, got ${describe(path)}`, TypeError);
  const bytes = serializeFeatureAlignmentLoss(rest);
  try {
    await writeFileAtomic(path, bytes);
  } catch (e) {
    throw new Error(`${where}: cannot write ${path}: ${(e as Error).message}`);
  }
}

export interface LoadFeatureAlignmentLossParams {
  path: string;
}

/** Loads a loss saved by `saveFeatureAlignmentLoss`. */
export async function loadFeatureAlignmentLoss(params: LoadFeatureAlignmentLossParams): Promise<{
  loss: FeatureAlignmentLoss;
  metadata: Record<string, string>;
}> {
  const where = 'loadFeatureAlignmentLoss';
  assertParamsObject(where, params);
  const { path } = params;
  if (typeof path !== 'string' || path.length === 0) fail(where, `path must be a file path, got ${describe(path)}`, TypeError);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new Error(`${where}: cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return deserializeFeatureAlignmentLoss({ bytes });
  } catch (e) {
    throw new Error(`${where}: ${path}: ${(e as Error).message}`);
  }
}
