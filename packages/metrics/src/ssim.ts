/**
 * Structural similarity (SSIM, Wang et al. 2004), computed exactly as scikit-image's
 * `skimage.metrics.structural_similarity` (0.19):
 *
 * - local means, variances and covariance from a separable window (Gaussian: scipy
 *   `gaussian_filter(sigma, truncate=3.5)`, radius `int(3.5*sigma+0.5)`, so 11x11 for sigma 1.5;
 *   uniform: scipy `uniform_filter(size=winSize)`), variances scaled by `N/(N-1)` when
 *   `useSampleCovariance` (N = window pixels);
 * - `SSIM = (2 mx my + C1)(2 vxy + C2) / ((mx^2 + my^2 + C1)(vx + vy + C2))`, `C1 = (K1 L)^2`,
 *   `C2 = (K2 L)^2`, L = `dataRange`;
 * - the map is cropped by `(winSize-1)/2` pixels on every side before averaging.
 *
 * scipy filters with mode 'reflect'; because the crop removes exactly the pixels whose window
 * reaches past the border, only windows lying fully inside the image contribute to the mean, so we
 * compute those "valid" windows directly: the result equals reflect-padding-then-crop (or any
 * padding mode followed by the crop) and skips the border work.
 */
import type { ArrayInput } from './metric-input';
import { MetricInputError } from './metric-input';
import {
  type ImageBatch,
  assertSameShape,
  assertWithinDataRange,
  extractPlane,
  readImageBatch,
} from './image-batch';

/** Options shared by {@link ssim}, {@link msSsim} and {@link diversity}. */
export interface SsimOptions {
  /**
   * Dynamic range L of the pixel values (max possible - min possible): 1 for [0,1], 2 for
   * [-1,1], 255 for uint8. Required, as in scikit-image for float images. An input whose values
   * span more than `dataRange` is rejected.
   */
  readonly dataRange: number;
  /**
   * `'gaussian'` (default): Gaussian weights, sigma 1.5, 11x11 window, population covariance —
   * the Wang et al. 2004 setting (`gaussian_weights=True, use_sample_covariance=False`).
   * `'uniform'`: scikit-image's default, a `winSize` x `winSize` box (7) with sample covariance.
   */
  readonly window?: 'gaussian' | 'uniform';
  /** Gaussian standard deviation in pixels (default 1.5); the window radius is `int(3.5*sigma+0.5)`. */
  readonly sigma?: number;
  /** Side of the uniform window, odd and >= 3 (default 7). Ignored for the Gaussian window. */
  readonly winSize?: number;
  /** Luminance constant K1 (default 0.01). */
  readonly k1?: number;
  /** Contrast constant K2 (default 0.03). */
  readonly k2?: number;
  /**
   * Scale variances by N/(N-1) (N = window pixels). Default: false for the Gaussian window, true
   * for the uniform window (each matching the scikit-image call described above).
   */
  readonly useSampleCovariance?: boolean;
}

/** Parameters of {@link ssim}. */
export interface SsimParams extends SsimOptions {
  /** Images `[H,W]`, `[H,W,C]` or `[B,H,W,C]` (NHWC). */
  readonly x: ArrayInput;
  /** Images of exactly the same shape as `x`. */
  readonly y: ArrayInput;
}

/** Result of {@link ssim} (and {@link msSsim}). */
export interface SsimResult {
  /** One value per image pair: the mean over channels of the per-channel value. */
  readonly values: number[];
  /** Mean of `values` over the batch. */
  readonly mean: number;
  /** `perChannel[b][c]`: value of channel c of pair b. */
  readonly perChannel: number[][];
}

/** A resolved window: normalised 1-D kernel and constants. Internal. */
export interface SsimWindow {
  readonly kernel: Float64Array;
  readonly radius: number;
  readonly size: number;
  readonly covNorm: number;
  readonly c1: number;
  readonly c2: number;
  readonly description: string;
}

/** Gaussian truncation used by scikit-image's SSIM (11 taps for sigma 1.5). */
export const SSIM_GAUSSIAN_TRUNCATE = 3.5;

function assertPositive(fn: string, name: string, v: number, allowZero = false): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new MetricInputError(`${fn}: option "${name}" must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${v}`);
  }
}

/** Validates SSIM options and builds the window. Internal. */
export function resolveSsimWindow(fn: string, options: SsimOptions): SsimWindow {
  const { dataRange, window = 'gaussian', k1 = 0.01, k2 = 0.03 } = options;
  if (dataRange === undefined) {
    throw new MetricInputError(`${fn}: option "dataRange" is required (1 for images in [0,1], 2 for [-1,1], 255 for uint8)`);
  }
  assertPositive(fn, 'dataRange', dataRange);
  assertPositive(fn, 'k1', k1, true);
  assertPositive(fn, 'k2', k2, true);
  let kernel: Float64Array;
  let radius: number;
  let description: string;
  if (window === 'gaussian') {
    const sigma = options.sigma ?? 1.5;
    assertPositive(fn, 'sigma', sigma);
    radius = Math.trunc(SSIM_GAUSSIAN_TRUNCATE * sigma + 0.5);
    kernel = new Float64Array(2 * radius + 1);
    let sum = 0;
    for (let t = -radius; t <= radius; t++) {
      const v = Math.exp((-0.5 * t * t) / (sigma * sigma));
      kernel[t + radius] = v;
      sum += v;
    }
    for (let t = 0; t < kernel.length; t++) kernel[t] /= sum;
    description = `${kernel.length}x${kernel.length} Gaussian window (sigma ${sigma})`;
  } else if (window === 'uniform') {
    const size = options.winSize ?? 7;
    if (!Number.isInteger(size) || size < 3 || size % 2 !== 1) {
      throw new MetricInputError(`${fn}: option "winSize" must be an odd integer >= 3, got ${size}`);
    }
    radius = (size - 1) / 2;
    kernel = new Float64Array(size).fill(1 / size);
    description = `${size}x${size} uniform window`;
  } else {
    throw new MetricInputError(`${fn}: option "window" must be 'gaussian' or 'uniform', got ${String(window)}`);
  }
  const size = 2 * radius + 1;
  const np = size * size;
  const sample = options.useSampleCovariance ?? window === 'uniform';
  if (sample && np < 2) throw new MetricInputError(`${fn}: sample covariance needs a window of at least 2 pixels`);
  return {
    kernel,
    radius,
    size,
    covNorm: sample ? np / (np - 1) : 1,
    c1: (k1 * dataRange) ** 2,
    c2: (k2 * dataRange) ** 2,
    description,
  };
}

/**
 * Valid-region separable filtering: `out[(H-2r) x (W-2r)] = kernel (x) kernel * src`, i.e. each output
 * is the weighted mean of the window centred on input pixel (i+r, j+r). The kernel must be
 * symmetric (Gaussian and uniform windows are), which halves the multiplications. `tmp` holds
 * `H x (W-2r)`.
 */
export function filterValid(
  src: Float64Array,
  h: number,
  w: number,
  kernel: Float64Array,
  tmp: Float64Array,
  out: Float64Array,
): void {
  const r = (kernel.length - 1) >> 1;
  const ow = w - 2 * r;
  const oh = h - 2 * r;
  const kc = kernel[r];
  for (let i = 0; i < h; i++) {
    const rowIn = i * w + r;
    const rowOut = i * ow;
    for (let j = 0; j < ow; j++) {
      const c = rowIn + j;
      let s = kc * src[c];
      for (let t = 1; t <= r; t++) s += kernel[r + t] * (src[c - t] + src[c + t]);
      tmp[rowOut + j] = s;
    }
  }
  for (let i = 0; i < oh; i++) {
    const rowOut = i * ow;
    const centre = (i + r) * ow;
    for (let j = 0; j < ow; j++) out[rowOut + j] = kc * tmp[centre + j];
    for (let t = 1; t <= r; t++) {
      const kt = kernel[r + t];
      const up = centre - t * ow;
      const down = centre + t * ow;
      for (let j = 0; j < ow; j++) out[rowOut + j] += kt * (tmp[up + j] + tmp[down + j]);
    }
  }
}

/** Per-plane quantities that do not depend on the other image of a pair. Internal. */
export interface PlaneStats {
  readonly height: number;
  readonly width: number;
  readonly plane: Float64Array;
  /** Local means over valid windows, `(H-2r) x (W-2r)`. */
  readonly mu: Float64Array;
  /** Local variances (times covNorm) over valid windows. */
  readonly variance: Float64Array;
}

/** Scratch buffers reused across pairs of one size. Internal. */
export interface SsimScratch {
  readonly product: Float64Array;
  readonly tmp: Float64Array;
  readonly out: Float64Array;
}

/** Allocates scratch buffers for planes of `h x w`. Internal. */
export function createSsimScratch(h: number, w: number, win: SsimWindow): SsimScratch {
  const ow = w - win.size + 1;
  const oh = h - win.size + 1;
  return { product: new Float64Array(h * w), tmp: new Float64Array(h * ow), out: new Float64Array(oh * ow) };
}

/** Local means and variances of one plane (the plane is kept by reference). Internal. */
export function computePlaneStats(plane: Float64Array, h: number, w: number, win: SsimWindow, scratch: SsimScratch): PlaneStats {
  const n = (h - win.size + 1) * (w - win.size + 1);
  const mu = new Float64Array(n);
  const variance = new Float64Array(n);
  filterValid(plane, h, w, win.kernel, scratch.tmp, mu);
  const sq = scratch.product;
  for (let i = 0; i < h * w; i++) sq[i] = plane[i] * plane[i];
  filterValid(sq, h, w, win.kernel, scratch.tmp, variance);
  const cn = win.covNorm;
  for (let i = 0; i < n; i++) variance[i] = cn * (variance[i] - mu[i] * mu[i]);
  return { height: h, width: w, plane, mu, variance };
}

/** Mean SSIM and mean contrast-structure term over the cropped map of one plane pair. Internal. */
export function planePairSsim(a: PlaneStats, b: PlaneStats, win: SsimWindow, scratch: SsimScratch): { ssim: number; cs: number } {
  const { height: h, width: w } = a;
  const p = scratch.product;
  const pa = a.plane;
  const pb = b.plane;
  for (let i = 0; i < h * w; i++) p[i] = pa[i] * pb[i];
  const fxy = scratch.out;
  filterValid(p, h, w, win.kernel, scratch.tmp, fxy);
  const n = (h - win.size + 1) * (w - win.size + 1);
  const { c1, c2, covNorm } = win;
  const ma = a.mu;
  const mb = b.mu;
  const va = a.variance;
  const vb = b.variance;
  let sumS = 0;
  let sumCs = 0;
  for (let i = 0; i < n; i++) {
    const mx = ma[i];
    const my = mb[i];
    const vxy = covNorm * (fxy[i] - mx * my);
    const cs = (2 * vxy + c2) / (va[i] + vb[i] + c2);
    const l = (2 * mx * my + c1) / (mx * mx + my * my + c1);
    sumS += l * cs;
    sumCs += cs;
  }
  return { ssim: sumS / n, cs: sumCs / n };
}

/** Throws unless planes of `h x w` fit the window. Internal. */
export function assertFitsWindow(fn: string, arg: string, batch: ImageBatch, win: SsimWindow): void {
  if (batch.height < win.size || batch.width < win.size) {
    throw new MetricInputError(
      `${fn}: argument "${arg}" has shape [${batch.shape.join(',')}] (images ${batch.height}x${batch.width}), ` +
        `expected images of at least ${win.size}x${win.size} for the ${win.description}`,
    );
  }
}

/**
 * Mean structural similarity of each image pair, matching scikit-image's `structural_similarity`
 * (see the module notes and README for the exact definition). Multi-channel images get the mean
 * over channels of per-channel SSIM (scikit-image's `channel_axis` semantics).
 *
 * @example
 * const { values, mean } = ssim({ x, y, dataRange: 1 }); // x, y: [B,H,W,C] in [0,1]
 */
export function ssim(params: SsimParams): SsimResult {
  const fn = 'ssim';
  const win = resolveSsimWindow(fn, params);
  const x = readImageBatch(fn, 'x', params.x, 'pair');
  const y = readImageBatch(fn, 'y', params.y, 'pair');
  assertSameShape(fn, 'x', x, 'y', y);
  assertFitsWindow(fn, 'x', x, win);
  assertWithinDataRange(fn, 'x', x, params.dataRange);
  assertWithinDataRange(fn, 'y', y, params.dataRange);
  const { batch, height: h, width: w, channels } = x;
  const scratch = createSsimScratch(h, w, win);
  const perChannel: number[][] = [];
  const values: number[] = [];
  for (let b = 0; b < batch; b++) {
    const row: number[] = [];
    for (let c = 0; c < channels; c++) {
      const sa = computePlaneStats(extractPlane(x, b, c), h, w, win, scratch);
      const sb = computePlaneStats(extractPlane(y, b, c), h, w, win, scratch);
      row.push(planePairSsim(sa, sb, win, scratch).ssim);
    }
    perChannel.push(row);
    values.push(row.reduce((s, v) => s + v, 0) / channels);
  }
  return { values, mean: values.reduce((s, v) => s + v, 0) / batch, perChannel };
}
