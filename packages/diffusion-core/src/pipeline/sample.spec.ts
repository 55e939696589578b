import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, schedulerFromName } from '../schedulers';
import { relMaxError, useCpuBackend } from '../testing/setup-cpu';
import type { DiffusionModel, UNetForwardParams, UNetForwardResult } from '../unet/unet';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { energyGuidance, type GuidanceParams } from './guidance';
import { sampleImages } from './sample';

beforeAll(useCpuBackend);

/**
 * An oracle "model" that knows the clean image x0 and returns the exact noise
 * eps = (x_t - sqrt(ab_t) x0) / sqrt(1 - ab_t). With it, deterministic DDIM must land on x0.
 */
function oracle(x0: tf.Tensor4D, alphasCumprod: Float32Array): DiffusionModel {
  return {
    config: { sampleSize: x0.shape[1], inChannels: x0.shape[3], numClasses: 0, nullClass: false },
    trainableVariables: () => [],
    forward: (p: UNetForwardParams): UNetForwardResult => {
      const t = Array.from(p.timesteps as ArrayLike<number>)[0];
      const ab = alphasCumprod[t];
      const eps = tf.tidy(() => tf.div(tf.sub(p.sample, tf.mul(x0, Math.sqrt(ab))), Math.sqrt(1 - ab))) as tf.Tensor4D;
      return { sample: eps, activations: {} };
    },
  };
}

describe('sampleImages', () => {
  let model: UNet2DConditional;
  beforeAll(() => {
    model = new UNet2DConditional({ ...UNET_PRESETS.tiny, sampleSize: 8, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' }, { seed: 2 });
  });
  afterAll(() => model.dispose());

  it('recovers a known image with the oracle noise (DDIM, eta 0) and maps [-1,1] to [0,1]', async () => {
    const x0 = tf.tidy(() => tf.reshape(tf.mul(tf.sin(tf.linspace(0, 6, 64)), 0.9), [1, 8, 8, 1])) as tf.Tensor4D;
    const sched = new DDIMScheduler({ betaSchedule: 'linear', clipSample: false });
    const out = await sampleImages({ model: oracle(x0, sched.alphasCumprod), scheduler: sched, batchSize: 1, numInferenceSteps: 20, seed: 3 });
    const expected = tf.tidy(() => tf.div(tf.add(x0, 1), 2));
    expect(relMaxError(out.dataSync(), expected.dataSync())).toBeLessThan(2e-3);
    tf.dispose([x0, out, expected]);
  });

  it('accepts any NoiseScheduler: DPM-Solver++ recovers the oracle image in 10 steps, leaks nothing, and a second run is identical', async () => {
    const x0 = tf.tidy(() => tf.reshape(tf.mul(tf.sin(tf.linspace(0, 6, 64)), 0.9), [1, 8, 8, 1])) as tf.Tensor4D;
    const sched = schedulerFromName({ name: 'dpm-solver++', config: { betaSchedule: 'linear' } });
    expect(sched).toBeInstanceOf(DPMSolverMultistepScheduler);
    const before = tf.memory().numTensors;
    const params = { model: oracle(x0, sched.alphasCumprod), scheduler: sched, batchSize: 1, numInferenceSteps: 10, seed: 3 };
    const out = await sampleImages(params);
    const again = await sampleImages(params);
    const expected = tf.tidy(() => tf.div(tf.add(x0, 1), 2));
    expect(relMaxError(out.dataSync(), expected.dataSync())).toBeLessThan(2e-3);
    expect(Array.from(again.dataSync())).toEqual(Array.from(out.dataSync()));
    tf.dispose([out, again, expected]);
    expect(tf.memory().numTensors).toBe(before);
    x0.dispose();
    await expect(sampleImages({ model, scheduler: new DPMSolverMultistepScheduler(), classLabels: [0], numInferenceSteps: 2, guidance: () => null }))
      .rejects.toThrow(/gradient guidance needs a scheduler that implements guidedStep \(DDIMScheduler and DDPMScheduler do\), got DPMSolverMultistepScheduler/);
  });

  it('gives identical images for the same seed and different ones for another seed', async () => {
    const run = (seed: number) => sampleImages({ model, scheduler: new DDPMScheduler(), classLabels: [0, 3], numInferenceSteps: 5, seed });
    const a = await run(11);
    const b = await run(11);
    const c = await run(12);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(Array.from(c.dataSync())).not.toEqual(Array.from(a.dataSync()));
    expect(a.shape).toEqual([2, 8, 8, 1]);
    const v = a.dataSync();
    expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v)).toBeLessThanOrEqual(1);
    tf.dispose([a, b, c]);
  });

  it('classifier-free guidance: scale 1 equals unguided; other scales mix cond and uncond', async () => {
    const sched = () => new DDIMScheduler();
    const base = await sampleImages({ model, scheduler: sched(), classLabels: [1], numInferenceSteps: 4, seed: 5 });
    const one = await sampleImages({ model, scheduler: sched(), classLabels: [1], numInferenceSteps: 4, seed: 5, guidanceScale: 1 });
    const three = await sampleImages({ model, scheduler: sched(), classLabels: [1], numInferenceSteps: 4, seed: 5, guidanceScale: 3 });
    expect(Array.from(one.dataSync())).toEqual(Array.from(base.dataSync()));
    expect(relMaxError(three.dataSync(), base.dataSync())).toBeGreaterThan(1e-5);
    const noNull = new UNet2DConditional({ ...UNET_PRESETS.tiny, sampleSize: 8, nullClass: false });
    await expect(sampleImages({ model: noNull, scheduler: sched(), classLabels: [1], numInferenceSteps: 2, guidanceScale: 2 })).rejects.toThrow(/guidanceScale 2 needs a model trained with a null class/);
    noNull.dispose();
    tf.dispose([base, one, three]);
  });

  it('reports progress once per step and validates its arguments', async () => {
    const seen: number[] = [];
    const out = await sampleImages({ model, scheduler: new DDIMScheduler(), classLabels: [2], numInferenceSteps: 3, onProgress: (p) => seen.push(p.timestep) });
    expect(seen).toEqual([666, 333, 0]);
    out.dispose();
    await expect(sampleImages({ model, scheduler: new DDIMScheduler(), classLabels: [9], numInferenceSteps: 2 })).rejects.toThrow(/class label 9 out of range 0\.\.4/);
    await expect(sampleImages({ model, scheduler: new DDIMScheduler(), numInferenceSteps: 2 })).rejects.toThrow(/give classLabels or a positive integer batchSize/);
  });

  it('leaks no tensors (DDPM with stochastic steps, and guided DDIM)', async () => {
    const before = tf.memory().numTensors;
    (await sampleImages({ model, scheduler: new DDPMScheduler(), classLabels: [0], numInferenceSteps: 3, seed: 1 })).dispose();
    (await sampleImages({ model, scheduler: new DDIMScheduler(), classLabels: [0, 1], numInferenceSteps: 3, guidanceScale: 2, eta: 0.5, generator: new Generator(4) })).dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gradient guidance: one step moves the images by exactly (1-a)/sqrt(a) g (t = T-1 to x_0, linear classifier, hand-computed)', async () => {
    // A 2x2x2 toy with eps = 0.5 x and a linear classifier logits = flatten(x) W, E = log p(y | x).
    const D = 8;
    const K = 3;
    const W = Array.from({ length: D * K }, (_, i) => Math.sin(0.9 * i + 0.4));
    const toy: DiffusionModel = {
      config: { sampleSize: 2, inChannels: 2, numClasses: K, nullClass: false },
      trainableVariables: () => [],
      forward: (p) => ({ sample: tf.tidy(() => tf.mul(p.sample, 0.5)) as tf.Tensor4D, activations: {} }),
    };
    const energy = (p: GuidanceParams) => tf.sum(tf.mul(tf.logSoftmax(tf.matMul(tf.reshape(p.x, [p.x.shape[0], D]), tf.tensor2d(W, [D, K]))), tf.oneHot(tf.tensor1d(p.classLabels as number[], 'int32'), K)), 1) as tf.Tensor1D;
    const xT = Array.from({ length: 2 * D }, (_, i) => Math.cos(1.1 * i));
    const init = tf.tensor4d(xT, [2, 2, 2, 2]);
    const sched = () => new DDIMScheduler({ clipSample: false, timestepSpacing: 'trailing' });
    const common = { model: toy, classLabels: [1, 2], numInferenceSteps: 1, initialNoise: init, dataRange: [-500, 500] as [number, number] };
    const plain = await sampleImages({ ...common, scheduler: sched() });
    const guided = await sampleImages({ ...common, scheduler: sched(), guidance: energyGuidance({ energy, scale: 2 }) });
    const a = sched().alphasCumprod[999];
    const want = [1, 2].flatMap((y, b) => {
      const x = xT.slice(b * D, (b + 1) * D);
      const z = Array.from({ length: K }, (_, k) => x.reduce((acc, v, d) => acc + v * W[d * K + k], 0));
      const e = z.map(Math.exp);
      const sum = e.reduce((u, v) => u + v, 0);
      return x.map((_, d) => (2 * W.slice(d * K, d * K + K).reduce((acc, w, k) => acc + w * ((k === y ? 1 : 0) - e[k] / sum), 0) * (1 - a)) / Math.sqrt(a) / 1000);
    });
    const got = tf.sub(guided, plain).dataSync();
    want.forEach((v, i) => expect(Math.abs(got[i] - v), `element ${i}`).toBeLessThan(2e-5));
    expect(Math.max(...want.map(Math.abs))).toBeGreaterThan(0.05);
    tf.dispose([init, plain, guided]);
  });

  it('gradient guidance: scale 0 is bit-identical to unguided sampling and never evaluates the energy; a zero gradient (no clipping) is too', async () => {
    let calls = 0;
    const energy = (p: GuidanceParams) => {
      calls++;
      return tf.sum(tf.reshape(p.x, [p.x.shape[0], -1]), 1) as tf.Tensor1D;
    };
    for (const scheduler of [() => new DDIMScheduler(), () => new DDPMScheduler()]) {
      const base = await sampleImages({ model, scheduler: scheduler(), classLabels: [1, 3], numInferenceSteps: 3, seed: 5, guidanceScale: 2 });
      const zero = await sampleImages({ model, scheduler: scheduler(), classLabels: [1, 3], numInferenceSteps: 3, seed: 5, guidanceScale: 2, guidance: energyGuidance({ energy, scale: 0 }) });
      expect(Array.from(zero.dataSync())).toEqual(Array.from(base.dataSync()));
      tf.dispose([base, zero]);
    }
    expect(calls).toBe(0);
    const sched = () => new DDIMScheduler({ clipSample: false });
    const base = await sampleImages({ model, scheduler: sched(), classLabels: [1, 3], numInferenceSteps: 3, seed: 5, eta: 0.5 });
    const zeros = await sampleImages({ model, scheduler: sched(), classLabels: [1, 3], numInferenceSteps: 3, seed: 5, eta: 0.5, guidance: (p) => tf.zerosLike(p.x) });
    expect(Array.from(zeros.dataSync())).toEqual(Array.from(base.dataSync()));
    tf.dispose([base, zeros]);
  });

  it('gradient guidance with batch > 1, CFG, DDIM and DDPM: changes the images, reports ms per step and guidance ms, leaks nothing', async () => {
    const energy = (p: GuidanceParams) => tf.neg(tf.sum(tf.square(tf.reshape(p.x, [p.x.shape[0], -1])), 1)) as tf.Tensor1D;
    const before = tf.memory().numTensors;
    for (const scheduler of [() => new DDIMScheduler(), () => new DDPMScheduler()]) {
      const seen: Array<{ stepMs: number; guidanceMs: number }> = [];
      const base = await sampleImages({ model, scheduler: scheduler(), classLabels: [0, 1, 2], numInferenceSteps: 3, seed: 2, guidanceScale: 1.5 });
      const guided = await sampleImages({
        model, scheduler: scheduler(), classLabels: [0, 1, 2], numInferenceSteps: 3, seed: 2, guidanceScale: 1.5,
        guidance: energyGuidance({ energy, scale: 0.5 }), onProgress: (p) => seen.push(p),
      });
      expect(relMaxError(guided.dataSync(), base.dataSync())).toBeGreaterThan(1e-3);
      expect(seen).toHaveLength(3);
      for (const p of seen) {
        expect(p.guidanceMs).toBeGreaterThan(0);
        expect(p.stepMs).toBeGreaterThanOrEqual(p.guidanceMs);
      }
      tf.dispose([base, guided]);
    }
    expect(tf.memory().numTensors).toBe(before);
    await expect(sampleImages({ model, scheduler: new DDIMScheduler(), classLabels: [0], numInferenceSteps: 2, guidance: 3 as never })).rejects.toThrow(/sampleImages: guidance must be a GuidanceFn/);
    const custom = { ...new DDIMScheduler(), step: () => null } as unknown as DDIMScheduler;
    await expect(sampleImages({ model, scheduler: custom, classLabels: [0], numInferenceSteps: 2, guidance: () => null })).rejects.toThrow(/sampleImages: gradient guidance needs a scheduler that implements guidedStep \(DDIMScheduler and DDPMScheduler do\), got Object/);
    await expect(sampleImages({ model, scheduler: new DDIMScheduler(), classLabels: [0], numInferenceSteps: 2, initialNoise: tf.zeros([2, 8, 8, 1]) as tf.Tensor4D })).rejects.toThrow(/initialNoise must be a tensor of shape \[1,8,8,1\]/);
  });
});
