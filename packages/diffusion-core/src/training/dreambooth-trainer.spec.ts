import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { DDPMScheduler } from '../schedulers';
import { leakedTensors, useCpuBackend } from '../testing/setup-cpu';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { addConditioningToken } from './conditioning-token';
import { DreamBoothTrainer, type EmbeddingTraining } from './dreambooth-trainer';
import type { TrainingObjective } from './trainer';

beforeAll(useCpuBackend);

/** Attention-free 8x8 U-Net: the class enters through the timestep embedding. */
const small = { ...UNET_PRESETS.tiny, sampleSize: 8, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };
const disposables: Array<{ dispose(): void }> = [];
afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));

function withToken(seed = 1) {
  const base = new UNet2DConditional(small, { seed });
  const { model, label } = addConditioningToken({ model: base, fromClass: 2, name: 'sks' });
  base.dispose();
  disposables.push(model);
  return { model, label };
}

const images = (n: number, seed: number) => tf.tidy(() => tf.tanh(new Generator(seed).normal([n, 8, 8, 1]))) as tf.Tensor4D;

describe('DreamBoothTrainer', () => {
  it('loss = instance MSE + priorLossWeight * prior MSE, computed by hand with the same noise and timesteps', () => {
    for (const microBatchSize of [undefined, 4]) {
      const { model, label } = withToken();
      const sched = new DDPMScheduler();
      const trainer = new DreamBoothTrainer({ model, scheduler: sched, token: 'sks', priorLossWeight: 0.7, seed: 11, microBatchSize });
      disposables.push(trainer);
      const inst = images(2, 1);
      const prior = images(3, 2);
      // The trainer draws the timesteps, then the noise, from Generator(seed), for the whole batch.
      const g = new Generator(11);
      const t = g.integers(5, 0, 1000);
      const noise = g.normal([5, 8, 8, 1]);
      const mse = (x0: tf.Tensor4D, lbl: number, from: number, n: number) =>
        tf.tidy(() => {
          const eps = tf.slice(noise, [from, 0, 0, 0], [n, -1, -1, -1]) as tf.Tensor4D;
          const ts = t.slice(from, from + n);
          const xt = sched.addNoise(x0, eps, ts) as tf.Tensor4D;
          return tf.mean(tf.squaredDifference(model.forward({ sample: xt, timesteps: ts, classLabels: new Array(n).fill(lbl) }).sample, eps)).dataSync()[0];
        });
      const lInst = mse(inst, label, 0, 2);
      const lPrior = mse(prior, 2, 2, 3);
      const r = trainer.step({ instanceImages: inst, priorImages: prior });
      expect(r.loss).toBeCloseTo(lInst + 0.7 * lPrior, 5);
      expect(r.terms.diffusion).toBeCloseTo(lInst + 0.7 * lPrior, 5);
      expect(r.terms['diffusion.instance']).toBeCloseTo(lInst, 5);
      expect(r.terms['diffusion.prior']).toBeCloseTo(lPrior, 5);
      // Not the plain batch mean (which would weigh the 3 prior images 3/5).
      expect(Math.abs(r.loss - (2 * lInst + 3 * lPrior) / 5)).toBeGreaterThan(1e-4);
      tf.dispose([inst, prior, noise]);
    }
  });

  it('without prior images the loss is the instance MSE alone', () => {
    const { model } = withToken();
    const trainer = new DreamBoothTrainer({ model, scheduler: new DDPMScheduler(), token: 'sks', seed: 3 });
    disposables.push(trainer);
    const inst = images(2, 5);
    const r = trainer.step({ instanceImages: inst });
    expect(r.loss).toBeCloseTo(r.terms['diffusion.instance'], 6);
    expect(r.terms).not.toHaveProperty('diffusion.prior');
    inst.dispose();
  });

  const cases: Array<[EmbeddingTraining, boolean, boolean]> = [
    ['none', false, false],
    ['token', false, true],
    ['all', true, true],
  ];
  for (const [mode, classesChange, tokenChanges] of cases) {
    it(`trainEmbeddings "${mode}": class table ${classesChange ? 'changes' : 'stays bit-identical'}, token row ${tokenChanges ? 'changes' : 'stays bit-identical'}`, () => {
      const { model } = withToken(2);
      const { classes, tokens } = model.conditioningEmbeddings();
      const c0 = Array.from(classes!.dataSync());
      const k0 = Array.from(tokens!.dataSync());
      const w0 = Array.from(model.namedParameters().find(([n]) => n === 'conv_out.weight')![1].dataSync());
      const trainer = new DreamBoothTrainer({ model, scheduler: new DDPMScheduler(), token: 'sks', trainEmbeddings: mode, seed: 4, optimizer: { learningRate: 1e-2 } });
      disposables.push(trainer);
      const inst = images(2, 6);
      const prior = images(2, 7);
      for (let i = 0; i < 3; i++) trainer.step({ instanceImages: inst, priorImages: prior });
      const c1 = Array.from(classes!.dataSync());
      const k1 = Array.from(tokens!.dataSync());
      if (classesChange) expect(c1).not.toEqual(c0);
      else expect(c1).toEqual(c0);
      if (tokenChanges) expect(k1).not.toEqual(k0);
      else expect(k1).toEqual(k0);
      // The U-Net itself trains in every mode.
      expect(Array.from(model.namedParameters().find(([n]) => n === 'conv_out.weight')![1].dataSync())).not.toEqual(w0);
      tf.dispose([inst, prior]);
    });
  }

  it('leaks no tensors in a step (prior images, EMA, clipping, micro-batches, an objective)', () => {
    const { model } = withToken(3);
    const w = tf.variable(tf.scalar(0.5));
    const objective: TrainingObjective = {
      name: 'probe',
      activations: ['down_out'],
      trainableVariables: () => [w],
      loss: ({ activations }) => {
        const v = tf.mean(tf.square(tf.sub(tf.mean(activations.down_out), w))) as tf.Scalar;
        return { total: v, terms: { v } };
      },
    };
    const trainer = new DreamBoothTrainer({ model, scheduler: new DDPMScheduler(), token: 'sks', emaDecay: 0.9, gradClipNorm: 1, microBatchSize: 3, objectives: [objective], condDropProb: 0.2 });
    disposables.push(trainer, w);
    const inst = images(2, 8);
    const prior = images(3, 9);
    trainer.step({ instanceImages: inst, priorImages: prior });
    expect(leakedTensors(() => trainer.step({ instanceImages: inst, priorImages: prior }))).toBe(0);
    tf.dispose([inst, prior]);
  });

  it('validates its arguments', () => {
    const { model } = withToken();
    const plain = new UNet2DConditional(small);
    disposables.push(plain);
    const scheduler = new DDPMScheduler();
    expect(() => new DreamBoothTrainer({ model, scheduler, token: 'nope' })).toThrow(/params\.token: .*no conditioning token "nope" \(its tokens: sks\)/);
    expect(() => new DreamBoothTrainer({ model: plain, scheduler, token: 'sks' })).toThrow(/its tokens: none/);
    expect(() => new DreamBoothTrainer({ model, scheduler, token: 'sks', priorLossWeight: -1 })).toThrow(/params\.priorLossWeight must be a finite number >= 0, got -1/);
    expect(() => new DreamBoothTrainer({ model, scheduler, token: 'sks', trainEmbeddings: 'some' as never })).toThrow(/params\.trainEmbeddings must be one of none, token, all, got "some"/);
  });
});

describe('DreamBoothTrainer reproducibility', () => {
  it('two runs with the same seed end with bit-identical weights; another seed differs', () => {
    const run = (seed: number) => {
      const { model } = withToken(4);
      const trainer = new DreamBoothTrainer({ model, scheduler: new DDPMScheduler(), token: 'sks', seed, condDropProb: 0.3 });
      disposables.push(trainer);
      const inst = images(2, 10);
      const prior = images(2, 11);
      for (let i = 0; i < 2; i++) trainer.step({ instanceImages: inst, priorImages: prior });
      tf.dispose([inst, prior]);
      return model.namedParameters().flatMap(([, v]) => Array.from(v.dataSync()));
    };
    const a = run(1);
    expect(run(1)).toEqual(a);
    expect(run(2)).not.toEqual(a);
  });
});
