/**
 * Saving and loading U-Nets as safetensors. Metadata keys:
 * - `format`: "fad-unet/1"
 * - `config`: the UNetConfig as JSON
 * - `layout`: "NHWC; Linear [in,out]; Conv2d [kh,kw,in,out]" (TensorFlow layout; PyTorch
 *   checkpoints need Linear transposed and Conv2d permuted (2,3,1,0) to map onto these names)
 * plus any metadata the caller adds (strings).
 */
import type { Module } from '../nn/module';
import { UNet2DConditional } from '../unet/unet';
import type { UNetConfig } from '../unet/unet-config';
import { type SafetensorsTensor, decodeSafetensors, encodeSafetensors, readSafetensorsMetadata } from './safetensors';

export const UNET_FORMAT = 'fad-unet/1';
export const WEIGHT_LAYOUT = 'NHWC; Linear [in,out]; Conv2d [kh,kw,in,out]';

/** A module's weights as safetensors bytes. */
export function moduleToSafetensors(module: Module, metadata: Record<string, string>): Uint8Array {
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const [name, s] of Object.entries(module.stateDict())) tensors[name] = { dtype: 'F32', shape: s.shape, data: s.data };
  return encodeSafetensors({ tensors, metadata: { layout: WEIGHT_LAYOUT, ...metadata } });
}

/** Loads safetensors weights into an existing module (strict by default). */
export function loadModuleWeights(module: Module, bytes: Uint8Array, options: { strict?: boolean } = {}): Record<string, string> {
  const file = decodeSafetensors(bytes);
  const state: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [n, t] of Object.entries(file.tensors)) {
    if (t.dtype !== 'F32') throw new Error(`loadModuleWeights: "${n}" is ${t.dtype}; only F32 weights are loaded`);
    state[n] = { shape: t.shape, data: t.data as Float32Array };
  }
  module.loadStateDict(state, options);
  return file.metadata;
}

export function serializeUNet(model: UNet2DConditional, metadata: Record<string, string> = {}): Uint8Array {
  return moduleToSafetensors(model, { ...metadata, format: UNET_FORMAT, config: JSON.stringify(model.config) });
}

/** Rebuilds a U-Net from bytes written by `serializeUNet`. */
export function deserializeUNet(bytes: Uint8Array): { model: UNet2DConditional; metadata: Record<string, string> } {
  const metadata = readSafetensorsMetadata(bytes);
  if (metadata.format !== UNET_FORMAT) {
    throw new Error(`deserializeUNet: metadata.format is ${JSON.stringify(metadata.format)}, expected "${UNET_FORMAT}"`);
  }
  let config: UNetConfig;
  try {
    config = JSON.parse(metadata.config);
  } catch {
    throw new Error('deserializeUNet: metadata.config is not valid JSON');
  }
  const model = new UNet2DConditional(config);
  try {
    loadModuleWeights(model, bytes);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, metadata };
}

/** Writes a file atomically: to a temporary name beside it, then renamed into place (Node only). */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const fs = await import('node:fs/promises');
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** Saves a U-Net (weights + config) to a .safetensors file, atomically (Node only). */
export async function saveUNet(model: UNet2DConditional, path: string, metadata: Record<string, string> = {}): Promise<void> {
  await writeFileAtomic(path, serializeUNet(model, metadata));
}

/** Loads a U-Net saved by `saveUNet` (Node only). */
export async function loadUNet(path: string): Promise<{ model: UNet2DConditional; metadata: Record<string, string> }> {
  const fs = await import('node:fs/promises');
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await fs.readFile(path));
  } catch (e) {
    throw new Error(`loadUNet: cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return deserializeUNet(bytes);
  } catch (e) {
    throw new Error(`loadUNet: ${path}: ${(e as Error).message}`);
  }
}
