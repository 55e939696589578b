import { describe, expect, it } from 'vitest';
import { checkShardSpec, formatShard, MAX_SHARDS, parseShard, parseShardName, shardName, shardSlice } from './shard-spec';

describe('parseShard', () => {
  it('reads 0-based I/N', () => {
    expect(parseShard('0/4')).toEqual({ index: 0, count: 4 });
    expect(parseShard('3/4')).toEqual({ index: 3, count: 4 });
    expect(parseShard(' 2 / 10 ')).toEqual({ index: 2, count: 10 });
    expect(formatShard({ index: 2, count: 10 })).toBe('2/10');
  });
  it('rejects malformed values and I >= N, naming the flag', () => {
    expect(() => parseShard('4/4')).toThrow(/--shard "4\/4": shard index 4 is out of range for 4 shard\(s\) \(indexes are 0-based: 0\.\.3\)/);
    expect(() => parseShard('1/0', 'FAD_SHARD')).toThrow(/FAD_SHARD "1\/0": the number of shards must be an integer in 1\.\.100000/);
    for (const bad of ['1', '1/2/3', '-1/4', '1.5/4', 'a/4', '', '/4', `0/${MAX_SHARDS + 1}`, '0x1/4']) {
      expect(() => parseShard(bad, '--shard'), bad).toThrow(/--shard/);
    }
    expect(() => checkShardSpec({ index: 1, count: 1.5 })).toThrow(/number of shards/);
  });
});

describe('shard names', () => {
  it('round-trip I-of-N and refuse other names', () => {
    expect(shardName({ index: 3, count: 8 })).toBe('3-of-8');
    expect(parseShardName('3-of-8')).toEqual({ index: 3, count: 8 });
    for (const bad of ['8-of-8', '3-of-0', '3-of-8.tmp-12', 'x-of-8', '3of8']) expect(parseShardName(bad), bad).toBeNull();
  });
});

describe('shardSlice', () => {
  it('deals units out contiguously, sizes differing by at most one, covering each unit once', () => {
    for (const units of [0, 1, 5, 7, 8, 100]) {
      for (const count of [1, 2, 3, 8, 13]) {
        const slices = Array.from({ length: count }, (_, index) => shardSlice({ shard: { index, count }, units }));
        // Independent reference: unit u goes to the shard whose slice contains it; concatenation is 0..units-1.
        const flat = slices.flatMap((s) => Array.from({ length: s.end - s.start }, (_, k) => s.start + k));
        expect(flat).toEqual(Array.from({ length: units }, (_, u) => u));
        const sizes = slices.map((s) => s.end - s.start);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        expect(sizes).toEqual([...sizes].sort((a, b) => b - a));
      }
    }
    expect(shardSlice({ shard: { index: 1, count: 3 }, units: 7 })).toEqual({ start: 3, end: 5 });
  });
  it('validates', () => {
    expect(() => shardSlice({ shard: { index: 3, count: 3 }, units: 7 })).toThrow(/out of range/);
    expect(() => shardSlice({ shard: { index: 0, count: 3 }, units: -1 })).toThrow(/units must be an integer >= 0/);
  });
});
