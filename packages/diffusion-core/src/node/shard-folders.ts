/**
 * The shards folder of a sharded run (`OUT/I-of-N/`, written by `--shard I/N` runs of generation,
 * evaluation or the utility run): which shard folders it holds, and which shards were killed mid-run
 * (an atomic folder write leaves `I-of-N.tmp-<pid>`). Every merge reads the folder this way, so
 * that a missing shard that was killed is reported as such.
 */
import { readdirSync } from 'node:fs';
import { parseShardName } from '@fad/diffusion-core';
import type { ShardSetProblem } from '@fad/diffusion-core';

/** Parameters of {@link listShardFolders}. */
export interface ListShardFoldersParams {
  /** The shards folder. */
  dir: string;
}

/** The shard folders (names `I-of-N`, sorted) and, by shard name, the temp folders killed shards left. */
export interface ShardFolders {
  names: string[];
  killed: Map<string, string>;
}

/** Lists the shards folder; a file system error (e.g. ENOENT) is thrown as Node's. */
export function listShardFolders(params: ListShardFoldersParams): ShardFolders {
  if (params === null || typeof params !== 'object') throw new TypeError(`listShardFolders: expected one params object, got ${String(params)}`);
  if (typeof params.dir !== 'string' || params.dir === '') throw new TypeError(`listShardFolders: dir must be a non-empty string, got ${JSON.stringify(params.dir)}`);
  const names = readdirSync(params.dir).sort();
  const killed = new Map<string, string>();
  for (const n of names) {
    const m = /^(\d+-of-\d+)\.tmp-\d+$/.exec(n);
    if (m) killed.set(m[1], n);
  }
  return { names: names.filter((n) => parseShardName(n) !== null), killed };
}

/** Parameters of {@link killedShardHints}. */
export interface KilledShardHintsParams {
  /** The problems `checkShardSet` found (its ShardSetError's `problems`). */
  problems: readonly Pick<ShardSetProblem, 'shard'>[];
  /** `killed` of {@link listShardFolders}. */
  killed: ReadonlyMap<string, string>;
}

/** One line per problem shard whose run was killed: `  (I-of-N: <temp> was left by a run of it that was killed; run that shard again)`. */
export function killedShardHints(params: KilledShardHintsParams): string[] {
  if (params === null || typeof params !== 'object' || !Array.isArray(params.problems) || !(params.killed instanceof Map)) {
    throw new TypeError('killedShardHints: expected { problems: ShardSetProblem[], killed: Map }');
  }
  const { problems, killed } = params;
  return problems.filter((x) => killed.has(x.shard)).map((x) => `  (${x.shard}: ${killed.get(x.shard)} was left by a run of it that was killed; run that shard again)`);
}
