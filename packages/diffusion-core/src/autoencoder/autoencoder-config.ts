/**
 * Configuration of the KL-regularised autoencoder of latent diffusion (Rombach et al. 2022;
 * Medfusion, Müller-Franzes et al. 2022): plain JSON, validated up front, every error naming the
 * field, the value and what is accepted.
 */

export interface AutoencoderKLConfig {
  /** Image channels in (1 for grayscale). */
  inChannels: number;
  /** Image channels out of the decoder (usually = inChannels). */
  outChannels: number;
  /** Channels of the latent z (Stable Diffusion: 4). */
  latentChannels: number;
  /**
   * Channels of each resolution level, full resolution first. Every level but the last halves the
   * resolution: [32, 64, 64] maps 64x64 to 16x16 (factor 2^(levels-1) = 4).
   */
  blockChannels: number[];
  /** Res-blocks per level in the encoder (the decoder has one more per level, as in diffusers). */
  layersPerBlock: number;
  /** Groups of every GroupNorm; every entry of blockChannels must divide by it. */
  normGroups: number;
  normEps: number;
  /**
   * Multiplies latents before diffusion (and divides them before decoding) so that the scaled
   * latents have about unit variance: 1 / std(z) over training data (`computeScalingFactor`;
   * Rombach et al. 2022, section G; Stable Diffusion: 0.18215). 1 until computed.
   */
  scalingFactor: number;
}

export const DEFAULT_AUTOENCODER_CONFIG: AutoencoderKLConfig = {
  inChannels: 1,
  outChannels: 1,
  latentChannels: 4,
  blockChannels: [32, 64, 64],
  layersPerBlock: 1,
  normGroups: 8,
  normEps: 1e-6,
  scalingFactor: 1,
};

/** Named configurations: `histology64` maps 64x64x1 to 16x16x4; `tiny` is for tests. */
export const AUTOENCODER_PRESETS = {
  histology64: { ...DEFAULT_AUTOENCODER_CONFIG },
  tiny: { ...DEFAULT_AUTOENCODER_CONFIG, blockChannels: [8, 16, 16], normGroups: 4 },
} satisfies Record<string, AutoencoderKLConfig>;

const KEYS = Object.keys(DEFAULT_AUTOENCODER_CONFIG) as Array<keyof AutoencoderKLConfig>;

function fail(field: string, expected: string, got: unknown): never {
  throw new RangeError(`AutoencoderKLConfig.${field} must be ${expected}, got ${JSON.stringify(got)}`);
}

function posInt(field: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(field, 'a positive integer', v);
}

/** Fills defaults and validates. Throws a RangeError naming the first bad field. */
export function resolveAutoencoderConfig(partial: Partial<AutoencoderKLConfig> = {}): AutoencoderKLConfig {
  if (partial === null || typeof partial !== 'object' || Array.isArray(partial)) {
    throw new TypeError(`AutoencoderKLConfig must be an object, got ${JSON.stringify(partial)}`);
  }
  for (const k of Object.keys(partial)) {
    if (!(KEYS as string[]).includes(k)) {
      throw new RangeError(`AutoencoderKLConfig: unknown field "${k}"; accepted fields: ${KEYS.join(', ')}`);
    }
  }
  const c: AutoencoderKLConfig = { ...DEFAULT_AUTOENCODER_CONFIG, ...partial };
  posInt('inChannels', c.inChannels);
  posInt('outChannels', c.outChannels);
  posInt('latentChannels', c.latentChannels);
  posInt('layersPerBlock', c.layersPerBlock);
  posInt('normGroups', c.normGroups);
  if (!Array.isArray(c.blockChannels) || c.blockChannels.length === 0) {
    fail('blockChannels', 'a non-empty array of positive integers', c.blockChannels);
  }
  c.blockChannels.forEach((ch, i) => {
    posInt(`blockChannels[${i}]`, ch);
    if (ch % c.normGroups !== 0) fail(`blockChannels[${i}]`, `divisible by normGroups (${c.normGroups})`, ch);
  });
  if (!(typeof c.normEps === 'number' && Number.isFinite(c.normEps) && c.normEps > 0)) fail('normEps', 'a positive number', c.normEps);
  if (!(typeof c.scalingFactor === 'number' && Number.isFinite(c.scalingFactor) && c.scalingFactor > 0)) {
    fail('scalingFactor', 'a positive finite number', c.scalingFactor);
  }
  return { ...c, blockChannels: [...c.blockChannels] };
}

/** How many times the encoder halves the resolution's side: 2^(levels-1). */
export function autoencoderDownsamplingFactor(config: Pick<AutoencoderKLConfig, 'blockChannels'>): number {
  return 2 ** (config.blockChannels.length - 1);
}
