/**
 * U-Net files (Node only: part of `@fad/diffusion-core/node`). The format itself
 * (`serializeUNet` / `deserializeUNet`) is in the main entry point and works anywhere.
 */
import { readFile } from 'node:fs/promises';
// The package's own main entry, not a relative path: dist/node.js then imports dist/index.js
// instead of bundling a second copy of the classes (instanceof would fail across the two).
import { type AutoencoderKL, deserializeUNet, type SerializeUNetOptions, serializeUNet, type UNet2DConditional } from '@fad/diffusion-core';
import { writeFileAtomic } from './write-file-atomic';

/** Saves a U-Net (weights + config) to a .safetensors file, atomically. */
export async function saveUNet(model: UNet2DConditional, path: string, metadata: Record<string, string> = {}, options: SerializeUNetOptions = {}): Promise<void> {
  await writeFileAtomic(path, serializeUNet(model, metadata, options));
}

/** Loads a U-Net saved by `saveUNet`. */
export async function loadUNet(path: string): Promise<{ model: UNet2DConditional; metadata: Record<string, string>; autoencoder?: AutoencoderKL }> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new Error(`loadUNet: cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return deserializeUNet(bytes);
  } catch (e) {
    throw new Error(`loadUNet: ${path}: ${(e as Error).message}`);
  }
}
