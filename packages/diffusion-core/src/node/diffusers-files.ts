/**
 * diffusers U-Net folders (Node only: part of `@fad/diffusion-core/node`). The format itself
 * (`diffusersUNetFromFiles` / `serializeDiffusersUNet`) is in the main entry point and works anywhere.
 */
import * as fs from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
// The package's own main entry (see unet-files.ts for why).
import {
  DIFFUSERS_CONFIG_FILE,
  DIFFUSERS_WEIGHTS_FILE,
  DiffusersConfigError,
  type DiffusersSurgeryOptions,
  FAD_CONDITIONING_FILE,
  type LoadedDiffusersUNet,
  type SafetensorsFile,
  type UNet2DConditional,
  diffusersUNetFromFiles,
  serializeDiffusersUNet,
} from '@fad/diffusion-core';
import { writeFileAtomic } from './write-file-atomic';

/** Resolves a diffusers U-Net folder: `dir` itself, or its `unet/` subfolder (a whole pipeline folder). */
async function unetFolder(dir: string): Promise<string> {
  if (fs.existsSync(path.join(dir, DIFFUSERS_CONFIG_FILE))) return dir;
  if (fs.existsSync(path.join(dir, 'unet', DIFFUSERS_CONFIG_FILE))) return path.join(dir, 'unet');
  if (!fs.existsSync(dir)) throw new Error(`loadDiffusersUNet: ${dir} does not exist`);
  throw new Error(`loadDiffusersUNet: ${dir} has no ${DIFFUSERS_CONFIG_FILE} (nor unet/${DIFFUSERS_CONFIG_FILE}): expected a diffusers UNet2DConditionModel folder (see the README: save_pretrained(dir, safe_serialization=True))`);
}

export interface LoadDiffusersUNetParams extends DiffusersSurgeryOptions {
  /** A diffusers `unet/` folder (config.json + diffusion_pytorch_model.safetensors), or a pipeline folder holding one. */
  dir?: string;
  /** Instead of `dir`: the config (parsed or text) ... */
  config?: unknown;
  /** ... and the weights (bytes or decoded). */
  weights?: Uint8Array | SafetensorsFile;
}

/**
 * Loads a diffusers UNet2DConditionModel as a {@link UNet2DConditional}, from a folder (`dir`) or from `config` + `weights`, with the surgery options (see the module docs).
 */
export async function loadDiffusersUNet(params: LoadDiffusersUNetParams): Promise<LoadedDiffusersUNet & { dir?: string }> {
  if (params === null || typeof params !== 'object') throw new TypeError('loadDiffusersUNet: params must be an object');
  const { dir, config, weights, ...surgery } = params;
  if (dir === undefined) {
    if (config === undefined || weights === undefined) throw new TypeError('loadDiffusersUNet: give params.dir, or params.config and params.weights');
    return diffusersUNetFromFiles({ config, weights, ...surgery });
  }
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError(`loadDiffusersUNet: params.dir must be a folder path, got ${JSON.stringify(dir)}`);
  if (config !== undefined || weights !== undefined) throw new TypeError('loadDiffusersUNet: give params.dir or params.config + params.weights, not both');
  const folder = await unetFolder(dir);
  const configText = await readFile(path.join(folder, DIFFUSERS_CONFIG_FILE), 'utf8');
  const wpath = path.join(folder, DIFFUSERS_WEIGHTS_FILE);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(wpath));
  } catch (e) {
    const bin = (await readdir(folder)).find((f) => f.endsWith('.bin') || f.endsWith('.safetensors'));
    throw new Error(`loadDiffusersUNet: cannot read ${wpath} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})${bin ? `; found ${bin}: re-save the U-Net with save_pretrained(dir, safe_serialization=True) (see the README)` : ''}`);
  }
  const condPath = path.join(folder, FAD_CONDITIONING_FILE);
  const conditioning = await readFile(condPath).then((b) => new Uint8Array(b), () => undefined);
  try {
    return { ...diffusersUNetFromFiles({ config: configText, weights: bytes, ...(conditioning ? { conditioning } : {}), ...surgery }), dir: folder };
  } catch (e) {
    if (e instanceof DiffusersConfigError) throw new DiffusersConfigError(`${folder}: ${e.message}`);
    throw e;
  }
}

/**
 * Writes a U-Net as a diffusers UNet2DConditionModel folder: config.json and
 * diffusion_pytorch_model.safetensors (and fad_conditioning.safetensors for class/token
 * embeddings). Creates `dir`; each file is written atomically (Node only).
 */
export async function saveDiffusersUNet(params: { model: UNet2DConditional; dir: string }): Promise<{ files: string[] }> {
  if (!params || typeof params.dir !== 'string' || params.dir.length === 0) throw new TypeError('saveDiffusersUNet: params.dir must be a folder path');
  const s = serializeDiffusersUNet({ model: params.model });
  await mkdir(params.dir, { recursive: true });
  const files = [path.join(params.dir, DIFFUSERS_CONFIG_FILE), path.join(params.dir, DIFFUSERS_WEIGHTS_FILE)];
  await writeFileAtomic(files[0], s.configJson);
  await writeFileAtomic(files[1], s.weights);
  const condPath = path.join(params.dir, FAD_CONDITIONING_FILE);
  if (s.conditioning) {
    await writeFileAtomic(condPath, s.conditioning);
    files.push(condPath);
  } else {
    await rm(condPath, { force: true });
  }
  return { files };
}
