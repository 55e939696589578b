import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { DDIMScheduler, type DiffusionTrainer, sampleClassGrid, UNET_PRESETS, UNet2DConditional } from '@fad/diffusion-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Expert } from '../expert-model';
import { useCpuBackend } from '../testing/setup-cpu';
import { TrainingValidation, type TrainingValidationParams, validationScalars } from './training-validation';

beforeAll(useCpuBackend);
const root = mkdtempSync(join(tmpdir(), 'fad-validation-lib-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const classNames = ['dark', 'mid', 'bright'];
const unetConfig = { ...UNET_PRESETS.tiny, sampleSize: 8, inChannels: 1, outChannels: 1, numClasses: 3, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };
const settings = { every: 2, seed: 5, imagesPerClass: 2, steps: 3, guidanceScale: 1, eta: 0 };

/** A judge that knows 'dark' and 'bright' only: logit 0 = 1 - 4 * mean, logit 1 = 4 * mean - 1 (inputs in [0, 1]). */
function stubJudge(): Expert {
  const features = (x: tf.Tensor4D) => tf.mean(x, [1, 2]) as tf.Tensor2D;
  const logits = (x: tf.Tensor4D) => tf.tidy(() => tf.add(tf.matMul(features(x), tf.tensor2d([[-4, 4]])), tf.tensor1d([1, -1])) as tf.Tensor2D);
  return {
    config: {} as never, featureDim: 1, numClasses: 2, classNames: ['dark', 'bright'], frozen: true,
    inputSpec: { size: 8, channels: 1, mean: [0], std: [1], range: [0, 1] },
    features, logits, forward: (x) => ({ features: features(x), logits: logits(x) }), predict: (x) => tf.argMax(logits(x), 1),
    freeze: () => {}, unfreeze: () => {}, dispose: () => {},
  };
}

describe('TrainingValidation', () => {
  it('records per-row intensity of the grid it writes and the judge\'s accuracy on it, without leaking tensors or touching the model', async () => {
    const model = new UNet2DConditional(unetConfig, { seed: 3 });
    const before = model.trainableVariables().map((v) => v.dataSync().slice());
    const scalars: Array<{ step: number; scalars: Record<string, number | null> }> = [];
    const images: number[] = [];
    const p: TrainingValidationParams = {
      settings, scheduler: new DDIMScheduler({ clipSample: true }), unetConfig, classNames, dir: root, metricsPath: join(root, 'metrics.jsonl'),
      judge: { expert: stubJudge(), name: 'judge.safetensors' }, sink: { addScalars: (s) => scalars.push(s), addImage: (i) => images.push(i.step) },
    };
    const v = new TrainingValidation(p);
    expect([v.due(1), v.due(2), v.due(4)]).toEqual([false, true, true]);
    const n0 = tf.memory().numTensors;
    const record = await v.run(2, { ema: null } as unknown as DiffusionTrainer, model);
    expect(tf.memory().numTensors).toBe(n0);
    // The same grid, sampled independently from the model itself.
    const grid = await sampleClassGrid({ model, scheduler: new DDIMScheduler({ clipSample: true }), classLabels: [0, 1, 2], imagesPerClass: 2, numInferenceSteps: 3, seed: 5, guidanceScale: 1, eta: 0 });
    const px = grid.images.dataSync() as Float32Array;
    grid.images.dispose();
    const imageMean = (k: number) => px.slice(k * 64, (k + 1) * 64).reduce((a: number, b: number) => a + b, 0) / 64;
    classNames.forEach((c, r) => expect(record.validation.perClass[r].mean).toBeCloseTo((imageMean(2 * r) + imageMean(2 * r + 1)) / 2, 5));
    // The judge scores the dark and bright rows only (4 images): predicted bright iff mean > 0.25.
    const scored = [0, 1, 4, 5].map((k) => ({ want: k < 2 ? 0 : 1, got: imageMean(k) > 0.25 ? 1 : 0 }));
    expect(record.validation.judgeAccuracy).toBeCloseTo(scored.filter((s) => s.want === s.got).length / 4, 12);
    expect(record.validation.judgePerClass!.map((c) => c.class)).toEqual(classNames);
    expect(record.validation.judgePerClass![1].accuracy).toBeNull();
    expect(record.validation).toMatchObject({ file: join('validation', 'step-000002.png'), weights: 'raw', seed: 5, imagesPerClass: 2, judge: 'judge.safetensors' });
    // The PNG is the grid: 3 rows x 2 columns of 8x8 tiles, row means within 8-bit rounding.
    const file = readFileSync(join(root, record.validation.file));
    expect((await sharp(file).metadata()).channels).toBe(1);
    const { data, info } = await sharp(file).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([16, 24, 1]);
    for (let r = 0; r < 3; r++) {
      let s = 0;
      for (let y = r * 8; y < (r + 1) * 8; y++) for (let x = 0; x < 16; x++) s += data[y * 16 + x] / 255;
      expect(s / 128).toBeCloseTo(record.validation.perClass[r].mean, 2);
    }
    const line = JSON.parse(readFileSync(p.metricsPath, 'utf8').trim());
    expect(line).toEqual(JSON.parse(JSON.stringify(record)));
    expect(scalars).toEqual([{ step: 2, scalars: validationScalars(record.validation) }]);
    expect(images).toEqual([2]);
    model.trainableVariables().forEach((t, i) => expect(Array.from(t.dataSync())).toEqual(Array.from(before[i])));
    v.dispose();
    model.dispose();
  }, 60_000);

  it('validationScalars names every number', () => {
    expect(validationScalars({ perClass: [{ class: 'a', mean: 0.2, meanSd: null, contrast: 0.1 }], overall: { mean: 0.2, contrast: 0.1 }, judgeAccuracy: 0.5, judgePerClass: [{ class: 'a', accuracy: null }] })).toEqual({
      'validation/overall/mean': 0.2, 'validation/overall/contrast': 0.1, 'validation/mean/a': 0.2, 'validation/contrast/a': 0.1, 'validation/judgeAccuracy': 0.5, 'validation/judgeAccuracy/a': null,
    });
  });

  it('refuses bad settings and a judge that knows none of the classes', () => {
    const base = { settings, scheduler: new DDIMScheduler(), unetConfig, classNames, dir: root, metricsPath: join(root, 'm.jsonl') };
    expect(() => new TrainingValidation({ ...base, settings: { ...settings, every: 0 } })).toThrow(/settings\.every must be an integer >= 1, got 0/);
    expect(() => new TrainingValidation({ ...base, scheduler: {} as never })).toThrow(/scheduler must be a noise scheduler/);
    expect(() => new TrainingValidation({ ...base, classNames: ['x'], judge: { expert: stubJudge(), name: 'j' } })).toThrow(/the judge j knows none of the classes \(x\); its classes: dark, bright/);
  });
});
