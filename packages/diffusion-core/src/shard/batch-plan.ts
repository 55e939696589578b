/**
 * Shard plan for a pass over one or more lists of items in fixed batches (e.g. an expert's forward
 * passes over the generated images, then over the real ones): each list is cut into batches of
 * `batchSize` from its first item (the last batch of a list may be short), the work units are those
 * batches list after list, and a shard takes a contiguous run of them (`shardSlice`). A shard's
 * batches are exactly batches of the unsharded pass, so a computation whose result depends on how
 * items are batched gives the same numbers sharded or not.
 */
import { shardSlice, type ShardSpec } from './shard-spec';

export interface BatchShardList {
  /** Position of the list in `sizes`. */
  list: number;
  /** Batches of the list that the shard does: [firstBatch, endBatch) (empty when equal). */
  firstBatch: number;
  endBatch: number;
  /** Batches of the list in all (ceil(size / batchSize)). */
  numBatches: number;
  /** The items of those batches: [firstItem, endItem). */
  firstItem: number;
  endItem: number;
}

export interface BatchShardPlan {
  /** The shard's units (batches, over all lists) [start, end) out of `total`. */
  start: number;
  end: number;
  total: number;
  /** One entry per list, in order (lists the shard has no batch of have firstItem === endItem). */
  lists: BatchShardList[];
}

export interface PlanBatchShardParams {
  /** Number of items of each list (0 allowed: a list without batches). */
  sizes: readonly number[];
  batchSize: number;
  /** Null: the whole pass. */
  shard: ShardSpec | null;
}

/** The batches a shard does (see the file comment). */
export function planBatchShard(p: PlanBatchShardParams): BatchShardPlan {
  const owner = 'planBatchShard';
  if (p === null || typeof p !== 'object') throw new TypeError(`${owner}: params must be an object, got ${String(p)}`);
  if (!Array.isArray(p.sizes) || p.sizes.length === 0) throw new RangeError(`${owner}: sizes must be a non-empty list of item counts, got ${JSON.stringify(p.sizes)}`);
  p.sizes.forEach((n, i) => {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${owner}: sizes[${i}] must be an integer >= 0, got ${String(n)}`);
  });
  if (!Number.isSafeInteger(p.batchSize) || p.batchSize < 1) throw new RangeError(`${owner}: batchSize must be an integer >= 1, got ${String(p.batchSize)}`);
  const numBatches = p.sizes.map((n) => Math.ceil(n / p.batchSize));
  const total = numBatches.reduce((a, b) => a + b, 0);
  const { start, end } = p.shard ? shardSlice({ shard: p.shard, units: total }) : { start: 0, end: total };
  let offset = 0;
  const lists = p.sizes.map((size, list) => {
    const nb = numBatches[list];
    const firstBatch = Math.min(nb, Math.max(0, start - offset));
    const endBatch = Math.max(firstBatch, Math.min(nb, end - offset));
    offset += nb;
    return { list, firstBatch, endBatch, numBatches: nb, firstItem: Math.min(size, firstBatch * p.batchSize), endItem: Math.min(size, endBatch * p.batchSize) };
  });
  return { start, end, total, lists };
}
