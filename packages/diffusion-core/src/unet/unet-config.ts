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
  /**
   * Res-blocks per level on the down path (the up path has one more, as in Stable Diffusion); a
   * list gives one count per level (diffusers' `layers_per_block` as a list).
   */
  layersPerBlock: number | number[];
  /** Groups of every GroupNorm. Every channel count must divide by it. */
  normGroups: number;
  normEps: number;
  /** Levels (0-based) whose res-blocks are followed by a transformer block. */
  attentionLevels: number[];
  /**
   * Attention heads; must divide the channels of every attention level. A list gives one count
   * per level (the mid block uses the last), as diffusers' `attention_head_dim` (which, despite its
   * name, is the number of heads in UNet2DConditionModel).
   */
  attentionHeads: number | number[];
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
  // ---- Options added for diffusers' UNet2DConditionModel (absent: today's behaviour) ----
  /** Levels whose up-path res-blocks are followed by a transformer block (default: attentionLevels). */
  upAttentionLevels?: number[];
  /** GroupNorm eps of the transformer blocks (default normEps; diffusers: 1e-6). */
  transformerNormEps?: number;
  /** Transformer feed-forward: 4x Linear + SiLU (`silu`, default) or diffusers' GEGLU (`geglu`, exact-erf GELU). */
  feedForward?: FeedForwardKind;
  /**
   * diffusers' `use_linear_projection`: the transformer's proj_in/proj_out are stored as Linear
   * [C, C] instead of 1x1 convolutions [C, C, 1, 1] in diffusers files. The same function either way;
   * only the import/export layout depends on it. Default false.
   */
  linearProjection?: boolean;
  /** Sinusoidal timestep embedding with the cosines first (default true; diffusers' `flip_sin_to_cos`). */
  flipSinToCos?: boolean;
  /** diffusers' `freq_shift`: frequencies exp(-ln(10000) i / (half - freqShift)) (default 0). */
  freqShift?: number;
  /** Res-blocks apply the time embedding as GroupNorm scale and shift (diffusers' `resnet_time_scale_shift: scale_shift`); default false (added). */
  timeScaleShift?: boolean;
  /** The mid block's res-blocks divide their output by this (diffusers' `mid_block_scale_factor`, default 1). */
  midBlockScaleFactor?: number;
  /** Maps the input x to 2x - 1 before conv_in (diffusers' `center_input_sample`, default false). */
  centerInputSample?: boolean;
  /** Kernel sizes (odd) of conv_in and conv_out (default 3). */
  convInKernel?: number;
  convOutKernel?: number;
  /** Padding of the stride-2 downsampling convs (default 1); 0 pads one row and column at the bottom/right, as diffusers. */
  downsamplePadding?: number;
  /**
   * Width of the learned class (and token) embeddings when they are mapped to crossAttentionDim by
   * a learned Linear (`class_proj`), as in the feature-alignment paper's surgery of a pretrained
   * U-Net. Absent: the embeddings are crossAttentionDim wide and used directly.
   */
  classEmbeddingDim?: number;
}

export type FeedForwardKind = 'silu' | 'geglu';
export const FEED_FORWARD_KINDS: readonly FeedForwardKind[] = ['silu', 'geglu'];

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

const OPTIONAL_KEYS = [
  'conditioningTokens',
  'upAttentionLevels',
  'transformerNormEps',
  'feedForward',
  'linearProjection',
  'flipSinToCos',
  'freqShift',
  'timeScaleShift',
  'midBlockScaleFactor',
  'centerInputSample',
  'convInKernel',
  'convOutKernel',
  'downsamplePadding',
  'classEmbeddingDim',
] as const;
const KEYS = [...Object.keys(DEFAULT_UNET_CONFIG), ...OPTIONAL_KEYS] as Array<keyof UNetConfig>;

/** Res-blocks on the down path of `level` (the up path has one more). */
export function levelLayers(config: Pick<UNetConfig, 'layersPerBlock'>, level: number): number {
  const l = config.layersPerBlock;
  return Array.isArray(l) ? l[level] : l;
}

/** Attention heads at `level` (the mid block uses the last level's). */
export function levelHeads(config: Pick<UNetConfig, 'attentionHeads'>, level: number): number {
  const h = config.attentionHeads;
  return Array.isArray(h) ? h[level] : h;
}

/** Levels whose up-path res-blocks have a transformer block. */
export function upAttentionLevelsOf(config: Pick<UNetConfig, 'attentionLevels' | 'upAttentionLevels'>): number[] {
  return config.upAttentionLevels ?? config.attentionLevels;
}

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
  posInt('normGroups', c.normGroups);
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
  perLevel('layersPerBlock', c.layersPerBlock, levels);
  perLevel('attentionHeads', c.attentionHeads, levels);
  const factor = 2 ** (levels - 1);
  if (c.sampleSize % factor !== 0) {
    fail('sampleSize', `divisible by 2^(levels-1) = ${factor} for ${levels} levels`, c.sampleSize);
  }
  const checkLevels = (field: 'attentionLevels' | 'upAttentionLevels', list: unknown) => {
    if (!Array.isArray(list)) fail(field, 'an array of level indices', list);
    list.forEach((l, i) => {
      if (!Number.isInteger(l) || l < 0 || l >= levels) {
        fail(`${field}[${i}]`, `a level index in 0..${levels - 1}`, l);
      }
      const heads = levelHeads(c, l);
      if (c.blockChannels[l] % heads !== 0) {
        fail('attentionHeads', `a divisor of blockChannels[${l}] (${c.blockChannels[l]}) at attention level ${l}`, c.attentionHeads);
      }
    });
  };
  checkLevels('attentionLevels', c.attentionLevels);
  if (c.upAttentionLevels !== undefined) checkLevels('upAttentionLevels', c.upAttentionLevels);
  if (typeof c.midBlock !== 'boolean') fail('midBlock', 'a boolean', c.midBlock);
  if (typeof c.midAttention !== 'boolean') fail('midAttention', 'a boolean', c.midAttention);
  if (c.midBlock && c.midAttention && c.blockChannels[levels - 1] % levelHeads(c, levels - 1) !== 0) {
    fail('attentionHeads', `a divisor of the mid block's channels (${c.blockChannels[levels - 1]})`, c.attentionHeads);
  }
  resolveDiffusersOptions(c);
  if (!Number.isInteger(c.numClasses) || c.numClasses < 0) {
    fail('numClasses', 'an integer >= 0 (0 for an unconditional model)', c.numClasses);
  }
  if (typeof c.nullClass !== 'boolean') fail('nullClass', 'a boolean', c.nullClass);
  if (!CLASS_CONDITIONINGS.includes(c.classConditioning)) {
    fail('classConditioning', `one of ${CLASS_CONDITIONINGS.join(', ')}`, c.classConditioning);
  }
  const hasAttention = c.attentionLevels.length > 0 || upAttentionLevelsOf(c).length > 0 || (c.midBlock && c.midAttention);
  if (c.classConditioning === 'cross-attention' && !hasAttention && c.numClasses > 0) {
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
  const copies: Partial<UNetConfig> = {};
  if (Array.isArray(c.layersPerBlock)) copies.layersPerBlock = [...c.layersPerBlock];
  if (Array.isArray(c.attentionHeads)) copies.attentionHeads = [...c.attentionHeads];
  if (c.upAttentionLevels !== undefined) copies.upAttentionLevels = [...c.upAttentionLevels];
  // Optional fields given as undefined are dropped, so that configs (and saved files) stay as they were.
  const out = { ...rest, ...copies, blockChannels: [...c.blockChannels], attentionLevels: [...c.attentionLevels], ...(tokens.length ? { conditioningTokens: tokens } : {}) } as UNetConfig;
  for (const k of OPTIONAL_KEYS) if ((out as unknown as Record<string, unknown>)[k] === undefined) delete (out as unknown as Record<string, unknown>)[k];
  return out;
}

function perLevel(field: string, v: unknown, levels: number): void {
  if (Array.isArray(v)) {
    if (v.length !== levels) fail(field, `a positive integer or a list of ${levels} (one per level of blockChannels)`, v);
    v.forEach((x, i) => posInt(`${field}[${i}]`, x));
  } else {
    posInt(field, v);
  }
}

function resolveDiffusersOptions(c: UNetConfig): void {
  const bool = (f: keyof UNetConfig) => {
    const v = c[f];
    if (v !== undefined && typeof v !== 'boolean') fail(f, 'a boolean', v);
  };
  bool('linearProjection');
  bool('flipSinToCos');
  bool('timeScaleShift');
  bool('centerInputSample');
  if (c.transformerNormEps !== undefined && !(typeof c.transformerNormEps === 'number' && c.transformerNormEps > 0)) {
    fail('transformerNormEps', 'a positive number', c.transformerNormEps);
  }
  if (c.feedForward !== undefined && !FEED_FORWARD_KINDS.includes(c.feedForward)) fail('feedForward', `one of ${FEED_FORWARD_KINDS.join(', ')}`, c.feedForward);
  if (c.freqShift !== undefined && !(typeof c.freqShift === 'number' && Number.isFinite(c.freqShift) && c.freqShift < c.timeEmbeddingDim / 2)) {
    fail('freqShift', `a finite number below timeEmbeddingDim / 2 (${c.timeEmbeddingDim / 2})`, c.freqShift);
  }
  if (c.midBlockScaleFactor !== undefined && !(typeof c.midBlockScaleFactor === 'number' && c.midBlockScaleFactor > 0)) {
    fail('midBlockScaleFactor', 'a positive number', c.midBlockScaleFactor);
  }
  for (const f of ['convInKernel', 'convOutKernel'] as const) {
    const v = c[f];
    if (v !== undefined && !(Number.isInteger(v) && v > 0 && v % 2 === 1)) fail(f, 'an odd positive integer', v);
  }
  if (c.downsamplePadding !== undefined && !(Number.isInteger(c.downsamplePadding) && c.downsamplePadding >= 0 && c.downsamplePadding <= 1)) {
    fail('downsamplePadding', '0 or 1', c.downsamplePadding);
  }
  if (c.classEmbeddingDim !== undefined) posInt('classEmbeddingDim', c.classEmbeddingDim);
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
