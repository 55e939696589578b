/**
 * Seeded random numbers that are identical on every backend and platform.
 *
 * The generator is xoshiro128** (Blackman & Vigna), 128 bits of state, seeded through splitmix32 so
 * that nearby seeds give unrelated streams. Normals use the Box-Muller transform. The state is a
 * plain array of four uint32, so it can be saved in a checkpoint and restored (`getState` /
 * `setState`), which is what makes resumed training reproduce an uninterrupted run.
 */
import * as tf from '@tensorflow/tfjs-core';

export type GeneratorState = readonly [number, number, number, number];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Generator {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  /** A second normal from the last Box-Muller pair, or null. */
  private spare: number | null = null;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`Generator: seed must be an integer in [0, 2^32-1], got ${seed}`);
    }
    const sm = splitmix32(seed);
    this.s0 = sm();
    this.s1 = sm();
    this.s2 = sm();
    this.s3 = sm();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next uniform uint32. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    return result;
  }

  /** Uniform double in [0, 1) with 32 bits of randomness. */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [low, high). */
  nextInt(low: number, high: number): number {
    if (!(high > low)) throw new RangeError(`Generator.nextInt: need high > low, got [${low}, ${high})`);
    return low + Math.floor(this.nextFloat() * (high - low));
  }

  /** Standard normal (Box-Muller). */
  nextNormal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u <= 1e-12) u = this.nextFloat();
    const v = this.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A float32 tensor of standard normals. */
  normal(shape: number[]): tf.Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = this.nextNormal();
    return tf.tensor(data, shape, 'float32');
  }

  /** A float32 tensor uniform in [low, high). */
  uniform(shape: number[], low = 0, high = 1): tf.Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = low + (high - low) * this.nextFloat();
    return tf.tensor(data, shape, 'float32');
  }

  /** n integers uniform in [low, high), as a plain array. */
  integers(n: number, low: number, high: number): number[] {
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.nextInt(low, high);
    return out;
  }

  /** A Fisher-Yates permutation of 0..n-1. */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.nextInt(0, i + 1);
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }

  /** The full state, for checkpoints. */
  getState(): { s: GeneratorState; spare: number | null } {
    return { s: [this.s0, this.s1, this.s2, this.s3], spare: this.spare };
  }

  setState(state: { s: GeneratorState; spare: number | null }): void {
    if (!state || !Array.isArray(state.s) || state.s.length !== 4) {
      throw new TypeError('Generator.setState: expected { s: [uint32 x4], spare: number | null }');
    }
    [this.s0, this.s1, this.s2, this.s3] = state.s.map((v) => v >>> 0) as unknown as GeneratorState;
    this.spare = state.spare ?? null;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
