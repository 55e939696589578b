import { describe, expect, it } from 'vitest';
import { UNET_PRESETS } from '../unet/unet-config';
import { chooseMicroBatch, WASM_MICRO_BATCH_64 } from './micro-batch';

// The default U-Net at 64x64 is the calibration point: WASM_MICRO_BATCH_64 images fit.
const unet = { ...UNET_PRESETS.histology64, sampleSize: 64 };

describe('chooseMicroBatch', () => {
  it('splits a wasm batch into the calibrated micro-batch, scaled by pixels x widths', () => {
    expect(chooseMicroBatch({ backend: 'wasm', batchSize: 16, configured: null, unet })).toMatchObject({ microBatchSize: WASM_MICRO_BATCH_64, automatic: true });
    // Half the side: a quarter of the pixels, four times as many images.
    expect(chooseMicroBatch({ backend: 'wasm', batchSize: 32, configured: null, unet: { ...unet, sampleSize: 32 } }).microBatchSize).toBe(4 * WASM_MICRO_BATCH_64);
    expect(chooseMicroBatch({ backend: 'native', batchSize: 16, configured: null, unet }).microBatchSize).toBeNull();
  });

  it('words its messages with the caller\'s names, or neutral defaults', () => {
    expect(chooseMicroBatch({ backend: 'wasm', batchSize: 16, configured: null, unet }).message).toMatch(/set microBatchSize to choose, or use the native backend$/);
    const named = chooseMicroBatch({ backend: 'wasm', batchSize: 16, configured: 16, unet, names: { setting: 'x.micro', alternative: 'try Y' } });
    expect(named.message).toMatch(/micro-batches of 16 images are likely not to fit .*set x\.micro to 4 or leave it unset, or try Y$/);
    expect(() => chooseMicroBatch({ backend: 'wasm', batchSize: 0, configured: null, unet })).toThrow(/batchSize must be an integer >= 1/);
    expect(() => chooseMicroBatch({ backend: 'wasm', batchSize: 4, configured: 0, unet })).toThrow(/configured must be null or an integer >= 1/);
  });
});
