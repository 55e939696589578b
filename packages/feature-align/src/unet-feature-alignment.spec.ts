import { UNET_PRESETS, UNet2DConditional } from '@fad/diffusion-core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCpuBackend } from './test-support/setup';
import { SpyExpert } from './test-support/toy-experts';
import { unetFeatureAlignment } from './unet-feature-alignment';

beforeAll(useCpuBackend);

const config = { ...UNET_PRESETS.tiny, sampleSize: 8, inChannels: 1, outChannels: 1, numClasses: 3, blockChannels: [8, 12], attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };
let model: UNet2DConditional;
let expert: SpyExpert;
beforeAll(() => {
  model = new UNet2DConditional(config, { seed: 1 });
  expert = new SpyExpert({ pixels: 64, featureDim: 5, inputSpec: { size: 8, channels: 1, range: [0, 1] } });
});
afterAll(() => model.dispose());

describe('unetFeatureAlignment', () => {
  it('sizes the projection from the tapped activation and the expert, and passes the settings on', () => {
    const before = tf.memory().numTensors;
    const { loss, objective } = unetFeatureAlignment({ model, expert, tap: 'down_out', projection: 'linear', seed: 3, alignTo: 'clean', lambda2: 0.5 });
    // down_out of a [8, 12] U-Net has the last level's 12 channels; the expert gives 5 features.
    expect([loss.config.diffusionDim, loss.config.expertDim, loss.config.projection]).toEqual([12, 5, 'linear']);
    expect([objective.tap, objective.alignTo, objective.lambda2]).toEqual(['down_out', 'clean', 0.5]);
    // The projection's weights are the only tensors it keeps (the probe pass leaves nothing).
    const kept = loss.trainableVariables().length;
    expect(tf.memory().numTensors - before).toBe(kept);
    loss.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const mid = unetFeatureAlignment({ model, expert, tap: 'mid' });
    expect(mid.loss.config.diffusionDim).toBe(12);
    expect(mid.objective.tap).toBe('mid');
    mid.loss.dispose();
  });

  it('names an unknown tap with the available ones, and refuses a non-U-Net', () => {
    expect(() => unetFeatureAlignment({ model, expert, tap: 'nope' })).toThrow(/tap "nope" is not an activation of the U-Net \(available: .*down_out/);
    expect(() => unetFeatureAlignment({ model: {} as never, expert })).toThrow(/model must be a UNet2DConditional/);
  });
});
