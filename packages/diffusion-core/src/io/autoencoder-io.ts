/**
 * Saving and loading autoencoders as safetensors, like the U-Net (./unet-io.ts). Metadata keys:
 * - `format`: "fad-autoencoder/1"
 * - `config`: the AutoencoderKLConfig as JSON (with the scalingFactor)
 * - `layout`: the weight layout (see WEIGHT_LAYOUT)
 * plus any metadata the caller adds (strings).
 */
import { AutoencoderKL } from '../autoencoder/autoencoder';
import { type AutoencoderKLConfig, resolveAutoencoderConfig } from '../autoencoder/autoencoder-config';
import { readSafetensorsMetadata } from './safetensors';
import { loadModuleWeights, moduleToSafetensors } from './unet-io';

export const AUTOENCODER_FORMAT = 'fad-autoencoder/1';

export function serializeAutoencoder(model: AutoencoderKL, metadata: Record<string, string> = {}): Uint8Array {
  return moduleToSafetensors(model, { ...metadata, format: AUTOENCODER_FORMAT, config: JSON.stringify(model.config) });
}

/** Rebuilds an autoencoder from bytes written by `serializeAutoencoder`; errors name the metadata field. */
export function deserializeAutoencoder(bytes: Uint8Array): { model: AutoencoderKL; metadata: Record<string, string> } {
  const metadata = readSafetensorsMetadata(bytes);
  if (metadata.format !== AUTOENCODER_FORMAT) {
    throw new Error(`deserializeAutoencoder: metadata.format is ${JSON.stringify(metadata.format)}, expected "${AUTOENCODER_FORMAT}"`);
  }
  if (typeof metadata.config !== 'string') throw new Error('deserializeAutoencoder: metadata.config is missing');
  let parsed: unknown;
  try {
    parsed = JSON.parse(metadata.config);
  } catch {
    throw new Error('deserializeAutoencoder: metadata.config is not valid JSON');
  }
  let config: AutoencoderKLConfig;
  try {
    config = resolveAutoencoderConfig(parsed as Partial<AutoencoderKLConfig>);
  } catch (e) {
    throw new Error(`deserializeAutoencoder: metadata.config: ${(e as Error).message}`);
  }
  const model = new AutoencoderKL(config);
  try {
    loadModuleWeights(model, bytes);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, metadata };
}
