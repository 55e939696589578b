import { DDPMScheduler, DiffusionTrainer, DreamBoothTrainer, type ObjectiveContext, type TrainingObjective, UNET_PRESETS, UNet2DConditional, addConditioningToken } from '@fad/diffusion-core';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FeatureAlignmentLoss } from './feature-alignment-loss';
import { featureAlignmentObjective } from './feature-alignment-objective';
import { randomTensor, useCpuBackend } from './test-support/setup';
import { SpyExpert } from './test-support/toy-experts';

beforeAll(useCpuBackend);

const disposables: Array<{ dispose(): void }> = [];
afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));
function own<T extends { dispose(): void }>(x: T): T {
  disposables.push(x);
  return x;
}

/** A step context as DiffusionTrainer builds it, with x0 and x_t easy to tell apart. */
function context(b = 2): ObjectiveContext {
  const x0 = tf.fill([b, 4, 4, 1], 0.5) as tf.Tensor4D;
  const noisy = randomTensor([b, 4, 4, 1], 3) as tf.Tensor4D;
  const noise = tf.zerosLike(noisy);
  const h = randomTensor([b, 2, 2, 6], 4) as tf.Tensor4D;
  own({ dispose: () => tf.dispose([x0, noisy, noise, h]) });
  return { x0, noisy, noise, timesteps: Array(b).fill(10), modelOutput: noise, activations: { down_out: h } };
}

describe('featureAlignmentObjective', () => {
  for (const [alignTo, key] of [['noisy', 'noisy'], ['clean', 'x0']] as const) {
    it(`feeds the expert ${alignTo === 'noisy' ? 'x_t' : 'x_0'} with alignTo '${alignTo}'`, () => {
      const spy = own(new SpyExpert({ pixels: 16, featureDim: 5 }));
      const loss = own(new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 5 }));
      const objective = featureAlignmentObjective({ loss, expert: spy, alignTo });
      const ctx = context();
      const r = objective.loss(ctx);
      expect(spy.calls.length).toBe(1);
      expect(Array.from(spy.calls[0].input)).toEqual(Array.from(ctx[key].dataSync()));
      expect(spy.calls[0].options).toEqual({ training: false });
      tf.dispose([r.total, ...Object.values(r.terms)]);
    });
  }

  it('is a TrainingObjective: tap, projection variables, lambda2-weighted total and the align term', () => {
    const spy = own(new SpyExpert({ pixels: 16, featureDim: 5 }));
    const loss = own(new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 5 }));
    const objective: TrainingObjective = featureAlignmentObjective({ loss, expert: spy, lambda2: 0.25, tap: 'down_out' });
    expect(objective.name).toBe('feature_align');
    expect(objective.activations).toEqual(['down_out']);
    expect(objective.trainableVariables()).toEqual(loss.trainableVariables());
    const ctx = context();
    const r = objective.loss(ctx);
    expect(Object.keys(r.terms)).toEqual(['align']);
    const direct = tf.tidy(() =>
      loss.forward({ diffusionFeatures: ctx.activations.down_out, expertFeatures: spy.features(ctx.noisy) }).dataSync()[0],
    );
    expect(r.terms.align.dataSync()[0]).toBeCloseTo(direct, 6);
    expect(r.total.dataSync()[0]).toBeCloseTo(0.25 * direct, 6);
    tf.dispose([r.total, ...Object.values(r.terms)]);
  });

  it('leaves the tensor count unchanged after 100 objective losses', () => {
    const spy = own(new SpyExpert({ pixels: 16, featureDim: 5 }));
    const loss = own(new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 5 }));
    const objective = featureAlignmentObjective({ loss, expert: spy });
    const ctx = context();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) {
      const r = objective.loss(ctx);
      tf.dispose([r.total, ...Object.values(r.terms)]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('validates its parameters up front, and the tap at each step', () => {
    const spy = own(new SpyExpert({ pixels: 16, featureDim: 5 }));
    const loss = own(new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 7 }));
    expect(() => featureAlignmentObjective({ loss, expert: spy })).toThrow(
      'featureAlignmentObjective: expert.featureDim is 5 but the loss was built with expertDim = 7',
    );
    const ok = own(new FeatureAlignmentLoss({ diffusionDim: 6, expertDim: 5 }));
    expect(() => featureAlignmentObjective({ loss: ok, expert: spy, alignTo: 'x0' as 'clean' })).toThrow(/alignTo must be one of 'noisy', 'clean', got "x0"/);
    expect(() => featureAlignmentObjective({ loss: ok, expert: spy, lambda2: Number.NaN })).toThrow(/lambda2 must be a finite number >= 0/);
    expect(() => featureAlignmentObjective({ loss: ok, expert: {} as never })).toThrow(/expert must be a FeatureExtractor/);
    expect(() => featureAlignmentObjective({ loss: {} as never, expert: spy })).toThrow(/loss must be a FeatureAlignmentLoss/);
    const midObjective = featureAlignmentObjective({ loss: ok, expert: spy, tap: 'mid' });
    expect(() => midObjective.loss(context())).toThrow('featureAlignmentObjective (feature_align): the step has no activation "mid"; it got: down_out');
  });
});

describe('featureAlignmentObjective in DiffusionTrainer (end to end)', () => {
  it('trains a tiny U-Net with the alignment term: the align term falls over 30 steps, the expert stays frozen', () => {
    const cfg = { ...UNET_PRESETS.tiny, sampleSize: 8, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };
    const model = own(new UNet2DConditional(cfg, { seed: 1 }));
    // A small linear "expert" on the 8x8 images, with a BatchNorm-style running mean.
    const expert = own(new SpyExpert({ pixels: 64, featureDim: 8, seed: 5 }));
    const loss = own(new FeatureAlignmentLoss({ diffusionDim: 16, expertDim: 8, seed: 2 }));
    const trainer = own(
      new DiffusionTrainer({
        model,
        scheduler: new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2' }),
        seed: 1,
        optimizer: { learningRate: 3e-3 },
        objectives: [featureAlignmentObjective({ loss, expert, tap: 'down_out', alignTo: 'noisy' })],
      }),
    );
    const x0 = randomTensor([4, 8, 8, 1], 9) as tf.Tensor4D;
    own(x0);
    const labels = [0, 1, 2, 3];
    const expertBefore = Array.from(expert.weight.dataSync());
    const projectionBefore = Array.from(loss.trainableVariables()[0].dataSync());
    const align: number[] = [];
    for (let i = 0; i < 30; i++) {
      const r = trainer.step({ x0, classLabels: labels });
      expect(Object.keys(r.terms).sort()).toEqual(['diffusion', 'feature_align.align']);
      expect(Number.isFinite(r.terms.diffusion)).toBe(true);
      align.push(r.terms['feature_align.align']);
    }
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    // Per-step values are noisy (each step draws new timesteps and noise, so x_t changes); the
    // run is deterministic (seeded), and the last third sits well below the start.
    expect(mean(align.slice(-10))).toBeLessThan(0.7 * mean(align.slice(0, 5)));
    // The expert saw x_t (never x_0), in inference mode, and did not change.
    const x0data = Array.from(x0.dataSync());
    expect(expert.calls.length).toBe(30);
    expect(expert.calls.every((c) => c.options?.training === false)).toBe(true);
    expect(expert.calls.some((c) => Array.from(c.input).every((v, i) => v === x0data[i]))).toBe(false);
    expect(Array.from(expert.weight.dataSync())).toEqual(expertBefore);
    expect(Array.from(expert.runningMean.dataSync()).every((v) => v === 0)).toBe(true);
    // The projection did train.
    expect(Array.from(loss.trainableVariables()[0].dataSync())).not.toEqual(projectionBefore);
  }, 120_000);
});

describe('featureAlignmentObjective in DreamBoothTrainer', () => {
  it('aligns the whole DreamBooth batch (instance and prior images): loss = instance + w * prior + lambda2 * align', () => {
    const cfg = { ...UNET_PRESETS.tiny, sampleSize: 8, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };
    const base = new UNet2DConditional(cfg, { seed: 1 });
    const { model } = addConditioningToken({ model: base, fromClass: 1, name: 'sks' });
    base.dispose();
    own(model);
    const expert = own(new SpyExpert({ pixels: 64, featureDim: 8, seed: 5 }));
    const loss = own(new FeatureAlignmentLoss({ diffusionDim: 16, expertDim: 8, seed: 2 }));
    const trainer = own(new DreamBoothTrainer({
      model, scheduler: new DDPMScheduler(), token: 'sks', priorLossWeight: 0.5, seed: 1,
      objectives: [featureAlignmentObjective({ loss, expert, tap: 'down_out', alignTo: 'noisy', lambda2: 0.25 })],
    }));
    const inst = own(randomTensor([2, 8, 8, 1], 3) as tf.Tensor4D);
    const prior = own(randomTensor([3, 8, 8, 1], 4) as tf.Tensor4D);
    const r = trainer.step({ instanceImages: inst, priorImages: prior });
    expect(expert.calls).toHaveLength(1);
    expect(expert.calls[0].shape).toEqual([5, 8, 8, 1]);
    expect(r.terms.diffusion).toBeCloseTo(r.terms['diffusion.instance'] + 0.5 * r.terms['diffusion.prior'], 5);
    expect(r.loss).toBeCloseTo(r.terms.diffusion + 0.25 * r.terms['feature_align.align'], 5);
  });
});
