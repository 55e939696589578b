/**
 * The resumable state of `trainExpert` (internal, except `expertTrainingStateInfo` and
 * `readExpertTrainingState` in `@fad/expert-models/node`): one safetensors
 * file written atomically (temporary file, then rename), so a run killed at any moment leaves either
 * the previous state or the new one, never a mix.
 *
 * Tensors (F32):
 * - `expert.<name>`: every variable of the expert (`stateDict`, BatchNorm running statistics included)
 * - `adam.m.<i>`, `adam.v.<i>`: Adam's moments, flat, in the order of `expert.trainableVariables()`
 * - `best.<name>`: the best epoch's weights, when `restoreBest` will need them at the end (they are
 *   kept in the state rather than re-read from `checkpointPath`, so the state is self-contained and
 *   works without a checkpoint path; the file is then up to 4x the weights' size)
 *
 * Metadata (strings): `format` (`fad-expert-train-state/1`), `state` (JSON {@link TrainState}:
 * position, RNG states, partial epoch sums, history, best-epoch bookkeeping), `fingerprint` (JSON:
 * the inputs a resume must share, see {@link trainFingerprint}), plus the caller's `stateMetadata`.
 */
import { type AdamState, decodeSafetensors, encodeSafetensors, type GeneratorState, readSafetensorsMetadata, type SafetensorsTensor } from '@fad/diffusion-core';
import type { AugmentConfig } from './augment-batch';
import type { ExpertConfig } from './expert-config';
import type { ImageSet } from './image-batch';
import type { DataSplit } from './stratified-split';
import type { TrainingFiles } from './training-files';
import { assertObject, show } from './validate';
import type { EpochSummary } from './train-expert';

/** The `format` metadata value of training-state files. */
export const TRAIN_STATE_FORMAT = 'fad-expert-train-state/1';

const RESERVED = ['format', 'state', 'fingerprint'];

type StateDict = Record<string, { shape: number[]; data: Float32Array }>;
type GenState = { s: GeneratorState; spare: number | null };

/** One epoch in the history: train-expert.ts's `EpochSummary` (a type-only import, so no cycle at run time). */
type HistoryEntry = EpochSummary;

/** The JSON part of the state. Epochs and steps here count from 0 (what is done). */
export interface TrainState {
  /** The epoch in progress (0-based); `epochs` once training has finished. */
  epoch: number;
  /** Steps of `epoch` already taken. */
  stepInEpoch: number;
  globalStep: number;
  totalSteps: number;
  epochs: number;
  stepsPerEpoch: number;
  /** The shuffle generator at the start of `epoch` (its permutation is recomputed on resume). */
  shuffle: GenState;
  /** The augmentation generator now. */
  augment: GenState;
  /** The noise-aware training's noise generator now (absent in states written before it existed). */
  noise?: GenState;
  /** Partial sums of `epoch`: loss and correct predictions weighted by batch size, images seen. */
  sums: { loss: number; correct: number; seen: number };
  history: HistoryEntry[];
  /** Best epoch so far (1-based); accuracy/loss null without validation. `weights`: `best.*` tensors stored. */
  best: { epoch: number; accuracy: number | null; loss: number | null; weights: boolean } | null;
  elapsedMs: number;
}

/** What {@link readTrainState} returns. */
export interface LoadedTrainState {
  state: TrainState;
  fingerprint: Record<string, unknown>;
  metadata: Record<string, string>;
  expert: StateDict;
  best: StateDict | null;
  adam: AdamState;
}

/** FNV-1a (32 bit) over 32-bit words, as 8 hex digits. */
function fnv(words: ArrayLike<number>, seed = 0x811c9dc5): string {
  let h = seed >>> 0;
  for (let i = 0; i < words.length; i++) {
    const w = words[i] >>> 0;
    h = Math.imul(h ^ (w & 0xff), 0x01000193);
    h = Math.imul(h ^ ((w >>> 8) & 0xff), 0x01000193);
    h = Math.imul(h ^ ((w >>> 16) & 0xff), 0x01000193);
    h = Math.imul(h ^ (w >>> 24), 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** A hash of float values by their float32 bit patterns. */
export function fnvFloats(values: ArrayLike<number>): string {
  const f = Float32Array.from(values as ArrayLike<number>);
  return fnv(new Uint32Array(f.buffer));
}

function hashImages(set: ImageSet): string {
  return fnv(new Uint32Array(set.data.buffer, set.data.byteOffset, set.data.length));
}

/** The inputs of `trainExpert` that determine its result; a resume must match them all. */
export function trainFingerprint(args: {
  expertConfig: ExpertConfig;
  images: ImageSet;
  labels: Int32Array;
  validation: { images: ImageSet; labels: Int32Array } | null;
  split: DataSplit;
  epochs: number;
  batchSize: number;
  learningRate: number;
  lrGamma: number;
  lrStepEpochs: number;
  weightDecay: number;
  weightDecayMode: string;
  seed: number;
  augment: AugmentConfig;
  restoreBest: boolean;
  evalBatchSize: number;
  /** Noise-aware training's settings (a hash of its alpha-bars, the probability), or null. */
  noiseAware?: Record<string, unknown> | null;
}): Record<string, unknown> {
  const { images, labels, validation, split } = args;
  return {
    epochs: args.epochs,
    batchSize: args.batchSize,
    learningRate: args.learningRate,
    lrGamma: args.lrGamma,
    lrStepEpochs: args.lrStepEpochs,
    weightDecay: args.weightDecay,
    weightDecayMode: args.weightDecayMode,
    seed: args.seed,
    restoreBest: args.restoreBest,
    evalBatchSize: args.evalBatchSize,
    images: { shape: images.shape, hash: hashImages(images) },
    labels: { count: labels.length, hash: fnv(labels) },
    validation: validation ? { shape: validation.images.shape, hash: hashImages(validation.images), labelsHash: fnv(validation.labels) } : null,
    split: { train: split.train.length, validation: split.validation.length, hash: fnv([...split.train, 0xffffffff, ...split.validation]) },
    augment: args.augment,
    expert: args.expertConfig,
    ...(args.noiseAware ? { noiseAware: args.noiseAware } : {}),
  };
}

/** Dotted paths of `a` and `b` whose values differ, with both values, e.g. `epochs (3 in the state, 4 now)`. */
export function fingerprintDifferences(saved: Record<string, unknown>, now: Record<string, unknown>): string[] {
  const flat = (v: unknown, prefix: string, out: Map<string, string>) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) flat(x, prefix ? `${prefix}.${k}` : k, out);
    } else out.set(prefix, JSON.stringify(v) ?? 'undefined');
    return out;
  };
  const a = flat(saved, '', new Map());
  const b = flat(now, '', new Map());
  const keys = [...new Set([...a.keys(), ...b.keys()])];
  const name = (k: string) => (k === 'images.hash' || k === 'validation.hash' ? `${k.split('.')[0]} (pixel checksum)` : k);
  return keys.filter((k) => a.get(k) !== b.get(k)).map((k) => `${name(k)} (${a.get(k) ?? 'absent'} in the state, ${b.get(k) ?? 'absent'} now)`);
}

/** Encodes the state (see the file comment). */
export function encodeTrainState(args: {
  state: TrainState;
  fingerprint: Record<string, unknown>;
  metadata: Record<string, string>;
  expert: StateDict;
  best: StateDict | null;
  adam: AdamState;
}): Uint8Array {
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const [n, v] of Object.entries(args.expert)) tensors[`expert.${n}`] = { dtype: 'F32', shape: v.shape, data: v.data };
  if (args.best) for (const [n, v] of Object.entries(args.best)) tensors[`best.${n}`] = { dtype: 'F32', shape: v.shape, data: v.data };
  args.adam.m.forEach((m, i) => (tensors[`adam.m.${i}`] = { dtype: 'F32', shape: [m.length], data: m }));
  args.adam.v.forEach((v, i) => (tensors[`adam.v.${i}`] = { dtype: 'F32', shape: [v.length], data: v }));
  const state = { ...args.state, best: args.state.best && { ...args.state.best, weights: args.best !== null } };
  return encodeSafetensors({
    tensors,
    metadata: { ...args.metadata, format: TRAIN_STATE_FORMAT, state: JSON.stringify(state), fingerprint: JSON.stringify(args.fingerprint) },
  });
}

/** Checks the caller's `stateMetadata` (strings, no reserved key). */
export function checkStateMetadata(fn: string, metadata: unknown): Record<string, string> {
  if (metadata === undefined) return {};
  assertObject(fn, 'stateMetadata', metadata);
  for (const [k, v] of Object.entries(metadata)) {
    if (RESERVED.includes(k)) throw new RangeError(`${fn}: stateMetadata key "${k}" is reserved (reserved: ${RESERVED.join(', ')})`);
    if (typeof v !== 'string') throw new TypeError(`${fn}: stateMetadata.${k} must be a string, got ${show(v)}`);
  }
  return metadata as Record<string, string>;
}

function parseMetadata(metadata: Record<string, string>): { state: TrainState; fingerprint: Record<string, unknown>; metadata: Record<string, string> } {
  if (metadata.format !== TRAIN_STATE_FORMAT) {
    throw new Error(`metadata.format is ${JSON.stringify(metadata.format)}, expected "${TRAIN_STATE_FORMAT}" (not an expert training state)`);
  }
  let state: TrainState;
  let fingerprint: Record<string, unknown>;
  try {
    state = JSON.parse(metadata.state);
    fingerprint = JSON.parse(metadata.fingerprint);
  } catch {
    throw new Error('metadata.state or metadata.fingerprint is not valid JSON');
  }
  const rest: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) if (!RESERVED.includes(k)) rest[k] = v;
  return { state, fingerprint, metadata: rest };
}

/** Decodes {@link encodeTrainState} bytes. */
export function decodeTrainState(bytes: Uint8Array): LoadedTrainState {
  const file = decodeSafetensors(bytes);
  const { state, fingerprint, metadata } = parseMetadata(file.metadata);
  const expert: StateDict = {};
  const best: StateDict = {};
  for (const [n, t] of Object.entries(file.tensors)) {
    if (t.dtype !== 'F32') throw new Error(`"${n}" is ${t.dtype}, expected F32`);
    const v = { shape: t.shape, data: t.data as Float32Array };
    if (n.startsWith('expert.')) expert[n.slice(7)] = v;
    else if (n.startsWith('best.')) best[n.slice(5)] = v;
  }
  const numbered = (prefix: string) => {
    const out: Float32Array[] = [];
    for (let i = 0; file.tensors[`${prefix}${i}`]; i++) out.push(file.tensors[`${prefix}${i}`].data as Float32Array);
    return out;
  };
  if (state.best?.weights && Object.keys(best).length === 0) throw new Error('the state says it holds the best weights, but has no best.* tensors');
  return {
    state,
    fingerprint,
    metadata,
    expert,
    best: state.best?.weights ? best : null,
    adam: { step: state.globalStep, m: numbered('adam.m.'), v: numbered('adam.v.') },
  };
}

/** Reads a state file through `files`, with errors that name the path. */
export async function readTrainState(fn: string, path: string, files: TrainingFiles): Promise<LoadedTrainState> {
  let bytes: Uint8Array;
  try {
    bytes = await files.readFile(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new Error(`${fn}: cannot resume: cannot read the training state ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    return decodeTrainState(bytes);
  } catch (e) {
    throw new Error(`${fn}: cannot resume: ${path} is not a usable expert training state: ${(e as Error).message}`);
  }
}

/** Where a saved training run stands (from {@link readExpertTrainingState}). */
export interface ExpertTrainingStateInfo {
  /** Optimiser steps done. */
  globalStep: number;
  totalSteps: number;
  /** Epochs finished. */
  epochsDone: number;
  /** Steps done in the epoch in progress. */
  stepInEpoch: number;
  /** True when the state was written at the end of training. */
  finished: boolean;
  /** The inputs the run was started with (what `resume` compares). */
  fingerprint: Record<string, unknown>;
  /** The caller's `stateMetadata`. */
  metadata: Record<string, string>;
}

/** Parameters of {@link expertTrainingStateInfo}. */
export interface ExpertTrainingStateInfoParams {
  /** A training-state file's bytes: the whole file, or at least its safetensors header. */
  bytes: Uint8Array;
}

/**
 * Where a saved training run stands, from a state file's bytes (any platform): position,
 * fingerprint and the caller's metadata, without the tensors. `readExpertTrainingState` in
 * `@fad/expert-models/node` reads just the header of a file and calls this.
 */
export function expertTrainingStateInfo(params: ExpertTrainingStateInfoParams): ExpertTrainingStateInfo {
  const fn = 'expertTrainingStateInfo';
  assertObject(fn, 'params', params);
  if (!(params.bytes instanceof Uint8Array)) throw new TypeError(`${fn}: bytes must be a Uint8Array, got ${show(params.bytes)}`);
  const { state, fingerprint, metadata } = parseMetadata(readSafetensorsMetadata(params.bytes));
  return {
    globalStep: state.globalStep,
    totalSteps: state.totalSteps,
    epochsDone: state.history.length,
    stepInEpoch: state.stepInEpoch,
    finished: state.epoch >= state.epochs,
    fingerprint,
    metadata,
  };
}
