/**
 * The `--shard I/N` and `--shard-count N` flags of `fad generate`, `fad evaluate` and `fad utility`,
 * read with @fad/diffusion-core's `resolveShard` together with the batch system's environment
 * (Kubernetes `JOB_COMPLETION_INDEX` + `FAD_SHARD_COUNT`, SLURM `SLURM_ARRAY_TASK_ID`/`_MIN`/`_COUNT`,
 * or `FAD_SHARD=I/N`). The flag wins over the environment; `--shard none` ignores it.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { type ResolvedShard, resolveShard } from '@fad/diffusion-core';
import { CliError } from './errors';

/** Adds --shard and --shard-count to a command. */
export function addShardOptions(cmd: Command, what: string): Command {
  return cmd
    .option('--shard <I/N>', `do only shard I of N (0-based, 0 <= I < N) of the ${what} into OUT/I-of-N/, then combine with fad merge; default: from JOB_COMPLETION_INDEX (Kubernetes Indexed Job, with FAD_SHARD_COUNT) or SLURM_ARRAY_TASK_ID (SLURM array), if set; "none": not sharded`)
    .option('--shard-count <n>', 'the number of shards N when the index comes from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID (default: FAD_SHARD_COUNT, or SLURM_ARRAY_TASK_COUNT)', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`--shard-count must be an integer >= 1, got "${v}"`);
      return n;
    });
}

/** The shard of this process from the flags and `env`, or null; errors name the flag or variable. */
export function shardFromOptions(o: { shard?: string; shardCount?: number }, env: Readonly<Record<string, string | undefined>> = process.env): ResolvedShard | null {
  try {
    return resolveShard({ flag: o.shard ?? null, countFlag: o.shardCount ?? null, env });
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}
