import { describe, expect, it } from 'vitest';
import { planSamplingShard } from './sampling-plan';

/** Independent reference: every (seed, batch) pair listed seed-major, cut into near-equal contiguous runs. */
function reference(seeds: number[], batches: number, count: number): Array<Array<[number, number]>> {
  const all = seeds.flatMap((s) => Array.from({ length: batches }, (_, b) => [s, b] as [number, number]));
  const out: Array<Array<[number, number]>> = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const n = Math.floor(all.length / count) + (i < all.length % count ? 1 : 0);
    out.push(all.slice(at, at + n));
    at += n;
  }
  return out;
}

const pairs = (plan: ReturnType<typeof planSamplingShard>) => plan.seeds.flatMap((s) => Array.from({ length: s.endBatch - s.firstBatch }, (_, k) => [s.seed, s.firstBatch + k] as [number, number]));

describe('planSamplingShard', () => {
  it('unsharded: every batch of every seed', () => {
    const p = planSamplingShard({ seeds: [4, 9], imagesPerSeed: 10, batchSize: 4, shard: null });
    expect(p).toEqual({ unit: 'batch', start: 0, end: 6, total: 6, seeds: [
      { seed: 4, seedIndex: 0, firstBatch: 0, endBatch: 3, numBatches: 3 },
      { seed: 9, seedIndex: 1, firstBatch: 0, endBatch: 3, numBatches: 3 },
    ] });
  });

  it('sharded by (seed, batch): matches a reference cut of the seed-major list', () => {
    for (const [seeds, images, bs, count] of [[[0, 1, 2], 10, 4, 4], [[7], 9, 2, 3], [[0, 1], 3, 4, 5]] as Array<[number[], number, number, number]>) {
      const ref = reference(seeds, Math.ceil(images / bs), count);
      for (let index = 0; index < count; index++) {
        expect(pairs(planSamplingShard({ seeds, imagesPerSeed: images, batchSize: bs, shard: { index, count } })), `${seeds} ${index}/${count}`).toEqual(ref[index]);
      }
    }
  });

  it('whole seeds: a shard takes whole seeds', () => {
    const p = planSamplingShard({ seeds: [0, 1, 2], imagesPerSeed: 10, batchSize: 4, wholeSeeds: true, shard: { index: 1, count: 2 } });
    expect(p).toMatchObject({ unit: 'seed', start: 2, end: 3, total: 3, seeds: [{ seed: 2, seedIndex: 2, firstBatch: 0, endBatch: 3 }] });
  });

  it('validates', () => {
    expect(() => planSamplingShard({ seeds: [], imagesPerSeed: 1, batchSize: 1, shard: null })).toThrow(/seeds must be a non-empty list/);
    expect(() => planSamplingShard({ seeds: [0], imagesPerSeed: 0, batchSize: 1, shard: null })).toThrow(/imagesPerSeed must be an integer >= 1/);
    expect(() => planSamplingShard({ seeds: [0], imagesPerSeed: 1, batchSize: 0, shard: null })).toThrow(/batchSize must be an integer >= 1/);
  });
});
