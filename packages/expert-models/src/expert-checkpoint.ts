/**
 * Expert checkpoints: safetensors files with every variable (parameters and BatchNorm running
 * statistics) under its dotted name, float32, and string metadata:
 *
 * - `format`: `"fad-expert/1"`
 * - `config`: the architecture config as JSON (`ExpertConfig`)
 * - `classNames`: JSON array of the class names
 * - `layout`: `"NHWC; Linear [in,out]; Conv2d [kh,kw,in,out]"` (TensorFlow layout: PyTorch weights
 *   need Linear transposed and Conv2d permuted (2,3,1,0))
 * - anything the caller adds (training writes `training` and `split`, both JSON, and `fad.status`,
 *   `partial` while training runs and `complete` at the end: see {@link CHECKPOINT_STATUS_KEY}).
 *
 * `serializeExpert` / `deserializeExpert` work on bytes (any platform); `saveExpert` /
 * `loadExpert` (`@fad/expert-models/node`) read and write files, atomically (temporary file + rename).
 */
import { loadModuleWeights, moduleToSafetensors, readSafetensorsMetadata } from '@fad/diffusion-core';
import { createExpert } from './create-expert';
import type { ExpertConfig } from './expert-config';
import type { ExpertModel } from './expert-model';
import type { ResNet } from './resnet';
import { assertObject, show } from './validate';
import type { VisionTransformer } from './vision-transformer';

/** The `format` metadata value of expert checkpoints. */
export const EXPERT_FORMAT = 'fad-expert/1';

/**
 * Metadata key of the completion marker of final model and expert files: `"complete"` or
 * `"partial"` (written by `trainExpert` while training runs: the best epoch so far of an
 * unfinished run). Files without the key (written before it existed) count as complete.
 */
export const CHECKPOINT_STATUS_KEY = 'fad.status';

const RESERVED = ['format', 'config', 'classNames', 'layout'];

/** Parameters of {@link serializeExpert}. */
export interface SerializeExpertParams {
  expert: ExpertModel;
  /** Extra string metadata; the keys `format`, `config`, `classNames`, `layout` are reserved. */
  metadata?: Record<string, string>;
}

/** A loaded expert and the checkpoint's metadata. */
export interface LoadedExpert {
  expert: ResNet | VisionTransformer;
  metadata: Record<string, string>;
}

function checkMetadata(fn: string, metadata: unknown): Record<string, string> {
  if (metadata === undefined) return {};
  assertObject(fn, 'metadata', metadata);
  for (const [k, v] of Object.entries(metadata)) {
    if (RESERVED.includes(k)) throw new RangeError(`${fn}: metadata key "${k}" is reserved (reserved: ${RESERVED.join(', ')})`);
    if (typeof v !== 'string') throw new TypeError(`${fn}: metadata.${k} must be a string, got ${show(v)}`);
  }
  return metadata as Record<string, string>;
}

/** The expert as safetensors bytes (weights, BatchNorm statistics, config, class names). */
export function serializeExpert(params: SerializeExpertParams): Uint8Array {
  const fn = 'serializeExpert';
  assertObject(fn, 'params', params);
  const { expert } = params;
  if (!expert || typeof (expert as ExpertModel).namedParameters !== 'function' || !expert.config) {
    throw new TypeError(`${fn}: expert must be an expert model (ResNet or VisionTransformer), got ${show(expert)}`);
  }
  const metadata = checkMetadata(fn, params.metadata);
  return moduleToSafetensors(expert, {
    ...metadata,
    format: EXPERT_FORMAT,
    config: JSON.stringify(expert.config),
    classNames: JSON.stringify(expert.classNames),
  });
}

/** Parameters of {@link deserializeExpert}. */
export interface DeserializeExpertParams {
  /** Bytes written by {@link serializeExpert}. */
  bytes: Uint8Array;
}

/** Rebuilds an expert from {@link serializeExpert} bytes (strict: every variable must be present). */
export function deserializeExpert(params: DeserializeExpertParams): LoadedExpert {
  const fn = 'deserializeExpert';
  assertObject(fn, 'params', params);
  const { bytes } = params;
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${fn}: bytes must be a Uint8Array, got ${show(bytes)}`);
  const metadata = readSafetensorsMetadata(bytes);
  if (metadata.format !== EXPERT_FORMAT) {
    throw new Error(`${fn}: metadata.format is ${JSON.stringify(metadata.format)}, expected "${EXPERT_FORMAT}" (not an expert checkpoint)`);
  }
  let config: ExpertConfig;
  let classNames: string[];
  try {
    config = JSON.parse(metadata.config);
    classNames = JSON.parse(metadata.classNames);
  } catch {
    throw new Error(`${fn}: metadata.config or metadata.classNames is not valid JSON`);
  }
  const expert = createExpert({ config, classNames, initialize: false });
  try {
    loadModuleWeights(expert, bytes);
  } catch (e) {
    expert.dispose();
    throw new Error(`${fn}: ${(e as Error).message}`);
  }
  return { expert, metadata };
}

/** Parameters of {@link saveExpert}. */
export interface SaveExpertParams extends SerializeExpertParams {
  /** Destination file (conventionally `*.safetensors`). */
  path: string;
}

/** Parameters of {@link loadExpert}. */
export interface LoadExpertParams {
  /** A file written by {@link saveExpert}. */
  path: string;
}
