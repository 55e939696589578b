/**
 * `fad merge SHARDS --out DIR`: combines the shard folders (`SHARDS/I-of-N/`) that `fad generate
 * --shard`, `fad evaluate --shard` or `fad utility --shard` wrote into the result the same command
 * writes unsharded. Thin: it finds which command wrote the shards and calls that command's merge.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command } from 'commander';
import { parseShardName } from '@fad/diffusion-core';
import { effectiveConfig, type GlobalOptions, initBackend, makeLogger } from '../context';
import { mergeEvaluationShards } from '../evaluate-shards';
import { CliError, withLibraryErrors } from '../errors';
import { mergeGeneratedShards } from '../generate';
import { readJsonIfExists } from '../fsutil';
import { mergeUtilityShards, UTILITY_SHARD_FORMAT } from '@fad/expert-models/node';
import type { CommandContext } from './shared';

/** Which command wrote the shard folders in `dir`: generate, evaluate or utility. */
export function shardKind(dir: string): 'generate' | 'evaluate' | 'utility' {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CliError(`${dir} is not a folder of shards`);
  const kinds = new Set<string>();
  for (const name of readdirSync(dir)) {
    if (!parseShardName(name)) continue;
    const m = readJsonIfExists<{ format?: string }>(join(dir, name, 'manifest.json'));
    if (m?.format === 'fad-generated/1') kinds.add('generate');
    const s = readJsonIfExists<{ format?: string }>(join(dir, name, 'shard.json'));
    if (s?.format === UTILITY_SHARD_FORMAT) kinds.add('utility');
    if (s?.format === 'fad-evaluation-shard/1') kinds.add('evaluate');
  }
  if (kinds.size === 0) throw new CliError(`${dir} holds no finished shard folders (I-of-N, written by fad generate, evaluate or utility with --shard I/N)`);
  if (kinds.size > 1) throw new CliError(`${dir} holds shards of different commands (${[...kinds].join(', ')}); give each run its own folder`);
  return [...kinds][0] as 'generate' | 'evaluate' | 'utility';
}

export function registerMerge(program: Command, { out }: CommandContext): void {
  program
    .command('merge')
    .description('combine the shards of fad generate/evaluate/utility --shard I/N (folders SHARDS/I-of-N) into the result the unsharded command writes, byte for byte (timing.json aside); checks that every shard is there, finished, and from the same model and settings, and names those that are not')
    .argument('<shards>', 'the folder given as --out to the sharded command')
    .requiredOption('-o, --out <path>', 'where the merged result goes: the folder (generate, utility) or eval.json file (evaluate) the unsharded command writes')
    .option('--force', 'replace OUT if it exists')
    .action(async (shards: string, o, cmd: Command) => {
      const log = makeLogger(Boolean((cmd.optsWithGlobals() as GlobalOptions).quiet));
      const dir = resolve(shards);
      const kind = shardKind(dir);
      if (kind === 'generate') {
        const r = mergeGeneratedShards({ dir, out: o.out, force: Boolean(o.force), log: log.info });
        out(`merged ${r.count} shards: ${r.manifest.images.length} images to ${r.out}\n`);
      } else if (kind === 'utility') {
        const r = withLibraryErrors(() => mergeUtilityShards({ dir, out: o.out, force: Boolean(o.force), log: (m) => log.info(`fad: ${m}`) }));
        out(`merged ${r.count} shards: ${r.json.runs.length} classifiers to ${r.out}\n`);
      } else {
        // The shards' config picks the backend (the run.backend they ran with), unless --backend says otherwise.
        const g = cmd.optsWithGlobals() as GlobalOptions;
        const r = await mergeEvaluationShards({
          dir, out: o.out, force: Boolean(o.force), log,
          initBackend: (cfg) => initBackend(g.backend ? effectiveConfig({ backend: g.backend }, {}, cfg) : cfg, log),
        });
        out(`merged ${r.count} shards: evaluation of ${r.result.predictions?.length ?? r.result.numGenerated} generated images to ${r.out}\n`);
      }
    });
}
