/**
 * Shard plan for sampling images over seeds: each seed has its own generator stream and its images
 * are sampled in batches of `batchSize` in a fixed order, so the work units are (seed, batch) in
 * seed-major order, and a shard takes a contiguous run of them (`shardSlice`). Within a seed the
 * shard starts at `firstBatch`: the batches before it are replayed with `skipSamplingDraws` (no
 * model) so the stream is where an unsharded run would have it. With `wholeSeeds` (when a batch's
 * draws depend on earlier batches' results, e.g. rejection sampling), a unit is a whole seed.
 */
import { shardSlice, type ShardSpec } from './shard-spec';

export interface SamplingShardSeed {
  seed: number;
  /** Position of the seed in `seeds`. */
  seedIndex: number;
  /** Batches of this seed that the shard samples: [firstBatch, endBatch). */
  firstBatch: number;
  endBatch: number;
  /** Batches of the seed in all (ceil(imagesPerSeed / batchSize)). */
  numBatches: number;
}

export interface SamplingShardPlan {
  unit: 'batch' | 'seed';
  /** The shard's units [start, end) out of `total`. */
  start: number;
  end: number;
  total: number;
  /** Seeds with at least one batch in this shard, in order. */
  seeds: SamplingShardSeed[];
}

export interface PlanSamplingShardParams {
  seeds: readonly number[];
  /** Images sampled per seed (classes x images per class). */
  imagesPerSeed: number;
  batchSize: number;
  /** One unit per seed instead of per batch. */
  wholeSeeds?: boolean;
  /** Null: the whole run (every batch of every seed). */
  shard: ShardSpec | null;
}

/** The (seed, batch) units a shard samples (see the file comment). */
export function planSamplingShard(p: PlanSamplingShardParams): SamplingShardPlan {
  const owner = 'planSamplingShard';
  if (p === null || typeof p !== 'object') throw new TypeError(`${owner}: params must be an object, got ${String(p)}`);
  if (!Array.isArray(p.seeds) || p.seeds.length === 0) throw new RangeError(`${owner}: seeds must be a non-empty list, got ${JSON.stringify(p.seeds)}`);
  if (!Number.isSafeInteger(p.imagesPerSeed) || p.imagesPerSeed < 1) throw new RangeError(`${owner}: imagesPerSeed must be an integer >= 1, got ${String(p.imagesPerSeed)}`);
  if (!Number.isSafeInteger(p.batchSize) || p.batchSize < 1) throw new RangeError(`${owner}: batchSize must be an integer >= 1, got ${String(p.batchSize)}`);
  const numBatches = Math.ceil(p.imagesPerSeed / p.batchSize);
  const per = p.wholeSeeds ? 1 : numBatches;
  const total = p.seeds.length * per;
  const { start, end } = p.shard ? shardSlice({ shard: p.shard, units: total }) : { start: 0, end: total };
  const seeds: SamplingShardSeed[] = [];
  p.seeds.forEach((seed, seedIndex) => {
    const lo = Math.max(start, seedIndex * per);
    const hi = Math.min(end, (seedIndex + 1) * per);
    if (hi <= lo) return;
    const firstBatch = p.wholeSeeds ? 0 : lo - seedIndex * per;
    const endBatch = p.wholeSeeds ? numBatches : hi - seedIndex * per;
    seeds.push({ seed, seedIndex, firstBatch, endBatch, numBatches });
  });
  return { unit: p.wholeSeeds ? 'seed' : 'batch', start, end, total, seeds };
}
