/**
 * Image folders for the CLI: a thin layer over `loadImageFolder`, `inspectImageFolder` and
 * `scanImageFolder` of `@fad/diffusion-core/node` (class folders, sharp decoding, resizing,
 * fingerprint, symbolic links, the bad-file policy; see that package's README). This file maps the
 * `data` config section onto them and their ImageFolderErrors onto CliErrors worded with the config
 * fields (`data.classes`, `data.onBadFile`, `data.channels`, ...), as the CLI always said them.
 */
import { relative } from 'node:path';
import { resizeImageData } from '@fad/diffusion-core';
import {
  type BadImageFile,
  type DecodedImage,
  decodeImageFile,
  type ImageFolderReport,
  type ImageFolderScan,
  ImageFolderError,
  inspectImageFolder,
  type LoadedImageFolder,
  loadImageFolder,
  scanImageFolder,
} from '@fad/diffusion-core/node';
import type { DataConfig } from './config';
import { CliError, fsError } from './errors';
import { LIMITS } from './limits';

export { IMAGE_EXTENSIONS, mapClassName, mapLimit } from '@fad/diffusion-core/node';
export type { DecodedImage };
export type BadFile = BadImageFile;
export type LoadedDataset = Omit<LoadedImageFolder, 'warnings'>;
export type ScanResult = ImageFolderScan;
export type InspectReport = ImageFolderReport;

/** A library reason in the CLI's words: the channel count is the config's `data.channels`. */
function cliReason(reason: string): string {
  return reason.replace(', but channels is ', ', but data.channels is ');
}

/** An ImageFolderError as the CliError the CLI has always printed; other errors as they are. */
function cliError(e: unknown): unknown {
  if (!(e instanceof ImageFolderError)) return e;
  const d = e.details;
  switch (e.code) {
    case 'fs':
      return fsError(e.cause, d.path as string, d.doing as string);
    case 'unknown-class':
      return new CliError(`data.${e.message}`);
    case 'bad-file':
      return new CliError(`${d.path as string} ${cliReason(d.reason as string)}. Fix or remove the file, or set data.onBadFile: skip to leave bad files out.`);
    case 'too-large':
      return new CliError(`data: ${e.message.replace('; lower imageSize or set maxPerClass', '; lower data.imageSize or set data.maxPerClass')}`);
    default:
      return new CliError(e.message);
  }
}

async function cli<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw cliError(e);
  }
}

/** Lists class folders and their image files (`scanImageFolder`); CliErrors for a missing or empty folder. */
export function scanDataset(dir: string): ScanResult {
  try {
    return scanImageFolder({ dir });
  } catch (e) {
    throw cliError(e);
  }
}

/** Resizes one image (Float32, HWC, values in any range) with the chosen method (`resizeImageData`). */
export function resizeImage(
  src: Float32Array, h: number, w: number, c: number, outH: number, outW: number, method: 'area' | 'bilinear',
): Float32Array {
  return resizeImageData({ pixels: src, height: h, width: w, channels: c, outHeight: outH, outWidth: outW, method });
}

/** Decodes a file to floats with 1 (BT.601 luma) or 3 channels (`decodeImageFile`). Throws an Error with the reason. */
export async function decodeImage(path: string, channels: 1 | 3): Promise<DecodedImage> {
  try {
    return await decodeImageFile({ path, channels });
  } catch (e) {
    if (e instanceof ImageFolderError) throw cliError(e);
    if (e instanceof Error) e.message = cliReason(e.message);
    throw e;
  }
}

export interface LoadDatasetOptions {
  /** Warnings (skipped files). Default: stderr. */
  warn?: (message: string) => void;
  /** Progress callback (files decoded so far). */
  onProgress?: (done: number, total: number) => void;
}

/** Loads a class-folder data set as configured (`loadImageFolder`). */
export async function loadDataset(cfg: DataConfig, opts: LoadDatasetOptions = {}): Promise<LoadedDataset> {
  if (!cfg.dir) throw new CliError('no data folder: set data.dir in the config or pass --data DIR');
  const dir = cfg.dir;
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`fad: warning: ${m}\n`));
  const { warnings: _, ...loaded } = await cli(() =>
    loadImageFolder({
      dir,
      imageSize: cfg.imageSize,
      channels: cfg.channels,
      resize: cfg.resize,
      classes: cfg.classes,
      maxPerClass: cfg.maxPerClass,
      onBadFile: cfg.onBadFile,
      maxValues: LIMITS.maxDatasetValues,
      onWarning: (m) => warn(cliReason(m)),
      onProgress: opts.onProgress,
    }),
  );
  return { ...loaded, skipped: loaded.skipped.map((b) => ({ file: b.file, reason: cliReason(b.reason) })) };
}

/** Reads every image of the folder without keeping it (`inspectImageFolder`); `dir` relative to the working folder. */
export async function inspectDataset(dir: string): Promise<InspectReport> {
  const r = await cli(() => inspectImageFolder({ dir }));
  return { ...r, dir: relative(process.cwd(), r.dir) || '.' };
}

export interface DataSplit {
  seed: number;
  validationFraction: number;
  /** Indices into the data set, ascending. */
  train: number[];
  validation: number[];
}
