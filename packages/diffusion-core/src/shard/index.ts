export { checkShardSpec, formatShard, MAX_SHARDS, parseShard, parseShardName, shardName, shardSlice } from './shard-spec';
export type { ShardSpec } from './shard-spec';
export { resolveShard } from './shard-env';
export type { ResolvedShard, ResolveShardParams } from './shard-env';
export { checkShardSet, ShardSetError } from './shard-set';
export type { ShardPart, ShardSetProblem } from './shard-set';
export { planSamplingShard } from './sampling-plan';
export type { PlanSamplingShardParams, SamplingShardPlan, SamplingShardSeed } from './sampling-plan';
