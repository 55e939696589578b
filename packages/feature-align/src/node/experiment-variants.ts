/**
 * The arms of the paper's experiment (Node only: part of `@fad/feature-align/node`, beside the run
 * and the report that use them as folder and step names): the three diffusion variants and the two
 * DreamBooth arms, with the feature alignment each one trains with.
 */

/** The diffusion variants, in run and report order: vanilla fine-tuning, aligned to the noisy input, aligned to the clean image. */
export const EXPERIMENT_VARIANTS = ['baseline', 'aligned-noisy', 'aligned-clean'] as const;
export type ExperimentVariant = (typeof EXPERIMENT_VARIANTS)[number];

/** The DreamBooth arms (paper Fig. 4, second panel), in run and report order: without and with feature alignment. */
export const DREAMBOOTH_ARMS = ['dreambooth', 'dreambooth-aligned'] as const;
export type DreamBoothArm = (typeof DREAMBOOTH_ARMS)[number];

/** A variant's feature alignment: off, or on towards the noisy input or the clean image. */
export type VariantAlignment = { enabled: false } | { enabled: true; alignTo: 'noisy' | 'clean' };

/**
 * The feature alignment a variant trains with: `baseline` none, `aligned-noisy` towards the noisy
 * input x_t, `aligned-clean` towards the clean image x_0. Spread it over your alignment settings.
 * @throws RangeError for a name that is not a variant.
 */
export function variantAlignment(variant: ExperimentVariant): VariantAlignment {
  switch (variant) {
    case 'baseline':
      return { enabled: false };
    case 'aligned-noisy':
      return { enabled: true, alignTo: 'noisy' };
    case 'aligned-clean':
      return { enabled: true, alignTo: 'clean' };
    default:
      throw new RangeError(`variantAlignment: variant must be one of ${EXPERIMENT_VARIANTS.join(', ')}, got ${JSON.stringify(variant)}`);
  }
}

/**
 * Whether a DreamBooth arm trains with feature alignment (`dreambooth-aligned`; towards the target
 * of your alignment settings) or without (`dreambooth`).
 * @throws RangeError for a name that is not an arm.
 */
export function dreamBoothArmAlignment(arm: DreamBoothArm): { enabled: boolean } {
  if (!(DREAMBOOTH_ARMS as readonly string[]).includes(arm)) throw new RangeError(`dreamBoothArmAlignment: arm must be one of ${DREAMBOOTH_ARMS.join(', ')}, got ${JSON.stringify(arm)}`);
  return { enabled: arm === 'dreambooth-aligned' };
}
