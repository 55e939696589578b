/**
 * Shards: one slice of a run's work, `index` of `count` (0-based: 0 <= index < count), written
 * `I/N` on the command line (`2/8` is the third of eight) and `I-of-N` as a folder name. A run is
 * cut into an ordered list of work units (seed x batch of images, protocol x seed...) and each shard
 * takes a contiguous slice of it (`shardSlice`), so that shards together do every unit once and the
 * same shard always does the same units.
 */

export interface ShardSpec {
  /** 0-based index of this shard. */
  index: number;
  /** Number of shards of the run (>= 1). */
  count: number;
}

/** The largest number of shards accepted (a guard against typos such as 1/1000000000). */
export const MAX_SHARDS = 100_000;

const DIGITS = /^\d+$/;

/** A non-negative integer written in decimal digits only, or null. */
function nonNegativeInt(text: string): number | null {
  const t = text.trim();
  if (!DIGITS.test(t)) return null;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * Checks `{ index, count }`: integers with 0 <= index < count <= MAX_SHARDS.
 * @param what names the value in the error (e.g. `--shard`, `JOB_COMPLETION_INDEX`).
 * @throws RangeError naming `what`.
 */
export function checkShardSpec(spec: ShardSpec, what = 'shard'): ShardSpec {
  if (spec === null || typeof spec !== 'object') throw new TypeError(`${what} must be { index, count }, got ${String(spec)}`);
  const { index, count } = spec;
  if (!Number.isInteger(count) || count < 1 || count > MAX_SHARDS) throw new RangeError(`${what}: the number of shards must be an integer in 1..${MAX_SHARDS}, got ${String(count)}`);
  if (!Number.isInteger(index) || index < 0) throw new RangeError(`${what}: the shard index must be an integer >= 0, got ${String(index)}`);
  if (index >= count) throw new RangeError(`${what}: shard index ${index} is out of range for ${count} shard(s) (indexes are 0-based: 0..${count - 1})`);
  return { index, count };
}

/**
 * Parses `I/N` (0-based I, 0 <= I < N), e.g. `0/4` .. `3/4`.
 * @param what names the value in the error message (the flag or variable it came from).
 * @throws RangeError naming `what` and what was expected.
 */
export function parseShard(text: string, what = '--shard'): ShardSpec {
  if (typeof text !== 'string') throw new TypeError(`${what} must be a string I/N, got ${typeof text}`);
  const parts = text.split('/');
  const index = parts.length === 2 ? nonNegativeInt(parts[0]) : null;
  const count = parts.length === 2 ? nonNegativeInt(parts[1]) : null;
  if (index === null || count === null) throw new RangeError(`${what} must be I/N with integers 0 <= I < N (0-based shard index I of N shards, e.g. 0/4), got "${text}"`);
  return checkShardSpec({ index, count }, `${what} "${text}"`);
}

/** `I/N`, as `parseShard` reads it. */
export function formatShard(spec: ShardSpec): string {
  return `${spec.index}/${spec.count}`;
}

/** The folder name of a shard's output: `I-of-N`. */
export function shardName(spec: ShardSpec): string {
  return `${spec.index}-of-${spec.count}`;
}

/** Reads a folder name written by `shardName`; null for any other name. */
export function parseShardName(name: string): ShardSpec | null {
  const m = /^(\d+)-of-(\d+)$/.exec(name);
  if (!m) return null;
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || index >= count || count > MAX_SHARDS) return null;
  return { index, count };
}

/**
 * The contiguous slice [start, end) of `units` work units that shard `index` of `count` does:
 * units are dealt out as evenly as possible (slice sizes differ by at most one, the larger ones
 * first), in order, so that concatenating the slices of shards 0..count-1 gives 0..units-1.
 * A shard gets an empty slice when there are fewer units than shards.
 */
export function shardSlice(p: { shard: ShardSpec; units: number }): { start: number; end: number } {
  if (p === null || typeof p !== 'object') throw new TypeError(`shardSlice: params must be { shard, units }, got ${String(p)}`);
  const { index, count } = checkShardSpec(p.shard, 'shardSlice: shard');
  if (!Number.isSafeInteger(p.units) || p.units < 0) throw new RangeError(`shardSlice: units must be an integer >= 0, got ${String(p.units)}`);
  const base = Math.floor(p.units / count);
  const extra = p.units % count;
  const start = index * base + Math.min(index, extra);
  return { start, end: start + base + (index < extra ? 1 : 0) };
}
