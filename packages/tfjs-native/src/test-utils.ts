// Helpers shared by the spec files (not part of the package API; not in the barrel).
import * as tf from '@tensorflow/tfjs-core';

import type { NativeAddon } from './addon';

/** Deterministic uniform(-1, 1) floats (mulberry32), so failures reproduce. */
export function randomFloats(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** Deterministic integer in [lo, hi]. */
export function makeRng(seed: number): (lo: number, hi: number) => number {
  let s = seed >>> 0;
  return (lo, hi) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo + 1));
  };
}

/**
 * Max |actual - expected| relative to max |expected| (the "relative to max-abs"
 * criterion): robust to individual outputs near zero, strict on the overall scale.
 */
export function relMaxError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let maxAbs = 0;
  let maxDiff = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (Number.isNaN(d)) return Number.isNaN(actual[i]) && Number.isNaN(expected[i]) ? 0 : Infinity;
    maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
    maxDiff = Math.max(maxDiff, d);
  }
  return maxAbs === 0 ? maxDiff : maxDiff / maxAbs;
}

/** Result of running the same computation on one backend. */
export interface BackendRun {
  shape: number[][];
  values: Float32Array[];
}

/**
 * Runs `fn` on `backend` inside tidy and returns copies of its outputs; every tensor it
 * made is disposed.
 */
export async function runOn(backend: string, fn: () => tf.Tensor | tf.Tensor[]): Promise<BackendRun> {
  await tf.setBackend(backend);
  const outs = tf.tidy(fn);
  const list = Array.isArray(outs) ? outs : [outs];
  const run = { shape: list.map((t) => t.shape), values: list.map((t) => Float32Array.from(t.dataSync())) };
  tf.dispose(list);
  return run;
}

/** Number of native kernel executions so far (cache hits + misses of the addon). */
export function nativeCalls(addon: NativeAddon): number {
  const c = addon.cacheInfo();
  return c.conv.hits + c.conv.misses + c.matmul.hits + c.matmul.misses;
}
