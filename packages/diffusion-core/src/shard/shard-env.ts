/**
 * Which shard this process is: from `--shard I/N` (a flag) or from the environment of the batch
 * system that started it. In order (the first that applies wins):
 * 1. the flag `--shard I/N` (`--shard none`: not sharded, whatever the environment says);
 * 2. `FAD_SHARD=I/N` (`none` likewise);
 * 3. Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX` (0-based) is the index; Kubernetes does not
 *    put the number of completions into the pod, so the count comes from `--shard-count N` or
 *    `FAD_SHARD_COUNT` (set it to the Job's `spec.completions` in the manifest);
 * 4. SLURM job arrays: the index is `(SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) /
 *    SLURM_ARRAY_TASK_STEP` (so `--array=0-7`, `--array=1-8` and `--array=0-14:2` all give 0..7),
 *    the count `--shard-count`, `FAD_SHARD_COUNT` or `SLURM_ARRAY_TASK_COUNT`.
 * A malformed value, or an index that is not below the count, is an error naming the variable.
 */
import { checkShardSpec, parseShard, type ShardSpec } from './shard-spec';

/** A resolved shard and where it came from (for the log line), e.g. `JOB_COMPLETION_INDEX=3, FAD_SHARD_COUNT=8`. */
export interface ResolvedShard extends ShardSpec {
  source: string;
}

export interface ResolveShardParams {
  /** The value of `--shard` (`I/N` or `none`), when given. */
  flag?: string | null;
  /** The value of `--shard-count`, when given (the count for an index from the environment). */
  countFlag?: number | null;
  /** The environment (`process.env` in the CLI). */
  env: Readonly<Record<string, string | undefined>>;
  /** How the flags are spelled in messages (default `--shard`, `--shard-count`). */
  flagName?: string;
  countFlagName?: string;
}

const set = (v: string | undefined): v is string => v !== undefined && v.trim() !== '';

function envInt(env: ResolveShardParams['env'], name: string, min: number): number {
  const raw = env[name] as string;
  const t = raw.trim();
  const n = /^-?\d+$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`${name} must be an integer >= ${min}, got "${raw}"`);
  return n;
}

/**
 * The shard of this process, or null when it is not sharded (see the file comment).
 * @throws RangeError naming the flag or variable that is malformed, missing or out of range.
 */
export function resolveShard(p: ResolveShardParams): ResolvedShard | null {
  if (p === null || typeof p !== 'object' || p.env === null || typeof p.env !== 'object') throw new TypeError('resolveShard: params must be { flag?, countFlag?, env }');
  const flagName = p.flagName ?? '--shard';
  const countName = p.countFlagName ?? '--shard-count';
  const { env } = p;
  const countFlag = p.countFlag ?? null;
  if (countFlag !== null && (!Number.isInteger(countFlag) || countFlag < 1)) throw new RangeError(`${countName} must be an integer >= 1, got ${String(countFlag)}`);
  if (p.flag !== undefined && p.flag !== null) {
    if (p.flag.trim() === 'none') return null;
    if (countFlag !== null) throw new RangeError(`give either ${flagName} I/N or ${countName} N (for an index from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID), not both`);
    return { ...parseShard(p.flag, flagName), source: `${flagName} ${p.flag}` };
  }
  if (set(env.FAD_SHARD)) {
    if (env.FAD_SHARD.trim() === 'none') return null;
    if (countFlag !== null) throw new RangeError(`FAD_SHARD=${env.FAD_SHARD} already gives the number of shards; ${countName} applies to JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID`);
    return { ...parseShard(env.FAD_SHARD, 'FAD_SHARD'), source: `FAD_SHARD=${env.FAD_SHARD}` };
  }
  // The count for an index from a batch system: the flag, else FAD_SHARD_COUNT.
  const explicitCount = (): { count: number; source: string } | null => {
    if (countFlag !== null) return { count: countFlag, source: `${countName} ${countFlag}` };
    if (set(env.FAD_SHARD_COUNT)) return { count: envInt(env, 'FAD_SHARD_COUNT', 1), source: `FAD_SHARD_COUNT=${env.FAD_SHARD_COUNT}` };
    return null;
  };
  const checked = (index: number, count: number, indexWhat: string, countWhat: string): ShardSpec => {
    if (index >= count) throw new RangeError(`${indexWhat} gives shard index ${index}, which is not below the number of shards ${count} (${countWhat}); indexes are 0-based`);
    return checkShardSpec({ index, count }, indexWhat);
  };
  if (set(env.JOB_COMPLETION_INDEX)) {
    const index = envInt(env, 'JOB_COMPLETION_INDEX', 0);
    const c = explicitCount();
    if (!c) throw new RangeError(`JOB_COMPLETION_INDEX=${env.JOB_COMPLETION_INDEX} is set (a Kubernetes Indexed Job) but not the number of shards: set FAD_SHARD_COUNT to the Job's spec.completions in the manifest, or pass ${countName} N`);
    const what = `JOB_COMPLETION_INDEX=${env.JOB_COMPLETION_INDEX}`;
    return { ...checked(index, c.count, what, c.source), source: `${what}, ${c.source}` };
  }
  if (set(env.SLURM_ARRAY_TASK_ID)) {
    const id = envInt(env, 'SLURM_ARRAY_TASK_ID', 0);
    const min = set(env.SLURM_ARRAY_TASK_MIN) ? envInt(env, 'SLURM_ARRAY_TASK_MIN', 0) : 0;
    const step = set(env.SLURM_ARRAY_TASK_STEP) ? envInt(env, 'SLURM_ARRAY_TASK_STEP', 1) : 1;
    if (id < min) throw new RangeError(`SLURM_ARRAY_TASK_ID=${id} is below SLURM_ARRAY_TASK_MIN=${min}`);
    if ((id - min) % step !== 0) throw new RangeError(`SLURM_ARRAY_TASK_ID=${id} is not SLURM_ARRAY_TASK_MIN=${min} plus a multiple of SLURM_ARRAY_TASK_STEP=${step}; run the array as a range (--array=0-N-1)`);
    const index = (id - min) / step;
    let c = explicitCount();
    if (!c) {
      if (!set(env.SLURM_ARRAY_TASK_COUNT)) throw new RangeError(`SLURM_ARRAY_TASK_ID=${id} is set but not SLURM_ARRAY_TASK_COUNT: set FAD_SHARD_COUNT or pass ${countName} N`);
      c = { count: envInt(env, 'SLURM_ARRAY_TASK_COUNT', 1), source: `SLURM_ARRAY_TASK_COUNT=${env.SLURM_ARRAY_TASK_COUNT}` };
    }
    const what = `SLURM_ARRAY_TASK_ID=${id} (SLURM_ARRAY_TASK_MIN=${min}${step !== 1 ? `, SLURM_ARRAY_TASK_STEP=${step}` : ''})`;
    return { ...checked(index, c.count, what, c.source), source: `${what}, ${c.source}` };
  }
  if (countFlag !== null) throw new RangeError(`${countName} needs a shard index: ${flagName} I/N, or JOB_COMPLETION_INDEX (Kubernetes) or SLURM_ARRAY_TASK_ID (SLURM) in the environment`);
  return null;
}
