import * as tf from '@tensorflow/tfjs-core';
import { AUTOENCODER_PRESETS, AutoencoderKL, reconstructImages } from '@fad/diffusion-core';
import { ssim } from '@fad/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoencoderFidelity, formatAutoencoderFidelity } from './autoencoder-fidelity';
import type { Expert } from './expert-model';
import { leakedTensors, useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

/**
 * A stand-in classifier on 8x8x1 images in [0, 1] with classes `names`: "bright" when the image
 * mean is above 0.5, else "dark" (logits mean - 0.5 and 0.5 - mean in the order of `names`).
 */
function meanClassifier(names: string[]): Expert {
  const features = (x: tf.Tensor4D) => tf.mean(x, [1, 2]) as tf.Tensor2D;
  const logits = (x: tf.Tensor4D) => tf.tidy(() => {
    const m = tf.sub(features(x), 0.5);
    return tf.concat(names.map((n) => (n === 'bright' ? m : n === 'dark' ? tf.neg(m) : tf.fill(m.shape as [number, number], -9))), 1) as tf.Tensor2D;
  });
  return {
    config: {} as never, featureDim: 1, numClasses: names.length, classNames: names, frozen: true,
    inputSpec: { size: 8, channels: 1, mean: [0], std: [1], range: [0, 1] },
    features, logits,
    forward: (x) => ({ features: features(x), logits: logits(x) }),
    predict: (x) => tf.argMax(logits(x), 1),
    freeze: () => {}, unfreeze: () => {}, dispose: () => {},
  };
}

const classNames = ['dark', 'bright', 'other'];
const labels = [0, 1, 2, 0, 1, 2, 1];
/** Seven 8x8 images in [0, 1]: dark, bright and mid-grey ones (one "bright" image is in fact dark). */
function images(): Float32Array {
  const base = [0.2, 0.8, 0.5, 0.3, 0.7, 0.45, 0.35];
  const d = new Float32Array(7 * 64);
  base.forEach((b, n) => {
    for (let i = 0; i < 64; i++) d[n * 64 + i] = Math.min(1, Math.max(0, b + 0.15 * Math.sin(i * 0.9 + n)));
  });
  return d;
}

let model: AutoencoderKL;
beforeAll(() => {
  model = new AutoencoderKL(AUTOENCODER_PRESETS.tiny, { seed: 4 });
  model.setScalingFactor(0.7);
});
afterAll(() => model.dispose());

describe('autoencoderFidelity', () => {
  it('gives PSNR, SSIM and each classifier\'s accuracy on originals and reconstructions, recomputed here', () => {
    const x = images();
    const r = autoencoderFidelity({
      autoencoder: model, images: x, imageSize: 8, channels: 1, labels, classNames, maxAccuracyDrop: 5,
      classifiers: [{ name: 'expert', expert: meanClassifier(['bright', 'dark']) }, { name: 'judge', expert: meanClassifier(['dark', 'bright', 'other']) }],
      ssim: { window: 'gaussian', winSize: 7 },
    });
    const rec = reconstructImages({ model, images: x, n: 7, imageSize: 8, channels: 1 });
    let psnr = 0;
    for (let i = 0; i < 7; i++) {
      let se = 0;
      for (let j = 0; j < 64; j++) se += (x[i * 64 + j] - rec[i * 64 + j]) ** 2;
      psnr += 10 * Math.log10(64 / se);
    }
    expect(r.numImages).toBe(7);
    expect(r.psnr).toBeCloseTo(psnr / 7, 6);
    // Under 11 pixels the Gaussian window becomes a uniform one of (at most) 7.
    expect(r.ssim).toBeCloseTo(ssim({ x: { data: x, shape: [7, 8, 8, 1] }, y: { data: rec, shape: [7, 8, 8, 1] }, dataRange: 1, window: 'uniform', winSize: 7 }).mean, 10);
    // The rule by hand: an image is "bright" when its mean is above 0.5.
    const mean = (src: Float32Array, i: number) => src.subarray(i * 64, (i + 1) * 64).reduce((s, v) => s + v, 0) / 64;
    const accuracy = (src: Float32Array, rows: number[]) => rows.filter((i) => (mean(src, i) > 0.5 ? 1 : 0) === labels[i]).length / rows.length;
    const known = [0, 1, 3, 4, 6]; // "other" is unknown to the expert
    const all = [0, 1, 2, 3, 4, 5, 6]; // the judge knows it but never predicts it
    const [e, j] = r.classifiers;
    expect(e).toMatchObject({ name: 'expert', numImages: 5, accuracyOriginal: accuracy(x, known), accuracyReconstruction: accuracy(rec, known) });
    expect(e.accuracyOriginal).toBeCloseTo(0.8, 10);
    expect(e.dropPoints).toBeCloseTo((accuracy(x, known) - accuracy(rec, known)) * 100, 10);
    expect(e.withinTolerance).toBe(e.dropPoints <= 5);
    expect(j).toMatchObject({ name: 'judge', numImages: 7, accuracyOriginal: accuracy(x, all), accuracyReconstruction: accuracy(rec, all) });
    expect(r).toMatchObject({ maxAccuracyDrop: 5, scalingFactor: 0.7, latentShape: [2, 2, 4] });
  });

  it('uses the Gaussian SSIM window on images of 11 pixels or more, and the uniform one when asked', () => {
    const x = new Float32Array(2 * 16 * 16).map((_, i) => 0.5 + 0.4 * Math.sin(i * 0.3));
    const rec = reconstructImages({ model, images: x, n: 2, imageSize: 16, channels: 1 });
    const ref = (opts: { window: 'gaussian' | 'uniform'; winSize?: number }) => ssim({ x: { data: x, shape: [2, 16, 16, 1] }, y: { data: rec, shape: [2, 16, 16, 1] }, dataRange: 1, ...opts }).mean;
    const run = (window: 'gaussian' | 'uniform') => autoencoderFidelity({ autoencoder: model, images: x, imageSize: 16, channels: 1, labels: [0, 1], classNames, ssim: { window, winSize: 5 } }).ssim;
    expect(run('gaussian')).toBeCloseTo(ref({ window: 'gaussian' }), 10);
    expect(run('uniform')).toBeCloseTo(ref({ window: 'uniform', winSize: 5 }), 10);
    expect(ref({ window: 'gaussian' })).not.toBeCloseTo(ref({ window: 'uniform', winSize: 5 }), 4);
  });

  it('formats the report as the lines fad autoencoder train prints', () => {
    const text = formatAutoencoderFidelity({
      numImages: 4, psnr: 27.1234, ssim: 0.91234, maxAccuracyDrop: 2, scalingFactor: 0.123456, latentShape: [8, 8, 4],
      classifiers: [
        { name: 'expert', numImages: 3, accuracyOriginal: 1, accuracyReconstruction: 2 / 3, dropPoints: 100 / 3, withinTolerance: false },
        { name: 'judge', numImages: 4, accuracyOriginal: 0.5, accuracyReconstruction: 0.5, dropPoints: 0, withinTolerance: true },
      ],
    });
    expect(text).toBe([
      'fidelity on 4 held-out images: PSNR 27.12 dB, SSIM 0.9123; latents 8x8x4, scaling factor 0.12346',
      'expert accuracy: originals 100.0%, reconstructions 66.7%, drop 33.3 points (WARNING: drop above 2 points) [3 images]',
      'judge accuracy: originals 50.0%, reconstructions 50.0%, drop 0.0 points (ok) [4 images]',
    ].join('\n'));
  });

  it('leaves no tensors behind and names bad params', () => {
    const x = images();
    expect(leakedTensors(() => autoencoderFidelity({ autoencoder: model, images: x, imageSize: 8, channels: 1, labels, classNames, classifiers: [{ name: 'e', expert: meanClassifier(['dark', 'bright']) }] }))).toBe(0);
    expect(() => autoencoderFidelity({ autoencoder: model, images: x, imageSize: 8, channels: 1, labels, classNames, classifiers: [{ name: 'judge', expert: meanClassifier(['tumor']) }] }))
      .toThrow("autoencoderFidelity: classifiers[0] (judge) knows none of the images' classes (dark, bright, other); its classes: tumor");
    expect(() => autoencoderFidelity({ autoencoder: model, images: new Float32Array(0), imageSize: 8, channels: 1, labels: [], classNames })).toThrow(/autoencoderFidelity: images must hold at least one 8x8x1 image/);
    expect(() => autoencoderFidelity({ autoencoder: model, images: x, imageSize: 8, channels: 1, labels: [0, 1], classNames })).toThrow(/autoencoderFidelity: labels must hold one class index in 0..2 per image \(7\)/);
    expect(() => autoencoderFidelity({ autoencoder: model, images: x, imageSize: 8, channels: 1, labels, classNames, maxAccuracyDrop: -1 })).toThrow(/autoencoderFidelity: maxAccuracyDrop must be a finite number >= 0/);
  });
});
