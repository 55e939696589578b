/**
 * The shard-folder checks of the CLI's merges that are not a library's yet (`fad merge` of
 * `fad evaluate --shard` folders): diffusion-core's `listShardFolders` and `checkShardSet` with
 * the CLI's errors.
 */
import { checkShardSet, type ShardPart, ShardSetError } from '@fad/diffusion-core';
import { killedShardHints, listShardFolders as listShardFolderNames, type ShardFolders } from '@fad/diffusion-core/node';
import { CliError, withFs } from './errors';

/** Shard folders in `dir` and the temp folders that killed shards left (diffusion-core's `listShardFolders`). */
export function listShardFolders(dir: string): ShardFolders {
  return withFs(dir, 'list the shards folder', () => listShardFolderNames({ dir }));
}

/** checkShardSet, as a CliError that also says which missing shards were killed mid-run. */
export function checkShardsForMerge(parts: ShardPart[], what: string, killed: Map<string, string>): ShardPart[] {
  try {
    return checkShardSet({ parts, what });
  } catch (e) {
    if (!(e instanceof ShardSetError)) throw e;
    throw new CliError([e.message, ...killedShardHints({ problems: e.problems, killed })].join('\n'));
  }
}
