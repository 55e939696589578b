/**
 * Autoencoder files (Node only: part of `@fad/diffusion-core/node`). The format itself
 * (`serializeAutoencoder` / `deserializeAutoencoder`) is in the main entry point.
 */
import { readFile } from 'node:fs/promises';
import { type AutoencoderKL, deserializeAutoencoder, serializeAutoencoder } from '@fad/diffusion-core';
import { writeFileAtomic } from './write-file-atomic';

/** Saves an autoencoder (weights + config) to a .safetensors file, atomically. */
export async function saveAutoencoder(model: AutoencoderKL, path: string, metadata: Record<string, string> = {}): Promise<void> {
  await writeFileAtomic(path, serializeAutoencoder(model, metadata));
}

/** Loads an autoencoder saved by `saveAutoencoder`. */
export async function loadAutoencoder(path: string): Promise<{ model: AutoencoderKL; metadata: Record<string, string> }> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new Error(`loadAutoencoder: cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return deserializeAutoencoder(bytes);
  } catch (e) {
    throw new Error(`loadAutoencoder: ${path}: ${(e as Error).message}`);
  }
}
