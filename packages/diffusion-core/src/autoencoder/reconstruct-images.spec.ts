import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { leakedTensors, useCpuBackend } from '../testing/setup-cpu';
import { AutoencoderKL } from './autoencoder';
import { AUTOENCODER_PRESETS } from './autoencoder-config';
import { reconstructImages } from './reconstruct-images';

beforeAll(useCpuBackend);
const disposables: Array<{ dispose(): void }> = [];
afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));

/** Five 8x8 grayscale images in [0, 1]. */
function images(): Float32Array {
  const d = new Float32Array(5 * 64);
  for (let i = 0; i < d.length; i++) d[i] = 0.5 + 0.45 * Math.sin(i * 0.37);
  return d;
}

describe('reconstructImages', () => {
  it('decodes the posterior mean of 2x-1, maps back to [0, 1] and clips, in any batch size', () => {
    const m = new AutoencoderKL(AUTOENCODER_PRESETS.tiny, { seed: 3 });
    disposables.push(m);
    const x = images();
    const got = reconstructImages({ model: m, images: x, n: 5, imageSize: 8, channels: 1, batchSize: 2 });
    // Reference: one pass over the whole batch, with the same formula written out.
    const want = tf.tidy(() => {
      const t = tf.tensor4d(Array.from(x, (v) => v * 2 - 1), [5, 8, 8, 1]);
      const y = m.decode(m.encode(t).mean).arraySync() as number[][][][];
      return y.flat(3).map((v) => Math.min(1, Math.max(0, (v + 1) / 2)));
    });
    expect(got).toHaveLength(5 * 64);
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
    expect(Math.min(...got)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...got)).toBeLessThanOrEqual(1);
    // The batch size does not change the result.
    expect(Array.from(reconstructImages({ model: m, images: x, n: 5, imageSize: 8, channels: 1 }))).toEqual(Array.from(got));
  });

  it('leaves no tensor behind and names a bad field', () => {
    const m = new AutoencoderKL(AUTOENCODER_PRESETS.tiny, { seed: 3 });
    disposables.push(m);
    expect(leakedTensors(() => reconstructImages({ model: m, images: images(), n: 5, imageSize: 8, channels: 1, batchSize: 3 }))).toBe(0);
    expect(() => reconstructImages({ model: m, images: images(), n: 4, imageSize: 8, channels: 1 })).toThrow(/reconstructImages: images holds 320 values; 4 images of 8x8x1 need 256/);
    expect(() => reconstructImages({ model: m, images: images(), n: 5, imageSize: 8, channels: 3 })).toThrow(/reconstructImages: channels must be 1/);
    expect(() => reconstructImages({ model: m, images: images(), n: 5, imageSize: 8, channels: 1, batchSize: 0 })).toThrow(/reconstructImages: batchSize must be an integer >= 1, got 0/);
  });
});
