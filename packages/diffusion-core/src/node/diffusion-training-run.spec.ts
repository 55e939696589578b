import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors } from '../io/safetensors';
import { DDPMScheduler } from '../schedulers';
import { expectDerivedKeys, runFixtures } from '../testing/run-fixtures';
import { useCpuBackend } from '../testing/setup-cpu';
import { Gain, gainObjective } from '../testing/gain-objective';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { DIFFUSION_RUN_FILES, prepareDiffusionRun, type TrainDiffusionRunParams, trainDiffusionRun } from './diffusion-training-run';
import { ResumableStepError } from './resumable-step';
import { TrainingRunError } from './training-run-error';

beforeAll(useCpuBackend);

/** A small, attention-free U-Net at 8x8, one channel, 4 classes. */
const small = { ...UNET_PRESETS.tiny, sampleSize: 8, inChannels: 1, outChannels: 1, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };

/** Eight smooth 8x8 grayscale images in [0, 1] and their labels. */
function images(): { images: Float32Array; labels: Int32Array; imageSize: number; channels: number } {
  const s = 8;
  const d = new Float32Array(8 * s * s);
  for (let n = 0; n < 8; n++) for (let i = 0; i < s * s; i++) d[n * s * s + i] = 0.5 + 0.4 * Math.sin((n + 1) * (i % s) * 0.7 + Math.floor(i / s) * 0.3);
  return { images: d, labels: Int32Array.from([0, 1, 2, 3, 0, 1, 2, 3]), imageSize: s, channels: 1 };
}

const { tmp, keep } = runFixtures('fad-run-');

/** Params of a 4-step run with EMA, flips, an extra module and its final file; a fresh model each call. */
function params(dir: string, over: Partial<TrainDiffusionRunParams> = {}): TrainDiffusionRunParams {
  const model = new UNet2DConditional(small, { seed: 1 });
  const gain = new Gain();
  keep(model, gain);
  return {
    model, scheduler: new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2' }), data: images(), steps: 4, batchSize: 3,
    trainer: { seed: 7, optimizer: { learningRate: 1e-3 }, emaDecay: 0.9, condDropProb: 0.1 },
    objectives: [gainObjective(gain)], modules: [{ prefix: 'align.', module: gain }], hflip: true, vflip: true,
    dir, key: 'k1', checkpointEvery: 3, logEvery: 1, backend: 'cpu',
    finalFiles: [{ name: 'gain.json', what: 'the gain', bytes: () => new TextEncoder().encode(JSON.stringify(Array.from(gain.w.dataSync()))) }],
    ...over,
  };
}

const lines = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
  const { time, ...rest } = JSON.parse(l);
  return rest;
});

describe('trainDiffusionRun', () => {
  it('a run stopped after step 2 and resumed ends byte-identical to an uninterrupted run (weights, extra module, metrics)', async () => {
    const a = tmp();
    const full = await trainDiffusionRun(params(a));
    expect(full.status).toBe('finished');
    const b = tmp();
    const stopped = await trainDiffusionRun(params(b, { stopAfterStep: 2 }));
    expect(stopped).toMatchObject({ status: 'interrupted', step: 2, reason: 'stop-after-step', checkpointPath: join(b, 'checkpoint.safetensors') });
    expect(existsSync(join(b, 'model.safetensors'))).toBe(false);
    expect(() => prepareDiffusionRun({ dir: b, key: 'k1', steps: 4 })).toThrow(ResumableStepError);
    const logs: string[] = [];
    const resumed = await trainDiffusionRun(params(b, { resume: true, onLog: (m) => logs.push(m) }));
    expect(resumed).toMatchObject({ status: 'finished', resumed: true, steps: 4 });
    expect(logs).toEqual([`resuming ${b} at step 2/4`]);
    expect(Buffer.compare(readFileSync(join(a, 'model.safetensors')), readFileSync(join(b, 'model.safetensors')))).toBe(0);
    expect(readFileSync(join(b, 'gain.json'), 'utf8')).toBe(readFileSync(join(a, 'gain.json'), 'utf8'));
    expect(lines(b)).toEqual(lines(a));
    expect(lines(a).map((l) => l.step)).toEqual([1, 2, 3, 4]);
    expect(Object.keys(lines(a)[0].terms)).toContain('gain.fit');
    // The model file holds the EMA weights, complete; complete.json the key and the model's hash.
    const { metadata } = decodeSafetensors(new Uint8Array(readFileSync(join(a, 'model.safetensors'))));
    expect(metadata).toMatchObject({ weights: 'ema', steps: '4', backend: 'cpu', key: 'k1', 'fad.status': 'complete' });
    const done = JSON.parse(readFileSync(join(b, 'complete.json'), 'utf8'));
    expect(done).toMatchObject({ step: 'train-diffusion', key: 'k1', steps: 4, backend: 'cpu', resumed: true });
    expect(done.modelSha256).toMatch(/^[0-9a-f]{64}$/);
    // A finished folder with the same key is reused without training.
    const again = await trainDiffusionRun(params(a));
    expect(again).toMatchObject({ status: 'reused', finalLoss: full.status === 'finished' ? full.finalLoss : NaN });
  }, 120_000);

  it('an aborted signal writes a checkpoint after the current step; a checkpoint of another key is refused', async () => {
    const dir = tmp();
    const signal = { aborted: false };
    const r = await trainDiffusionRun(params(dir, { signal, onProgress: ({ step }) => (signal.aborted = step === 1) }));
    expect(r).toMatchObject({ status: 'interrupted', step: 1, reason: 'signal' });
    const ckpt = decodeSafetensors(new Uint8Array(readFileSync(join(dir, 'checkpoint.safetensors'))));
    expect(JSON.parse(ckpt.metadata.state).step).toBe(1);
    let err: unknown;
    try {
      prepareDiffusionRun({ dir, key: 'other', steps: 4, resume: true, flags: { force: '--force', resume: '--resume' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ResumableStepError);
    expect((err as ResumableStepError).problem).toBe('state-with-other-key');
    expect((err as Error).message).toBe(`the checkpoint ${join(dir, 'checkpoint.safetensors')} was written with a different config or data (state.key k1, now other); --resume needs the same settings (or --force to start over)`);
  }, 60_000);

  it('warns when resuming on another backend, and refuses a damaged checkpoint naming the field', async () => {
    const dir = tmp();
    await trainDiffusionRun(params(dir, { stopAfterStep: 1, backend: 'wasm' }));
    const logs: string[] = [];
    const prepared = prepareDiffusionRun({ dir, key: 'k1', steps: 4, resume: true, backend: 'cpu', onLog: (m) => logs.push(m) });
    expect(prepared.action).toBe('resume');
    expect(logs[0]).toMatch(/^warning: the checkpoint was written on the "wasm" backend, resuming on "cpu"/);
    expect(() => prepareDiffusionRun({ dir, key: 'k1', steps: 0 as number, resume: true })).toThrow(/prepareDiffusionRun: steps must be an integer >= 1/);
    writeFileSync(join(dir, 'checkpoint.safetensors'), 'not a checkpoint at all');
    expect(() => prepareDiffusionRun({ dir, key: 'k1', steps: 4, resume: true })).toThrow(/is not a safetensors file|not a usable safetensors file/);
  }, 60_000);

  it('weights that diverged are a TrainingRunError non-finite and no checkpoint is written', async () => {
    const dir = tmp();
    // The weights go bad after the step (the trainer refuses a non-finite loss itself).
    const p = params(dir, { checkpointEvery: 1, onStep: ({ model }) => {
      const [, v] = model.namedParameters()[0];
      v.assign(tf.fill(v.shape, NaN));
    } });
    let err: unknown;
    try {
      await trainDiffusionRun(p);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TrainingRunError);
    expect((err as TrainingRunError).code).toBe('non-finite');
    expect((err as Error).message).toMatch(/^training diverged at step 1: the checkpoint .*checkpoint.safetensors was not written, the weights are not finite: tensor ".*" has/);
    expect(existsSync(join(dir, 'checkpoint.safetensors'))).toBe(false);
  }, 60_000);

  it('leaves no tensors behind, and sends the metrics to the sink', async () => {
    const dir = tmp();
    const sent: number[] = [];
    const p = params(dir, { steps: 2, sink: { addScalars: ({ step }) => sent.push(step) } });
    const before = tf.memory().numTensors;
    await trainDiffusionRun(p);
    expect(tf.memory().numTensors).toBe(before);
    expect(sent).toEqual([1, 2]);
  }, 60_000);

  it('without a key, derives one from the settings and the data (another step count, another key)', async () => {
    await expectDerivedKeys((other) => trainDiffusionRun(params(tmp(), { key: undefined, steps: other ? 2 : 1 })));
  }, 60_000);

  it('validates every param up front, naming the field', async () => {
    const dir = tmp();
    const cases: Array<[Partial<TrainDiffusionRunParams>, RegExp]> = [
      [{ steps: 0 }, /trainDiffusionRun: steps must be an integer >= 1, got 0/],
      [{ batchSize: 1.5 }, /trainDiffusionRun: batchSize must be an integer >= 1/],
      [{ checkpointEvery: 0 }, /trainDiffusionRun: checkpointEvery must be an integer >= 1/],
      [{ logEvery: -1 }, /trainDiffusionRun: logEvery must be an integer >= 1/],
      [{ dir: '' }, /trainDiffusionRun: dir must be a non-empty string/],
      [{ data: { ...images(), imageSize: 16, images: new Float32Array(8 * 16 * 16) } }, /trainDiffusionRun: data.imageSize must be 8 \(model.config.sampleSize\)/],
      [{ data: { ...images(), labels: Int32Array.from([0, 1, 2, 9, 0, 1, 2, 3]) } }, /trainDiffusionRun: data.labels\[3\] must be an integer in 0..3/],
      [{ data: { ...images(), indices: [0, 8] } }, /trainDiffusionRun: data.indices must be a non-empty list of image rows in 0..7/],
      [{ data: { ...images(), images: new Float32Array(10) } }, /trainDiffusionRun: data.images.length must be a positive multiple/],
      [{ modules: [{ prefix: 'model.', module: new Gain() }] }, /trainDiffusionRun: modules\[0\].prefix must be a prefix not used by the checkpoint/],
      [{ sink: {} as never }, /trainDiffusionRun: sink must be an object with addScalars/],
      [{ model: {} as never }, /trainDiffusionRun: model must be a UNet2DConditional/],
    ];
    for (const [over, msg] of cases) {
      await expect(trainDiffusionRun(params(dir, over))).rejects.toThrow(msg);
    }
    expect(existsSync(join(dir, DIFFUSION_RUN_FILES.checkpoint))).toBe(false);
  }, 60_000);
});
