/**
 * Small seeded pseudo-random source used for subsampling and bootstrapping, so that every metric
 * that draws random numbers is reproducible from its `seed` on every platform.
 *
 * Generator: xoshiro128** (Blackman & Vigna) seeded through splitmix32. Internal module.
 */

/** A seeded stream of uniform numbers. */
export interface SeededRandom {
  /** Uniform double in [0, 1). */
  nextFloat(): number;
  /** Uniform integer in [0, n). */
  nextInt(n: number): number;
}

/** Creates a seeded stream; `seed` must be an integer in [0, 2^32). */
export function createSeededRandom(seed: number): SeededRandom {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`seed must be an integer in [0, 2^32-1], got ${seed}`);
  }
  let sm = seed >>> 0;
  const splitmix = (): number => {
    sm = (sm + 0x9e3779b9) >>> 0;
    let z = sm;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let s0 = splitmix();
  let s1 = splitmix();
  let s2 = splitmix();
  let s3 = splitmix();
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
  const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;
  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 = (s2 ^ t) >>> 0;
    s3 = rotl(s3, 11);
    s0 >>>= 0;
    s1 >>>= 0;
    return result;
  };
  const nextFloat = (): number => (nextUint32() * 2097152 + (nextUint32() >>> 11)) / 9007199254740992;
  return {
    nextFloat,
    nextInt: (n: number) => Math.floor(nextFloat() * n),
  };
}

/**
 * `k` distinct integers drawn uniformly from [0, n) (Floyd's algorithm), in ascending order.
 * O(k) time and memory whatever `n`.
 */
export function sampleWithoutReplacement(params: { n: number; k: number; random: SeededRandom }): number[] {
  const { n, k, random } = params;
  if (!Number.isInteger(k) || k < 0 || k > n) throw new RangeError(`sampleWithoutReplacement: need 0 <= k <= n, got k=${k}, n=${n}`);
  const chosen = new Set<number>();
  for (let j = n - k; j < n; j++) {
    const t = random.nextInt(j + 1);
    chosen.add(chosen.has(t) ? j : t);
  }
  return Array.from(chosen).sort((a, b) => a - b);
}
