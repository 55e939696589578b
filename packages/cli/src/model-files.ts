/**
 * Model, expert and autoencoder files are untrusted input: they are shared between people and can
 * be damaged or hand-made. Every file fad reads goes through these loaders, which check, before
 * anything is allocated or written:
 *
 * - the safetensors header: bounded size, tensor shapes within `LIMITS` (a huge claimed shape is
 *   refused, not allocated);
 * - the metadata: `format`; `config` through the library's own validator (`resolveUNetConfig`,
 *   `resolveExpertConfig`, the autoencoder's) and `LIMITS`; class names as safe, unique path
 *   segments, as many as the model has classes; the noise schedule through diffusion-core's
 *   scheduler registry; the DreamBooth token record;
 * - the completion marker `fad.status`: `partial` (an unfinished run's file) is refused with how to
 *   resume; files without the key (older versions) count as complete;
 * - the weights: finite (one reduction per tensor).
 *
 * Every error names the file and the field. A checkpoint is data, never code: safetensors tensors
 * and JSON strings only; nothing in a file is evaluated.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import {
  type AutoencoderKL,
  type UNet2DConditional,
  type UNetConfig,
  conditioningLabelCount,
  decodeSafetensors,
  describeNonFiniteWeights,
  deserializeAutoencoder,
  deserializeUNet,
  findNonFiniteWeights,
  resolveUNetConfig,
  schedulerFromName,
  UNET_FORMAT,
} from '@fad/diffusion-core';
import { CHECKPOINT_STATUS_KEY, deserializeExpert, EXPERT_FORMAT, type ExpertConfig, type ExpertModel, resolveExpertConfig } from '@fad/expert-models';
import { CliError, DivergenceError, fsError } from './errors';
import { sha256 } from './fsutil';
import { LIMITS } from './limits';
import { assertSafeNames } from './safety';

/** The completion marker of final model/expert files (`fad.status` metadata). */
export const STATUS_KEY = CHECKPOINT_STATUS_KEY;
export const STATUS_COMPLETE = 'complete';
export const STATUS_PARTIAL = 'partial';

/** Reads a file for `what` ("the model"), naming the path on any error. */
export function readInputFile(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CliError(`cannot read ${what} ${path}: no such file`);
    if (code === 'EISDIR') throw new CliError(`cannot read ${what} ${path}: it is a folder, not a file`);
    throw fsError(e, path, `read ${what}`);
  }
}

interface HeaderTensor {
  dtype: string;
  shape: number[];
}

/**
 * The safetensors header (metadata and tensor shapes) of `bytes`, checked against `LIMITS` before
 * any tensor is decoded. `where` names the file.
 */
export function readCheckedHeader(bytes: Uint8Array, where: string): { metadata: Record<string, string>; tensors: Record<string, HeaderTensor> } {
  if (bytes.length < 8) throw new CliError(`${where} is not a safetensors file (${bytes.length} bytes)`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > LIMITS.maxHeaderBytes || 8 + n > bytes.length) throw new CliError(`${where} is not a usable safetensors file: its header claims ${n} bytes (file ${bytes.length} bytes)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new CliError(`${where} is not a usable safetensors file: its header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new CliError(`${where}: the safetensors header is not a JSON object`);
  const meta = (header.__metadata__ ?? {}) as Record<string, unknown>;
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw new CliError(`${where}: __metadata__ is not a JSON object`);
  for (const [k, v] of Object.entries(meta)) if (typeof v !== 'string') throw new CliError(`${where}: metadata.${k} must be a string, got ${typeof v}`);
  const tensors: Record<string, HeaderTensor> = {};
  let total = 0;
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const shape = (t as { shape?: unknown })?.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0 && d <= LIMITS.maxDim)) {
      throw new CliError(`${where}: tensor "${name}" has an invalid shape ${JSON.stringify(shape)?.slice(0, 80)}`);
    }
    const size = shape.reduce((a: number, b: number) => a * b, 1);
    total += size;
    if (total > LIMITS.maxParameters) throw new CliError(`${where}: the tensors hold more than ${LIMITS.maxParameters} values (at "${name}"); refusing to load it`);
    tensors[name] = { dtype: String((t as { dtype?: unknown }).dtype), shape };
  }
  return { metadata: meta as Record<string, string>, tensors };
}

function parseJsonField(metadata: Record<string, string>, key: string, where: string): unknown {
  try {
    return JSON.parse(metadata[key]);
  } catch (e) {
    throw new CliError(`${where}: metadata.${key} is not valid JSON (${(e as Error).message})`);
  }
}

function checkStatus(metadata: Record<string, string>, where: string, resumeHint: string): void {
  const s = metadata[STATUS_KEY];
  if (s === undefined || s === STATUS_COMPLETE) return;
  if (s === STATUS_PARTIAL) {
    throw new CliError(`${where} is unfinished (metadata ${STATUS_KEY} is "partial": written by a training run that was interrupted or is still running). ${resumeHint}`);
  }
  throw new CliError(`${where}: metadata.${STATUS_KEY} must be "complete" or "partial", got ${JSON.stringify(s).slice(0, 60)}`);
}

function bound(where: string, field: string, v: unknown, max: number): void {
  if (typeof v === 'number' && v > max) throw new CliError(`${where}: metadata.config.${field} is ${v}, above the limit ${max}; the file is damaged or hand-made`);
}

/** Throws a DivergenceError when the module's weights hold NaN or infinity. */
export function assertFiniteWeights(named: ReadonlyArray<readonly [string, tf.Tensor]>, where: string): void {
  const r = findNonFiniteWeights(named);
  if (r) throw new DivergenceError(`${where}: ${describeNonFiniteWeights(r)}`);
}

/** UNet config fields checked against LIMITS (after resolveUNetConfig). */
function checkUNetLimits(c: UNetConfig, where: string): void {
  bound(where, 'sampleSize', c.sampleSize, LIMITS.maxImageSize);
  bound(where, 'inChannels', c.inChannels, LIMITS.maxChannels);
  bound(where, 'outChannels', c.outChannels, LIMITS.maxChannels);
  bound(where, 'numClasses', c.numClasses, LIMITS.maxClasses);
  bound(where, 'blockChannels.length', c.blockChannels.length, LIMITS.maxLevels);
  c.blockChannels.forEach((ch, i) => bound(where, `blockChannels[${i}]`, ch, LIMITS.maxWidth));
  bound(where, 'layersPerBlock', c.layersPerBlock, LIMITS.maxBlocks);
  bound(where, 'timeEmbeddingDim', c.timeEmbeddingDim, LIMITS.maxWidth);
  bound(where, 'timeEmbeddingHiddenDim', c.timeEmbeddingHiddenDim, LIMITS.maxWidth);
  bound(where, 'crossAttentionDim', c.crossAttentionDim, LIMITS.maxWidth);
  bound(where, 'attentionHeads', c.attentionHeads, LIMITS.maxWidth);
  bound(where, 'conditioningTokens.length', c.conditioningTokens?.length ?? 0, LIMITS.maxClasses);
}

/** What a DreamBooth model's metadata says about its token. */
export interface DreamBoothInfo {
  class: string;
  classLabel: number;
  token: string;
  tokenLabel: number;
}

/** A checked U-Net file. */
export interface LoadedModelFile {
  model: UNet2DConditional;
  metadata: Record<string, string>;
  sha256: string;
  classNames: string[];
  /** The stored noise schedule ({} for the defaults), already checked by the scheduler registry. */
  schedulerConfig: Record<string, unknown>;
  /** The DreamBooth token record, or null. */
  dreambooth: DreamBoothInfo | null;
  /** A latent-diffusion model's embedded autoencoder (the caller disposes it); absent for pixel models. */
  autoencoder?: AutoencoderKL;
}

/** An autoencoder config (from a file's metadata) checked against LIMITS before it is built. */
function checkAutoencoderLimits(raw: unknown, where: string, field: string): void {
  const cfg = raw as Record<string, unknown> | null;
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) throw new CliError(`${where}: metadata.${field} must be a JSON object`);
  const b = (k: string, v: unknown, max: number) => {
    if (typeof v === 'number' && v > max) throw new CliError(`${where}: metadata.${field}.${k} is ${v}, above the limit ${max}; the file is damaged or hand-made`);
  };
  for (const k of ['inChannels', 'outChannels', 'latentChannels']) b(k, cfg[k], LIMITS.maxChannels * 4);
  b('layersPerBlock', cfg.layersPerBlock, LIMITS.maxBlocks);
  if (Array.isArray(cfg.blockChannels)) {
    b('blockChannels.length', cfg.blockChannels.length, LIMITS.maxLevels);
    cfg.blockChannels.forEach((c, i) => b(`blockChannels[${i}]`, c, LIMITS.maxWidth));
  }
}

/**
 * Loads and checks a U-Net file (`fad train` / `fad train --dreambooth` output). `what` names it in
 * errors ("the model", "the pretrained model").
 */
export function loadModelFile(path: string, what = 'the model'): LoadedModelFile {
  const bytes = readInputFile(path, what);
  const where = `${what} ${path}`;
  const { metadata } = readCheckedHeader(bytes, where);
  if (metadata.format !== UNET_FORMAT) throw new CliError(`${path} is not a usable U-Net checkpoint: metadata.format is ${JSON.stringify(metadata.format)}, expected "${UNET_FORMAT}"`);
  checkStatus(metadata, where, 'Finish its training with `fad train --out RUN_DIR --resume` (RUN_DIR is the folder holding it), or use a finished model.');
  if (typeof metadata.config !== 'string') throw new CliError(`${where}: metadata.config is missing`);
  const raw = parseJsonField(metadata, 'config', where);
  let config: UNetConfig;
  try {
    config = resolveUNetConfig(raw as Partial<UNetConfig>);
  } catch (e) {
    throw new CliError(`${where}: metadata.config: ${(e as Error).message}`);
  }
  checkUNetLimits(config, where);
  const classNames = metadata.classes !== undefined
    ? assertSafeNames(parseJsonField(metadata, 'classes', where), `${where}: metadata.classes`, config.numClasses)
    : Array.from({ length: config.numClasses }, (_, i) => `class_${i}`);
  let schedulerConfig: Record<string, unknown> = {};
  if (metadata.scheduler !== undefined) {
    const s = parseJsonField(metadata, 'scheduler', where);
    if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new CliError(`${where}: metadata.scheduler must be a JSON object, got ${JSON.stringify(s)?.slice(0, 60)}`);
    schedulerConfig = s as Record<string, unknown>;
    bound(where, 'scheduler.numTrainTimesteps', schedulerConfig.numTrainTimesteps, LIMITS.maxTrainTimesteps);
    try {
      // The same validation the library applies when it trains (DDPM: the training schedule).
      schedulerFromName({ name: 'ddpm', config: schedulerConfig });
    } catch (e) {
      throw new CliError(`${where}: metadata.scheduler: ${(e as Error).message}`);
    }
  }
  let dreambooth: DreamBoothInfo | null = null;
  if (metadata.dreambooth !== undefined) {
    const d = parseJsonField(metadata, 'dreambooth', where) as Record<string, unknown> | null;
    const f = `${where}: metadata.dreambooth`;
    if (d === null || typeof d !== 'object' || Array.isArray(d)) throw new CliError(`${f} must be a JSON object`);
    if (typeof d.class !== 'string' || !classNames.includes(d.class)) throw new CliError(`${f}.class must be one of the model's classes (${classNames.join(', ')}), got ${JSON.stringify(d.class)}`);
    if (d.classLabel !== classNames.indexOf(d.class)) throw new CliError(`${f}.classLabel must be ${classNames.indexOf(d.class)} (the index of "${d.class}"), got ${JSON.stringify(d.classLabel)}`);
    const tokens = config.conditioningTokens ?? [];
    const k = tokens.findIndex((t) => t.name === d.token);
    if (typeof d.token !== 'string' || k < 0) throw new CliError(`${f}.token must name one of the model's conditioning tokens (${tokens.map((t) => t.name).join(', ') || 'none'}), got ${JSON.stringify(d.token)}`);
    const label = conditioningLabelCount({ ...config, conditioningTokens: [] }) + k;
    if (d.tokenLabel !== label) throw new CliError(`${f}.tokenLabel must be ${label}, got ${JSON.stringify(d.tokenLabel)}`);
    // The whole record (with its settings) after the checks: the manifest of its images records it.
    dreambooth = d as unknown as DreamBoothInfo;
  }
  if (metadata.space === 'latent' && typeof metadata.autoencoderConfig === 'string') checkAutoencoderLimits(parseJsonField(metadata, 'autoencoderConfig', where), where, 'autoencoderConfig');
  let model: UNet2DConditional;
  let autoencoder: AutoencoderKL | undefined;
  try {
    ({ model, autoencoder } = deserializeUNet(bytes));
  } catch (e) {
    throw new CliError(`${path} is not a usable U-Net checkpoint: ${(e as Error).message}`);
  }
  try {
    assertFiniteWeights(model.namedParameters(), `${where} cannot be used: its weights are not finite (training diverged)`);
    if (autoencoder) assertFiniteWeights(autoencoder.namedParameters().map(([n, v]) => [`autoencoder.${n}`, v] as const), `${where} cannot be used: its embedded autoencoder's weights are not finite`);
  } catch (e) {
    model.dispose();
    autoencoder?.dispose();
    throw e;
  }
  return { model, metadata, sha256: sha256(bytes), classNames, schedulerConfig, dreambooth, ...(autoencoder ? { autoencoder } : {}) };
}

/** A checked expert file. */
export interface LoadedExpertFile {
  expert: ExpertModel;
  path: string;
  sha256: string;
  metadata: Record<string, string>;
}

/** Loads, checks and freezes an expert file (`fad expert train` output). */
export function loadExpertFile(path: string, what = 'the expert'): LoadedExpertFile {
  const bytes = readInputFile(path, what === 'the expert' ? 'the expert checkpoint' : what);
  const where = `${what} ${path}`;
  const { metadata } = readCheckedHeader(bytes, where);
  if (metadata.format !== EXPERT_FORMAT) throw new CliError(`${path} is not a usable expert checkpoint: metadata.format is ${JSON.stringify(metadata.format)}, expected "${EXPERT_FORMAT}"`);
  checkStatus(metadata, where, 'Finish its training with `fad expert train --out EXPERT_DIR --resume` (EXPERT_DIR is the folder holding it), or use a finished expert.');
  if (typeof metadata.config !== 'string') throw new CliError(`${where}: metadata.config is missing`);
  let config: ExpertConfig;
  try {
    config = resolveExpertConfig(parseJsonField(metadata, 'config', where) as never);
  } catch (e) {
    throw new CliError(`${where}: metadata.config: ${(e as Error).message.replace(/^resolveExpertConfig: /, '')}`);
  }
  bound(where, 'input.size', config.input.size, LIMITS.maxImageSize);
  bound(where, 'input.channels', config.input.channels, LIMITS.maxChannels);
  bound(where, 'numClasses', config.numClasses, LIMITS.maxClasses);
  if (config.head.type === 'mlp') bound(where, 'head.hiddenDim', config.head.hiddenDim, LIMITS.maxWidth);
  if (config.arch === 'resnet') {
    bound(where, 'baseWidth', config.baseWidth, LIMITS.maxWidth);
    bound(where, 'baseWidth x 2^(stages - 1) (the widest stage)', config.baseWidth * 2 ** (config.layers.length - 1), LIMITS.maxWidth);
    bound(where, 'layers.length', config.layers.length, LIMITS.maxLevels);
    config.layers.forEach((n, i) => bound(where, `layers[${i}]`, n, LIMITS.maxBlocks));
  } else {
    bound(where, 'width', config.width, LIMITS.maxWidth);
    bound(where, 'width * mlpRatio', config.width * config.mlpRatio, 4 * LIMITS.maxWidth);
    bound(where, 'depth', config.depth, LIMITS.maxBlocks);
  }
  if (metadata.classNames === undefined) throw new CliError(`${where}: metadata.classNames is missing`);
  assertSafeNames(parseJsonField(metadata, 'classNames', where), `${where}: metadata.classNames`, config.numClasses);
  let expert: ExpertModel;
  try {
    expert = deserializeExpert({ bytes }).expert;
  } catch (e) {
    throw new CliError(`${path} is not a usable expert checkpoint: ${(e as Error).message}`);
  }
  try {
    assertFiniteWeights(expert.namedParameters(), `${where} cannot be used: its weights are not finite (training diverged)`);
  } catch (e) {
    expert.dispose();
    throw e;
  }
  expert.freeze();
  return { expert, path, sha256: sha256(bytes), metadata };
}

/** Loads and checks an autoencoder file (`fad autoencoder train` output). */
export function loadAutoencoderFile(path: string, what = 'the autoencoder'): { model: AutoencoderKL; metadata: Record<string, string>; sha256: string } {
  const bytes = readInputFile(path, what);
  const where = `${what} ${path}`;
  const { metadata } = readCheckedHeader(bytes, where);
  checkStatus(metadata, where, 'Finish its training with `fad autoencoder train --out DIR --resume`.');
  let loaded;
  try {
    checkAutoencoderLimits(parseJsonField(metadata, 'config', where), where, 'config');
    loaded = deserializeAutoencoder(bytes);
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot load ${path}: ${(e as Error).message}`);
  }
  try {
    assertFiniteWeights(loaded.model.namedParameters(), `${where} cannot be used: its weights are not finite (training diverged)`);
  } catch (e) {
    loaded.model.dispose();
    throw e;
  }
  return { ...loaded, sha256: sha256(bytes) };
}

type F32Tensors = Record<string, { shape: number[]; data: Float32Array }>;

/**
 * Reads a resumable training checkpoint (`fad train`, `fad autoencoder train`) and checks its JSON
 * `state` before anything is loaded: valid JSON, the format, the step key, a step within
 * `0..totalSteps` (a step past the total must never end as a finished run), the data order and the
 * metrics window. Every error names the file and the field.
 */
export function readTrainCheckpoint<S extends { format: string; key: string; step: number }>(p: {
  path: string;
  format: string;
  /** What the file is, e.g. "the training checkpoint". */
  what: string;
  /** The run's total steps and the config key that sets them (for the message). */
  totalSteps: number;
  totalKey: string;
  /** Extra checks of the state: return `[field, expected]` for the first bad field, or null. */
  check?: (state: S) => [string, string] | null;
}): { state: S; tensors: F32Tensors } {
  const where = `${p.what} ${p.path}`;
  const bytes = readInputFile(p.path, p.what);
  const { metadata } = readCheckedHeader(bytes, where);
  if (metadata.format !== p.format) throw new CliError(`${p.path} is not a ${p.format} checkpoint (metadata.format ${JSON.stringify(metadata.format)}); use --force to start over`);
  if (typeof metadata.state !== 'string') throw new CliError(`${where}: metadata.state is missing; use --force to start over`);
  const state = parseJsonField(metadata, 'state', where) as S;
  const bad = (field: string, expected: string): never => {
    let got: unknown = state;
    for (const k of field.split('.')) got = got && typeof got === 'object' ? (got as Record<string, unknown>)[k] : undefined;
    throw new CliError(`${where}: state.${field} is ${JSON.stringify(got)?.slice(0, 80) ?? 'missing'}, expected ${expected}; the checkpoint is damaged or was edited (use --force to start over)`);
  };
  if (state === null || typeof state !== 'object' || Array.isArray(state)) bad('', 'a JSON object');
  if (state.format !== p.format) bad('format', JSON.stringify(p.format));
  if (typeof state.key !== 'string' || state.key.length === 0) bad('key', 'the run\'s step key (a string)');
  if (!Number.isInteger(state.step) || state.step < 0) bad('step', 'an integer >= 0');
  if (state.step > p.totalSteps) bad('step', `at most ${p.totalKey} (${p.totalSteps}): the checkpoint is past the end of this run`);
  const s = state as unknown as Record<string, unknown>;
  const data = s.data as { gen?: { s?: unknown }; perm?: unknown; cursor?: unknown } | undefined;
  if (!data || typeof data !== 'object') bad('data', 'the data order state');
  if (!Array.isArray(data!.gen?.s) || (data!.gen!.s as unknown[]).length !== 4 || !(data!.gen!.s as unknown[]).every((x) => Number.isInteger(x))) bad('data.gen', 'a generator state { s: [4 integers], spare }');
  if (!Array.isArray(data!.perm) || !(data!.perm as unknown[]).every((x) => Number.isInteger(x) && (x as number) >= 0)) bad('data.perm', 'a list of data indices');
  if (!Number.isInteger(data!.cursor) || (data!.cursor as number) < 0 || (data!.cursor as number) > (data!.perm as unknown[]).length) bad('data.cursor', `an integer in 0..${(data!.perm as unknown[]).length}`);
  const w = s.window as Record<string, unknown> | undefined;
  if (!w || typeof w !== 'object' || !Number.isInteger(w.n) || typeof w.loss !== 'number' || typeof w.gradNorm !== 'number' || !w.terms || typeof w.terms !== 'object') bad('window', 'the metrics window { n, loss, terms, gradNorm }');
  const extra = p.check?.(state);
  if (extra) bad(extra[0], extra[1]);
  let tensors: F32Tensors;
  try {
    tensors = decodeSafetensors(bytes).tensors as F32Tensors;
  } catch (e) {
    throw new CliError(`cannot read ${where}: ${(e as Error).message}; use --force to start over`);
  }
  for (const [n, t] of Object.entries(tensors)) if (!(t.data instanceof Float32Array)) throw new CliError(`${where}: tensor "${n}" is not F32`);
  return { state, tensors };
}

/** Loads weights from a checkpoint into a module, naming the file when they do not fit. */
export function loadCheckpointWeights(load: () => void, where: string): void {
  try {
    load();
  } catch (e) {
    throw new CliError(`${where}: its tensors do not fit the model of this config (${(e as Error).message}); use --force to start over`);
  }
}
