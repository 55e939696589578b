import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AutoencoderKL } from '../autoencoder/autoencoder';
import { AUTOENCODER_PRESETS } from '../autoencoder/autoencoder-config';
import { deserializeAutoencoder } from '../io/autoencoder-io';
import { decodeSafetensors } from '../io/safetensors';
import { expectDerivedKeys, runFixtures } from '../testing/run-fixtures';
import { useCpuBackend } from '../testing/setup-cpu';
import { AUTOENCODER_CHECKPOINT_FORMAT } from './autoencoder-checkpoint';
import { AUTOENCODER_RUN_FILES, prepareAutoencoderRun, type TrainAutoencoderRunParams, trainAutoencoderRun } from './autoencoder-training-run';
import { ResumableStepError } from './resumable-step';
import { TrainingRunError } from './training-run-error';

beforeAll(useCpuBackend);

/** A two-level autoencoder (8x8 -> 4x4x2) on one channel. */
const small = { ...AUTOENCODER_PRESETS.tiny, blockChannels: [8, 8], latentChannels: 2 };

/** Ten smooth 8x8 grayscale images in [0, 1]. */
function images(): { images: Float32Array; imageSize: number; channels: number } {
  const s = 8;
  const d = new Float32Array(10 * s * s);
  for (let n = 0; n < 10; n++) for (let i = 0; i < s * s; i++) d[n * s * s + i] = 0.5 + 0.4 * Math.sin((n + 1) * (i % s) * 0.7 + Math.floor(i / s) * 0.3);
  return { images: d, imageSize: s, channels: 1 };
}

const { tmp, keep } = runFixtures('fad-ae-run-');

/** Params of a 4-step run on rows 0..7 with flips; a fresh model each call. */
function params(dir: string, over: Partial<TrainAutoencoderRunParams> = {}): TrainAutoencoderRunParams {
  const model = new AutoencoderKL(small, { seed: 2 });
  keep(model);
  return {
    model, data: { ...images(), indices: [0, 1, 2, 3, 4, 5, 6, 7] }, steps: 4, batchSize: 3,
    trainer: { seed: 5, optimizer: { learningRate: 3e-3 }, lrSchedule: { type: 'constant', warmupSteps: 1 } },
    scalingImages: 6, hflip: true, vflip: true, dir, key: 'k1', checkpointEvery: 3, logEvery: 1, backend: 'cpu',
    ...over,
  };
}

const lines = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
  const { time, ...rest } = JSON.parse(l);
  return rest;
});

describe('trainAutoencoderRun', () => {
  it('a run stopped after step 2 and resumed ends byte-identical to an uninterrupted run; the scaling factor is 1/std of the posterior means', async () => {
    const a = tmp();
    const full = await trainAutoencoderRun(params(a));
    expect(full.status).toBe('finished');
    const b = tmp();
    const stopped = await trainAutoencoderRun(params(b, { stopAfterStep: 2 }));
    expect(stopped).toMatchObject({ status: 'interrupted', step: 2, reason: 'stop-after-step', checkpointPath: join(b, AUTOENCODER_RUN_FILES.checkpoint) });
    expect(existsSync(join(b, AUTOENCODER_RUN_FILES.model))).toBe(false);
    expect(() => prepareAutoencoderRun({ dir: b, key: 'k1', steps: 4, flags: { resume: '--resume' } })).toThrow(/has a checkpoint of an unfinished autoencoder run; pass --resume to continue it/);
    const logs: string[] = [];
    const resumed = await trainAutoencoderRun(params(b, { resume: true, onLog: (m) => logs.push(m) }));
    expect(resumed).toMatchObject({ status: 'finished', resumed: true, steps: 4 });
    expect(logs).toEqual([`resuming ${b} at step 2/4`]);
    expect(Buffer.compare(readFileSync(join(a, AUTOENCODER_RUN_FILES.model)), readFileSync(join(b, AUTOENCODER_RUN_FILES.model)))).toBe(0);
    expect(lines(b)).toEqual(lines(a));
    expect(lines(a).map((l) => l.step)).toEqual([1, 2, 3, 4]);
    expect(Object.keys(lines(a)[0].terms).sort()).toEqual(['kl', 'l1', 'ssim']);

    // The scaling factor, recomputed here: 1 / population std of the posterior means of rows 0..5 (mapped to [-1, 1]).
    const { model, metadata } = deserializeAutoencoder(new Uint8Array(readFileSync(join(a, AUTOENCODER_RUN_FILES.model))));
    keep(model);
    const x = tf.tensor4d(Array.from(images().images.subarray(0, 6 * 64), (v) => v * 2 - 1), [6, 8, 8, 1]);
    const { mean, logVar } = model.encode(x);
    const z = Array.from(mean.dataSync());
    tf.dispose([x, mean, logVar]);
    const mu = z.reduce((s, v) => s + v, 0) / z.length;
    const std = Math.sqrt(z.reduce((s, v) => s + (v - mu) ** 2, 0) / z.length);
    expect(model.config.scalingFactor).toBeCloseTo(1 / std, 5);
    expect(full.status === 'finished' && full.scalingFactor).toBe(model.config.scalingFactor);
    expect(metadata).toMatchObject({ steps: '4', backend: 'cpu', key: 'k1', scalingImages: '6', 'fad.status': 'complete' });
    const done = JSON.parse(readFileSync(join(b, 'complete.json'), 'utf8'));
    expect(Object.keys(done)).toEqual(['step', 'key', 'steps', 'finalLoss', 'backend', 'modelSha256', 'elapsedSeconds', 'resumed', 'finishedAt']);
    expect(done).toMatchObject({ step: 'train-autoencoder', key: 'k1', steps: 4, backend: 'cpu', resumed: true });

    // A finished folder with the same key is reused without training.
    const again = await trainAutoencoderRun(params(a));
    expect(again).toMatchObject({ status: 'reused', finalLoss: full.status === 'finished' ? full.finalLoss : NaN });
  }, 120_000);

  it('writes the checkpoint format of earlier fad versions (fad-autoencoder-checkpoint/1, its state fields in order)', async () => {
    const dir = tmp();
    await trainAutoencoderRun(params(dir, { stopAfterStep: 1 }));
    const f = decodeSafetensors(new Uint8Array(readFileSync(join(dir, AUTOENCODER_RUN_FILES.checkpoint))));
    expect(f.metadata.format).toBe(AUTOENCODER_CHECKPOINT_FORMAT);
    expect(AUTOENCODER_CHECKPOINT_FORMAT).toBe('fad-autoencoder-checkpoint/1');
    const state = JSON.parse(f.metadata.state);
    expect(Object.keys(state)).toEqual(['format', 'key', 'step', 'generator', 'optimizerStep', 'data', 'window', 'backend', 'config', 'elapsedSeconds', 'lastLoss']);
    expect(state).toMatchObject({ format: 'fad-autoencoder-checkpoint/1', key: 'k1', step: 1, optimizerStep: 1, backend: 'cpu', config: { blockChannels: [8, 8], latentChannels: 2 } });
    const names = Object.keys(f.tensors);
    expect(names.filter((n) => !/^(model\.|adam\.[mv]\.\d+$)/.test(n))).toEqual([]);
    expect(names.filter((n) => n.startsWith('adam.m.'))).toHaveLength(names.filter((n) => n.startsWith('model.')).length);
  }, 60_000);

  it('refuses a damaged checkpoint naming the field; a finished run of another key; weights that diverged', async () => {
    const dir = tmp();
    await trainAutoencoderRun(params(dir, { stopAfterStep: 1 }));
    const path = join(dir, AUTOENCODER_RUN_FILES.checkpoint);
    const f = decodeSafetensors(new Uint8Array(readFileSync(path)));
    const state = JSON.parse(f.metadata.state);
    const { encodeSafetensors } = await import('../io/safetensors');
    writeFileSync(path, encodeSafetensors({ tensors: f.tensors as never, metadata: { ...f.metadata, state: JSON.stringify({ ...state, optimizerStep: 99 }) } }));
    expect(() => prepareAutoencoderRun({ dir, key: 'k1', steps: 4, resume: true, totalKey: 'autoencoder.steps' })).toThrow(/the autoencoder checkpoint .*: state\.optimizerStep is 99, expected an integer in 0\.\.4/);
    const done = tmp();
    await trainAutoencoderRun(params(done, { steps: 1 }));
    let err: unknown;
    try {
      await trainAutoencoderRun(params(done, { steps: 1, key: 'k2' }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ResumableStepError);
    expect((err as Error).message).toMatch(/holds a finished autoencoder run with a different config or data \(key k1, now k2\)/);
    // A decoder weight goes bad after the last step (the trainer refuses a non-finite loss itself).
    const badDir = tmp();
    const bad = params(badDir, { steps: 1, onProgress: () => {
      const [, v] = bad.model.namedParameters().find(([n]) => n.startsWith('decoder.'))!;
      v.assign(tf.fill(v.shape, NaN));
    } });
    err = undefined;
    try {
      await trainAutoencoderRun(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TrainingRunError);
    expect((err as TrainingRunError).code).toBe('non-finite');
    expect((err as Error).message).toMatch(/^training diverged at step 1: the final autoencoder .*autoencoder.safetensors was not written, the weights are not finite/);
    expect(existsSync(join(badDir, AUTOENCODER_RUN_FILES.model))).toBe(false);
  }, 60_000);

  it('leaves no tensors behind, and sends the metrics to the sink', async () => {
    const sent: number[] = [];
    const p = params(tmp(), { steps: 2, sink: { addScalars: ({ step }) => sent.push(step) } });
    const before = tf.memory().numTensors;
    await trainAutoencoderRun(p);
    expect(tf.memory().numTensors).toBe(before);
    expect(sent).toEqual([1, 2]);
  }, 60_000);

  it('without a key, derives one from the settings and the data (another step count, another key)', async () => {
    await expectDerivedKeys((other) => trainAutoencoderRun(params(tmp(), { key: undefined, steps: other ? 2 : 1 })));
  }, 60_000);

  it('validates every param up front, naming the field', async () => {
    const dir = tmp();
    const cases: Array<[Partial<TrainAutoencoderRunParams>, RegExp]> = [
      [{ steps: 0 }, /trainAutoencoderRun: steps must be an integer >= 1, got 0/],
      [{ batchSize: 1.5 }, /trainAutoencoderRun: batchSize must be an integer >= 1/],
      [{ scalingImages: 0 }, /trainAutoencoderRun: scalingImages must be an integer >= 1/],
      [{ dir: '' }, /trainAutoencoderRun: dir must be a non-empty string/],
      [{ data: { ...images(), channels: 3, images: new Float32Array(10 * 8 * 8 * 3) } }, /trainAutoencoderRun: data.channels must be 1 \(model.config.inChannels\)/],
      [{ data: { images: new Float32Array(10 * 9 * 9), imageSize: 9, channels: 1 } }, /trainAutoencoderRun: data.imageSize must be divisible by the autoencoder's downsampling factor 2/],
      [{ data: { ...images(), indices: [0, 10] } }, /trainAutoencoderRun: data.indices must be a non-empty list of image rows in 0..9/],
      [{ trainer: { lossWeights: { perceptual: 1 } } }, /trainAutoencoderRun: perceptual must be a feature function when trainer.lossWeights.perceptual > 0/],
      [{ sink: {} as never }, /trainAutoencoderRun: sink must be an object with addScalars/],
      [{ model: {} as never }, /trainAutoencoderRun: model must be an AutoencoderKL/],
    ];
    for (const [over, msg] of cases) {
      await expect(trainAutoencoderRun(params(dir, over))).rejects.toThrow(msg);
    }
    expect(existsSync(join(dir, AUTOENCODER_RUN_FILES.checkpoint))).toBe(false);
  }, 60_000);
});
