import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExpert } from './create-expert';
import { evaluateExpert } from './evaluate-expert';
import { loadExpert, trainExpert } from './node';
import type { ExpertConfigInput } from './expert-config';
import { maxAbsDiff, useCpuBackend } from './testing/setup-cpu';
import { toyImages } from './testing/toy-data';
import { type TrainProgress, trainExpert as trainExpertInMemory } from './train-expert';

let dir = '';
beforeAll(async () => {
  await useCpuBackend();
  dir = await mkdtemp(join(tmpdir(), 'expert-train-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const tinyResNet: ExpertConfigInput = { arch: 'resnet', block: 'basic', layers: [1, 1], baseWidth: 8, numClasses: 8, input: { size: 16 } };
const tinyViT: ExpertConfigInput = { arch: 'vit', patchSize: 4, depth: 1, numHeads: 2, width: 16, numClasses: 8, input: { size: 16 } };

describe('trainExpert overfits 16 images', () => {
  for (const [name, config, epochs] of [['ResNet', tinyResNet, 30], ['ViT', tinyViT, 40]] as const) {
    it(`${name}: loss drops and train accuracy (inference mode) reaches 100%`, async () => {
      const toy = toyImages({ numClasses: 8, perClass: 2, size: 16, channels: 1 });
      const expert = createExpert({ config, seed: 1 });
      const before = tf.memory().numTensors;
      const r = await trainExpert({
        expert, images: toy, labels: toy.labels, epochs, batchSize: 16, learningRate: 1e-2, lrGamma: 1,
        validationFraction: 0, augment: false,
      });
      expect(tf.memory().numTensors).toBe(before);
      expect(r.history).toHaveLength(epochs);
      expect(r.history[epochs - 1].trainLoss).toBeLessThan(r.history[0].trainLoss / 4);
      expect(evaluateExpert({ expert, images: toy, labels: toy.labels }).accuracy).toBe(1);
      expect(r.validation).toBeNull();
      expect(r.bestEpoch).toBe(epochs);
      expect(r.split).toEqual({ train: toy.labels.map((_, i) => i), validation: [] });
      expert.dispose();
    });
  }
});

describe('trainExpert with validation, augmentation and checkpoints', () => {
  it('splits by class, reports progress, keeps and saves the best epoch', async () => {
    const toy = toyImages({ numClasses: 4, perClass: 6, size: 16, channels: 1 });
    const expert = createExpert({ config: { ...tinyResNet, numClasses: 4 }, seed: 2, classNames: ['a', 'b', 'c', 'd'] });
    const events: TrainProgress[] = [];
    const checkpointPath = join(dir, 'best.safetensors');
    const splitPath = join(dir, 'split.json');
    const images = tf.tensor4d(toy.data, toy.shape);
    const before = tf.memory().numTensors;
    const r = await trainExpert({
      expert, images, labels: toy.labels, epochs: 3, batchSize: 8, learningRate: 3e-3,
      validationFraction: 0.25, seed: 11, checkpointPath, splitPath, weightDecay: 1e-4, onProgress: (e) => events.push(e),
    });
    expect(tf.memory().numTensors).toBe(before);
    // Stratified split: 6 per class -> round(1.5) = 2 held out per class.
    expect(r.split.validation).toHaveLength(8);
    for (let c = 0; c < 4; c++) expect(r.split.validation.filter((i) => toy.labels[i] === c)).toHaveLength(2);
    expect(JSON.parse(await readFile(splitPath, 'utf8'))).toEqual({ seed: 11, ...r.split });
    // 16 training images in batches of 8: 2 steps per epoch.
    const steps = events.filter((e) => e.kind === 'step');
    const epochs = events.filter((e) => e.kind === 'epoch');
    expect(steps).toHaveLength(6);
    expect(epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    expect(steps.map((e) => e.learningRate)).toEqual([3e-3, 3e-3, 2.1e-3, 2.1e-3, 3e-3 * 0.49, 3e-3 * 0.49].map((v) => expect.closeTo(v, 12)));
    expect(steps[5]).toMatchObject({ globalStep: 6, totalSteps: 6, etaMs: 0, stepsPerEpoch: 2 });
    expect(epochs.every((e) => e.validationAccuracy !== null && e.validationLoss !== null && e.elapsedMs > 0)).toBe(true);
    expect(r.history.map((h) => h.validationAccuracy)).toEqual(epochs.map((e) => e.validationAccuracy));
    // The best epoch's weights are in the expert and in the checkpoint.
    const best = r.history[r.bestEpoch - 1];
    expect(best.isBest).toBe(true);
    expect(r.bestValidationAccuracy).toBe(Math.max(...r.history.map((h) => h.validationAccuracy!)));
    expect(r.validation!.accuracy).toBe(r.bestValidationAccuracy);
    const { expert: loaded, metadata } = await loadExpert({ path: checkpointPath });
    expect(JSON.parse(metadata.training)).toMatchObject({ epoch: r.bestEpoch, validationAccuracy: r.bestValidationAccuracy, seed: 11 });
    expect(JSON.parse(metadata.split)).toEqual(r.split);
    expect(loaded.classNames).toEqual(['a', 'b', 'c', 'd']);
    const x = tf.tensor4d(toy.data, toy.shape);
    expect(maxAbsDiff(loaded.logits(x).dataSync(), expert.logits(x).dataSync())).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['best.safetensors', 'split.json']);
    expect(r.augment.resample.enabled).toBe(true);
    tf.dispose([x, images]);
    loaded.dispose();
    expert.dispose();
  });

  it('is reproducible from the seed and accepts a separate validation set', async () => {
    const toy = toyImages({ numClasses: 4, perClass: 3, size: 16, channels: 1 });
    const run = async () => {
      const expert = createExpert({ config: { ...tinyResNet, numClasses: 4 }, seed: 5 });
      const r = await trainExpert({ expert, images: toy, labels: toy.labels, epochs: 1, batchSize: 6, validation: { images: toy, labels: toy.labels } });
      const w = expert.stateDict()['fc.weight'].data;
      expert.dispose();
      return { r, w };
    };
    const a = await run();
    const b = await run();
    expect(maxAbsDiff(a.w, b.w)).toBe(0);
    expect(a.r.split.validation).toEqual([]);
    expect(a.r.validation!.numSamples).toBe(12);
  });

  it('rejects bad arguments naming the field', async () => {
    const toy = toyImages({ numClasses: 2, perClass: 2, size: 16, channels: 1 });
    const expert = createExpert({ config: { ...tinyResNet, numClasses: 2 } });
    const base = { expert, images: toy, labels: toy.labels, epochs: 1 };
    await expect(trainExpert({ ...base, epochs: 0 })).rejects.toThrow(/trainExpert: epochs must be an integer >= 1, got 0/);
    await expect(trainExpert({ ...base, batchSize: 2.5 })).rejects.toThrow(/batchSize must be an integer >= 1, got 2.5/);
    await expect(trainExpert({ ...base, lr: 1 } as never)).rejects.toThrow(/unknown field lr; accepted: expert, images, labels/);
    await expect(trainExpert({ ...base, images: { data: new Float32Array(4 * 8 * 8), shape: [4, 8, 8, 1] } })).rejects.toThrow(
      /images have shape \[4,8,8,1\], the expert expects \[N,16,16,1\]/,
    );
    await expect(trainExpert({ ...base, validation: { images: toy, labels: toy.labels }, validationFraction: 0.2 })).rejects.toThrow(/either validation .* or validationFraction, not both/);
    await expect(trainExpert({ ...base, augment: { blur: 1 } as never })).rejects.toThrow(/unknown field augment.blur/);
    expert.freeze();
    const splitPath = join(dir, 'never.json');
    await expect(trainExpert({ ...base, splitPath })).rejects.toThrow(/the expert is frozen/);
    expect((await readdir(dir)).includes('never.json')).toBe(false);
    expert.dispose();
  });

  it('from the main entry point, paths need file access (it imports no Node module)', async () => {
    const toy = toyImages({ numClasses: 2, perClass: 2, size: 16, channels: 1 });
    const expert = createExpert({ config: { ...tinyResNet, numClasses: 2 } });
    const base = { expert, images: toy, labels: toy.labels, epochs: 1, batchSize: 4, validationFraction: 0 };
    await expect(trainExpertInMemory({ ...base, statePath: join(dir, 'x.state') })).rejects.toThrow(
      /trainExpert: statePath needs file access: import trainExpert from '@fad\/expert-models\/node' \(Node\), or pass files/,
    );
    await expect(trainExpertInMemory({ ...base, splitPath: 'split.json', files: { readFile: 1 } as never })).rejects.toThrow(/files.readFile must be a function/);
    // Any `files` works: an in-memory one here.
    const written = new Map<string, Uint8Array | string>();
    const files = { readFile: async (p: string) => { throw new Error(`no ${p}`); }, writeFileAtomic: async (p: string, d: Uint8Array | string) => void written.set(p, d) };
    await trainExpertInMemory({ ...base, splitPath: 'split.json', checkpointPath: 'best.safetensors', files });
    expect(JSON.parse(String(written.get('split.json')))).toMatchObject({ seed: 0 });
    expect(written.get('best.safetensors')).toBeInstanceOf(Uint8Array);
    expert.dispose();
  });
});
