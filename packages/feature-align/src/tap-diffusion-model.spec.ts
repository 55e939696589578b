import { UNET_PRESETS, UNet2DConditional } from '@fad/diffusion-core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tapDiffusionModel } from './tap-diffusion-model';
import { randomTensor, useCpuBackend } from './test-support/setup';

beforeAll(useCpuBackend);

const cfg = { ...UNET_PRESETS.tiny, sampleSize: 8, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };
let unet: UNet2DConditional;
beforeAll(() => {
  unet = new UNet2DConditional(cfg, { seed: 3 });
});
afterAll(() => unet.dispose());

describe('tapDiffusionModel', () => {
  it("returns the U-Net's output and its down_out activation (the default tap) in one pass", () => {
    const tapped = tapDiffusionModel({ model: unet });
    expect(tapped.taps).toEqual(['down_out']);
    const x = randomTensor([2, 8, 8, 1], 1) as tf.Tensor4D;
    const r = tapped.run({ sample: x, timesteps: [1, 2], classLabels: [0, 1] });
    expect(r.activations.down_out.shape).toEqual([2, 4, 4, 16]);
    const plain = unet.forward({ sample: x, timesteps: [1, 2], classLabels: [0, 1] });
    expect(Array.from(r.outputs[0].dataSync())).toEqual(Array.from(plain.sample.dataSync()));
    tf.dispose([x, plain.sample, ...r.outputs, ...Object.values(r.activations)]);
  });

  it('lets the user name other tap points, and lists the available ones for an unknown name', () => {
    const tapped = tapDiffusionModel({ model: unet, taps: ['mid', 'down.0'] });
    const x = randomTensor([1, 8, 8, 1], 2) as tf.Tensor4D;
    const r = tapped.run({ sample: x, timesteps: [5], classLabels: [2] });
    expect(Object.keys(r.activations).sort()).toEqual(['down.0', 'mid']);
    tf.dispose([x, ...r.outputs, ...Object.values(r.activations)]);
    expect(() => tapDiffusionModel({ model: unet, taps: ['bottleneck'] })).toThrow(
      'tapDiffusionModel: the model has no activation "bottleneck"; available: conv_in, down.0, down.1, down_out, mid, up.0, up.1',
    );
  });
});
