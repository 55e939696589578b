import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { leakedTensors, relMaxError, useCpuBackend } from '../testing/setup-cpu';
import { AutoencoderKL, sampleLatent } from './autoencoder';
import { AUTOENCODER_PRESETS } from './autoencoder-config';
import { decodeLatents, encodeToLatents } from './latents';

beforeAll(useCpuBackend);
const disposables: Array<{ dispose(): void }> = [];
afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));

describe('encodeToLatents / decodeLatents', () => {
  it('scale the posterior mean (or a sample) by scalingFactor and undo it before decoding, in any batch size', () => {
    const m = new AutoencoderKL(AUTOENCODER_PRESETS.tiny, { seed: 3 });
    disposables.push(m);
    m.setScalingFactor(0.5);
    const x = tf.tidy(() => tf.tanh(new Generator(1).normal([5, 8, 8, 1]))) as tf.Tensor4D;
    const { mean, logVar } = m.encode(x);
    const z = encodeToLatents({ model: m, images: x, batchSize: 2 });
    expect(z.shape).toEqual([5, 2, 2, 4]);
    const md = mean.dataSync();
    Array.from(z.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(0.5 * md[i], 5));
    const zs = encodeToLatents({ model: m, images: x, generator: new Generator(4) });
    const want = sampleLatent({ mean, logVar, generator: new Generator(4) });
    expect(relMaxError(zs.dataSync(), Array.from(want.dataSync()).map((v) => 0.5 * v))).toBeLessThan(1e-6);
    const y = decodeLatents({ model: m, latents: z, batchSize: 3 });
    const direct = m.decode(mean);
    expect(y.shape).toEqual([5, 8, 8, 1]);
    expect(relMaxError(y.dataSync(), direct.dataSync())).toBeLessThan(1e-5);
    expect(() => decodeLatents({ model: m, latents: tf.zeros([1, 2, 2, 3]) as tf.Tensor4D })).toThrow(/latents must be a non-empty NHWC batch \[N,h,w,4\], got \[1,2,2,3\]/);
    expect(() => encodeToLatents({ model: m, images: x, batchSize: 0 })).toThrow(/batchSize must be a positive integer, got 0/);
    tf.dispose([x, mean, logVar, z, zs, want, y, direct]);
  });

  it('leave no tensor behind', () => {
    const m = new AutoencoderKL(AUTOENCODER_PRESETS.tiny, { seed: 3 });
    disposables.push(m);
    const x = tf.zeros([3, 8, 8, 1]) as tf.Tensor4D;
    expect(leakedTensors(() => {
      const z = encodeToLatents({ model: m, images: x, batchSize: 2, generator: new Generator(0) });
      decodeLatents({ model: m, latents: z, batchSize: 2 }).dispose();
      z.dispose();
    })).toBe(0);
    x.dispose();
  });
});
