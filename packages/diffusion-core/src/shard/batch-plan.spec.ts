import { describe, expect, it } from 'vitest';
import { planBatchShard } from './batch-plan';

/** Independent reference: every (list, item) pair, grouped into batches list by list, the batches dealt out in near-equal contiguous runs. */
function reference(sizes: number[], bs: number, count: number): Array<Array<[number, number]>> {
  const batches: Array<Array<[number, number]>> = [];
  sizes.forEach((n, l) => {
    for (let s = 0; s < n; s += bs) batches.push(Array.from({ length: Math.min(bs, n - s) }, (_, k) => [l, s + k] as [number, number]));
  });
  const out: Array<Array<[number, number]>> = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const n = Math.floor(batches.length / count) + (i < batches.length % count ? 1 : 0);
    out.push(batches.slice(at, at + n).flat());
    at += n;
  }
  return out;
}

const items = (p: ReturnType<typeof planBatchShard>) => p.lists.flatMap((l) => Array.from({ length: l.endItem - l.firstItem }, (_, k) => [l.list, l.firstItem + k] as [number, number]));

describe('planBatchShard', () => {
  it('unsharded: every batch of every list', () => {
    expect(planBatchShard({ sizes: [10, 3], batchSize: 4, shard: null })).toEqual({
      start: 0, end: 4, total: 4, lists: [
        { list: 0, firstBatch: 0, endBatch: 3, numBatches: 3, firstItem: 0, endItem: 10 },
        { list: 1, firstBatch: 0, endBatch: 1, numBatches: 1, firstItem: 0, endItem: 3 },
      ],
    });
  });

  it('sharded: the items of a reference cut of the batches, list after list', () => {
    for (const [sizes, bs, count] of [[[10, 3], 4, 3], [[18, 12], 4, 3], [[5], 2, 5], [[0, 7], 3, 2], [[1, 1, 1], 1, 2]] as Array<[number[], number, number]>) {
      const ref = reference(sizes, bs, count);
      for (let index = 0; index < count; index++) {
        expect(items(planBatchShard({ sizes, batchSize: bs, shard: { index, count } })), `${sizes} / ${bs} ${index}/${count}`).toEqual(ref[index]);
      }
    }
  });

  it('a shard starts and ends on batch boundaries of each list', () => {
    const p = planBatchShard({ sizes: [10, 3], batchSize: 4, shard: { index: 1, count: 2 } });
    expect(p).toMatchObject({ start: 2, end: 4, total: 4 });
    expect(p.lists).toEqual([
      { list: 0, firstBatch: 2, endBatch: 3, numBatches: 3, firstItem: 8, endItem: 10 },
      { list: 1, firstBatch: 0, endBatch: 1, numBatches: 1, firstItem: 0, endItem: 3 },
    ]);
    // More shards than batches: some get nothing.
    expect(planBatchShard({ sizes: [2], batchSize: 4, shard: { index: 1, count: 2 } }).lists).toEqual([{ list: 0, firstBatch: 1, endBatch: 1, numBatches: 1, firstItem: 2, endItem: 2 }]);
  });

  it('validates', () => {
    expect(() => planBatchShard({ sizes: [], batchSize: 1, shard: null })).toThrow(/sizes must be a non-empty list/);
    expect(() => planBatchShard({ sizes: [1, -1], batchSize: 1, shard: null })).toThrow(/sizes\[1\] must be an integer >= 0/);
    expect(() => planBatchShard({ sizes: [1], batchSize: 0, shard: null })).toThrow(/batchSize must be an integer >= 1/);
    expect(() => planBatchShard({ sizes: [1], batchSize: 1, shard: { index: 2, count: 2 } })).toThrow(/out of range/);
  });
});
