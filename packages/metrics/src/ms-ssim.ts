/**
 * Multi-scale SSIM (Wang, Simoncelli & Bovik 2003, "Multiscale structural similarity for image
 * quality assessment").
 *
 * For M scales (default 5, weights {@link MS_SSIM_WEIGHTS}): at scales 1..M-1 the mean
 * contrast-structure term `cs_j = mean((2 vxy + C2) / (vx + vy + C2))` is taken over the cropped
 * map; at scale M the mean full SSIM (luminance x cs); between scales both images are reduced by
 * 2x2 average pooling. `MS-SSIM = prod_{j<M} max(cs_j, 0)^{w_j} * max(ssim_M, 0)^{w_M}`.
 *
 * Negative terms are clamped to 0 before the power (as `tf.image.ssim_multiscale` and
 * pytorch-msssim do), since a fractional power of a negative number is undefined; a pair with any
 * non-positive term therefore scores 0. Odd sizes are pooled with the last row/column replicated
 * (ceil), so an image of side s has side ceil(s / 2^j) at scale j+1, and every scale must still
 * fit the window: side >= (window - 1) * 2^(M-1) + 1, i.e. 161 px for the 11x11 Gaussian window
 * and 5 scales. Smaller images are rejected with a message; for them pass a smaller window
 * (`sigma` or `window: 'uniform', winSize`) or fewer `weights` — we never shrink the window or drop
 * scales silently.
 */
import { assertSameShape, assertWithinDataRange, extractPlane, readImageBatch } from './image-batch';
import { MetricInputError } from './metric-input';
import {
  type SsimParams,
  type SsimResult,
  type SsimWindow,
  computePlaneStats,
  createSsimScratch,
  planePairSsim,
  resolveSsimWindow,
} from './ssim';

/** The five per-scale exponents of Wang et al. 2003 (finest scale first). */
export const MS_SSIM_WEIGHTS: readonly number[] = Object.freeze([0.0448, 0.2856, 0.3001, 0.2363, 0.1333]);

/** Parameters of {@link msSsim}. */
export interface MsSsimParams extends SsimParams {
  /**
   * One exponent per scale, finest first (default {@link MS_SSIM_WEIGHTS}); the number of scales
   * is `weights.length`. Used as given (not renormalised).
   */
  readonly weights?: readonly number[];
}

/** Minimum image side for `scales` scales with a window of `windowSize` pixels. */
export function msSsimMinSize(params: { windowSize: number; scales: number }): number {
  return (params.windowSize - 1) * 2 ** (params.scales - 1) + 1;
}

/** 2x2 average pooling; an odd last row/column is replicated (output side ceil(side/2)). Internal. */
export function downsample2x2(src: Float64Array, h: number, w: number): { data: Float64Array; h: number; w: number } {
  const oh = Math.ceil(h / 2);
  const ow = Math.ceil(w / 2);
  const out = new Float64Array(oh * ow);
  for (let i = 0; i < oh; i++) {
    const r0 = 2 * i;
    const r1 = Math.min(2 * i + 1, h - 1);
    for (let j = 0; j < ow; j++) {
      const c0 = 2 * j;
      const c1 = Math.min(2 * j + 1, w - 1);
      out[i * ow + j] = 0.25 * (src[r0 * w + c0] + src[r0 * w + c1] + src[r1 * w + c0] + src[r1 * w + c1]);
    }
  }
  return { data: out, h: oh, w: ow };
}

/** MS-SSIM of one plane pair, with per-scale terms. Internal. */
export function planePairMsSsim(
  x: Float64Array,
  y: Float64Array,
  h: number,
  w: number,
  win: SsimWindow,
  weights: readonly number[],
): { value: number; terms: number[] } {
  let a = x;
  let b = y;
  let ch = h;
  let cw = w;
  const terms: number[] = [];
  let value = 1;
  for (let s = 0; s < weights.length; s++) {
    const scratch = createSsimScratch(ch, cw, win);
    const sa = computePlaneStats(a, ch, cw, win, scratch);
    const sb = computePlaneStats(b, ch, cw, win, scratch);
    const { ssim, cs } = planePairSsim(sa, sb, win, scratch);
    const term = s === weights.length - 1 ? ssim : cs;
    terms.push(term);
    value *= Math.max(term, 0) ** weights[s];
    if (s < weights.length - 1) {
      const da = downsample2x2(a, ch, cw);
      b = downsample2x2(b, ch, cw).data;
      a = da.data;
      ch = da.h;
      cw = da.w;
    }
  }
  return { value, terms };
}

/**
 * Multi-scale SSIM of each image pair (see the module notes and README for the exact definition,
 * the clamping of negative terms and the minimum size). Multi-channel images get the mean over
 * channels of per-channel MS-SSIM.
 *
 * @example
 * const { values, mean } = msSsim({ x, y, dataRange: 1 }); // x, y: [B,H,W,C], H, W >= 161
 */
export function msSsim(params: MsSsimParams): SsimResult {
  const fn = 'msSsim';
  const win = resolveSsimWindow(fn, params);
  const weights = params.weights ?? MS_SSIM_WEIGHTS;
  if (!Array.isArray(weights) || weights.length < 1 || weights.some((v) => typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
    throw new MetricInputError(`${fn}: option "weights" must be a non-empty array of finite numbers >= 0, got ${JSON.stringify(weights)}`);
  }
  const x = readImageBatch(fn, 'x', params.x, 'pair');
  const y = readImageBatch(fn, 'y', params.y, 'pair');
  assertSameShape(fn, 'x', x, 'y', y);
  const minSide = msSsimMinSize({ windowSize: win.size, scales: weights.length });
  if (x.height < minSide || x.width < minSide) {
    throw new MetricInputError(
      `${fn}: argument "x" has shape [${x.shape.join(',')}] (images ${x.height}x${x.width}), expected images of at least ` +
        `${minSide}x${minSide}: ${weights.length} scales with the ${win.description} need (${win.size}-1)*2^${weights.length - 1}+1 px per side. ` +
        'For smaller images pass fewer weights or a smaller window (sigma, or window: "uniform" with winSize).',
    );
  }
  assertWithinDataRange(fn, 'x', x, params.dataRange);
  assertWithinDataRange(fn, 'y', y, params.dataRange);
  const perChannel: number[][] = [];
  const values: number[] = [];
  for (let b = 0; b < x.batch; b++) {
    const row: number[] = [];
    for (let c = 0; c < x.channels; c++) {
      row.push(planePairMsSsim(extractPlane(x, b, c), extractPlane(y, b, c), x.height, x.width, win, weights).value);
    }
    perChannel.push(row);
    values.push(row.reduce((s, v) => s + v, 0) / x.channels);
  }
  return { values, mean: values.reduce((s, v) => s + v, 0) / x.batch, perChannel };
}
