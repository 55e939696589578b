import { describe, expect, it } from 'vitest';
import { DREAMBOOTH_ARMS, dreamBoothArmAlignment, EXPERIMENT_VARIANTS, variantAlignment } from './experiment-variants';

describe('the experiment\'s variants and DreamBooth arms', () => {
  it('are the paper\'s, in run and report order', () => {
    expect(EXPERIMENT_VARIANTS).toEqual(['baseline', 'aligned-noisy', 'aligned-clean']);
    expect(DREAMBOOTH_ARMS).toEqual(['dreambooth', 'dreambooth-aligned']);
  });

  it('variantAlignment: none for the baseline, towards the noisy input or the clean image for the aligned variants', () => {
    expect(EXPERIMENT_VARIANTS.map((v) => variantAlignment(v))).toEqual([{ enabled: false }, { enabled: true, alignTo: 'noisy' }, { enabled: true, alignTo: 'clean' }]);
    expect(() => variantAlignment('aligned' as never)).toThrow(/variantAlignment: variant must be one of baseline, aligned-noisy, aligned-clean, got "aligned"/);
  });

  it('dreamBoothArmAlignment: the aligned arm only', () => {
    expect(DREAMBOOTH_ARMS.map((a) => dreamBoothArmAlignment(a))).toEqual([{ enabled: false }, { enabled: true }]);
    expect(() => dreamBoothArmAlignment('baseline' as never)).toThrow(RangeError);
  });
});
