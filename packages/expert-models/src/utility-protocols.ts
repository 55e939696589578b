/**
 * Bookkeeping of the downstream-utility experiment ("does the synthetic data help?"): which real
 * training images a classifier sees at a fraction of the real data, which synthetic images are mixed
 * in at a synthetic:real ratio, and the list of protocols with stable ids. Pure functions, no tensors.
 *
 * Seeds: every (protocol, training seed s) draws its real subset with `stratifiedFraction({seed: s})`
 * and its synthetic images with `mixSynthetic({seed: s})`, so the real-only and the real + synthetic
 * classifiers of the same fraction and seed see the same real images (the pairing the gains rely
 * on); the test set never depends on s.
 */
import { Generator } from '@fad/diffusion-core';
import { assertBoolean, assertInt, assertNumber, show } from './validate';

/** Parameters of {@link stratifiedFraction}. */
export interface StratifiedFractionParams {
  /** Class label of every real training image (integers >= 0). */
  labels: ArrayLike<number>;
  /** Share of every class to keep, in (0, 1]. */
  fraction: number;
  /** Seed of the per-class shuffles (integer in [0, 2^32-1]). */
  seed: number;
  /** Names of the classes, for error messages (default `class <k>`). */
  classNames?: readonly string[];
}

/**
 * The indices (ascending) of `round(n_c * fraction)` images of every class c, drawn without
 * replacement: each class is shuffled on its own (Fisher-Yates, one seeded stream, classes in
 * ascending order) and its first images are kept, so for one seed a smaller fraction's subset is
 * contained in a larger one's. `fraction` 1 keeps everything. A class left with no image is an error
 * naming the class, its size and the fraction.
 */
export function stratifiedFraction(params: StratifiedFractionParams): number[] {
  const fn = 'stratifiedFraction';
  const { labels, fraction, seed, classNames } = params ?? ({} as StratifiedFractionParams);
  const byClass = groupByClass(fn, 'labels', labels);
  assertNumber(fn, 'fraction', fraction, { min: 0, max: 1, minExclusive: true });
  assertInt(fn, 'seed', seed, 0, 0xffffffff);
  const g = new Generator(seed);
  const out: number[] = [];
  for (const [cls, idx] of byClass) {
    const perm = g.permutation(idx.length).map((j) => idx[j]);
    const k = fraction === 1 ? idx.length : Math.round(idx.length * fraction);
    if (k === 0) {
      throw new RangeError(`${fn}: fraction ${fraction} leaves class "${className(classNames, cls)}" with no images (it has ${idx.length}; round(${idx.length} * ${fraction}) = 0): use a larger fraction`);
    }
    out.push(...perm.slice(0, k));
  }
  return out.sort((a, b) => a - b);
}

/** Parameters of {@link mixSynthetic}. */
export interface MixSyntheticParams {
  /** Labels of the real images chosen for training (only the count per class matters). */
  real: ArrayLike<number>;
  /** Label of every image of the synthetic set; -1 marks an image not to use (a class the real data lacks). */
  synthetic: ArrayLike<number>;
  /** Synthetic images per real image, per class (> 0): class c gets round(ratio * real count of c). */
  ratio: number;
  /** Seed of the draws (integer in [0, 2^32-1]). */
  seed: number;
  /** Names of the classes, for error messages and the result (default `class <k>`). */
  classNames?: readonly string[];
}

/** How one class was filled by {@link mixSynthetic}. */
export interface MixClassCount {
  label: number;
  name: string;
  real: number;
  /** round(ratio * real). */
  wanted: number;
  /** Synthetic images of the class in the set. */
  available: number;
  /** True when wanted > available: every image is used floor(wanted / available) times and some once more. */
  repeats: boolean;
}

/** Result of {@link mixSynthetic}. */
export interface MixSyntheticResult {
  /** Indices into the synthetic set (ascending; an index appears more than once where a class repeats). */
  indices: number[];
  /** Per class of the real images, in ascending label order. */
  perClass: MixClassCount[];
  /** Names of the classes that had to repeat synthetic images. */
  repeated: string[];
}

/**
 * Picks, for every class c of the real images, round(ratio * n_c) synthetic images of class c:
 * without replacement when the set has enough (the first ones of a seeded shuffle); otherwise every
 * image of the class as many whole times as fit, and the remainder without replacement from another
 * shuffle, reported in `repeated`. A class of the real images that the synthetic set lacks is an
 * error naming it.
 */
export function mixSynthetic(params: MixSyntheticParams): MixSyntheticResult {
  const fn = 'mixSynthetic';
  const { real, synthetic, ratio, seed, classNames } = params ?? ({} as MixSyntheticParams);
  const realByClass = groupByClass(fn, 'real', real);
  const synByClass = groupByClass(fn, 'synthetic', synthetic, true);
  assertNumber(fn, 'ratio', ratio, { min: 0, minExclusive: true });
  assertInt(fn, 'seed', seed, 0, 0xffffffff);
  const g = new Generator(seed);
  const indices: number[] = [];
  const perClass: MixClassCount[] = [];
  for (const [cls, realIdx] of realByClass) {
    const pool = synByClass.get(cls) ?? [];
    const name = className(classNames, cls);
    const wanted = Math.round(ratio * realIdx.length);
    if (wanted > 0 && pool.length === 0) throw new RangeError(`${fn}: the synthetic set has no image of class "${name}" (needed ${wanted} at ratio ${ratio})`);
    const perm = g.permutation(pool.length).map((j) => pool[j]);
    const whole = pool.length ? Math.floor(wanted / pool.length) : 0;
    for (let w = 0; w < whole; w++) indices.push(...perm);
    const rest = wanted - whole * pool.length;
    indices.push(...(whole === 0 ? perm : g.permutation(pool.length).map((j) => pool[j])).slice(0, rest));
    perClass.push({ label: cls, name, real: realIdx.length, wanted, available: pool.length, repeats: wanted > pool.length });
  }
  return { indices: indices.sort((a, b) => a - b), perClass, repeated: perClass.filter((c) => c.repeats).map((c) => c.name) };
}

/** One training protocol of the utility experiment. */
export interface UtilityProtocol {
  /** Stable id: `real-f<fraction>`, `mix-<set>-r<ratio>-f<fraction>` or `syn-<set>`. */
  id: string;
  kind: 'real' | 'mixed' | 'synthetic';
  /** Share of the real training split (null for synthetic-only). */
  fraction: number | null;
  /** Synthetic:real ratio (mixed only). */
  ratio: number | null;
  /** The synthetic set's name (null for real-only). */
  synthetic: string | null;
  /**
   * The real-only protocol the gain is measured against: the same fraction for mixed protocols,
   * the largest fraction for synthetic-only ones; null for real-only ones.
   */
  reference: string | null;
}

/** Parameters of {@link planProtocols}. */
export interface PlanProtocolsParams {
  /** Shares of the real training split, each in (0, 1], distinct. */
  fractions: readonly number[];
  /** Synthetic:real ratios, each > 0, distinct (may be empty: real-only and synthetic-only). */
  ratios: readonly number[];
  /** Names of the synthetic sets: letters, digits, `_`, `-`, `.`, starting with a letter or digit; distinct; not `real`. */
  syntheticSets: readonly string[];
  /** Training seeds, distinct integers in [0, 2^32-1]. */
  seeds: readonly number[];
  /** Add a synthetic-only protocol per set (train on synthetic, test on real), default true. */
  includeSyntheticOnly?: boolean;
}

/** Result of {@link planProtocols}. */
export interface UtilityPlan {
  protocols: UtilityProtocol[];
  seeds: number[];
  /** Every (protocol, seed) to train, protocol-major. */
  runs: Array<{ protocolId: string; seed: number }>;
}

const SET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * The protocols, in this order: real-only at each fraction (ascending); for each synthetic set, real
 * + synthetic at each fraction and ratio; then synthetic-only per set. Ids depend only on the
 * protocol's own settings, so adding a fraction or a set leaves the other ids (and their finished
 * results) unchanged.
 */
export function planProtocols(params: PlanProtocolsParams): UtilityPlan {
  const fn = 'planProtocols';
  const { fractions, ratios, syntheticSets, seeds, includeSyntheticOnly = true } = params ?? ({} as PlanProtocolsParams);
  const list = (field: string, v: unknown, min: number): void => {
    if (!Array.isArray(v) || v.length < min) throw new TypeError(`${fn}: ${field} must be an array${min ? ` of at least ${min} item(s)` : ''}, got ${show(v)}`);
    if (new Set(v).size !== v.length) throw new RangeError(`${fn}: ${field} must not repeat a value, got ${show(v)}`);
  };
  list('fractions', fractions, 1);
  fractions.forEach((f, i) => assertNumber(fn, `fractions[${i}]`, f, { min: 0, max: 1, minExclusive: true }));
  list('ratios', ratios, 0);
  ratios.forEach((r, i) => assertNumber(fn, `ratios[${i}]`, r, { min: 0, minExclusive: true }));
  list('syntheticSets', syntheticSets, 0);
  syntheticSets.forEach((s, i) => {
    if (typeof s !== 'string' || !SET_NAME.test(s) || s === 'real') {
      throw new RangeError(`${fn}: syntheticSets[${i}] must be a name of letters, digits, "_", "-", "." starting with a letter or digit, not "real"; got ${show(s)}`);
    }
  });
  list('seeds', seeds, 1);
  seeds.forEach((s, i) => assertInt(fn, `seeds[${i}]`, s, 0, 0xffffffff));
  assertBoolean(fn, 'includeSyntheticOnly', includeSyntheticOnly);
  const fs = [...fractions].sort((a, b) => a - b);
  const realId = (f: number) => `real-f${f}`;
  const protocols: UtilityProtocol[] = fs.map((f) => ({ id: realId(f), kind: 'real', fraction: f, ratio: null, synthetic: null, reference: null }));
  for (const set of syntheticSets) {
    for (const f of fs) {
      for (const r of ratios) protocols.push({ id: `mix-${set}-r${r}-f${f}`, kind: 'mixed', fraction: f, ratio: r, synthetic: set, reference: realId(f) });
    }
  }
  if (includeSyntheticOnly) {
    for (const set of syntheticSets) protocols.push({ id: `syn-${set}`, kind: 'synthetic', fraction: null, ratio: null, synthetic: set, reference: realId(fs[fs.length - 1]) });
  }
  const seedList = [...seeds];
  return { protocols, seeds: seedList, runs: protocols.flatMap((p) => seedList.map((seed) => ({ protocolId: p.id, seed }))) };
}

/** Indices per class (ascending class order); with `allowUnused`, label -1 is skipped. */
function groupByClass(fn: string, field: string, labels: ArrayLike<number>, allowUnused = false): Map<number, number[]> {
  if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') {
    throw new TypeError(`${fn}: ${field} must be an array of integer labels, got ${show(labels)}`);
  }
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (allowUnused && y === -1) continue;
    if (!Number.isInteger(y) || y < 0) throw new RangeError(`${fn}: ${field}[${i}] must be a non-negative integer${allowUnused ? ' (or -1: unused)' : ''}, got ${show(y)}`);
    let list = byClass.get(y);
    if (!list) byClass.set(y, (list = []));
    list.push(i);
  }
  return new Map([...byClass.entries()].sort((a, b) => a[0] - b[0]));
}

function className(names: readonly string[] | undefined, k: number): string {
  return names?.[k] ?? `class ${k}`;
}
