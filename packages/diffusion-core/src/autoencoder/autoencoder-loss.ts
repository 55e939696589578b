/**
 * The autoencoder's training loss, in differentiable tf ops:
 *
 *   L = l1Weight * |x - x̂|_1  +  ssimWeight * (1 - SSIM(x, x̂))  +  klWeight * KL(q(z|x) || N(0, I))
 *       + perceptualWeight * |phi(x) - phi(x̂)|^2
 *
 * (Medfusion, Müller-Franzes et al. 2022: L1 + SSIM + a small KL; Rombach et al. 2022: KL weight
 * ~1e-6). phi is any frozen feature extractor, e.g. an expert classifier's `features`.
 */
import * as tf from '@tensorflow/tfjs-core';

/** SSIM settings, the same as @fad/metrics' `ssim` (which matches scikit-image). */
export interface SsimTensorOptions {
  /** Dynamic range L of the pixel values: 2 for [-1, 1], 1 for [0, 1]. */
  dataRange: number;
  /** `gaussian` (default; sigma 1.5, radius int(3.5 sigma + 0.5) = 11x11, population covariance) or `uniform` (winSize box, sample covariance). */
  window?: 'gaussian' | 'uniform';
  sigma?: number;
  winSize?: number;
  k1?: number;
  k2?: number;
  /** Scale variances by N/(N-1); default false for gaussian, true for uniform (as scikit-image). */
  useSampleCovariance?: boolean;
}

function ssimKernel(o: SsimTensorOptions): { kernel: number[]; covNorm: number } {
  const window = o.window ?? 'gaussian';
  let kernel: number[];
  if (window === 'gaussian') {
    const sigma = o.sigma ?? 1.5;
    if (!(typeof sigma === 'number' && sigma > 0 && Number.isFinite(sigma))) throw new RangeError(`ssimTensor: sigma must be a positive number, got ${sigma}`);
    const r = Math.trunc(3.5 * sigma + 0.5);
    kernel = [];
    for (let t = -r; t <= r; t++) kernel.push(Math.exp((-0.5 * t * t) / (sigma * sigma)));
    const s = kernel.reduce((a, b) => a + b, 0);
    kernel = kernel.map((v) => v / s);
  } else if (window === 'uniform') {
    const n = o.winSize ?? 7;
    if (!Number.isInteger(n) || n < 3 || n % 2 !== 1) throw new RangeError(`ssimTensor: winSize must be an odd integer >= 3, got ${n}`);
    kernel = new Array<number>(n).fill(1 / n);
  } else {
    throw new RangeError(`ssimTensor: window must be "gaussian" or "uniform", got ${JSON.stringify(window)}`);
  }
  const np = kernel.length * kernel.length;
  const sample = o.useSampleCovariance ?? window === 'uniform';
  return { kernel, covNorm: sample ? np / (np - 1) : 1 };
}

/**
 * Per-image SSIM [B] of two image batches [B,H,W,C] (Wang et al. 2004), differentiable. Only
 * windows lying fully inside the image count (scikit-image's crop), the per-channel means are
 * averaged over channels: the value of @fad/metrics' `ssim` with the same options.
 */
export function ssimTensor(params: { x: tf.Tensor4D; y: tf.Tensor4D } & SsimTensorOptions): tf.Tensor1D {
  const { x, y, dataRange } = params;
  if (!x || !y || x.rank !== 4 || y.rank !== 4 || x.shape.some((d, i) => d !== y.shape[i])) {
    throw new Error(`ssimTensor: x and y must be NHWC tensors of the same shape, got [${x?.shape}] and [${y?.shape}]`);
  }
  if (!(typeof dataRange === 'number' && dataRange > 0 && Number.isFinite(dataRange))) {
    throw new RangeError(`ssimTensor: dataRange must be a positive number (2 for [-1, 1], 1 for [0, 1]), got ${dataRange}`);
  }
  const k1 = params.k1 ?? 0.01;
  const k2 = params.k2 ?? 0.03;
  const { kernel, covNorm } = ssimKernel(params);
  const [b, h, w, c] = x.shape;
  if (h < kernel.length || w < kernel.length) {
    throw new RangeError(`ssimTensor: images of ${h}x${w} are smaller than the ${kernel.length}x${kernel.length} window`);
  }
  const c1 = (k1 * dataRange) ** 2;
  const c2 = (k2 * dataRange) ** 2;
  return tf.tidy(() => {
    const kv = tf.tensor4d(kernel, [kernel.length, 1, 1, 1]);
    const kh = tf.tensor4d(kernel, [1, kernel.length, 1, 1]);
    // Channels into the batch: [B,H,W,C] -> [B*C,H,W,1], then a separable "valid" filter.
    const planes = (t: tf.Tensor4D) => tf.reshape(tf.transpose(t, [0, 3, 1, 2]), [b * c, h, w, 1]) as tf.Tensor4D;
    const filt = (t: tf.Tensor4D) => tf.conv2d(tf.conv2d(t, kv, 1, 'valid'), kh, 1, 'valid');
    const xp = planes(x);
    const yp = planes(y);
    const ux = filt(xp);
    const uy = filt(yp);
    const vx = tf.mul(tf.sub(filt(tf.mul(xp, xp)), tf.mul(ux, ux)), covNorm);
    const vy = tf.mul(tf.sub(filt(tf.mul(yp, yp)), tf.mul(uy, uy)), covNorm);
    const vxy = tf.mul(tf.sub(filt(tf.mul(xp, yp)), tf.mul(ux, uy)), covNorm);
    const num = tf.mul(tf.add(tf.mul(tf.mul(ux, uy), 2), c1), tf.add(tf.mul(vxy, 2), c2));
    const den = tf.mul(tf.add(tf.add(tf.mul(ux, ux), tf.mul(uy, uy)), c1), tf.add(tf.add(vx, vy), c2));
    const perPlane = tf.mean(tf.div(num, den), [1, 2, 3]);
    return tf.mean(tf.reshape(perPlane, [b, c]), 1) as tf.Tensor1D;
  });
}

/**
 * KL(N(mean, exp(logVar)) || N(0, I)) per sample [B]: 0.5 * sum(mean^2 + exp(logVar) - 1 - logVar)
 * over every latent element (diffusers' DiagonalGaussianDistribution.kl).
 */
export function klDivergence({ mean, logVar }: { mean: tf.Tensor4D; logVar: tf.Tensor4D }): tf.Tensor1D {
  if (!mean || !logVar || mean.rank !== 4 || mean.shape.some((d, i) => d !== logVar.shape[i])) {
    throw new Error(`klDivergence: mean and logVar must be 4-D tensors of the same shape, got [${mean?.shape}] and [${logVar?.shape}]`);
  }
  return tf.tidy(() => tf.mul(tf.sum(tf.sub(tf.add(tf.square(mean), tf.exp(logVar)), tf.add(logVar, 1)), [1, 2, 3]), 0.5)) as tf.Tensor1D;
}

/** A frozen feature extractor for the perceptual term: images (the autoencoder's range) → features [B, ...]. */
export type FeatureFunction = (x: tf.Tensor4D) => tf.Tensor;

export interface AutoencoderLossWeights {
  /** Weight of the mean absolute error. Default 1. */
  l1: number;
  /** Weight of 1 - SSIM. Default 1. */
  ssim: number;
  /** Weight of the KL term (summed over latent elements, averaged over the batch). Default 1e-6. */
  kl: number;
  /** Weight of the perceptual term (mean squared feature difference); needs `perceptual`. Default 0. */
  perceptual: number;
}

export const DEFAULT_AUTOENCODER_LOSS_WEIGHTS: AutoencoderLossWeights = { l1: 1, ssim: 1, kl: 1e-6, perceptual: 0 };

/** Fills defaults and validates the loss weights (finite, >= 0), naming the bad field. */
export function resolveAutoencoderLossWeights(partial: Partial<AutoencoderLossWeights> = {}): AutoencoderLossWeights {
  if (partial === null || typeof partial !== 'object') throw new TypeError(`AutoencoderLossWeights must be an object, got ${JSON.stringify(partial)}`);
  for (const k of Object.keys(partial)) {
    if (!(k in DEFAULT_AUTOENCODER_LOSS_WEIGHTS)) {
      throw new RangeError(`AutoencoderLossWeights: unknown field "${k}"; accepted: ${Object.keys(DEFAULT_AUTOENCODER_LOSS_WEIGHTS).join(', ')}`);
    }
  }
  const w = { ...DEFAULT_AUTOENCODER_LOSS_WEIGHTS, ...partial };
  for (const [k, v] of Object.entries(w)) {
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw new RangeError(`AutoencoderLossWeights.${k} must be a finite number >= 0, got ${JSON.stringify(v)}`);
  }
  return w;
}

export interface AutoencoderLossParams {
  /** Originals [B,H,W,C]. */
  x: tf.Tensor4D;
  reconstruction: tf.Tensor4D;
  mean: tf.Tensor4D;
  logVar: tf.Tensor4D;
  weights?: Partial<AutoencoderLossWeights>;
  /** SSIM settings; dataRange defaults to 2 (images in [-1, 1]). */
  ssim?: Partial<SsimTensorOptions>;
  /** Frozen feature extractor of the perceptual term (required when weights.perceptual > 0). */
  perceptual?: FeatureFunction;
}

/** The loss terms (unweighted, scalars) and their weighted sum `total`. */
export interface AutoencoderLoss {
  total: tf.Scalar;
  terms: { l1: tf.Scalar; ssim: tf.Scalar; kl: tf.Scalar; perceptual?: tf.Scalar };
}

/** The autoencoder loss (see the module docs). The `ssim` term is 1 - mean SSIM. */
export function autoencoderLoss(p: AutoencoderLossParams): AutoencoderLoss {
  const w = resolveAutoencoderLossWeights(p.weights);
  if (!p.x || !p.reconstruction || p.x.rank !== 4 || p.x.shape.some((d, i) => d !== p.reconstruction.shape[i])) {
    throw new Error(`autoencoderLoss: x and reconstruction must be NHWC tensors of the same shape, got [${p.x?.shape}] and [${p.reconstruction?.shape}]`);
  }
  if (w.perceptual > 0 && typeof p.perceptual !== 'function') {
    throw new TypeError('autoencoderLoss: weights.perceptual > 0 needs params.perceptual, a feature function (x) => tf.Tensor');
  }
  const out = tf.tidy(() => {
    const l1 = tf.mean(tf.abs(tf.sub(p.x, p.reconstruction))) as tf.Scalar;
    const ssim = tf.sub(1, tf.mean(ssimTensor({ dataRange: 2, ...p.ssim, x: p.x, y: p.reconstruction }))) as tf.Scalar;
    const kl = tf.mean(klDivergence({ mean: p.mean, logVar: p.logVar })) as tf.Scalar;
    let total = tf.addN([tf.mul(l1, w.l1), tf.mul(ssim, w.ssim), tf.mul(kl, w.kl)]) as tf.Scalar;
    const terms: Record<string, tf.Scalar> = { l1, ssim, kl };
    if (w.perceptual > 0 && p.perceptual) {
      const fx = p.perceptual(p.x);
      const fr = p.perceptual(p.reconstruction);
      if (fx.shape.some((d, i) => d !== fr.shape[i]) || fx.shape[0] !== p.x.shape[0]) {
        throw new Error(`autoencoderLoss: the perceptual features must be [B, ...] and alike for x and reconstruction, got [${fx.shape}] and [${fr.shape}]`);
      }
      const perceptual = tf.mean(tf.squaredDifference(fx, fr)) as tf.Scalar;
      terms.perceptual = perceptual;
      total = tf.add(total, tf.mul(perceptual, w.perceptual));
    }
    return { total, ...terms };
  });
  const { total, ...terms } = out as Record<string, tf.Scalar>;
  return { total, terms: terms as AutoencoderLoss['terms'] };
}
