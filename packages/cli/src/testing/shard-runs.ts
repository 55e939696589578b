/**
 * The harness of the sharding specs (generate, evaluate, utility): three shard processes of the
 * built CLI, each learning its index another way (the flag, a Kubernetes Indexed Job, a SLURM
 * array), started in a random order with one of them (the victim) killed by the caller's hook.
 */
import type { ChildProcess } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type FadRun, runFad } from './run-fad';

export interface ShardLaunch {
  args: string[];
  env: Record<string, string>;
}

/**
 * How shard `i` of `n` learns its index: 0 by `--shard 0/N`, 1 by `JOB_COMPLETION_INDEX` with
 * `FAD_SHARD_COUNT`, 2 by a SLURM array whose task ids start at `slurmMin` (task id `slurmMin + 2`).
 */
export function shardLaunch(i: number, n: number, slurmMin: number): ShardLaunch {
  if (i === 0) return { args: ['--shard', `0/${n}`], env: {} };
  if (i === 1) return { args: [], env: { JOB_COMPLETION_INDEX: '1', FAD_SHARD_COUNT: String(n) } };
  return { args: [], env: { SLURM_ARRAY_TASK_ID: String(slurmMin + i), SLURM_ARRAY_TASK_MIN: String(slurmMin), SLURM_ARRAY_TASK_COUNT: String(n) } };
}

export interface RandomShardRunsParams {
  n: number;
  /** The command line of shard i without its index (the index comes from `shardLaunch`). */
  args: (i: number) => string[];
  slurmMin: number;
  /** Called when the victim's process starts: it kills it at the moment the spec wants. */
  killVictim: (child: ChildProcess, i: number) => void;
  /** Logged with the order and the victim. */
  label: string;
}

/** Starts shards 0..n-1 in a random order, 150 ms apart, one of them the victim; resolves when all have ended. */
export async function runShardsInRandomOrder(p: RandomShardRunsParams): Promise<{ order: number[]; victim: number; results: FadRun[] }> {
  const order = Array.from({ length: p.n }, (_, i) => i).sort(() => Math.random() - 0.5);
  const victim = order[Math.floor(Math.random() * p.n)];
  console.log(`${p.label} order ${order.join(', ')}; shard ${victim} is killed and retried`);
  const results = await Promise.all(order.map((i, k) => new Promise<void>((res) => setTimeout(res, k * 150)).then(() => {
    const how = shardLaunch(i, p.n, p.slurmMin);
    return runFad([...p.args(i), ...how.args], { env: how.env, onStart: i === victim ? (child) => p.killVictim(child, i) : undefined });
  })));
  return { order, victim, results };
}

/** A fresh copy of the shards folder `src` as `root/name`, for specs that break one shard. */
export function copyShards(src: string, root: string, name: string): string {
  const d = join(root, name);
  rmSync(d, { recursive: true, force: true });
  cpSync(src, d, { recursive: true });
  return d;
}
