/**
 * Test helpers (not part of the package API): the scikit-image SSIM reference cases, and a
 * deliberately naive SSIM (full 2-D window loops over a scipy-'reflect'-padded image, then crop)
 * used as an independent re-implementation.
 */
import { loadSharedReference } from '@fad/test-utils/shared-reference';

export interface SsimReferenceCase {
  a: string;
  b: string;
  size: number;
  a_pixels_u8?: number[];
  b_pixels_u8?: number[];
  a_pixels_f?: number[];
  b_pixels_f?: number[];
  ssim_gaussian_dr1: number;
  ssim_uniform7_dr1: number;
}

/** Loads a reference file and returns its cases with pixels as floats in [0,1]. */
export function loadSsimCases(file: string): { size: number; a: Float64Array; b: Float64Array; ref: SsimReferenceCase }[] {
  const json = loadSharedReference<{ cases: SsimReferenceCase[] }>(file);
  return json.cases.map((ref) => {
    const a = ref.a_pixels_u8 ? Float64Array.from(ref.a_pixels_u8, (v) => v / 255) : Float64Array.from(ref.a_pixels_f ?? []);
    const b = ref.b_pixels_u8 ? Float64Array.from(ref.b_pixels_u8, (v) => v / 255) : Float64Array.from(ref.b_pixels_f ?? []);
    return { size: ref.size, a, b, ref };
  });
}

/** scipy.ndimage 'reflect' (half-sample symmetric: d c b a | a b c d | d c b a) index. */
export function reflectIndex(i: number, n: number): number {
  let k = i;
  for (;;) {
    if (k < 0) k = -k - 1;
    else if (k >= n) k = 2 * n - k - 1;
    else return k;
  }
}

/**
 * Naive SSIM of one plane pair: 2-D weights w(u,v) = k(u) k(v), statistics over every pixel with
 * reflect padding, the full map, then the crop of `radius` pixels and the mean. Returns the mean
 * SSIM and mean contrast-structure term.
 */
export function naiveSsim(params: {
  x: Float64Array;
  y: Float64Array;
  h: number;
  w: number;
  kernel1d: number[];
  covNorm: number;
  c1: number;
  c2: number;
}): { ssim: number; cs: number } {
  const { x, y, h, w, kernel1d, covNorm, c1, c2 } = params;
  const r = (kernel1d.length - 1) / 2;
  let sumS = 0;
  let sumCs = 0;
  let count = 0;
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      let mx = 0;
      let my = 0;
      let xx = 0;
      let yy = 0;
      let xy = 0;
      for (let u = -r; u <= r; u++) {
        for (let v = -r; v <= r; v++) {
          const wt = kernel1d[u + r] * kernel1d[v + r];
          const idx = reflectIndex(i + u, h) * w + reflectIndex(j + v, w);
          mx += wt * x[idx];
          my += wt * y[idx];
          xx += wt * x[idx] * x[idx];
          yy += wt * y[idx] * y[idx];
          xy += wt * x[idx] * y[idx];
        }
      }
      const vx = covNorm * (xx - mx * mx);
      const vy = covNorm * (yy - my * my);
      const vxy = covNorm * (xy - mx * my);
      const cs = (2 * vxy + c2) / (vx + vy + c2);
      const s = ((2 * mx * my + c1) * cs) / (mx * mx + my * my + c1);
      if (i >= r && i < h - r && j >= r && j < w - r) {
        sumS += s;
        sumCs += cs;
        count++;
      }
    }
  }
  return { ssim: sumS / count, cs: sumCs / count };
}

/** scipy's normalised Gaussian kernel for sigma with truncate 3.5. */
export function gaussianKernel1d(sigma: number): number[] {
  const r = Math.trunc(3.5 * sigma + 0.5);
  const k: number[] = [];
  for (let t = -r; t <= r; t++) k.push(Math.exp((-0.5 * t * t) / (sigma * sigma)));
  const s = k.reduce((a, b) => a + b, 0);
  return k.map((v) => v / s);
}

/** Deterministic smooth-plus-texture test image in [0,1]. */
export function syntheticImage(h: number, w: number, seed: number): Float64Array {
  const out = new Float64Array(h * w);
  let s = seed >>> 0;
  const rnd = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const fx = 0.05 + 0.1 * rnd();
  const fy = 0.05 + 0.1 * rnd();
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const v = 0.5 + 0.3 * Math.sin(fx * i + 0.7 * seed) * Math.cos(fy * j) + 0.2 * (rnd() - 0.5);
      out[i * w + j] = Math.min(1, Math.max(0, v));
    }
  }
  return out;
}

/** Adds seeded uniform noise of amplitude `amp` and clips to [0,1]. */
export function addNoise(img: Float64Array, amp: number, seed: number): Float64Array {
  let s = seed >>> 0;
  return img.map((v) => {
    s = (Math.imul(s, 22695477) + 1) >>> 0;
    return Math.min(1, Math.max(0, v + amp * (2 * (s / 4294967296) - 1)));
  });
}
