import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ResumableStepError } from '@fad/diffusion-core/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExpert, type ExpertConfig, presetConfig } from '@fad/expert-models';
import { useCpuBackend } from '../testing/setup-cpu';
import { toyImages } from '../testing/toy-data';
import { saveTorchvisionResNet } from './expert-files';
import { ExpertRunError } from './expert-run-error';
import { EXPERT_RUN_FILES, prepareExpertRun, readTorchvisionResNetLayout, type TrainExpertRunParams, trainExpertRun } from './expert-training-run';

beforeAll(useCpuBackend);
const root = mkdtempSync(join(tmpdir(), 'fad-expert-run-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const classNames = ['a', 'b', 'c', 'd'];
const config: ExpertConfig = presetConfig({ name: 'resnet18-kather', overrides: { layers: [1, 1], baseWidth: 8, numClasses: 4, input: { size: 8, channels: 1, range: [0, 1] } } as never });
const toy = toyImages({ numClasses: 4, perClass: 6, size: 8, channels: 1 });
const labels = Int32Array.from(toy.labels);
// 4 validation images (one per class), 20 training images: 5 steps of 4 per epoch, 2 epochs = 10 steps.
const validation = [0, 1, 2, 3];
const train = Array.from({ length: 20 }, (_, i) => i + 4);

function runParams(prepared: TrainExpertRunParams['prepared'], over: Partial<TrainExpertRunParams> = {}): TrainExpertRunParams {
  return {
    prepared, config, classNames, images: toy.data, labels, imageSize: 8, channels: 1, train, validation,
    epochs: 2, batchSize: 4, learningRate: 0.003, weightDecay: 0, augment: false, seed: 1, checkpointEvery: 2, backend: 'cpu', ...over,
  };
}

const errorOf = async (p: Promise<unknown>): Promise<unknown> => p.then(() => null, (e: unknown) => e);
const metricsWithoutTime = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => ({ ...JSON.parse(l), time: 0 }));

describe('prepareExpertRun / trainExpertRun', () => {
  let uninterrupted: Buffer;
  let uninterruptedMetrics: unknown[];

  it('trains into the folder (expert, eval.json, one metrics line per epoch, marker), leaks no tensors, and reuses a finished run', async () => {
    const dir = join(root, 'a');
    const logs: string[] = [];
    const scalars: Array<{ step: number; scalars: Record<string, number | null> }> = [];
    const before = tf.memory().numTensors;
    const prepared = await prepareExpertRun({ dir, key: 'k1', backend: 'cpu', onLog: (m) => logs.push(m) });
    expect(prepared.action).toBe('start');
    const r = await trainExpertRun(runParams(prepared, { onLog: (m) => logs.push(m), sink: { addScalars: (s) => scalars.push(s) } }));
    expect(tf.memory().numTensors).toBe(before);
    expect(r).toMatchObject({ reused: false, interrupted: null, key: 'k1', path: join(dir, EXPERT_RUN_FILES.expert) });
    expect(existsSync(join(dir, EXPERT_RUN_FILES.state))).toBe(false);
    const ev = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8'));
    expect(ev.classNames).toEqual(classNames);
    expect(ev.numSamples).toBe(4);
    expect(ev.accuracy).toBe(r.evaluation!.accuracy);
    // Accuracy is the diagonal of the confusion matrix over the 4 validation images.
    expect(ev.accuracy).toBeCloseTo(ev.confusionMatrix.reduce((s: number, row: number[], i: number) => s + row[i], 0) / 4, 12);
    const metrics = metricsWithoutTime(dir);
    expect(metrics.map((m) => [m.epoch, m.step])).toEqual([[1, 5], [2, 10]]);
    expect(scalars.map((s) => s.step)).toEqual([5, 10]);
    expect(scalars[1].scalars['validation/accuracy']).toBe(metrics[1].validationAccuracy);
    expect(JSON.parse(readFileSync(join(dir, 'complete.json'), 'utf8'))).toMatchObject({ step: 'train-expert', key: 'k1', backend: 'cpu', resumed: false });
    expect(logs.join('\n')).toMatch(/training the expert \(resnet basic \[1,1\] width 8, [\d,]+ parameters\) on 20 images for 2 epoch\(s\)/);
    uninterrupted = readFileSync(join(dir, EXPERT_RUN_FILES.expert));
    uninterruptedMetrics = metrics;
    const again = await prepareExpertRun({ dir, key: 'k1', backend: 'cpu', onLog: (m) => logs.push(m) });
    expect(again.action).toBe('reuse');
    expect(await trainExpertRun(runParams(again))).toMatchObject({ reused: true, evaluation: null });
    expect(logs.at(-1)).toMatch(/already holds an expert trained with this config \(key k1\); reusing it/);
    // Another key for a finished folder is refused by the resumable step.
    expect(await errorOf(prepareExpertRun({ dir, key: 'k2', backend: 'cpu' }))).toBeInstanceOf(ResumableStepError);
  }, 60_000);

  it('an interrupted run resumes to the uninterrupted run\'s expert, bit for bit; its state is refused without resume or with another key', async () => {
    const dir = join(root, 'b');
    let steps = 0;
    const stop = await trainExpertRun(runParams(await prepareExpertRun({ dir, key: 'k1', backend: 'cpu' }), { shouldStop: () => ++steps > 3 }));
    expect(stop.interrupted).toEqual({ step: 4, totalSteps: 10, statePath: join(dir, EXPERT_RUN_FILES.state) });
    expect(existsSync(join(dir, 'complete.json'))).toBe(false);
    const unfinished = await errorOf(prepareExpertRun({ dir, key: 'k1', backend: 'cpu', flags: { resume: '--resume', force: '--force' } }));
    expect(unfinished).toMatchObject({ code: 'unfinished-state', message: expect.stringMatching(/has the state of an unfinished expert training run; pass --resume to continue it, or --force to start over/) });
    const stale = await errorOf(prepareExpertRun({ dir, key: 'k9', resume: true, backend: 'cpu' }));
    expect(stale).toBeInstanceOf(ExpertRunError);
    expect(stale).toMatchObject({ code: 'stale-state', details: { stored: 'k1', key: 'k9' } });
    const logs: string[] = [];
    const resumed = await prepareExpertRun({ dir, key: 'k1', resume: true, backend: 'wasm', onLog: (m) => logs.push(m) });
    expect(resumed).toMatchObject({ action: 'resume', step: 4, epochsDone: 0 });
    expect(logs.join('\n')).toMatch(/state was written on the "cpu" backend, resuming on "wasm"/);
    const stepsRun: number[] = [];
    await trainExpertRun(runParams(resumed, { onProgress: (p) => p.kind === 'step' && stepsRun.push(p.globalStep) }));
    expect(stepsRun).toEqual([5, 6, 7, 8, 9, 10]); // continued, not retrained from step 1
    expect(readFileSync(join(dir, EXPERT_RUN_FILES.expert)).equals(uninterrupted)).toBe(true);
    expect(metricsWithoutTime(dir)).toEqual(uninterruptedMetrics);
    expect(JSON.parse(readFileSync(join(dir, 'complete.json'), 'utf8')).resumed).toBe(true);
  }, 60_000);

  it('a stale state restarts with staleState: restart, and force starts over', async () => {
    const dir = join(root, 'c');
    let steps = 0;
    await trainExpertRun(runParams(await prepareExpertRun({ dir, key: 'k1', backend: 'cpu' }), { shouldStop: () => ++steps > 1 }));
    const logs: string[] = [];
    const restarted = await prepareExpertRun({ dir, key: 'k2', resume: true, staleState: 'restart', backend: 'cpu', onLog: (m) => logs.push(m) });
    expect(restarted.action).toBe('start');
    expect(existsSync(join(dir, EXPERT_RUN_FILES.state))).toBe(false);
    expect(logs.join('\n')).toMatch(/changed since the unfinished run; training the expert again/);
    steps = 0;
    await trainExpertRun(runParams(restarted, { shouldStop: () => ++steps > 1 }));
    expect((await prepareExpertRun({ dir, key: 'k3', force: true, backend: 'cpu' })).action).toBe('start');
  }, 60_000);

  it('refuses bad params, naming them', async () => {
    const prepared = { action: 'start' as const, dir: join(root, 'p'), key: 'k', path: join(root, 'p', 'expert.safetensors') };
    await expect(trainExpertRun(runParams(prepared, { images: new Float32Array(5) }))).rejects.toThrow(/images holds 5 values; 24 labelled images of 8x8x1 need 1536/);
    await expect(trainExpertRun(runParams(prepared, { train: [0, 99] }))).rejects.toThrow(/train must be indices in 0\.\.23/);
    await expect(trainExpertRun(runParams(prepared, { classNames: ['a'] }))).rejects.toThrow(/classNames must list config\.numClasses \(4\) names/);
    await expect(trainExpertRun(runParams({} as never))).rejects.toThrow(/prepared must be what prepareExpertRun returned/);
    await expect(prepareExpertRun({ dir: '', key: 'k', backend: 'cpu' })).rejects.toThrow(/dir must be a non-empty string/);
    await expect(prepareExpertRun({ dir: root, key: 'k', backend: 'cpu', staleState: 'x' as never })).rejects.toThrow(/staleState must be 'error' or 'restart'/);
  });
});

describe('readTorchvisionResNetLayout and fine-tuning from a torchvision file', () => {
  it('reads the layout from the header of a file fad exported; fine-tunes from it with conv1 summed to 1 channel', async () => {
    const rgb = createExpert({ config: presetConfig({ name: 'resnet18', overrides: { layers: [1, 1], baseWidth: 8, numClasses: 3, input: { size: 8, channels: 3 } } as never }), classNames: ['x', 'y', 'z'], seed: 2 });
    const file = join(root, 'tv.safetensors');
    await saveTorchvisionResNet({ path: file, expert: rgb as never });
    rgb.dispose();
    expect(readTorchvisionResNetLayout({ path: file })).toMatchObject({ block: 'basic', layers: [1, 1], baseWidth: 8, inChannels: 3, numClasses: 3 });
    const logs: string[] = [];
    const dir = join(root, 'ft');
    const r = await trainExpertRun(runParams(await prepareExpertRun({ dir, key: 'ft', backend: 'cpu' }), { epochs: 1, pretrained: { path: file }, onLog: (m) => logs.push(m) }));
    expect(r.interrupted).toBeNull();
    expect(logs.join('\n')).toMatch(/fine-tuning from .*tv\.safetensors \(torchvision ResNet: basic \[1,1\]\): conv1 summed over its 3 input channels, a new linear head for 4 classes \(seed 1\)/);
  }, 60_000);

  it('names what is wrong with the file', () => {
    const bad = (path: string) => {
      try {
        readTorchvisionResNetLayout({ path });
      } catch (e) {
        return e as ExpertRunError;
      }
      throw new Error('no error');
    };
    expect(bad(join(root, 'none.safetensors'))).toMatchObject({ code: 'pretrained', message: `cannot read ${join(root, 'none.safetensors')}: no such file` });
    const short = join(root, 'short.safetensors');
    writeFileSync(short, 'abc');
    expect(bad(short).message).toMatch(/cannot read .*short\.safetensors: too short for a safetensors file/);
    const huge = join(root, 'huge.safetensors');
    const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [2 ** 31, 2 ** 29], data_offsets: [0, 0] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeFileSync(huge, Buffer.concat([len, header]));
    expect(bad(huge).message).toMatch(/tensor "w" has an invalid shape|hold more than/);
    const other = join(root, 'other.safetensors');
    const h2 = Buffer.from(JSON.stringify({ 'x.weight': { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }));
    len.writeBigUInt64LE(BigInt(h2.length));
    writeFileSync(other, Buffer.concat([len, h2, Buffer.alloc(4)]));
    expect(bad(other)).toMatchObject({ code: 'pretrained', message: expect.stringMatching(/^.*other\.safetensors: /) });
  });
});
