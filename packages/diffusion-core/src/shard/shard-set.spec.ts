import { describe, expect, it } from 'vitest';
import { checkShardSet, type ShardPart, ShardSetError } from './shard-set';

const part = (index: number, count = 4, extra: Partial<ShardPart> = {}): ShardPart => ({
  index, count, where: `/out/${index}-of-${count}`, complete: true, modelHash: 'm'.repeat(64), configHash: 'c'.repeat(64), ...extra,
});

const problems = (parts: ShardPart[], count?: number) => {
  try {
    checkShardSet({ parts, count });
  } catch (e) {
    expect(e).toBeInstanceOf(ShardSetError);
    return (e as ShardSetError).problems.map((p) => `${p.kind} ${p.shard}`);
  }
  return [];
};

describe('checkShardSet', () => {
  it('returns the parts in index order when all are there, complete and alike', () => {
    expect(checkShardSet({ parts: [part(2), part(0), part(3), part(1)] }).map((p) => p.index)).toEqual([0, 1, 2, 3]);
  });

  it('names missing, incomplete, duplicated shards and shards of another run size', () => {
    expect(problems([part(0), part(2)])).toEqual(['missing 1-of-4', 'missing 3-of-4']);
    expect(problems([part(0), part(1), part(2), part(3, 4, { complete: false })])).toEqual(['incomplete 3-of-4']);
    expect(problems([part(0), part(1), part(1, 4, { where: '/other' }), part(2), part(3)])).toEqual(['duplicate 1-of-4']);
    expect(problems([part(0), part(1), part(2), part(3), part(0, 2)])).toEqual(['count 0-of-2']);
    // An explicit count wins over the majority.
    expect(problems([part(0, 2), part(1, 2)], 4)).toEqual(['count 0-of-2', 'count 1-of-2', 'missing 0-of-4', 'missing 1-of-4', 'missing 2-of-4', 'missing 3-of-4']);
  });

  it('names a shard from another model or config, with the differing fields', () => {
    expect(problems([part(0), part(1, 4, { modelHash: 'x'.repeat(64) }), part(2), part(3)])).toEqual(['model 1-of-4']);
    const fields = { steps: '2', seeds: '[0,1]' };
    const ps = [0, 1, 2, 3].map((i) => part(i, 4, { configFields: fields }));
    ps[2] = part(2, 4, { configHash: 'd'.repeat(64), configFields: { steps: '3', seeds: '[0,1]' } });
    expect(() => checkShardSet({ parts: ps })).toThrow(/2-of-4 \(\/out\/2-of-4\) was run with another config \(d{12}…, the other shards c{12}…\); differs in steps \(3 vs 2\)/);
  });

  it('reports every problem in one message', () => {
    expect(() => checkShardSet({ parts: [part(0), part(1, 4, { modelHash: 'z' }), part(3, 4, { complete: false })], what: 'generated shards' }))
      .toThrow(/cannot merge the generated shards: 3 problem\(s\):\n {2}- 2-of-4 is missing\n {2}- 3-of-4 .* is not complete: run that shard again\n {2}- 1-of-4 .* is from another model/);
    expect(() => checkShardSet({ parts: [] })).toThrow(/no shards found/);
    expect(() => checkShardSet({ parts: [{ index: 4, count: 4 } as ShardPart] })).toThrow(/parts\[0\] must be/);
  });
});
