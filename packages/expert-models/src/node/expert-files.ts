/**
 * Expert files (Node only: `@fad/expert-models/node`). The formats are in the main entry point and
 * work on bytes anywhere; these functions read and write them as files, with the same names and
 * signatures they had in the main entry point before it dropped its Node imports.
 */
import { open, readFile } from 'node:fs/promises';
import { writeFileAtomic } from '@fad/diffusion-core/node';
// The package's own main entry, not relative paths: dist/node.js then imports dist/index.js
// instead of bundling a second copy of the model classes (instanceof would fail across the two).
import {
  deserializeExpert,
  type ExpertTrainingStateInfo,
  expertTrainingStateInfo,
  exportTorchvisionResNet,
  type LoadedExpert,
  type LoadedTorchvisionResNet,
  type LoadExpertParams,
  type LoadTorchvisionResNetParams,
  loadTorchvisionResNet as loadTorchvisionResNetFromBytes,
  type SaveExpertParams,
  type SaveTorchvisionResNetParams,
  serializeExpert,
  type TrainExpertParams,
  type TrainExpertResult,
  type TrainingFiles,
  trainExpert as trainExpertWithFiles,
} from '@fad/expert-models';
import { assertObject, show } from '../validate';

/** Node's file system as `trainExpert` uses it. */
export const nodeTrainingFiles: TrainingFiles = {
  readFile: async (path) => new Uint8Array(await readFile(path)),
  writeFileAtomic,
};

/**
 * `trainExpert` of the main entry point with Node's file system, so that `checkpointPath`,
 * `splitPath`, `statePath` and `resume` work (a `files` you pass wins).
 */
export async function trainExpert(params: TrainExpertParams): Promise<TrainExpertResult> {
  assertObject('trainExpert', 'params', params);
  return trainExpertWithFiles({ files: nodeTrainingFiles, ...params });
}

/** Writes {@link serializeExpert} bytes to `path` atomically. */
export async function saveExpert(params: SaveExpertParams): Promise<void> {
  assertObject('saveExpert', 'params', params);
  if (typeof params.path !== 'string' || params.path === '') throw new TypeError(`saveExpert: path must be a non-empty string, got ${show(params.path)}`);
  await writeFileAtomic(params.path, serializeExpert({ expert: params.expert, metadata: params.metadata }));
}

/** Reads an expert saved by {@link saveExpert}. */
export async function loadExpert(params: LoadExpertParams): Promise<LoadedExpert> {
  assertObject('loadExpert', 'params', params);
  const { path } = params;
  if (typeof path !== 'string' || path === '') throw new TypeError(`loadExpert: path must be a non-empty string, got ${show(path)}`);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new Error(`loadExpert: cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return deserializeExpert({ bytes });
  } catch (e) {
    throw new Error(`loadExpert: ${path}: ${(e as Error).message}`);
  }
}

/** `loadTorchvisionResNet` of the main entry point, which here also reads `file`. */
export async function loadTorchvisionResNet(params: LoadTorchvisionResNetParams): Promise<LoadedTorchvisionResNet> {
  const FN = 'loadTorchvisionResNet';
  assertObject(FN, 'params', params);
  if (params.file === undefined) return loadTorchvisionResNetFromBytes(params);
  const { file, ...rest } = params;
  if (typeof file !== 'string' || file === '') throw new TypeError(`${FN}: file must be a non-empty path, got ${show(file)}`);
  if (rest.bytes !== undefined || rest.tensors !== undefined) {
    throw new TypeError(`${FN}: give exactly one of file, bytes, tensors, got file and ${rest.bytes !== undefined ? 'bytes' : 'tensors'}`);
  }
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (e) {
    throw new Error(`${FN}: cannot read ${file}: ${(e as Error).message}`);
  }
  const source: string = typeof rest.source === 'string' ? rest.source : file;
  return loadTorchvisionResNetFromBytes({ ...rest, bytes, source });
}

/** Writes `exportTorchvisionResNet`'s bytes to `path`, atomically. */
export async function saveTorchvisionResNet(params: SaveTorchvisionResNetParams): Promise<void> {
  assertObject('saveTorchvisionResNet', 'params', params);
  if (typeof params.path !== 'string' || params.path === '') throw new TypeError(`saveTorchvisionResNet: path must be a non-empty string, got ${show(params.path)}`);
  await writeFileAtomic(params.path, exportTorchvisionResNet({ expert: params.expert }));
}

/** Parameters of {@link readExpertTrainingState}. */
export interface ReadExpertTrainingStateParams {
  /** A `statePath` file written by `trainExpert`. */
  path: string;
}


/**
 * Reads only the header of a training-state file: position, fingerprint and the caller's
 * metadata, without the tensors. For deciding whether (and from where) to resume.
 */
export async function readExpertTrainingState(params: ReadExpertTrainingStateParams): Promise<ExpertTrainingStateInfo> {
  const fn = 'readExpertTrainingState';
  assertObject(fn, 'params', params);
  const { path } = params;
  if (typeof path !== 'string' || path === '') throw new TypeError(`${fn}: path must be a non-empty string, got ${show(path)}`);
  let header: Uint8Array;
  try {
    // The header alone: 8 bytes of length, then the JSON (the tensors can be hundreds of MB).
    const fh = await open(path, 'r');
    try {
      const len = new Uint8Array(8);
      const { bytesRead } = await fh.read(len, 0, 8, 0);
      const n = bytesRead === 8 ? Number(new DataView(len.buffer).getBigUint64(0, true)) : 0;
      header = new Uint8Array(8 + Math.min(n, 100_000_000));
      header.set(len);
      if (n > 0) await fh.read(header, 8, header.length - 8, 8);
      if (bytesRead < 8) header = header.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw new Error(`${fn}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    return expertTrainingStateInfo({ bytes: header });
  } catch (e) {
    throw new Error(`${fn}: ${path}: ${(e as Error).message.replace(/^expertTrainingStateInfo: /, '')}`);
  }
}
