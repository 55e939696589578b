/**
 * `diffusion.pretrainedDiffusers` (`fad train --pretrained-diffusers DIR`): the U-Net to fine-tune is
 * a diffusers UNet2DConditionModel folder, imported by @fad/diffusion-core's `loadDiffusersUNet`
 * with the feature-alignment paper's surgery: conv_in/conv_out replaced (seeded by diffusion.seed)
 * when the data's channels differ, and learned class embeddings fed as encoder_hidden_states
 * (`diffusion.unet.overrides.classEmbeddingDim` wide and mapped to cross_attention_dim by a learned
 * Linear, or cross_attention_dim wide when absent). The model's own UNetConfig describes it fully,
 * so the model.safetensors of the run loads in fad generate like any other.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AutoencoderKL, type UNet2DConditional, DIFFUSERS_CONFIG_FILE, DIFFUSERS_WEIGHTS_FILE } from '@fad/diffusion-core';
import { loadDiffusersUNet } from '@fad/diffusion-core/node';
import type { FadConfig } from './config';
import { CliError } from './errors';
import { sha256 } from './fsutil';

/** The unet/ folder of `diffusion.pretrainedDiffusers` (itself, or its unet/ subfolder), or null when unset. */
function folderOf(cfg: FadConfig): string | null {
  const dir = cfg.diffusion.pretrainedDiffusers;
  if (!dir) return null;
  if (existsSync(join(dir, DIFFUSERS_CONFIG_FILE))) return dir;
  if (existsSync(join(dir, 'unet', DIFFUSERS_CONFIG_FILE))) return join(dir, 'unet');
  throw new CliError(`diffusion.pretrainedDiffusers: ${dir} has no ${DIFFUSERS_CONFIG_FILE} (nor unet/${DIFFUSERS_CONFIG_FILE}); expected a diffusers UNet2DConditionModel folder (see the README: UNet2DConditionModel.from_pretrained(...).save_pretrained(dir, safe_serialization=True))`);
}

/** The sha256 of the pretrained config.json and weights (a step-key input), null when unset. */
export function pretrainedDiffusersSha256(cfg: FadConfig): string | null {
  const folder = folderOf(cfg);
  if (!folder) return null;
  try {
    return sha256(`${sha256(readFileSync(join(folder, DIFFUSERS_CONFIG_FILE)))}:${sha256(readFileSync(join(folder, DIFFUSERS_WEIGHTS_FILE)))}`);
  } catch (e) {
    throw new CliError(`diffusion.pretrainedDiffusers: cannot read ${join(folder, DIFFUSERS_WEIGHTS_FILE)}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (save the U-Net with safe_serialization=True, see the README)' : (e as Error).message}`);
  }
}

/** The imported, surgically adapted U-Net for the data (latent channels and size with an autoencoder). */
export async function loadPretrainedDiffusers(p: { cfg: FadConfig; numClasses: number; autoencoder?: AutoencoderKL }): Promise<{ model: UNet2DConditional; folder: string; diffusersConfig: Record<string, unknown> }> {
  const { cfg, numClasses, autoencoder } = p;
  const folder = folderOf(cfg);
  if (!folder) throw new CliError('diffusion.pretrainedDiffusers is not set');
  const { classEmbeddingDim, ...rest } = cfg.diffusion.unet.overrides as { classEmbeddingDim?: unknown };
  if (Object.keys(rest).length > 0) {
    throw new CliError(`diffusion.unet.overrides: ${Object.keys(rest).join(', ')} do not apply with diffusion.pretrainedDiffusers (the architecture comes from its config.json); only classEmbeddingDim does`);
  }
  if (classEmbeddingDim !== undefined && !(Number.isInteger(classEmbeddingDim) && (classEmbeddingDim as number) > 0)) {
    throw new CliError(`diffusion.unet.overrides.classEmbeddingDim must be a positive integer, got ${JSON.stringify(classEmbeddingDim)}`);
  }
  const size = autoencoder ? cfg.data.imageSize / autoencoder.downsamplingFactor : cfg.data.imageSize;
  const channels = autoencoder ? autoencoder.config.latentChannels : cfg.data.channels;
  try {
    const r = await loadDiffusersUNet({
      dir: folder, inChannels: channels, outChannels: channels, sampleSize: size, numClasses, nullClass: true,
      ...(classEmbeddingDim !== undefined ? { classEmbeddingDim: classEmbeddingDim as number } : {}), seed: cfg.diffusion.seed,
    });
    return { model: r.model, folder, diffusersConfig: r.diffusersConfig };
  } catch (e) {
    throw new CliError(`diffusion.pretrainedDiffusers: ${(e as Error).message}`);
  }
}
