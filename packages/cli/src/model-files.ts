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
 * and JSON strings only; nothing in a file is evaluated. The checks of U-Net files, of headers and
 * of class names are diffusion-core's (`parseModelFile`, `readCheckedHeader`, `checkClassNames`),
 * on bytes, so that a web page applies the same ones; here their `ModelFileError`s become
 * `CliError`s (non-finite weights: `DivergenceError`).
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import {
  type AutoencoderKL,
  type DreamBoothRecord,
  type UNet2DConditional,
  checkAutoencoderConfigLimits,
  checkModelStatus,
  describeNonFiniteWeights,
  deserializeAutoencoder,
  findNonFiniteWeights,
  ModelFileError,
  parseMetadataJson,
  parseModelFile,
  readCheckedHeader as readCheckedHeaderBytes,
} from '@fad/diffusion-core';
import { CHECKPOINT_STATUS_KEY, type ExpertModel, parseExpertFile } from '@fad/expert-models';
import { loadCheckpointInto, type ParseTrainingCheckpointParams, parseTrainingCheckpoint } from '@fad/diffusion-core/node';
import { CliError, DivergenceError, fsError, withLibraryErrors } from './errors';
import { sha256 } from './fsutil';

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

/** A library ModelFileError as the CLI's error (non-finite weights: a DivergenceError, exit 4). */
function asCliError(e: unknown): unknown {
  if (!(e instanceof ModelFileError)) return e;
  return e.reason === 'non-finite' ? new DivergenceError(e.message) : new CliError(e.message);
}

/**
 * The safetensors header (metadata and tensor shapes) of `bytes`, checked against `LIMITS` before
 * any tensor is decoded (diffusion-core's `readCheckedHeader`). `where` names the file.
 */
export function readCheckedHeader(bytes: Uint8Array, where: string): { metadata: Record<string, string>; tensors: Record<string, { dtype: string; shape: number[] }> } {
  try {
    return readCheckedHeaderBytes({ bytes, where });
  } catch (e) {
    throw asCliError(e);
  }
}

function parseJsonField(metadata: Record<string, string>, key: string, where: string): unknown {
  try {
    return parseMetadataJson({ metadata, key, where });
  } catch (e) {
    throw asCliError(e);
  }
}

function checkStatus(metadata: Record<string, string>, where: string, resumeHint: string): void {
  try {
    checkModelStatus({ metadata, where, resumeHint });
  } catch (e) {
    throw asCliError(e);
  }
}

/** Throws a DivergenceError when the module's weights hold NaN or infinity. */
export function assertFiniteWeights(named: ReadonlyArray<readonly [string, tf.Tensor]>, where: string): void {
  const r = findNonFiniteWeights(named);
  if (r) throw new DivergenceError(`${where}: ${describeNonFiniteWeights(r)}`);
}

/** What a DreamBooth model's metadata says about its token. */
export type DreamBoothInfo = DreamBoothRecord;

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
  try {
    checkAutoencoderConfigLimits({ config: raw, where, field });
  } catch (e) {
    throw asCliError(e);
  }
}

/**
 * Loads and checks a U-Net file (`fad train` / `fad train --dreambooth` output). `what` names it in
 * errors ("the model", "the pretrained model").
 */
export function loadModelFile(path: string, what = 'the model'): LoadedModelFile {
  const bytes = readInputFile(path, what);
  let parsed;
  try {
    // Every check (header, format, status, config and limits, class names, schedule, DreamBooth
    // record, finite weights) is diffusion-core's, shared with the browser example.
    parsed = parseModelFile({ bytes, name: path, what });
  } catch (e) {
    throw asCliError(e);
  }
  const { model, metadata, classNames, schedulerConfig, dreambooth, autoencoder } = parsed;
  return { model, metadata, sha256: sha256(bytes), classNames, schedulerConfig, dreambooth, ...(autoencoder ? { autoencoder } : {}) };
}

/** A checked expert file. */
export interface LoadedExpertFile {
  expert: ExpertModel;
  path: string;
  sha256: string;
  metadata: Record<string, string>;
}

/** Loads, checks and freezes an expert file (`fad expert train` output; expert-models' `parseExpertFile`). */
export function loadExpertFile(path: string, what = 'the expert'): LoadedExpertFile {
  const bytes = readInputFile(path, what === 'the expert' ? 'the expert checkpoint' : what);
  try {
    const { expert, metadata } = parseExpertFile({ bytes, name: path, what, resumeHint: 'Finish its training with `fad expert train --out EXPERT_DIR --resume` (EXPERT_DIR is the folder holding it), or use a finished expert.' });
    return { expert, path, sha256: sha256(bytes), metadata };
  } catch (e) {
    throw asCliError(e);
  }
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
 * Reads a resumable training checkpoint (`fad autoencoder train`; `fad train` through
 * @fad/diffusion-core/node's diffusion run) and checks its JSON `state` before anything is loaded
 * (`parseTrainingCheckpoint` of @fad/diffusion-core/node: the format, the step key, a step within
 * `0..totalSteps`, the data order, the metrics window, then `check`). Every error names the file
 * and the field, and says `--force` starts over.
 */
export function readTrainCheckpoint<S extends { format: string; key: string; step: number }>(p: Omit<ParseTrainingCheckpointParams<S>, 'bytes' | 'flags'>): { state: S; tensors: F32Tensors } {
  const bytes = readInputFile(p.path, p.what);
  return withLibraryErrors(() => parseTrainingCheckpoint<S>({ ...p, bytes, flags: { force: '--force' } }));
}

/** Loads weights from a checkpoint into a module, naming the file when they do not fit. */
export function loadCheckpointWeights(load: () => void, where: string): void {
  withLibraryErrors(() => loadCheckpointInto({ load, where, flags: { force: '--force' } }));
}
