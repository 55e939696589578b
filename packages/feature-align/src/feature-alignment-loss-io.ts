/**
 * Saving and loading a `FeatureAlignmentLoss` (its projection weights and config) as safetensors.
 *
 * Metadata keys: `format` = "fad-feature-align/1", `config` = the `FeatureAlignmentLossConfig` as
 * JSON (without `centering` when it is 'none'), `layout` = "NHWC; Linear [in,out]; Conv2d [kh,kw,in,out]" (TensorFlow layout: transpose a
 * PyTorch `nn.Linear.weight`), plus any string metadata of the caller. Tensor names are the
 * loss's parameter names (`projection.weight`, ...). Written and read with `@fad/diffusion-core`'s
 * `moduleToSafetensors` / `loadModuleWeights` (the loss is a diffusion-core `Module`), so the
 * files are the format diffusion-core writes. The file functions (`saveFeatureAlignmentLoss`,
 * `loadFeatureAlignmentLoss`) are in `@fad/feature-align/node` (./node/feature-alignment-loss-files.ts).
 */
import { loadModuleWeights, moduleToSafetensors, readSafetensorsMetadata, WEIGHT_LAYOUT } from '@fad/diffusion-core';
import { FeatureAlignmentLoss, type FeatureAlignmentLossConfig } from './feature-alignment-loss';
import { assertKnownKeys, assertParamsObject, describe, fail } from './validate';

export const FEATURE_ALIGN_FORMAT = 'fad-feature-align/1';
/** `@fad/diffusion-core`'s `WEIGHT_LAYOUT`: `"NHWC; Linear [in,out]; Conv2d [kh,kw,in,out]"`. */
export const FEATURE_ALIGN_WEIGHT_LAYOUT = WEIGHT_LAYOUT;

export interface SerializeFeatureAlignmentLossParams {
  loss: FeatureAlignmentLoss;
  /** Extra string metadata (e.g. the expert's name, the tap point). */
  metadata?: Record<string, string>;
}

/** The loss's weights and config as safetensors bytes. */
export function serializeFeatureAlignmentLoss(params: SerializeFeatureAlignmentLossParams): Uint8Array {
  const where = 'serializeFeatureAlignmentLoss';
  assertParamsObject(where, params);
  assertKnownKeys(where, params as unknown as Record<string, unknown>, ['loss', 'metadata']);
  const { loss, metadata = {} } = params;
  if (!(loss instanceof FeatureAlignmentLoss)) fail(where, `loss must be a FeatureAlignmentLoss, got ${describe(loss)}`, TypeError);
  if (metadata === null || typeof metadata !== 'object') fail(where, `metadata must be an object of strings, got ${describe(metadata)}`, TypeError);
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') fail(where, `metadata "${k}" must be a string, got ${describe(v)}`, TypeError);
  }
  // moduleToSafetensors puts `layout` (WEIGHT_LAYOUT) first; the caller's metadata may override it.
  return moduleToSafetensors(loss, { ...metadata, format: FEATURE_ALIGN_FORMAT, config: configJson(loss.config) });
}

/**
 * The config as stored. `centering` is left out when it is the default 'none', so a loss without
 * it is written byte for byte as before the option existed (and files without it read as 'none').
 */
function configJson(config: FeatureAlignmentLossConfig): string {
  const { centering, ...rest } = config;
  return JSON.stringify(centering === 'none' ? rest : config);
}

export interface DeserializeFeatureAlignmentLossParams {
  bytes: Uint8Array;
}

/** Rebuilds a loss from bytes written by `serializeFeatureAlignmentLoss`. */
export function deserializeFeatureAlignmentLoss(params: DeserializeFeatureAlignmentLossParams): {
  loss: FeatureAlignmentLoss;
  metadata: Record<string, string>;
} {
  const where = 'deserializeFeatureAlignmentLoss';
  assertParamsObject(where, params);
  const { bytes } = params;
  if (!(bytes instanceof Uint8Array)) fail(where, `bytes must be a Uint8Array, got ${describe(bytes)}`, TypeError);
  const metadata = readSafetensorsMetadata(bytes);
  if (metadata.format !== FEATURE_ALIGN_FORMAT) {
    fail(where, `metadata.format is ${JSON.stringify(metadata.format)}, expected "${FEATURE_ALIGN_FORMAT}"`);
  }
  let config: FeatureAlignmentLossConfig;
  try {
    config = JSON.parse(metadata.config);
  } catch {
    fail(where, `metadata.config is not valid JSON: ${JSON.stringify(metadata.config)}`);
  }
  const loss = new FeatureAlignmentLoss({ ...config });
  try {
    loadModuleWeights(loss, bytes);
  } catch (e) {
    loss.dispose();
    fail(where, (e as Error).message);
  }
  return { loss, metadata };
}
