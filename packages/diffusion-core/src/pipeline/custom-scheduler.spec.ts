/**
 * Adding a scheduler is one file plus one registry line: this spec is that file. `ToyDdim` below
 * implements `NoiseScheduler` (and the optional `guidedStep` capability) from scratch, in float64
 * arrays, without importing any scheduler class; `registerScheduler` is the one line. The pipeline
 * then samples with it by name, with and without gradient guidance, and matches the built-in DDIM.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DDIMScheduler, type GuidedStepInput, type NoiseScheduler, registerScheduler, type SchedulerOutput, schedulerFromName, schedulerNames, unregisterScheduler } from '../schedulers';
import { relMaxError, useCpuBackend } from '../testing/setup-cpu';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { sampleImages } from './sample';

beforeAll(useCpuBackend);

interface ToyConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
}

/** Deterministic DDIM (eta 0, leading spacing, final alpha-bar 1, no clipping) for epsilon prediction. */
class ToyDdim implements NoiseScheduler<ToyConfig> {
  readonly config: ToyConfig;
  readonly alphasCumprod: Float32Array;
  timesteps: Int32Array;
  numInferenceSteps: number | null = null;
  guidedSteps = 0;
  private readonly abar: Float64Array;
  constructor(config: Partial<ToyConfig> = {}) {
    this.config = { numTrainTimesteps: 1000, betaStart: 1e-4, betaEnd: 0.02, ...config };
    const T = this.config.numTrainTimesteps;
    this.abar = new Float64Array(T);
    let prod = 1;
    for (let t = 0; t < T; t++) {
      // Linear betas, in float32 as diffusers (and fad) compute them.
      const beta = Math.fround(this.config.betaStart + ((this.config.betaEnd - this.config.betaStart) * t) / (T - 1));
      prod = Math.fround(prod * Math.fround(1 - beta));
      this.abar[t] = prod;
    }
    this.alphasCumprod = Float32Array.from(this.abar);
    this.timesteps = Int32Array.from({ length: T }, (_, i) => T - 1 - i);
  }
  setTimesteps(n: number): void {
    const ratio = Math.floor(this.config.numTrainTimesteps / n);
    this.numInferenceSteps = n;
    this.timesteps = Int32Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio);
  }
  addNoise(x0: tf.Tensor, noise: tf.Tensor, timesteps: tf.Tensor1D | number[]): tf.Tensor {
    const t = Array.isArray(timesteps) ? timesteps : Array.from(timesteps.dataSync());
    const a = tf.tensor(t.map((k) => Math.sqrt(this.abar[k])), [t.length, 1, 1, 1]);
    const s = tf.tensor(t.map((k) => Math.sqrt(1 - this.abar[k])), [t.length, 1, 1, 1]);
    return tf.tidy(() => tf.add(tf.mul(x0, a), tf.mul(noise, s)));
  }
  getVelocity(): tf.Tensor {
    throw new Error('ToyDdim: epsilon prediction only');
  }
  private coefficients(t: number): { a: number; aPrev: number } {
    const prev = t - Math.floor(this.config.numTrainTimesteps / (this.numInferenceSteps as number));
    return { a: this.abar[t], aPrev: prev >= 0 ? this.abar[prev] : 1 };
  }
  step(eps: tf.Tensor, t: number, x: tf.Tensor): SchedulerOutput {
    const { a, aPrev } = this.coefficients(t);
    return tf.tidy(() => {
      const x0 = tf.div(tf.sub(x, tf.mul(eps, Math.sqrt(1 - a))), Math.sqrt(a));
      return { prevSample: tf.add(tf.mul(x0, Math.sqrt(aPrev)), tf.mul(eps, Math.sqrt(1 - aPrev))), predOriginalSample: x0 };
    });
  }
  /** The capability gradient guidance needs: here, x_prev moved by g itself. */
  guidedStep(input: GuidedStepInput): SchedulerOutput {
    this.guidedSteps++;
    const out = this.step(input.modelOutput, input.timestep, input.sample);
    const prevSample = tf.add(out.prevSample, input.guidance);
    out.prevSample.dispose();
    return { prevSample, predOriginalSample: out.predOriginalSample };
  }
  toJSON(): ToyConfig & { _class: string } {
    return { ...this.config, _class: 'ToyDdim' };
  }
}

describe('a scheduler added in one file plus one registry line', () => {
  let model: UNet2DConditional;
  beforeAll(() => {
    registerScheduler('toy-ddim', (config) => new ToyDdim(config as Partial<ToyConfig>));
    model = new UNet2DConditional({ ...UNET_PRESETS.tiny, sampleSize: 8, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' }, { seed: 4 });
  });
  afterAll(() => {
    model.dispose();
    unregisterScheduler('toy-ddim');
  });

  it('is listed and built by name with its config', () => {
    expect(schedulerNames()).toContain('toy-ddim');
    const s = schedulerFromName({ name: 'toy-ddim', config: { betaEnd: 0.012 } }) as ToyDdim;
    expect(s).toBeInstanceOf(ToyDdim);
    expect(s.config.betaEnd).toBe(0.012);
  });

  it('samples through sampleImages like the built-in DDIM (eta 0, no clipping), leaking nothing', async () => {
    const toy = schedulerFromName({ name: 'toy-ddim' });
    const ddim = new DDIMScheduler({ betaSchedule: 'linear', clipSample: false });
    // The independent alpha-bar matches the library's.
    expect(relMaxError(toy.alphasCumprod, ddim.alphasCumprod)).toBeLessThan(1e-6);
    const before = tf.memory().numTensors;
    const params = { model, classLabels: [0, 1], numInferenceSteps: 8, seed: 11 };
    const got = await sampleImages({ ...params, scheduler: toy });
    const want = await sampleImages({ ...params, scheduler: ddim });
    expect(Array.from(toy.timesteps)).toEqual(Array.from(ddim.timesteps));
    expect(relMaxError(got.dataSync(), want.dataSync())).toBeLessThan(1e-4);
    tf.dispose([got, want]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is used for gradient guidance through its guidedStep capability (no class check)', async () => {
    const toy = schedulerFromName({ name: 'toy-ddim' }) as ToyDdim;
    // A wide dataRange, so that no pixel of the untrained model's output is clipped to [0, 1].
    const params = { model, scheduler: toy, classLabels: [0], numInferenceSteps: 4, seed: 5, dataRange: [-100, 100] as [number, number] };
    const plain = await sampleImages(params);
    expect(toy.guidedSteps).toBe(0);
    // A push g = 0.5 at the last step only (guidance returns null before): the final x_0 moves by
    // 0.5 in [-100, 100], so every pixel by exactly 0.5 / 200 in [0, 1].
    const last = 0;
    const guided = await sampleImages({ ...params, guidance: ({ x, timestep }) => (timestep === last ? (tf.fill(x.shape, 0.5) as tf.Tensor4D) : null) });
    expect(toy.guidedSteps).toBe(1);
    const diff = tf.tidy(() => tf.sub(guided, plain).dataSync());
    for (const d of diff) expect(d).toBeCloseTo(0.0025, 6);
    tf.dispose([plain, guided]);
  });
});
