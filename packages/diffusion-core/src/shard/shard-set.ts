/**
 * Checking a set of shard outputs before they are merged: every shard of the run is there, each is
 * complete, and all come from the same model and the same config. The caller reads its shard parts
 * (how a part is stored and hashed is the caller's: a generated-set manifest, a utility run list...)
 * and hands in what identifies each; the check names every missing, incomplete, duplicated or
 * foreign shard at once, so one look at the message says which shards to run again.
 */
import { type ShardSpec, shardName } from './shard-spec';

export interface ShardPart extends ShardSpec {
  /** Where the part is (a folder or file), for messages. */
  where: string;
  /** Whether the shard finished (a part that a killed shard left behind is not complete). */
  complete: boolean;
  /** Identifies the model the part was made with (e.g. the checkpoint's sha256). */
  modelHash: string;
  /** Identifies everything else that must match across shards (settings, inputs). */
  configHash: string;
  /** Optional: which fields differ are named when the config hashes differ (field name -> value). */
  configFields?: Record<string, string>;
}

export interface ShardSetProblem {
  kind: 'missing' | 'incomplete' | 'duplicate' | 'count' | 'model' | 'config';
  /** The shard's name (`I-of-N`), or for `count`/`missing` the name of the shard. */
  shard: string;
  message: string;
}

/** Thrown by `checkShardSet`; `problems` lists every problem found, `message` all of them. */
export class ShardSetError extends Error {
  readonly problems: ShardSetProblem[];
  constructor(message: string, problems: ShardSetProblem[]) {
    super(message);
    this.name = 'ShardSetError';
    this.problems = problems;
  }
}

const short = (h: string) => (h.length > 16 ? `${h.slice(0, 12)}…` : h);

/** The value most parts have (ties: the one of the lowest shard index). */
function majority(parts: ShardPart[], key: (p: ShardPart) => string): string {
  const n = new Map<string, number>();
  for (const p of parts) n.set(key(p), (n.get(key(p)) ?? 0) + 1);
  let best = key(parts[0]);
  for (const p of parts) if ((n.get(key(p)) ?? 0) > (n.get(best) ?? 0)) best = key(p);
  return best;
}

/**
 * Checks that `parts` are exactly shards 0..N-1 of one run (N: `count`, or the count most parts
 * name), all complete, all with the same model and config hash (the reference is the value most
 * complete parts share). Returns the parts ordered by index.
 * @throws ShardSetError naming each missing, incomplete, duplicated or foreign shard (and the
 *   fields whose values differ, when parts give `configFields`).
 */
export function checkShardSet(p: { parts: ShardPart[]; count?: number; what?: string }): ShardPart[] {
  if (p === null || typeof p !== 'object' || !Array.isArray(p.parts)) throw new TypeError('checkShardSet: params must be { parts: ShardPart[], count? }');
  const what = p.what ?? 'shards';
  const parts = p.parts;
  if (parts.length === 0) throw new ShardSetError(`no ${what} found`, [{ kind: 'missing', shard: '', message: `no ${what} found` }]);
  parts.forEach((x, i) => {
    if (!x || !Number.isInteger(x.index) || !Number.isInteger(x.count) || x.index < 0 || x.index >= x.count || typeof x.modelHash !== 'string' || typeof x.configHash !== 'string') {
      throw new TypeError(`checkShardSet: parts[${i}] must be { index, count, where, complete, modelHash, configHash } with 0 <= index < count`);
    }
  });
  const count = p.count ?? Number(majority(parts, (x) => String(x.count)));
  const problems: ShardSetProblem[] = [];
  const ofRun = parts.filter((x) => {
    if (x.count === count) return true;
    problems.push({ kind: 'count', shard: shardName(x), message: `${shardName(x)} (${x.where}) is a shard of a run in ${x.count} shards, not ${count}` });
    return false;
  });
  const byIndex = new Map<number, ShardPart>();
  for (const x of ofRun) {
    if (byIndex.has(x.index)) problems.push({ kind: 'duplicate', shard: shardName(x), message: `${shardName(x)} is there twice (${byIndex.get(x.index)!.where} and ${x.where})` });
    else byIndex.set(x.index, x);
  }
  const missing: string[] = [];
  for (let i = 0; i < count; i++) if (!byIndex.has(i)) missing.push(shardName({ index: i, count }));
  for (const m of missing) problems.push({ kind: 'missing', shard: m, message: `${m} is missing` });
  const present = [...byIndex.values()].sort((a, b) => a.index - b.index);
  for (const x of present) if (!x.complete) problems.push({ kind: 'incomplete', shard: shardName(x), message: `${shardName(x)} (${x.where}) is not complete: run that shard again` });
  const complete = present.filter((x) => x.complete);
  if (complete.length > 0) {
    const model = majority(complete, (x) => x.modelHash);
    const config = majority(complete.filter((x) => x.modelHash === model), (x) => x.configHash);
    const ref = complete.find((x) => x.modelHash === model && x.configHash === config)!;
    for (const x of complete) {
      if (x.modelHash !== model) {
        problems.push({ kind: 'model', shard: shardName(x), message: `${shardName(x)} (${x.where}) is from another model (${short(x.modelHash)}, the other shards ${short(model)})` });
      } else if (x.configHash !== config) {
        const fields = x.configFields && ref.configFields
          ? [...new Set([...Object.keys(x.configFields), ...Object.keys(ref.configFields)])].filter((k) => x.configFields![k] !== ref.configFields![k])
          : [];
        const detail = fields.length ? `; differs in ${fields.map((k) => `${k} (${x.configFields![k] ?? 'absent'} vs ${ref.configFields![k] ?? 'absent'})`).join(', ')}` : '';
        problems.push({ kind: 'config', shard: shardName(x), message: `${shardName(x)} (${x.where}) was run with another config (${short(x.configHash)}, the other shards ${short(config)})${detail}` });
      }
    }
  }
  if (problems.length) {
    const head = `cannot merge the ${what}: ${problems.length} problem(s)`;
    throw new ShardSetError(`${head}:\n${problems.map((x) => `  - ${x.message}`).join('\n')}`, problems);
  }
  return present;
}
