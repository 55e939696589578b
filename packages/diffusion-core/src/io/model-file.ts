/**
 * Reading a fad model file (`model.safetensors` written by `fad train`) from its bytes, with every
 * check an untrusted file needs: the header ({@link readCheckedHeader}), `metadata.format`, the
 * completion marker `fad.status` (a `partial` file of an unfinished run is refused; files without
 * the key count as complete), `metadata.config` through `resolveUNetConfig` and the limits, the
 * class names, the stored noise schedule through the scheduler registry, the DreamBooth token
 * record, an embedded autoencoder's config, and finally the weights: they must fit the config and
 * be finite. Nothing in a file is evaluated: safetensors tensors and JSON strings only.
 *
 * The CLI reads every model file through this function; a web page can call it on the bytes of a
 * file the user picked. Errors are {@link ModelFileError}s naming the file and the field.
 */
import type { AutoencoderKL } from '../autoencoder/autoencoder';
import { schedulerFromName } from '../schedulers/registry';
import { describeNonFiniteWeights, findNonFiniteWeights } from '../training/finite-weights';
import type { UNet2DConditional } from '../unet/unet';
import { conditioningLabelCount, resolveUNetConfig, type UNetConfig } from '../unet/unet-config';
import { checkAutoencoderConfigLimits, checkClassNames, checkConfigLimit, MODEL_FILE_LIMITS, MODEL_STATUS_KEY, ModelFileError, parseMetadataJson, readCheckedHeader } from './model-file-checks';
import { deserializeUNet, UNET_FORMAT } from './unet-io';

/** What a DreamBooth model's metadata says about its token. */
export interface DreamBoothRecord {
  class: string;
  classLabel: number;
  token: string;
  tokenLabel: number;
}

export interface ParseModelFileParams {
  /** The whole file. */
  bytes: Uint8Array;
  /** The file's name or path, used in messages. */
  name: string;
  /** What the file is, in messages (default "the model"), e.g. "the pretrained model". */
  what?: string;
  /**
   * The hint given when the file is unfinished (`fad.status: partial`). Default: how to finish it
   * with `fad train --resume`.
   */
  resumeHint?: string;
}

/** A checked U-Net file. The caller disposes `model` (and `autoencoder`). */
export interface ParsedModelFile {
  model: UNet2DConditional;
  /** The resolved U-Net config (`model.config`). */
  config: UNetConfig;
  metadata: Record<string, string>;
  /** One name per class (`class_<k>` when the file lists none). */
  classNames: string[];
  /** The stored noise schedule ({} for the defaults), already checked by the scheduler registry. */
  schedulerConfig: Record<string, unknown>;
  /** The DreamBooth token record, or null. */
  dreambooth: DreamBoothRecord | null;
  /** A latent-diffusion model's embedded autoencoder; absent for pixel models. */
  autoencoder?: AutoencoderKL;
}

const DEFAULT_RESUME_HINT = 'Finish its training with `fad train --out RUN_DIR --resume` (RUN_DIR is the folder holding it), or use a finished model.';

const parseJsonField = (metadata: Record<string, string>, key: string, where: string): unknown => parseMetadataJson({ metadata, key, where });
const bound = (where: string, field: string, v: unknown, max: number): void => checkConfigLimit({ where, field, value: v, max });

function checkUNetLimits(c: UNetConfig, where: string): void {
  const L = MODEL_FILE_LIMITS;
  bound(where, 'sampleSize', c.sampleSize, L.maxImageSize);
  bound(where, 'inChannels', c.inChannels, L.maxChannels);
  bound(where, 'outChannels', c.outChannels, L.maxChannels);
  bound(where, 'numClasses', c.numClasses, L.maxClasses);
  bound(where, 'blockChannels.length', c.blockChannels.length, L.maxLevels);
  c.blockChannels.forEach((ch, i) => bound(where, `blockChannels[${i}]`, ch, L.maxWidth));
  bound(where, 'layersPerBlock', c.layersPerBlock, L.maxBlocks);
  bound(where, 'timeEmbeddingDim', c.timeEmbeddingDim, L.maxWidth);
  bound(where, 'timeEmbeddingHiddenDim', c.timeEmbeddingHiddenDim, L.maxWidth);
  bound(where, 'crossAttentionDim', c.crossAttentionDim, L.maxWidth);
  bound(where, 'attentionHeads', c.attentionHeads, L.maxWidth);
  bound(where, 'conditioningTokens.length', c.conditioningTokens?.length ?? 0, L.maxClasses);
}

/**
 * Checks the status marker; throws a `unfinished` ModelFileError for `partial` files. Exported for
 * other checkpoint kinds (experts, autoencoders) that use the same marker.
 */
export function checkModelStatus(p: { metadata: Record<string, string>; where: string; resumeHint: string }): void {
  const s = p.metadata[MODEL_STATUS_KEY];
  if (s === undefined || s === 'complete') return;
  if (s === 'partial') {
    throw new ModelFileError('unfinished', `${p.where} is unfinished (metadata ${MODEL_STATUS_KEY} is "partial": written by a training run that was interrupted or is still running). ${p.resumeHint}`);
  }
  throw new ModelFileError('metadata', `${p.where}: metadata.${MODEL_STATUS_KEY} must be "complete" or "partial", got ${JSON.stringify(s).slice(0, 60)}`);
}

/** Reads and checks a fad U-Net file from its bytes; see the file comment for the checks. */
export function parseModelFile(p: ParseModelFileParams): ParsedModelFile {
  const owner = 'parseModelFile';
  if (!p || typeof p !== 'object') throw new TypeError(`${owner}: expected a params object, got ${String(p)}`);
  if (!(p.bytes instanceof Uint8Array)) throw new TypeError(`${owner}: bytes must be a Uint8Array, got ${typeof p.bytes}`);
  if (typeof p.name !== 'string' || p.name.length === 0) throw new TypeError(`${owner}: name must be a non-empty string naming the file, got ${typeof p.name}`);
  if (p.what !== undefined && (typeof p.what !== 'string' || p.what.length === 0)) throw new TypeError(`${owner}: what must be a non-empty string, got ${typeof p.what}`);
  if (p.resumeHint !== undefined && typeof p.resumeHint !== 'string') throw new TypeError(`${owner}: resumeHint must be a string, got ${typeof p.resumeHint}`);
  const { bytes, name } = p;
  const where = `${p.what ?? 'the model'} ${name}`;
  const { metadata } = readCheckedHeader({ bytes, where });
  if (metadata.format !== UNET_FORMAT) throw new ModelFileError('not-a-model', `${name} is not a usable U-Net checkpoint: metadata.format is ${JSON.stringify(metadata.format)}, expected "${UNET_FORMAT}"`);
  checkModelStatus({ metadata, where, resumeHint: p.resumeHint ?? DEFAULT_RESUME_HINT });
  if (typeof metadata.config !== 'string') throw new ModelFileError('metadata', `${where}: metadata.config is missing`);
  const raw = parseJsonField(metadata, 'config', where);
  let config: UNetConfig;
  try {
    config = resolveUNetConfig(raw as Partial<UNetConfig>);
  } catch (e) {
    throw new ModelFileError('unsupported-config', `${where}: metadata.config: ${(e as Error).message}`);
  }
  checkUNetLimits(config, where);
  const classNames = metadata.classes !== undefined
    ? checkClassNames({ names: parseJsonField(metadata, 'classes', where), where: `${where}: metadata.classes`, expectedCount: config.numClasses })
    : Array.from({ length: config.numClasses }, (_, i) => `class_${i}`);
  let schedulerConfig: Record<string, unknown> = {};
  if (metadata.scheduler !== undefined) {
    const s = parseJsonField(metadata, 'scheduler', where);
    if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new ModelFileError('metadata', `${where}: metadata.scheduler must be a JSON object, got ${JSON.stringify(s)?.slice(0, 60)}`);
    schedulerConfig = s as Record<string, unknown>;
    if (typeof schedulerConfig.numTrainTimesteps === 'number' && schedulerConfig.numTrainTimesteps > MODEL_FILE_LIMITS.maxTrainTimesteps) {
      throw new ModelFileError('limits', `${where}: metadata.config.scheduler.numTrainTimesteps is ${schedulerConfig.numTrainTimesteps}, above the limit ${MODEL_FILE_LIMITS.maxTrainTimesteps}; the file is damaged or hand-made`);
    }
    try {
      // The same validation the library applies when it trains (DDPM: the training schedule).
      schedulerFromName({ name: 'ddpm', config: schedulerConfig });
    } catch (e) {
      throw new ModelFileError('unsupported-config', `${where}: metadata.scheduler: ${(e as Error).message}`);
    }
  }
  let dreambooth: DreamBoothRecord | null = null;
  if (metadata.dreambooth !== undefined) {
    const d = parseJsonField(metadata, 'dreambooth', where) as Record<string, unknown> | null;
    const f = `${where}: metadata.dreambooth`;
    if (d === null || typeof d !== 'object' || Array.isArray(d)) throw new ModelFileError('metadata', `${f} must be a JSON object`);
    if (typeof d.class !== 'string' || !classNames.includes(d.class)) throw new ModelFileError('metadata', `${f}.class must be one of the model's classes (${classNames.join(', ')}), got ${JSON.stringify(d.class)}`);
    if (d.classLabel !== classNames.indexOf(d.class)) throw new ModelFileError('metadata', `${f}.classLabel must be ${classNames.indexOf(d.class)} (the index of "${d.class}"), got ${JSON.stringify(d.classLabel)}`);
    const tokens = config.conditioningTokens ?? [];
    const k = tokens.findIndex((t) => t.name === d.token);
    if (typeof d.token !== 'string' || k < 0) throw new ModelFileError('metadata', `${f}.token must name one of the model's conditioning tokens (${tokens.map((t) => t.name).join(', ') || 'none'}), got ${JSON.stringify(d.token)}`);
    const label = conditioningLabelCount({ ...config, conditioningTokens: [] }) + k;
    if (d.tokenLabel !== label) throw new ModelFileError('metadata', `${f}.tokenLabel must be ${label}, got ${JSON.stringify(d.tokenLabel)}`);
    // The whole record (with its settings) after the checks.
    dreambooth = d as unknown as DreamBoothRecord;
  }
  if (metadata.space === 'latent' && typeof metadata.autoencoderConfig === 'string') {
    checkAutoencoderConfigLimits({ config: parseJsonField(metadata, 'autoencoderConfig', where), where, field: 'autoencoderConfig' });
  }
  let model: UNet2DConditional;
  let autoencoder: AutoencoderKL | undefined;
  try {
    ({ model, autoencoder } = deserializeUNet(bytes));
  } catch (e) {
    throw new ModelFileError('weights', `${name} is not a usable U-Net checkpoint: ${(e as Error).message}`);
  }
  try {
    const bad = findNonFiniteWeights(model.namedParameters());
    if (bad) throw new ModelFileError('non-finite', `${where} cannot be used: its weights are not finite (training diverged): ${describeNonFiniteWeights(bad)}`);
    if (autoencoder) {
      const badAe = findNonFiniteWeights(autoencoder.namedParameters().map(([n, v]) => [`autoencoder.${n}`, v] as const));
      if (badAe) throw new ModelFileError('non-finite', `${where} cannot be used: its embedded autoencoder's weights are not finite: ${describeNonFiniteWeights(badAe)}`);
    }
  } catch (e) {
    model.dispose();
    autoencoder?.dispose();
    throw e;
  }
  return { model, config: model.config, metadata, classNames, schedulerConfig, dreambooth, ...(autoencoder ? { autoencoder } : {}) };
}
