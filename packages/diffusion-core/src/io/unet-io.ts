/**
 * Saving and loading U-Nets as safetensors. Metadata keys:
 * - `format`: "fad-unet/1"
 * - `config`: the UNetConfig as JSON
 * - `layout`: "NHWC; Linear [in,out]; Conv2d [kh,kw,in,out]" (TensorFlow layout; PyTorch
 *   checkpoints need Linear transposed and Conv2d permuted (2,3,1,0) to map onto these names)
 * - `space`: "latent" for a latent-diffusion U-Net saved with its autoencoder (absent: pixel space);
 *   then `autoencoderConfig` holds the AutoencoderKLConfig (with its scalingFactor) as JSON and
 *   the autoencoder's weights are stored beside the U-Net's under the prefix `autoencoder.`, so
 *   that the file alone samples images
 * plus any metadata the caller adds (strings).
 */
import { AutoencoderKL } from '../autoencoder/autoencoder';
import { type AutoencoderKLConfig, resolveAutoencoderConfig } from '../autoencoder/autoencoder-config';
import type { Module } from '../nn/module';
import { UNet2DConditional } from '../unet/unet';
import type { UNetConfig } from '../unet/unet-config';
import { type SafetensorsTensor, decodeSafetensors, encodeSafetensors, readSafetensorsMetadata } from './safetensors';

export const UNET_FORMAT = 'fad-unet/1';
export const WEIGHT_LAYOUT = 'NHWC; Linear [in,out]; Conv2d [kh,kw,in,out]';
/** Prefix of the autoencoder's tensors in a latent-diffusion U-Net file. */
export const AUTOENCODER_PREFIX = 'autoencoder.';

/** Options of {@link serializeUNet} and {@link saveUNet}. */
export interface SerializeUNetOptions {
  /**
   * Latent diffusion: the autoencoder the U-Net was trained with, embedded in the file (metadata
   * `space: "latent"`, its config in `autoencoderConfig`, its weights under `autoencoder.`).
   */
  autoencoder?: AutoencoderKL;
}

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

export function serializeUNet(model: UNet2DConditional, metadata: Record<string, string> = {}, options: SerializeUNetOptions = {}): Uint8Array {
  const meta: Record<string, string> = { ...metadata, format: UNET_FORMAT, config: JSON.stringify(model.config) };
  const ae = options.autoencoder;
  if (ae === undefined) {
    const { space: _space, autoencoderConfig: _aec, ...rest } = meta;
    return moduleToSafetensors(model, rest);
  }
  if (!(ae instanceof AutoencoderKL)) throw new TypeError('serializeUNet: options.autoencoder must be an AutoencoderKL');
  if (model.config.inChannels !== ae.config.latentChannels) {
    throw new RangeError(`serializeUNet: the U-Net's inChannels (${model.config.inChannels}) must equal options.autoencoder.config.latentChannels (${ae.config.latentChannels})`);
  }
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const [name, s] of Object.entries(model.stateDict())) tensors[name] = { dtype: 'F32', shape: s.shape, data: s.data };
  for (const [name, s] of Object.entries(ae.stateDict())) tensors[`${AUTOENCODER_PREFIX}${name}`] = { dtype: 'F32', shape: s.shape, data: s.data };
  return encodeSafetensors({ tensors, metadata: { layout: WEIGHT_LAYOUT, ...meta, space: 'latent', autoencoderConfig: JSON.stringify(ae.config) } });
}

/**
 * Rebuilds a U-Net from bytes written by `serializeUNet`; a latent-diffusion file (metadata
 * `space: "latent"`) also gives its `autoencoder` (the caller disposes both).
 */
export function deserializeUNet(bytes: Uint8Array): { model: UNet2DConditional; metadata: Record<string, string>; autoencoder?: AutoencoderKL } {
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
  if (metadata.space !== undefined && metadata.space !== 'latent' && metadata.space !== 'pixel') {
    throw new Error(`deserializeUNet: metadata.space is ${JSON.stringify(metadata.space)}, expected "latent" or "pixel"`);
  }
  if (metadata.space !== 'latent') {
    const model = new UNet2DConditional(config);
    try {
      loadModuleWeights(model, bytes);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return { model, metadata };
  }
  // Latent diffusion: the U-Net's tensors and the autoencoder's (prefix `autoencoder.`).
  if (typeof metadata.autoencoderConfig !== 'string') throw new Error('deserializeUNet: metadata.space is "latent" but metadata.autoencoderConfig is missing');
  let aeConfig: AutoencoderKLConfig;
  try {
    aeConfig = resolveAutoencoderConfig(JSON.parse(metadata.autoencoderConfig) as Partial<AutoencoderKLConfig>);
  } catch (e) {
    throw new Error(`deserializeUNet: metadata.autoencoderConfig: ${(e as Error).message}`);
  }
  const file = decodeSafetensors(bytes);
  const unetState: Record<string, { shape: number[]; data: Float32Array }> = {};
  const aeState: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [n, t] of Object.entries(file.tensors)) {
    if (t.dtype !== 'F32') throw new Error(`deserializeUNet: "${n}" is ${t.dtype}; only F32 weights are loaded`);
    const v = { shape: t.shape, data: t.data as Float32Array };
    if (n.startsWith(AUTOENCODER_PREFIX)) aeState[n.slice(AUTOENCODER_PREFIX.length)] = v;
    else unetState[n] = v;
  }
  const model = new UNet2DConditional(config);
  let autoencoder: AutoencoderKL | null = null;
  try {
    model.loadStateDict(unetState);
    autoencoder = new AutoencoderKL(aeConfig);
    autoencoder.loadStateDict(aeState);
  } catch (e) {
    model.dispose();
    autoencoder?.dispose();
    throw e;
  }
  return { model, metadata, autoencoder };
}
