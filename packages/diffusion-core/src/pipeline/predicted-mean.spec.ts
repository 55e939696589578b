import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { DDPMScheduler } from '../schedulers';
import { leakedTensors, useCpuBackend } from '../testing/setup-cpu';
import type { DiffusionModel, UNetForwardParams } from '../unet/unet';
import { predictedMeanByTimestep } from './predicted-mean';

beforeAll(useCpuBackend);

/** Six 4x4 images with means from -0.75 to 0.5 and a little texture. */
function images(): tf.Tensor4D {
  const d = new Float32Array(6 * 16);
  for (let n = 0; n < 6; n++) for (let k = 0; k < 16; k++) d[n * 16 + k] = -0.75 + 0.25 * n + (k % 2 === 0 ? 0.1 : -0.1);
  return tf.tensor4d(d, [6, 4, 4, 1]);
}

/** A model that outputs a constant (0 by default) whatever its input. */
function constantModel(value = 0): DiffusionModel {
  return {
    config: { sampleSize: 4, inChannels: 1, numClasses: 0, nullClass: false },
    trainableVariables: () => [],
    forward: (p: UNetForwardParams) => ({ sample: tf.fill(p.sample.shape, value) as tf.Tensor4D, activations: {} }),
  };
}

describe('predictedMeanByTimestep', () => {
  it('an oracle follows the true means exactly (slope 1, no error)', () => {
    const x0 = images();
    const sched = new DDPMScheduler({ predictionType: 'sample' });
    // "sample" prediction: an oracle that returns x_0 itself (it knows the batch it is given).
    const oracle: DiffusionModel = { ...constantModel(), forward: () => ({ sample: x0.clone(), activations: {} }) };
    const rows = predictedMeanByTimestep({ model: oracle, scheduler: sched, x0, timesteps: [0, 500, 999] });
    for (const r of rows) {
      expect(r.slope).toBeCloseTo(1, 5);
      expect(r.meanAbsError).toBeLessThan(1e-6);
      expect(r.x0Mse).toBeLessThan(1e-10);
      expect(r.trueMean).toBeCloseTo(-0.125, 6);
    }
    x0.dispose();
  });

  it('a v model that outputs 0 predicts sqrt(ab) x_t: slope ab, means by hand from the replayed noise', () => {
    const x0 = images();
    const sched = new DDPMScheduler({ predictionType: 'v_prediction' });
    const t = 300;
    const ab = sched.alphasCumprod[t];
    const [row] = predictedMeanByTimestep({ model: constantModel(0), scheduler: sched, x0, timesteps: [t], seed: 4 });
    // x0_hat = sqrt(ab) x_t = ab x_0 + sqrt(ab (1 - ab)) z, with z the seed-4 draw.
    const z = new Generator(4).normal([6, 4, 4, 1]);
    const zMeans = tf.mean(z, [1, 2, 3]).dataSync();
    const truth = tf.mean(x0, [1, 2, 3]).dataSync();
    const hand = Array.from(truth, (m, i) => ab * m + Math.sqrt(ab * (1 - ab)) * zMeans[i]);
    expect(row.predictedMean).toBeCloseTo(hand.reduce((s, v) => s + v, 0) / 6, 5);
    expect(row.meanAbsError).toBeCloseTo(hand.reduce((s, v, i) => s + Math.abs(v - truth[i]), 0) / 6, 5);
    expect(row.alphaBar).toBe(ab);
    // The slope of hand on truth, computed directly.
    const mt = truth.reduce((s, v) => s + v, 0) / 6;
    const mh = hand.reduce((s, v) => s + v, 0) / 6;
    let cov = 0;
    let vt = 0;
    for (let i = 0; i < 6; i++) {
      cov += (truth[i] - mt) * (hand[i] - mh);
      vt += (truth[i] - mt) ** 2;
    }
    expect(row.slope).toBeCloseTo(cov / vt, 4);
    tf.dispose([x0, z]);
  });

  it('an epsilon model that outputs a constant 0.05 has its x_0 mean pulled by 0.05 sqrt(1-ab)/sqrt(ab), and clipping bounds it', () => {
    const x0 = images();
    const sched = new DDPMScheduler();
    const t = 999;
    const ab = sched.alphasCumprod[t];
    const [a] = predictedMeanByTimestep({ model: constantModel(0), scheduler: sched, x0, timesteps: [t], seed: 1 });
    const [b] = predictedMeanByTimestep({ model: constantModel(0.05), scheduler: sched, x0, timesteps: [t], seed: 1 });
    const shift = (0.05 * Math.sqrt(1 - ab)) / Math.sqrt(ab);
    expect(shift).toBeGreaterThan(5); // ~7.9: the amplification at the top of the linear schedule
    expect(a.predictedMean - b.predictedMean).toBeCloseTo(shift, 2);
    expect(Math.abs(b.clippedMean)).toBeLessThanOrEqual(1);
    x0.dispose();
  });

  it('validates its arguments and leaks no tensors', () => {
    const x0 = images();
    const sched = new DDPMScheduler();
    const model = constantModel();
    expect(() => predictedMeanByTimestep({ model, scheduler: sched, x0, timesteps: [] })).toThrow(/timesteps must be a non-empty array/);
    expect(() => predictedMeanByTimestep({ model, scheduler: sched, x0, timesteps: [1000] })).toThrow(/integer in 0..999, got 1000/);
    expect(() => predictedMeanByTimestep({ model, scheduler: sched, x0: tf.zeros([2, 2]) as never, timesteps: [1] })).toThrow(/x0 must be a \[N,H,W,C\] tensor/);
    expect(() => predictedMeanByTimestep({ model, scheduler: sched, x0, timesteps: [1], batchSize: 0 })).toThrow(/batchSize must be a positive integer/);
    const leaked = leakedTensors(() => {
      predictedMeanByTimestep({ model, scheduler: sched, x0, timesteps: [10, 900], batchSize: 4 });
    });
    expect(leaked).toBe(0);
    x0.dispose();
  });
});
