/**
 * Configuration of the class-conditional U-Net: plain JSON, validated up front, with every error
 * naming the field, the value and what is accepted.
 */

export interface UNetConfig {
  /** Height and width of the (square) images. Must be divisible by 2^(blockChannels.length-1). */
  sampleSize: number;
  /** Image channels in (1 for grayscale). */
  inChannels: number;
  /** Channels out (usually = inChannels: the predicted noise). */
  outChannels: number;
  /** Channels of each resolution level, top (full resolution) to bottom. */
  blockChannels: number[];
  /** Res-blocks per level on the down path (the up path has one more, as in Stable Diffusion). */
  layersPerBlock: number;
  /** Groups of every GroupNorm. Every channel count must divide by it. */
  normGroups: number;
  normEps: number;
  /** Levels (0-based) whose res-blocks are followed by a transformer block. */
  attentionLevels: number[];
  /** Attention heads; must divide the channels of every attention level. */
  attentionHeads: number;
  /** Whether there is a mid block (res-block, [transformer], res-block). */
  midBlock: boolean;
  /** Whether the mid block has a transformer block. */
  midAttention: boolean;
  /** Width of the sinusoidal timestep embedding. */
  timeEmbeddingDim: number;
  /** Width of the MLP on the timestep embedding. */
  timeEmbeddingHiddenDim: number;
  /** Number of classes for label conditioning, or 0 for an unconditional model. */
  numClasses: number;
  /** Adds a learned null class (index numClasses) for classifier-free guidance. */
  nullClass: boolean;
  /** Width of the conditioning tokens (class embeddings or user-supplied encoder states). */
  crossAttentionDim: number;
  /**
   * Where the conditioning enters: through the transformer blocks' cross-attention (Stable
   * Diffusion, the default), added to the timestep embedding through a linear map (`class_to_time`,
   * as diffusers' `class_embed_type`), or both. Attention-free configs need `time-embedding`.
   */
  classConditioning: ClassConditioning;
  /**
   * Extra conditioning tokens added to a trained model (DreamBooth identifiers, see
   * `addConditioningToken`). Token i has the label `numClasses + (nullClass ? 1 : 0) + i`, after
   * the classes and the null class, so existing labels keep their meaning. Absent (the default) or
   * empty: none. Each token records the class its embedding was initialised from.
   */
  conditioningTokens?: ConditioningToken[];
}

/** A named conditioning token beyond the classes (e.g. a DreamBooth identifier). */
export interface ConditioningToken {
  /** Unique, non-empty name (e.g. `sks`). */
  name: string;
  /** The class (0..numClasses-1) whose embedding initialised the token. */
  fromClass: number;
}

export type ClassConditioning = 'cross-attention' | 'time-embedding' | 'both';
export const CLASS_CONDITIONINGS: readonly ClassConditioning[] = ['cross-attention', 'time-embedding', 'both'];

export const DEFAULT_UNET_CONFIG: UNetConfig = {
  sampleSize: 64,
  inChannels: 1,
  outChannels: 1,
  blockChannels: [32, 64, 128],
  layersPerBlock: 2,
  normGroups: 8,
  normEps: 1e-5,
  attentionLevels: [2],
  attentionHeads: 4,
  midBlock: true,
  midAttention: true,
  timeEmbeddingDim: 128,
  timeEmbeddingHiddenDim: 512,
  numClasses: 8,
  nullClass: true,
  crossAttentionDim: 128,
  classConditioning: 'cross-attention',
};

/**
 * Named configurations. `reference` is the project's benchmark workload (bench/README and
 * shared/bench/reference_workload.py): 6,161,473 parameters, 5.07 GFLOP per 64x64 image.
 */
export const UNET_PRESETS = {
  reference: { ...DEFAULT_UNET_CONFIG, nullClass: false },
  histology64: { ...DEFAULT_UNET_CONFIG },
  tiny: {
    ...DEFAULT_UNET_CONFIG,
    sampleSize: 16,
    blockChannels: [8, 16],
    layersPerBlock: 1,
    normGroups: 4,
    attentionLevels: [1],
    attentionHeads: 2,
    timeEmbeddingDim: 16,
    timeEmbeddingHiddenDim: 32,
    numClasses: 4,
    crossAttentionDim: 16,
  },
} satisfies Record<string, UNetConfig>;

const KEYS = [...Object.keys(DEFAULT_UNET_CONFIG), 'conditioningTokens'] as Array<keyof UNetConfig>;

function fail(field: string, expected: string, got: unknown): never {
  throw new RangeError(`UNetConfig.${field} must be ${expected}, got ${JSON.stringify(got)}`);
}

function posInt(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(field, 'a positive integer', v);
  return v;
}

/** Fills defaults and validates. Throws a RangeError naming the first bad field. */
export function resolveUNetConfig(partial: Partial<UNetConfig> = {}): UNetConfig {
  if (partial === null || typeof partial !== 'object' || Array.isArray(partial)) {
    throw new TypeError(`UNetConfig must be an object, got ${JSON.stringify(partial)}`);
  }
  for (const k of Object.keys(partial)) {
    if (!(KEYS as string[]).includes(k)) {
      throw new RangeError(`UNetConfig: unknown field "${k}"; accepted fields: ${KEYS.join(', ')}`);
    }
  }
  const c: UNetConfig = { ...DEFAULT_UNET_CONFIG, ...partial };
  posInt('sampleSize', c.sampleSize);
  posInt('inChannels', c.inChannels);
  posInt('outChannels', c.outChannels);
  posInt('layersPerBlock', c.layersPerBlock);
  posInt('normGroups', c.normGroups);
  posInt('attentionHeads', c.attentionHeads);
  posInt('timeEmbeddingHiddenDim', c.timeEmbeddingHiddenDim);
  posInt('crossAttentionDim', c.crossAttentionDim);
  if (!Array.isArray(c.blockChannels) || c.blockChannels.length === 0) {
    fail('blockChannels', 'a non-empty array of positive integers', c.blockChannels);
  }
  c.blockChannels.forEach((ch, i) => {
    posInt(`blockChannels[${i}]`, ch);
    if (ch % c.normGroups !== 0) {
      fail(`blockChannels[${i}]`, `divisible by normGroups (${c.normGroups})`, ch);
    }
  });
  if (typeof c.timeEmbeddingDim !== 'number' || !Number.isInteger(c.timeEmbeddingDim) || c.timeEmbeddingDim < 2 || c.timeEmbeddingDim % 2 !== 0) {
    fail('timeEmbeddingDim', 'an even integer >= 2', c.timeEmbeddingDim);
  }
  if (!(typeof c.normEps === 'number' && c.normEps > 0)) fail('normEps', 'a positive number', c.normEps);
  const levels = c.blockChannels.length;
  const factor = 2 ** (levels - 1);
  if (c.sampleSize % factor !== 0) {
    fail('sampleSize', `divisible by 2^(levels-1) = ${factor} for ${levels} levels`, c.sampleSize);
  }
  if (!Array.isArray(c.attentionLevels)) fail('attentionLevels', 'an array of level indices', c.attentionLevels);
  c.attentionLevels.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 0 || l >= levels) {
      fail(`attentionLevels[${i}]`, `a level index in 0..${levels - 1}`, l);
    }
    if (c.blockChannels[l] % c.attentionHeads !== 0) {
      fail('attentionHeads', `a divisor of blockChannels[${l}] (${c.blockChannels[l]}) at attention level ${l}`, c.attentionHeads);
    }
  });
  if (typeof c.midBlock !== 'boolean') fail('midBlock', 'a boolean', c.midBlock);
  if (typeof c.midAttention !== 'boolean') fail('midAttention', 'a boolean', c.midAttention);
  if (c.midBlock && c.midAttention && c.blockChannels[levels - 1] % c.attentionHeads !== 0) {
    fail('attentionHeads', `a divisor of the mid block's channels (${c.blockChannels[levels - 1]})`, c.attentionHeads);
  }
  if (!Number.isInteger(c.numClasses) || c.numClasses < 0) {
    fail('numClasses', 'an integer >= 0 (0 for an unconditional model)', c.numClasses);
  }
  if (typeof c.nullClass !== 'boolean') fail('nullClass', 'a boolean', c.nullClass);
  if (!CLASS_CONDITIONINGS.includes(c.classConditioning)) {
    fail('classConditioning', `one of ${CLASS_CONDITIONINGS.join(', ')}`, c.classConditioning);
  }
  const hasAttention = c.attentionLevels.length > 0 || (c.midBlock && c.midAttention);
  if (c.classConditioning === 'cross-attention' && !hasAttention) {
    fail(
      'classConditioning',
      '"time-embedding" or "both" when the config has no attention layer (attentionLevels is empty and there is no mid attention), or labels would be ignored',
      c.classConditioning,
    );
  }
  const tokens = resolveConditioningTokens(c);
  const { conditioningTokens: _drop, ...rest } = c;
  void _drop;
  // An empty token list is left out, so configs (and saved files) of ordinary models do not change.
  return { ...rest, blockChannels: [...c.blockChannels], attentionLevels: [...c.attentionLevels], ...(tokens.length ? { conditioningTokens: tokens } : {}) };
}

function resolveConditioningTokens(c: UNetConfig): ConditioningToken[] {
  const t = c.conditioningTokens;
  if (t === undefined) return [];
  if (!Array.isArray(t)) fail('conditioningTokens', 'an array of { name, fromClass }', t);
  if (t.length > 0 && c.numClasses === 0) fail('conditioningTokens', 'empty for an unconditional model (numClasses 0)', t);
  const seen = new Set<string>();
  return t.map((tok, i) => {
    if (tok === null || typeof tok !== 'object' || Array.isArray(tok)) fail(`conditioningTokens[${i}]`, 'an object { name, fromClass }', tok);
    const extra = Object.keys(tok).filter((k) => k !== 'name' && k !== 'fromClass');
    if (extra.length) fail(`conditioningTokens[${i}]`, 'an object with only the fields name and fromClass', tok);
    if (typeof tok.name !== 'string' || tok.name.length === 0) fail(`conditioningTokens[${i}].name`, 'a non-empty string', tok.name);
    if (seen.has(tok.name)) fail(`conditioningTokens[${i}].name`, 'unique among the tokens', tok.name);
    seen.add(tok.name);
    if (!Number.isInteger(tok.fromClass) || tok.fromClass < 0 || tok.fromClass >= c.numClasses) {
      fail(`conditioningTokens[${i}].fromClass`, `a class index in 0..${c.numClasses - 1}`, tok.fromClass);
    }
    return { name: tok.name, fromClass: tok.fromClass };
  });
}

/** How many conditioning labels a config accepts: classes, the null class, then the extra tokens. */
export function conditioningLabelCount(config: Pick<UNetConfig, 'numClasses' | 'nullClass' | 'conditioningTokens'>): number {
  return config.numClasses + (config.nullClass ? 1 : 0) + (config.conditioningTokens?.length ?? 0);
}

/** The label of the extra conditioning token `name` (throws naming the known tokens when absent). */
export function conditioningTokenLabel(params: { config: Pick<UNetConfig, 'numClasses' | 'nullClass' | 'conditioningTokens'>; name: string }): number {
  if (!params || typeof params !== 'object' || !params.config) throw new TypeError('conditioningTokenLabel: params.config is required');
  const { config, name } = params;
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`conditioningTokenLabel: params.name must be a non-empty string, got ${JSON.stringify(name)}`);
  const tokens = config.conditioningTokens ?? [];
  const i = tokens.findIndex((t) => t.name === name);
  if (i < 0) {
    throw new RangeError(`conditioningTokenLabel: the model has no conditioning token "${name}" (its tokens: ${tokens.length ? tokens.map((t) => t.name).join(', ') : 'none'})`);
  }
  return config.numClasses + (config.nullClass ? 1 : 0) + i;
}
