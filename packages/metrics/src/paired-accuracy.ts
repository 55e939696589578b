/**
 * Accuracies of several arms (e.g. generator variants) scored on paired items, and the differences
 * between arms, with percentile-bootstrap intervals from one shared resampling.
 *
 * Pairing: item `i` of every arm and every group is "the same" item (for generated images: the same
 * sampling seed, class and index, so the same initial noise), and group `g` is the same group in
 * every arm (e.g. training seed g). Each replicate redraws the items and, when `resampleGroups`, the
 * groups (see {@link bootstrapIntervals}); an arm's accuracy in a replicate is the count-weighted mean
 * of its outcomes, so a difference `a - b` is computed on the same draw for both arms. Pairing
 * removes the variance the arms share (the same noise often gives the same kind of image), so the
 * interval of a difference is narrower than two separate intervals suggest.
 */
import { bootstrapIntervals } from './bootstrap-interval';
import { MetricInputError } from './metric-input';

/** Parameters of {@link pairedAccuracies}. */
export interface PairedAccuraciesParams {
  /** Arm names, unique. */
  readonly arms: readonly string[];
  /** `outcomes[arm][group][item]`: 1 (correct) or 0; every arm has the same groups, every group the same items. */
  readonly outcomes: ReadonlyArray<ReadonlyArray<ArrayLike<number>>>;
  /** Differences to report, as [a, b] pairs of arm names: accuracy(a) - accuracy(b). */
  readonly contrasts?: ReadonlyArray<readonly [string, string]>;
  /** Resample the groups too (default true; with one group it makes no difference). */
  readonly resampleGroups?: boolean;
  /** Replicates, default 2000. */
  readonly samples?: number;
  /** Seed of the draws, default 0. */
  readonly seed?: number;
  /** Coverage in (0, 1), default 0.95. */
  readonly level?: number;
}

/** One arm's accuracy. */
export interface PairedArmAccuracy {
  readonly arm: string;
  /** Mean over every group and item. */
  readonly accuracy: number;
  /** Per group: mean over the items. */
  readonly perGroup: number[];
  readonly ci: [number, number];
}

/** One difference between arms. */
export interface PairedDifference {
  readonly a: string;
  readonly b: string;
  /** accuracy(a) - accuracy(b). */
  readonly difference: number;
  /** Per group: the difference within that group. */
  readonly perGroup: number[];
  readonly ci: [number, number];
}

/** Result of {@link pairedAccuracies}. */
export interface PairedAccuraciesResult {
  readonly arms: PairedArmAccuracy[];
  readonly contrasts: PairedDifference[];
  readonly numGroups: number;
  readonly numItems: number;
  readonly samples: number;
  readonly level: number;
}

/** Accuracies of paired arms and their differences, with shared-resampling bootstrap intervals (see the file comment). */
export function pairedAccuracies(params: PairedAccuraciesParams): PairedAccuraciesResult {
  const fn = 'pairedAccuracies';
  if (params === null || typeof params !== 'object') throw new MetricInputError(`${fn}: expected a parameter object, got ${String(params)}`);
  const { arms, outcomes } = params;
  if (!Array.isArray(arms) || arms.length === 0 || arms.some((a) => typeof a !== 'string')) throw new MetricInputError(`${fn}: option "arms" must be a non-empty list of names`);
  if (new Set(arms).size !== arms.length) throw new MetricInputError(`${fn}: option "arms" has duplicate names (${arms.join(', ')})`);
  if (!Array.isArray(outcomes) || outcomes.length !== arms.length) throw new MetricInputError(`${fn}: option "outcomes" must have one entry per arm (${arms.length}), got ${Array.isArray(outcomes) ? outcomes.length : String(outcomes)}`);
  const numGroups = outcomes[0]?.length ?? 0;
  if (numGroups < 1) throw new MetricInputError(`${fn}: outcomes["${arms[0]}"] must have at least one group`);
  const numItems = outcomes[0][0]?.length ?? 0;
  if (numItems < 1) throw new MetricInputError(`${fn}: outcomes["${arms[0]}"][0] must have at least one item`);
  const data = outcomes.map((groups, a) => {
    if (!Array.isArray(groups) || groups.length !== numGroups) throw new MetricInputError(`${fn}: outcomes["${arms[a]}"] has ${Array.isArray(groups) ? groups.length : 'no'} groups, expected ${numGroups} (every arm has the same groups)`);
    return groups.map((items, g) => {
      if (items === null || typeof items !== 'object' || items.length !== numItems) throw new MetricInputError(`${fn}: outcomes["${arms[a]}"][${g}] has ${items?.length ?? 'no'} items, expected ${numItems} (items are paired)`);
      const row = new Float64Array(numItems);
      for (let i = 0; i < numItems; i++) {
        const v = items[i];
        if (v !== 0 && v !== 1) throw new MetricInputError(`${fn}: outcomes["${arms[a]}"][${g}][${i}] must be 0 or 1, got ${String(v)}`);
        row[i] = v;
      }
      return row;
    });
  });
  const contrasts = (params.contrasts ?? []).map(([a, b], k) => {
    const ia = arms.indexOf(a);
    const ib = arms.indexOf(b);
    if (ia < 0 || ib < 0) throw new MetricInputError(`${fn}: contrasts[${k}] names ${ia < 0 ? `"${a}"` : `"${b}"`}, which is not an arm (${arms.join(', ')})`);
    return [ia, ib] as const;
  });

  const accuracy = (itemCounts: ArrayLike<number> | null, groupCounts: ArrayLike<number> | null): number[] =>
    data.map((groups) => {
      let s = 0;
      let w = 0;
      for (let g = 0; g < numGroups; g++) {
        const gw = groupCounts ? groupCounts[g] : 1;
        if (gw === 0) continue;
        const row = groups[g];
        for (let i = 0; i < numItems; i++) {
          const iw = itemCounts ? itemCounts[i] : 1;
          s += gw * iw * row[i];
          w += gw * iw;
        }
      }
      return s / w;
    });
  const point = accuracy(null, null);
  const perGroup = data.map((groups) => groups.map((row) => row.reduce((s, v) => s + v, 0) / numItems));
  const boot = bootstrapIntervals({
    numItems,
    numGroups,
    resampleGroups: params.resampleGroups ?? true,
    samples: params.samples ?? 2000,
    seed: params.seed ?? 0,
    level: params.level ?? 0.95,
    statistics: ({ itemCounts, groupCounts }) => {
      const acc = accuracy(itemCounts, groupCounts);
      return [...acc, ...contrasts.map(([a, b]) => acc[a] - acc[b])];
    },
  });
  return {
    arms: arms.map((arm, a) => ({ arm, accuracy: point[a], perGroup: perGroup[a], ci: boot.intervals[a] })),
    contrasts: contrasts.map(([a, b], k) => ({
      a: arms[a],
      b: arms[b],
      difference: point[a] - point[b],
      perGroup: perGroup[a].map((v, g) => v - perGroup[b][g]),
      ci: boot.intervals[arms.length + k],
    })),
    numGroups,
    numItems,
    samples: boot.samples,
    level: boot.level,
  };
}
