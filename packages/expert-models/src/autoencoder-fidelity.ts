/**
 * The fidelity check of a latent-diffusion autoencoder (Müller-Franzes et al. 2022, Medfusion): on
 * held-out real images, how close its reconstructions are (mean PSNR, mean SSIM) and whether
 * classifiers still recognise them: each classifier's accuracy on the reconstructions against its
 * accuracy on the originals, the drop in percentage points checked against a tolerance. It lives
 * here, beside the experts it runs, because it needs an autoencoder (@fad/diffusion-core), SSIM
 * (@fad/metrics) and classifiers; `fad autoencoder train` runs it after training and writes
 * `fidelity.json`.
 */
import { type AutoencoderKL, reconstructImages } from '@fad/diffusion-core';
import { ssim } from '@fad/metrics';
import type { Expert } from './expert-model';
import { argMax, expertOutputs } from './expert-outputs';
import { assertInt, assertNumber, assertObject, assertOneOf, show } from './validate';

/** A classifier of the check: a name for the report and the expert. */
export interface FidelityClassifier {
  /** Names it in the report (the CLI: "expert", "judge"). */
  name: string;
  /** Its classes are matched to the images' by name; images of classes it does not know are left out. */
  expert: Expert;
}

/** Parameters of {@link autoencoderFidelity}. */
export interface AutoencoderFidelityParams {
  autoencoder: AutoencoderKL;
  /** The held-out originals [n, imageSize, imageSize, channels] in [0, 1], row-major. */
  images: Float32Array;
  imageSize: number;
  channels: number;
  /** Each image's class, an index into `classNames`. */
  labels: ArrayLike<number>;
  classNames: readonly string[];
  classifiers?: readonly FidelityClassifier[];
  /** The tolerated accuracy drop in percentage points (default 2). */
  maxAccuracyDrop?: number;
  /**
   * The SSIM window (default Gaussian; `winSize` for the uniform one, default 7). Images under
   * 11 pixels use the uniform window, and the window never exceeds the image.
   */
  ssim?: { window?: 'gaussian' | 'uniform'; winSize?: number };
  /** Images per autoencoder or classifier pass (default 32 and 64). */
  batchSize?: number;
}

/** One classifier's part of the report. */
export interface ClassifierFidelity {
  name: string;
  /** Images whose class the classifier knows. */
  numImages: number;
  accuracyOriginal: number;
  accuracyReconstruction: number;
  /** accuracyOriginal - accuracyReconstruction, in percentage points. */
  dropPoints: number;
  /** dropPoints <= maxAccuracyDrop. */
  withinTolerance: boolean;
}

/** What {@link autoencoderFidelity} returns. */
export interface AutoencoderFidelity {
  numImages: number;
  /** Mean PSNR in dB over images in [0, 1] (an exact reconstruction counts as 100 dB). */
  psnr: number;
  /** Mean SSIM (data range 1). */
  ssim: number;
  /** The tolerance (points) the drops are checked against. */
  maxAccuracyDrop: number;
  /** One per classifier, in order. */
  classifiers: ClassifierFidelity[];
  /** The latent scaling factor stored in the autoencoder. */
  scalingFactor: number;
  /** The latents of one image: [h, w, latentChannels]. */
  latentShape: number[];
}

function classifierFidelity(p: {
  classifier: FidelityClassifier; field: string; originals: Float32Array; reconstructions: Float32Array; labels: ArrayLike<number>; classNames: readonly string[];
  imageSize: number; channels: number; maxDrop: number; batchSize?: number;
}): ClassifierFidelity {
  const { expert } = p.classifier;
  const known = [...expert.classNames];
  // Labels in the classifier's class order; images of classes it does not know are left out.
  const keep: number[] = [];
  const target: number[] = [];
  Array.from(p.labels).forEach((l, i) => {
    const k = known.indexOf(p.classNames[l]);
    if (k >= 0) {
      keep.push(i);
      target.push(k);
    }
  });
  if (keep.length === 0) throw new RangeError(`autoencoderFidelity: ${p.field} knows none of the images' classes (${p.classNames.join(', ')}); its classes: ${known.join(', ')}`);
  const per = p.imageSize * p.imageSize * p.channels;
  const pick = (src: Float32Array) => {
    const out = new Float32Array(keep.length * per);
    keep.forEach((i, j) => out.set(src.subarray(i * per, (i + 1) * per), j * per));
    return out;
  };
  const accuracy = (src: Float32Array) => {
    const { logits } = expertOutputs({ expert, images: pick(src), n: keep.length, size: p.imageSize, channels: p.channels, ...(p.batchSize ? { batchSize: p.batchSize } : {}) });
    return logits.filter((row, i) => argMax(row) === target[i]).length / keep.length;
  };
  const accuracyOriginal = accuracy(p.originals);
  const accuracyReconstruction = accuracy(p.reconstructions);
  const dropPoints = (accuracyOriginal - accuracyReconstruction) * 100;
  return { name: p.classifier.name, numImages: keep.length, accuracyOriginal, accuracyReconstruction, dropPoints, withinTolerance: dropPoints <= p.maxDrop };
}

/**
 * Runs the fidelity check (see the file comment); leaves no tensors behind.
 * @throws TypeError / RangeError for bad params, naming the field (no images; a classifier that
 *   knows none of the images' classes).
 */
export function autoencoderFidelity(params: AutoencoderFidelityParams): AutoencoderFidelity {
  const fn = 'autoencoderFidelity';
  assertObject(fn, 'params', params);
  const { autoencoder: model, images, imageSize: s, channels: c, labels, classNames } = params;
  if (!model || typeof model.encode !== 'function' || !model.config) throw new TypeError(`${fn}: autoencoder must be an AutoencoderKL, got ${show(model)}`);
  if (!(images instanceof Float32Array)) throw new TypeError(`${fn}: images must be a Float32Array [n, imageSize, imageSize, channels] in [0, 1], got ${show(images)}`);
  assertInt(fn, 'imageSize', s, 1);
  assertInt(fn, 'channels', c, 1);
  const per = s * s * c;
  const n = images.length / per;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${fn}: images must hold at least one ${s}x${s}x${c} image, got ${images.length} values`);
  if (!Array.isArray(classNames) || classNames.length === 0) throw new TypeError(`${fn}: classNames must be a non-empty list of class names, got ${show(classNames)}`);
  if (!labels || labels.length !== n || !Array.from(labels).every((l) => Number.isInteger(l) && l >= 0 && l < classNames.length)) {
    throw new RangeError(`${fn}: labels must hold one class index in 0..${classNames.length - 1} per image (${n}), got ${show(labels)}`);
  }
  const classifiers = params.classifiers ?? [];
  if (!Array.isArray(classifiers)) throw new TypeError(`${fn}: classifiers must be a list of { name, expert }, got ${show(classifiers)}`);
  classifiers.forEach((k, i) => {
    if (!k || typeof k.name !== 'string' || !k.expert || typeof k.expert.forward !== 'function') throw new TypeError(`${fn}: classifiers[${i}] must be { name, expert }, got ${show(k)}`);
  });
  const maxDrop = params.maxAccuracyDrop ?? 2;
  assertNumber(fn, 'maxAccuracyDrop', maxDrop, { min: 0 });
  const window = params.ssim?.window ?? 'gaussian';
  assertOneOf(fn, 'ssim.window', window, ['gaussian', 'uniform'] as const);
  const winSize = params.ssim?.winSize ?? 7;
  assertInt(fn, 'ssim.winSize', winSize, 3);
  if (params.batchSize !== undefined) assertInt(fn, 'batchSize', params.batchSize, 1);

  const recon = reconstructImages({ model, images, n, imageSize: s, channels: c, ...(params.batchSize ? { batchSize: params.batchSize } : {}) });
  let psnrSum = 0;
  for (let i = 0; i < n; i++) {
    let se = 0;
    for (let j = i * per; j < (i + 1) * per; j++) se += (images[j] - recon[j]) ** 2;
    const mse = se / per;
    psnrSum += mse > 0 ? Math.min(100, 10 * Math.log10(1 / mse)) : 100;
  }
  // An 11x11 Gaussian window needs images of 11 pixels; no window is larger than the image.
  const ss = ssim({
    x: { data: images, shape: [n, s, s, c] }, y: { data: recon, shape: [n, s, s, c] }, dataRange: 1,
    window: window === 'gaussian' && s < 11 ? 'uniform' : window, winSize: Math.min(winSize, s % 2 === 1 ? s : s - 1),
  });
  return {
    numImages: n, psnr: psnrSum / n, ssim: ss.mean, maxAccuracyDrop: maxDrop,
    classifiers: classifiers.map((classifier, i) => classifierFidelity({
      classifier, field: `classifiers[${i}] (${classifier.name})`, originals: images, reconstructions: recon, labels, classNames, imageSize: s, channels: c, maxDrop, batchSize: params.batchSize,
    })),
    scalingFactor: model.config.scalingFactor, latentShape: model.latentShape(s),
  };
}

/** The report as text lines: PSNR, SSIM and latents, then one line per classifier. */
export function formatAutoencoderFidelity(r: AutoencoderFidelity): string {
  const lines = [
    `fidelity on ${r.numImages} held-out images: PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(4)}; latents ${r.latentShape.join('x')}, scaling factor ${r.scalingFactor.toPrecision(5)}`,
  ];
  for (const f of r.classifiers) {
    const flag = f.withinTolerance ? 'ok' : `WARNING: drop above ${r.maxAccuracyDrop} points`;
    lines.push(`${f.name} accuracy: originals ${(f.accuracyOriginal * 100).toFixed(1)}%, reconstructions ${(f.accuracyReconstruction * 100).toFixed(1)}%, drop ${f.dropPoints.toFixed(1)} points (${flag}) [${f.numImages} images]`);
  }
  return lines.join('\n');
}
