// Whole-model check: @fad/diffusion-core's U-Net on `native` (oneDNN convs and matmuls, C++
// elementwise kernels, fused GroupNorm+SiLU / LayerNorm / SiLU) against the reference `cpu`
// backend (pure-JS kernels, GroupNorm composed from tfjs ops): the loss and every parameter
// gradient of a diffusion training step, one full trainer step (forward, backward, clipping,
// Adam), and the forward pass of the benchmark's reference U-Net.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { DDPMScheduler, DiffusionTrainer, UNET_PRESETS, UNet2DConditional } from '@fad/diffusion-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { NativeAddon } from './addon';
import { loadNativeAddon, NATIVE_BACKEND_NAME, registerNativeBackend } from './index';
import { randomFloats, relMaxError } from './test-utils';

const loaded = loadNativeAddon();
if (!loaded.ok) console.warn(`[@fad/tfjs-native] SKIPPING whole-model tests: ${loaded.reason}`);

/** The tiny preset at 16x16 with attention, cross-attention and a null class: every block type. */
const config = { ...UNET_PRESETS.tiny };
const B = 3;
const labels = [0, 2, 4]; // 4 = the null class
const timesteps = [10, 500, 990];

let groupNormCalls = 0;
let restore: (() => void) | undefined;

interface StepResult {
  loss: number;
  grads: Array<[string, Float32Array]>;
  trainerLoss: number;
  gradNorm: number;
  weightsAfter: Float32Array[];
}

async function stepOn(backend: string): Promise<StepResult> {
  await tf.setBackend(backend);
  const model = new UNet2DConditional(config, { seed: 3 });
  const sched = new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2' });
  const x0 = tf.tensor4d(randomFloats(B * 16 * 16, 11), [B, 16, 16, 1]);
  const noise = tf.tensor4d(randomFloats(B * 16 * 16, 12).map((v) => v * 1.7), [B, 16, 16, 1]);
  const named = model.namedParameters();
  const { value, grads } = tf.variableGrads(() => {
    const xt = sched.addNoise(x0, noise, timesteps) as tf.Tensor4D;
    const out = model.forward({ sample: xt, timesteps, classLabels: labels }).sample;
    return tf.mean(tf.squaredDifference(out, noise)) as tf.Scalar;
  }, named.map(([, v]) => v));
  const result: StepResult = {
    loss: value.dataSync()[0],
    grads: named.map(([n, v]) => [n, Float32Array.from(grads[v.name].dataSync())]),
    trainerLoss: 0,
    gradNorm: 0,
    weightsAfter: [],
  };
  tf.dispose([value, ...Object.values(grads)]);
  const trainer = new DiffusionTrainer({ model, scheduler: sched, seed: 1, gradClipNorm: 1, optimizer: { learningRate: 1e-3 } });
  const r = trainer.step({ x0, classLabels: labels });
  result.trainerLoss = r.loss;
  result.gradNorm = r.gradNorm;
  result.weightsAfter = named.map(([, v]) => Float32Array.from(v.dataSync()));
  trainer.dispose();
  model.dispose();
  tf.dispose([x0, noise]);
  return result;
}

describe.skipIf(!loaded.ok)('U-Net train step: native vs cpu', () => {
  beforeAll(() => {
    expect(registerNativeBackend()).toBe(true);
    const addon = (loaded as { addon: NativeAddon }).addon;
    const original = addon.groupNorm;
    addon.groupNorm = (...args: Parameters<NativeAddon['groupNorm']>) => {
      groupNormCalls++;
      return original.apply(addon, args);
    };
    restore = () => {
      addon.groupNorm = original;
    };
  });
  afterAll(() => restore?.());

  it('loss and every parameter gradient agree (rel. max error <= 1e-4 per tensor); so does a trainer step', async () => {
    const ref = await stepOn('cpu');
    const before = groupNormCalls;
    const got = await stepOn(NATIVE_BACKEND_NAME);
    expect(groupNormCalls, 'the fused GroupNorm kernel ran on native').toBeGreaterThan(before);
    expect(Math.abs(got.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
    expect(got.grads.map(([n]) => n)).toEqual(ref.grads.map(([n]) => n));
    const worst = got.grads
      .map(([n, g], i) => [n, relMaxError(g, ref.grads[i][1])] as const)
      .sort((a, b) => b[1] - a[1]);
    expect(worst[0][1], `worst gradient: ${worst[0][0]} (${worst[0][1]})`).toBeLessThanOrEqual(1e-4);
    expect(Math.abs(got.trainerLoss - ref.trainerLoss) / ref.trainerLoss).toBeLessThan(1e-5);
    expect(Math.abs(got.gradNorm - ref.gradNorm) / ref.gradNorm).toBeLessThan(1e-5);
    // Adam's first step moves each weight by ~lr * g / (|g| + eps): where a gradient entry is
    // ~0, float rounding can change that by a good part of lr, so the tolerance is lr / 10.
    got.weightsAfter.forEach((w, i) => {
      let d = 0;
      for (let j = 0; j < w.length; j++) d = Math.max(d, Math.abs(w[j] - ref.weightsAfter[i][j]));
      expect(d, `weight ${got.grads[i][0]} after one step`).toBeLessThan(1e-4);
    });
  }, 120_000);

  it('reference U-Net (the benchmark workload), batch 1: forward outputs agree', async () => {
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const model = new UNet2DConditional(UNET_PRESETS.reference, { seed: 0 });
      const x = tf.tensor4d(randomFloats(64 * 64, 21), [1, 64, 64, 1]);
      const out = model.forward({ sample: x, timesteps: [700], classLabels: [6], returnActivations: ['down_out'] });
      const values = [Float32Array.from(out.sample.dataSync()), Float32Array.from(out.activations.down_out.dataSync())];
      tf.dispose([x, out.sample, out.activations.down_out]);
      model.dispose();
      return values;
    };
    const ref = await run('cpu');
    const got = await run(NATIVE_BACKEND_NAME);
    expect(relMaxError(got[0], ref[0])).toBeLessThanOrEqual(1e-4);
    expect(relMaxError(got[1], ref[1])).toBeLessThanOrEqual(1e-4);
  }, 300_000);
});
