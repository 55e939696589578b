/**
 * `fad autoencoder train` in process: resume after a stop ends with the same weights as an
 * uninterrupted run; fidelity.json holds the library's fidelity check with the expert and the judge
 * by their files; the step key is pinned; the library's differentiable SSIM matches @fad/metrics'
 * SSIM (which matches scikit-image).
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { Generator, deserializeAutoencoder, ssimTensor } from '@fad/diffusion-core';
import { autoencoderFidelity, createExpert, presetConfig } from '@fad/expert-models';
import { ssim } from '@fad/metrics';
import { beforeAll, describe, expect, it } from 'vitest';
import { type AutoencoderJob, autoencoderStepKey, trainAutoencoder } from './autoencoder';
import { parseConfig } from './config';
import { loadDataAndSplit, makeLogger } from './context';
import { writeDemoData } from './demo';
import { InterruptedError } from './errors';
import type { LoadedExpertModel } from './expert';

const root = mkdtempSync(join(tmpdir(), 'fad-autoencoder-'));
const dataDir = join(root, 'data');

beforeAll(async () => {
  tf.env().set('IS_TEST', true);
  await tf.setBackend('cpu');
  await writeDemoData(dataDir, 16, 4);
}, 120_000);

describe('ssimTensor against @fad/metrics ssim', () => {
  it('gives the same forward value (Gaussian and uniform windows)', () => {
    const g = new Generator(2);
    const x = tf.tidy(() => tf.clipByValue(tf.add(tf.mul(g.normal([3, 16, 16, 2]), 0.3), 0.5), 0, 1)) as tf.Tensor4D;
    const y = tf.tidy(() => tf.clipByValue(tf.add(x, tf.mul(g.normal([3, 16, 16, 2]), 0.15)), 0, 1)) as tf.Tensor4D;
    for (const opts of [{ window: 'gaussian' as const }, { window: 'uniform' as const, winSize: 7 }]) {
      const mine = Array.from(ssimTensor({ x, y, dataRange: 1, ...opts }).dataSync());
      const ref = ssim({ x: { data: x.dataSync(), shape: x.shape }, y: { data: y.dataSync(), shape: y.shape }, dataRange: 1, ...opts });
      mine.forEach((v, i) => expect(Math.abs(v - ref.values[i])).toBeLessThan(1e-4));
      expect(ref.mean).toBeLessThan(0.9);
    }
    tf.dispose([x, y]);
  });
});

describe('autoencoderStepKey', () => {
  it('keeps the keys of earlier runs (pinned values: a changed key retrains every autoencoder)', () => {
    const data = { fingerprint: 'fp', indices: [0, 1, 2] } as unknown as Parameters<typeof autoencoderStepKey>[1];
    expect(autoencoderStepKey(parseConfig({}), data, null)).toBe('2a1139cd8d6670f9');
    // checkpointEvery (and fidelityImages, maxAccuracyDrop) do not change the weights: not in the key.
    expect(autoencoderStepKey(parseConfig({ autoencoder: { perceptualWeight: 0.5, checkpointEvery: 7 } }), data, 'e')).toBe('f81d173036c712de');
    expect(autoencoderStepKey(parseConfig({ autoencoder: { perceptualWeight: 0.5 } }), data, 'e')).toBe('f81d173036c712de');
  });
});

describe('trainAutoencoder', () => {
  const cfg = parseConfig({
    data: { dir: dataDir, imageSize: 16, validationFraction: 0.25 },
    autoencoder: { preset: 'tiny', overrides: { blockChannels: [8, 8], latentChannels: 2 }, steps: 4, batchSize: 4, learningRate: 0.003, warmupSteps: 1, checkpointEvery: 2, logEvery: 1, scalingImages: 8 },
  });
  const classifier = (seed: number): LoadedExpertModel => {
    const config = presetConfig({ name: 'resnet18-kather', overrides: { baseWidth: 4, layers: [1, 1], numClasses: 4, input: { size: 16 } } });
    // The demo classes, in another order than the data's labels, and one class the data lacks.
    const expert = createExpert({ config, classNames: ['rings', 'checker', 'stripes_h', 'other'], seed });
    expert.freeze();
    return { expert, path: `/classifier-${seed}`, sha256: String(seed), metadata: {} };
  };

  it('resumes to the same weights, stores the scaling factor, writes fidelity.json with numbers recomputed here', async () => {
    const log = makeLogger(true);
    const expert = classifier(1);
    const judge = classifier(2);
    const job = async (dir: string, extra: Partial<AutoencoderJob> = {}) => {
      const { dataset, split } = await loadDataAndSplit(cfg, log, dir);
      return trainAutoencoder({
        cfg, data: { images: dataset.images, labels: dataset.labels, imageSize: 16, channels: 1, indices: split.train, classNames: dataset.classNames, fingerprint: dataset.fingerprint },
        validation: split.validation, expert, judge, dir, resume: false, backend: 'cpu', log: log.info, quiet: true, ...extra,
      });
    };
    const a = await job(join(root, 'a'));
    expect(a.reused).toBe(false);
    const b = join(root, 'b');
    await expect(job(b, { stopAfterStep: 1 })).rejects.toBeInstanceOf(InterruptedError);
    expect(existsSync(join(b, 'autoencoder-checkpoint.safetensors'))).toBe(true);
    await expect(job(b)).rejects.toThrow(/pass --resume to continue it/);
    const rb = await job(b, { resume: true });
    expect(readFileSync(join(b, 'autoencoder.safetensors')).equals(readFileSync(join(root, 'a', 'autoencoder.safetensors')))).toBe(true);
    const lines = readFileSync(join(b, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.step)).toEqual([1, 2, 3, 4]);
    expect(Object.keys(lines[0].terms).sort()).toEqual(['kl', 'l1', 'ssim']);

    // fidelity.json: the library's fidelity check (its values are checked in @fad/expert-models) on the
    // saved model and the held-out split, the expert and the judge named by their files.
    const f = JSON.parse(readFileSync(join(b, 'fidelity.json'), 'utf8'));
    expect(Object.keys(f)).toEqual(['numImages', 'psnr', 'ssim', 'maxAccuracyDrop', 'expert', 'judge', 'scalingFactor', 'latentShape', 'modelPath', 'key', 'time']);
    expect(f).toEqual(expect.objectContaining({ numImages: rb.fidelity.numImages, maxAccuracyDrop: 2, latentShape: [8, 8, 2], modelPath: join(b, 'autoencoder.safetensors'), key: rb.key }));
    const { model } = deserializeAutoencoder(new Uint8Array(readFileSync(join(b, 'autoencoder.safetensors'))));
    expect(model.config.scalingFactor).toBe(f.scalingFactor);
    expect(f.scalingFactor).not.toBe(1);
    const { dataset, split } = await loadDataAndSplit(cfg, log, b);
    const per = 256;
    const orig = new Float32Array(split.validation.length * per);
    split.validation.forEach((k, i) => orig.set(dataset.images.subarray(k * per, (k + 1) * per), i * per));
    const lib = autoencoderFidelity({
      autoencoder: model, images: orig, imageSize: 16, channels: 1, labels: split.validation.map((k) => dataset.labels[k]), classNames: dataset.classNames,
      classifiers: [{ name: 'expert', expert: expert.expert }, { name: 'judge', expert: judge.expert }], maxAccuracyDrop: 2, ssim: { window: cfg.evaluate.ssimWindow, winSize: cfg.evaluate.ssimWinSize },
    });
    expect(rb.fidelity).toEqual(lib);
    expect(f.psnr).toBe(lib.psnr);
    expect(f.ssim).toBe(lib.ssim);
    const { name: _e, ...e } = lib.classifiers[0];
    const { name: _j, ...j } = lib.classifiers[1];
    expect(f.expert).toEqual({ path: '/classifier-1', ...e });
    expect(f.judge).toEqual({ path: '/classifier-2', ...j });
    expect(f.judge.numImages).toBeLessThan(split.validation.length); // stripes_v is unknown to the classifiers and left out
    model.dispose();

    // A finished run is reused (the fidelity check runs again); another config is refused.
    const again = await job(b);
    expect(again.reused).toBe(true);
    await expect(trainAutoencoder({ ...(await (async () => {
      const { dataset: d, split: s } = await loadDataAndSplit(cfg, log, b);
      return { data: { images: d.images, labels: d.labels, imageSize: 16, channels: 1, indices: s.train, classNames: d.classNames, fingerprint: d.fingerprint }, validation: s.validation };
    })()), cfg: parseConfig({ ...cfg, autoencoder: { ...cfg.autoencoder, steps: 5 } }), dir: b, resume: false, backend: 'cpu', log: log.info, quiet: true })).rejects.toThrow(/finished autoencoder run with a different config/);
    await expect(job(join(root, 'c'), { expert: undefined, cfg: parseConfig({ ...cfg, autoencoder: { ...cfg.autoencoder, perceptualWeight: 1 } }) })).rejects.toThrow(/perceptualWeight > 0 needs an expert/);
    expert.expert.dispose();
    judge.expert.dispose();
  }, 300_000);
});
