/**
 * Expert files are untrusted input (shared between people, possibly damaged or hand-made).
 * `parseExpertFile` checks one from its bytes before anything is built, the way diffusion-core's
 * `parseModelFile` checks U-Net files, so that the CLI and a web page apply the same checks:
 * - the safetensors header: bounded size, tensor shapes within `MODEL_FILE_LIMITS`;
 * - `metadata.format` (`EXPERT_FORMAT`); the completion marker `fad.status` (`partial`: refused
 *   with how to resume);
 * - `metadata.config` through `resolveExpertConfig`, its sizes within `MODEL_FILE_LIMITS`;
 * - `metadata.classNames`: safe, unique path segments, as many as the expert has classes;
 * - the weights: finite (one reduction per tensor).
 * Every problem is a diffusion-core `ModelFileError` naming the file and the field.
 */
import {
  checkClassNames,
  checkConfigLimit,
  checkModelStatus,
  describeNonFiniteWeights,
  findNonFiniteWeights,
  MODEL_FILE_LIMITS,
  ModelFileError,
  parseMetadataJson,
  readCheckedHeader,
} from '@fad/diffusion-core';
import { deserializeExpert, EXPERT_FORMAT } from './expert-checkpoint';
import { type ExpertConfig, resolveExpertConfig } from './expert-config';
import type { ExpertModel } from './expert-model';
import { assertObject, show } from './validate';

/** Parameters of {@link parseExpertFile}. */
export interface ParseExpertFileParams {
  /** The file's bytes. */
  bytes: Uint8Array;
  /** Names the file in messages (its path). */
  name: string;
  /** What the file is, in messages (default "the expert"). */
  what?: string;
  /** Appended to the message for an unfinished (`partial`) file: how to finish its training. */
  resumeHint?: string;
}

/** A checked expert file. */
export interface ParsedExpertFile {
  /** The expert, frozen (inference mode, no trainable variable). */
  expert: ExpertModel;
  config: ExpertConfig;
  classNames: string[];
  metadata: Record<string, string>;
}

const DEFAULT_RESUME_HINT = 'Finish its training, or use a finished expert.';

/** Reads and checks an expert file from its bytes (see the file comment); the expert comes back frozen. */
export function parseExpertFile(p: ParseExpertFileParams): ParsedExpertFile {
  const fn = 'parseExpertFile';
  assertObject(fn, 'params', p);
  if (!(p.bytes instanceof Uint8Array)) throw new TypeError(`${fn}: bytes must be a Uint8Array, got ${show(p.bytes)}`);
  if (typeof p.name !== 'string' || p.name === '') throw new TypeError(`${fn}: name must be a non-empty string naming the file, got ${show(p.name)}`);
  if (p.what !== undefined && (typeof p.what !== 'string' || p.what === '')) throw new TypeError(`${fn}: what must be a non-empty string, got ${show(p.what)}`);
  const { bytes, name } = p;
  const where = `${p.what ?? 'the expert'} ${name}`;
  const { metadata } = readCheckedHeader({ bytes, where });
  if (metadata.format !== EXPERT_FORMAT) throw new ModelFileError('not-a-model', `${name} is not a usable expert checkpoint: metadata.format is ${JSON.stringify(metadata.format)}, expected "${EXPERT_FORMAT}"`);
  checkModelStatus({ metadata, where, resumeHint: p.resumeHint ?? DEFAULT_RESUME_HINT });
  if (typeof metadata.config !== 'string') throw new ModelFileError('metadata', `${where}: metadata.config is missing`);
  let config: ExpertConfig;
  try {
    config = resolveExpertConfig(parseMetadataJson({ metadata, key: 'config', where }) as never);
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    throw new ModelFileError('unsupported-config', `${where}: metadata.config: ${(e as Error).message.replace(/^resolveExpertConfig: /, '')}`);
  }
  const L = MODEL_FILE_LIMITS;
  const bound = (field: string, value: number, max: number) => checkConfigLimit({ where, field, value, max });
  bound('input.size', config.input.size, L.maxImageSize);
  bound('input.channels', config.input.channels, L.maxChannels);
  bound('numClasses', config.numClasses, L.maxClasses);
  if (config.head.type === 'mlp') bound('head.hiddenDim', config.head.hiddenDim, L.maxWidth);
  if (config.arch === 'resnet') {
    bound('baseWidth', config.baseWidth, L.maxWidth);
    bound('baseWidth x 2^(stages - 1) (the widest stage)', config.baseWidth * 2 ** (config.layers.length - 1), L.maxWidth);
    bound('layers.length', config.layers.length, L.maxLevels);
    config.layers.forEach((n, i) => bound(`layers[${i}]`, n, L.maxBlocks));
  } else {
    bound('width', config.width, L.maxWidth);
    bound('width * mlpRatio', config.width * config.mlpRatio, 4 * L.maxWidth);
    bound('depth', config.depth, L.maxBlocks);
  }
  if (metadata.classNames === undefined) throw new ModelFileError('metadata', `${where}: metadata.classNames is missing`);
  const classNames = checkClassNames({ names: parseMetadataJson({ metadata, key: 'classNames', where }), where: `${where}: metadata.classNames`, expectedCount: config.numClasses });
  let expert: ExpertModel;
  try {
    expert = deserializeExpert({ bytes }).expert;
  } catch (e) {
    throw new ModelFileError('weights', `${name} is not a usable expert checkpoint: ${(e as Error).message}`);
  }
  const bad = findNonFiniteWeights(expert.namedParameters());
  if (bad) {
    expert.dispose();
    throw new ModelFileError('non-finite', `${where} cannot be used: its weights are not finite (training diverged): ${describeNonFiniteWeights(bad)}`);
  }
  expert.freeze();
  return { expert, config, classNames, metadata };
}
