/**
 * diffusers' `UNet2DConditionModel` config (its `config.json`, semantics of diffusers v0.16.1) to and
 * from a {@link UNetConfig}. Every key of that config is either mapped onto the model or rejected
 * with an error naming the key, its value and what is supported. Supported: the Stable Diffusion 1.x
 * block family — CrossAttnDownBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn (or none),
 * UpBlock2D, CrossAttnUpBlock2D; Transformer2DModel with conv or linear proj_in/proj_out and one
 * BasicTransformerBlock (self-attention, cross-attention, GEGLU feed-forward); ResnetBlock2D with the
 * time embedding added or as scale/shift; sinusoidal timestep embedding.
 *
 * Keys that diffusers passes only to blocks outside this family (`resnet_skip_time_act`,
 * `resnet_out_scale_factor`, `cross_attention_norm`, `mid_block_only_cross_attention`,
 * `addition_embed_type_num_heads`, and `projection_class_embeddings_input_dim` /
 * `class_embeddings_concat` without a class embedding) change nothing here and are accepted.
 * `upcast_attention` only changes float16 runs; this model computes in float32, so both values are
 * accepted. Keys starting with `_` (`_class_name`, `_diffusers_version`, `_name_or_path`) are
 * metadata; `_class_name` must be UNet2DConditionModel.
 */
import { type UNetConfig, levelHeads, levelLayers, resolveUNetConfig, upAttentionLevelsOf } from './unet-config';

/** The diffusers version whose UNet2DConditionModel semantics this follows (written as `_diffusers_version`). */
export const DIFFUSERS_VERSION = '0.16.1';

export const DIFFUSERS_DOWN_BLOCK_TYPES = ['CrossAttnDownBlock2D', 'DownBlock2D'] as const;
export const DIFFUSERS_UP_BLOCK_TYPES = ['UpBlock2D', 'CrossAttnUpBlock2D'] as const;
export const DIFFUSERS_MID_BLOCK_TYPES = ['UNetMidBlock2DCrossAttn', null] as const;

/** diffusers v0.16.1's defaults for every UNet2DConditionModel argument (what an absent key means). */
export const DIFFUSERS_UNET_DEFAULTS: Readonly<Record<string, unknown>> = {
  sample_size: null,
  in_channels: 4,
  out_channels: 4,
  center_input_sample: false,
  flip_sin_to_cos: true,
  freq_shift: 0,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  mid_block_type: 'UNetMidBlock2DCrossAttn',
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  only_cross_attention: false,
  block_out_channels: [320, 640, 1280, 1280],
  layers_per_block: 2,
  downsample_padding: 1,
  mid_block_scale_factor: 1,
  act_fn: 'silu',
  norm_num_groups: 32,
  norm_eps: 1e-5,
  cross_attention_dim: 1280,
  encoder_hid_dim: null,
  attention_head_dim: 8,
  dual_cross_attention: false,
  use_linear_projection: false,
  class_embed_type: null,
  addition_embed_type: null,
  num_class_embeds: null,
  upcast_attention: false,
  resnet_time_scale_shift: 'default',
  resnet_skip_time_act: false,
  resnet_out_scale_factor: 1.0,
  time_embedding_type: 'positional',
  time_embedding_dim: null,
  time_embedding_act_fn: null,
  timestep_post_act: null,
  time_cond_proj_dim: null,
  conv_in_kernel: 3,
  conv_out_kernel: 3,
  projection_class_embeddings_input_dim: null,
  class_embeddings_concat: false,
  mid_block_only_cross_attention: null,
  cross_attention_norm: null,
  addition_embed_type_num_heads: 64,
};

/**
 * Keys added by later diffusers versions, accepted at the values that keep the v0.16.1 function
 * (hub configs saved by newer diffusers carry them).
 */
const LATER_KEYS: Record<string, string> = {
  num_attention_heads: 'null, or heads per block (then attention_head_dim is ignored, as in later diffusers)',
  transformer_layers_per_block: '1 (one BasicTransformerBlock per Transformer2DModel)',
  reverse_transformer_layers_per_block: 'null',
  dropout: '0',
  attention_type: '"default"',
  addition_time_embed_dim: 'null',
  encoder_hid_dim_type: 'null',
};

export class DiffusersConfigError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'DiffusersConfigError';
  }
}

const show = (v: unknown) => JSON.stringify(v);

function reject(key: string, value: unknown, supported: string): never {
  throw new DiffusersConfigError(`diffusers config: ${key} = ${show(value)} is not supported; supported: ${supported}`);
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isPosInt = (v: unknown): v is number => isInt(v) && v > 0;

/** An int or a list of `n` ints: the per-block list (a number repeats). */
function perBlock(key: string, v: unknown, n: number): number[] {
  if (isPosInt(v)) return new Array(n).fill(v);
  if (Array.isArray(v) && v.length === n && v.every(isPosInt)) return v as number[];
  return reject(key, v, `a positive integer or a list of ${n} positive integers (one per down block)`);
}

/**
 * The {@link UNetConfig} of a diffusers UNet2DConditionModel config (a parsed `config.json`):
 * unconditional (numClasses 0; conditioning comes as `encoderHiddenStates`), weights named by
 * the model's own names (see `diffusersWeightNames`). Throws a {@link DiffusersConfigError} naming
 * the first unsupported key.
 */
export function unetConfigFromDiffusers(raw: unknown): UNetConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DiffusersConfigError(`diffusers config: expected a JSON object (config.json of a UNet2DConditionModel), got ${show(raw)}`);
  }
  const given = raw as Record<string, unknown>;
  for (const k of Object.keys(given)) {
    if (k.startsWith('_')) continue;
    if (!(k in DIFFUSERS_UNET_DEFAULTS) && !(k in LATER_KEYS)) {
      throw new DiffusersConfigError(
        `diffusers config: unsupported key "${k}" (value ${show(given[k])}); supported keys are UNet2DConditionModel's arguments in diffusers ${DIFFUSERS_VERSION}: ${Object.keys(DIFFUSERS_UNET_DEFAULTS).join(', ')} (and, at neutral values, ${Object.keys(LATER_KEYS).join(', ')})`,
      );
    }
  }
  if ('_class_name' in given && given._class_name !== 'UNet2DConditionModel') {
    reject('_class_name', given._class_name, '"UNet2DConditionModel"');
  }
  const c = { ...DIFFUSERS_UNET_DEFAULTS, ...given } as Record<string, unknown>;
  const get = (k: string) => c[k];

  // Keys that must keep their neutral value.
  const mustBe = (k: string, ok: (v: unknown) => boolean, supported: string) => {
    if (k in c && !ok(get(k))) reject(k, get(k), supported);
  };
  const isNull = (v: unknown) => v === null || v === undefined;
  mustBe('encoder_hid_dim', isNull, 'null (no encoder_hid_proj)');
  mustBe('class_embed_type', isNull, 'null (class labels: use the class-conditioning surgery, numClasses, of loadDiffusersUNet)');
  mustBe('num_class_embeds', isNull, 'null (class labels: use the class-conditioning surgery, numClasses, of loadDiffusersUNet)');
  mustBe('addition_embed_type', isNull, 'null');
  mustBe('time_embedding_type', (v) => v === 'positional', '"positional"');
  mustBe('time_embedding_act_fn', isNull, 'null');
  mustBe('timestep_post_act', isNull, 'null');
  mustBe('time_cond_proj_dim', isNull, 'null');
  mustBe('dual_cross_attention', (v) => v === false, 'false');
  mustBe('only_cross_attention', (v) => v === false || (Array.isArray(v) && v.every((x) => x === false)), 'false (or a list of false)');
  mustBe('act_fn', (v) => v === 'silu' || v === 'swish', '"silu" (or "swish")');
  mustBe('norm_num_groups', isPosInt, 'a positive integer (null, no output GroupNorm, is not supported)');
  mustBe('norm_eps', (v) => typeof v === 'number' && v > 0, 'a positive number');
  mustBe('upcast_attention', (v) => typeof v === 'boolean', 'true or false (no effect in float32)');
  mustBe('use_linear_projection', (v) => typeof v === 'boolean', 'true or false');
  mustBe('center_input_sample', (v) => typeof v === 'boolean', 'true or false');
  mustBe('flip_sin_to_cos', (v) => typeof v === 'boolean', 'true or false');
  mustBe('resnet_time_scale_shift', (v) => v === 'default' || v === 'scale_shift', '"default" or "scale_shift"');
  mustBe('resnet_skip_time_act', (v) => typeof v === 'boolean', 'true or false (no effect on the supported blocks)');
  mustBe('resnet_out_scale_factor', (v) => typeof v === 'number', 'a number (no effect on the supported blocks)');
  mustBe('cross_attention_norm', (v) => isNull(v) || typeof v === 'string', 'null or a string (no effect on the supported blocks)');
  mustBe('mid_block_only_cross_attention', (v) => isNull(v) || typeof v === 'boolean', 'null, true or false (no effect on UNetMidBlock2DCrossAttn)');
  mustBe('addition_embed_type_num_heads', (v) => isNull(v) || isInt(v), 'an integer (unused without addition_embed_type)');
  mustBe('projection_class_embeddings_input_dim', (v) => isNull(v) || isInt(v), 'null or an integer (unused without class_embed_type)');
  mustBe('class_embeddings_concat', (v) => typeof v === 'boolean', 'true or false (unused without a class embedding)');
  mustBe('reverse_transformer_layers_per_block', isNull, LATER_KEYS.reverse_transformer_layers_per_block);
  mustBe('dropout', (v) => v === 0, LATER_KEYS.dropout);
  mustBe('attention_type', (v) => v === 'default', LATER_KEYS.attention_type);
  mustBe('addition_time_embed_dim', isNull, LATER_KEYS.addition_time_embed_dim);
  mustBe('encoder_hid_dim_type', isNull, LATER_KEYS.encoder_hid_dim_type);

  const channels = get('block_out_channels');
  if (!Array.isArray(channels) || channels.length === 0 || !channels.every(isPosInt)) {
    reject('block_out_channels', channels, 'a non-empty list of positive integers');
  }
  const n = channels.length;
  const downTypes = get('down_block_types');
  const upTypes = get('up_block_types');
  if (!Array.isArray(downTypes) || downTypes.length !== n) reject('down_block_types', downTypes, `a list of ${n} block types (one per block_out_channels entry)`);
  if (!Array.isArray(upTypes) || upTypes.length !== n) reject('up_block_types', upTypes, `a list of ${n} block types (one per block_out_channels entry)`);
  // diffusers strips a "UNetRes" prefix from block type names.
  const strip = (t: unknown) => (typeof t === 'string' && t.startsWith('UNetRes') ? t.slice(7) : t);
  const attentionLevels: number[] = [];
  downTypes.forEach((t, i) => {
    const s = strip(t);
    if (!(DIFFUSERS_DOWN_BLOCK_TYPES as readonly unknown[]).includes(s)) reject(`down_block_types[${i}]`, t, DIFFUSERS_DOWN_BLOCK_TYPES.join(', '));
    if (s === 'CrossAttnDownBlock2D') attentionLevels.push(i);
  });
  const upAttentionLevels: number[] = [];
  upTypes.forEach((t, i) => {
    const s = strip(t);
    if (!(DIFFUSERS_UP_BLOCK_TYPES as readonly unknown[]).includes(s)) reject(`up_block_types[${i}]`, t, DIFFUSERS_UP_BLOCK_TYPES.join(', '));
    if (s === 'CrossAttnUpBlock2D') upAttentionLevels.push(n - 1 - i);
  });
  upAttentionLevels.sort((a, b) => a - b);
  const mid = get('mid_block_type');
  if (!(DIFFUSERS_MID_BLOCK_TYPES as readonly unknown[]).includes(mid ?? null)) reject('mid_block_type', mid, 'UNetMidBlock2DCrossAttn or null');

  const layers = perBlock('layers_per_block', get('layers_per_block'), n);
  const numHeads = get('num_attention_heads');
  const heads = isNull(numHeads) ? perBlock('attention_head_dim', get('attention_head_dim'), n) : perBlock('num_attention_heads', numHeads, n);
  const cross = perBlock('cross_attention_dim', get('cross_attention_dim'), n);
  if (cross.some((d) => d !== cross[0])) {
    reject('cross_attention_dim', get('cross_attention_dim'), 'one width for every block (a list must repeat one value: every block attends to the same encoder_hidden_states)');
  }
  const tl = get('transformer_layers_per_block');
  if ('transformer_layers_per_block' in c && !(tl === 1 || (Array.isArray(tl) && tl.every((x) => x === 1)))) {
    reject('transformer_layers_per_block', tl, LATER_KEYS.transformer_layers_per_block);
  }
  for (const k of ['in_channels', 'out_channels'] as const) if (!isPosInt(get(k))) reject(k, get(k), 'a positive integer');
  for (const k of ['conv_in_kernel', 'conv_out_kernel'] as const) {
    const v = get(k);
    if (!(isPosInt(v) && v % 2 === 1)) reject(k, v, 'an odd positive integer');
  }
  const dp = get('downsample_padding');
  if (dp !== 0 && dp !== 1) reject('downsample_padding', dp, '0 or 1');
  const ms = get('mid_block_scale_factor');
  if (!(typeof ms === 'number' && ms > 0)) reject('mid_block_scale_factor', ms, 'a positive number');
  const fs = get('freq_shift');
  if (typeof fs !== 'number' || !Number.isFinite(fs)) reject('freq_shift', fs, 'a number');
  const ted = get('time_embedding_dim');
  if (!isNull(ted) && !isPosInt(ted)) reject('time_embedding_dim', ted, 'null or a positive integer');
  if (channels[0] % 2 !== 0) reject('block_out_channels', channels, 'an even block_out_channels[0] (the sinusoidal timestep embedding width)');
  const groups = get('norm_num_groups') as number;
  channels.forEach((ch: number, i: number) => {
    if (ch % groups !== 0) reject('norm_num_groups', groups, `a divisor of every block_out_channels entry (${ch} at index ${i})`);
  });
  const attnLevels = new Set([...attentionLevels, ...upAttentionLevels]);
  for (const l of attnLevels) {
    if (channels[l] % heads[l] !== 0) reject(isNull(numHeads) ? 'attention_head_dim' : 'num_attention_heads', isNull(numHeads) ? get('attention_head_dim') : numHeads, `a number of heads dividing the channels of every attention block (${channels[l]} at block ${l}); in UNet2DConditionModel attention_head_dim is the number of heads`);
  }
  if (mid !== null && mid !== undefined && channels[n - 1] % heads[n - 1] !== 0) {
    reject('attention_head_dim', get('attention_head_dim'), `a number of heads dividing the mid block's channels (${channels[n - 1]})`);
  }
  let sampleSize = get('sample_size');
  if (Array.isArray(sampleSize)) {
    if (sampleSize.length !== 2 || sampleSize[0] !== sampleSize[1]) reject('sample_size', sampleSize, 'an integer or a square [size, size]');
    sampleSize = sampleSize[0];
  }
  if (!isNull(sampleSize) && !isPosInt(sampleSize)) reject('sample_size', sampleSize, 'null, a positive integer or a square [size, size]');
  const factor = 2 ** (n - 1);
  // sample_size is only a default image size in diffusers; fad needs one, divisible by 2^(blocks-1).
  const size = isPosInt(sampleSize) && sampleSize % factor === 0 ? sampleSize : Math.max(factor, 8 * factor);

  const sameLevels = upAttentionLevels.length === attentionLevels.length && upAttentionLevels.every((l, i) => l === attentionLevels[i]);
  const uniform = (a: number[]) => (a.every((x) => x === a[0]) ? a[0] : [...a]);
  const cfg: Partial<UNetConfig> = {
    sampleSize: size,
    inChannels: get('in_channels') as number,
    outChannels: get('out_channels') as number,
    blockChannels: [...channels],
    layersPerBlock: uniform(layers),
    normGroups: groups,
    normEps: get('norm_eps') as number,
    attentionLevels,
    ...(sameLevels ? {} : { upAttentionLevels }),
    attentionHeads: uniform(heads),
    midBlock: mid !== null && mid !== undefined,
    midAttention: true,
    timeEmbeddingDim: channels[0],
    timeEmbeddingHiddenDim: isPosInt(ted) ? ted : 4 * channels[0],
    numClasses: 0,
    nullClass: false,
    crossAttentionDim: cross[0],
    classConditioning: 'cross-attention',
    transformerNormEps: 1e-6,
    feedForward: 'geglu',
    linearProjection: get('use_linear_projection') as boolean,
    flipSinToCos: get('flip_sin_to_cos') as boolean,
    freqShift: fs,
    ...(get('resnet_time_scale_shift') === 'scale_shift' ? { timeScaleShift: true } : {}),
    ...(ms !== 1 ? { midBlockScaleFactor: ms } : {}),
    ...(get('center_input_sample') ? { centerInputSample: true } : {}),
    ...(get('conv_in_kernel') !== 3 ? { convInKernel: get('conv_in_kernel') as number } : {}),
    ...(get('conv_out_kernel') !== 3 ? { convOutKernel: get('conv_out_kernel') as number } : {}),
    ...(dp !== 1 ? { downsamplePadding: dp as number } : {}),
  };
  try {
    return resolveUNetConfig(cfg);
  } catch (e) {
    throw new DiffusersConfigError(`diffusers config: ${(e as Error).message}`);
  }
}

/**
 * The diffusers UNet2DConditionModel config (every v0.16.1 key, sorted as diffusers writes them) of
 * a U-Net, for `config.json`. Throws naming the field when the model has something diffusers'
 * UNet2DConditionModel cannot express (a SiLU feed-forward, class labels added to the time
 * embedding, a transformer GroupNorm eps other than 1e-6, a mid block without attention, ...).
 * Class-label and token embeddings (fad's conditioning) are not part of it; see saveDiffusersUNet.
 */
export function diffusersConfigFromUNet(config: UNetConfig): Record<string, unknown> {
  const c = resolveUNetConfig(config);
  const no = (field: string, value: unknown, why: string): never => {
    throw new DiffusersConfigError(`diffusers export: UNetConfig.${field} = ${show(value)} has no UNet2DConditionModel equivalent (${why})`);
  };
  if ((c.feedForward ?? 'silu') !== 'geglu') no('feedForward', c.feedForward ?? 'silu', 'BasicTransformerBlock uses the GEGLU feed-forward: "geglu"');
  if ((c.transformerNormEps ?? c.normEps) !== 1e-6) no('transformerNormEps', c.transformerNormEps ?? c.normEps, 'Transformer2DModel\'s GroupNorm eps is 1e-6');
  if (c.classConditioning !== 'cross-attention') no('classConditioning', c.classConditioning, 'only "cross-attention" (labels as encoder_hidden_states)');
  if (c.timeEmbeddingDim !== c.blockChannels[0]) no('timeEmbeddingDim', c.timeEmbeddingDim, `the sinusoidal embedding is block_out_channels[0] = ${c.blockChannels[0]} wide`);
  if (c.midBlock && !c.midAttention) no('midAttention', false, 'UNetMidBlock2DCrossAttn always has attention');
  const n = c.blockChannels.length;
  const down = new Set(c.attentionLevels);
  const up = new Set(upAttentionLevelsOf(c));
  const layers = c.blockChannels.map((_, l) => levelLayers(c, l));
  const heads = c.blockChannels.map((_, l) => levelHeads(c, l));
  const out: Record<string, unknown> = {
    _class_name: 'UNet2DConditionModel',
    _diffusers_version: DIFFUSERS_VERSION,
    act_fn: 'silu',
    addition_embed_type: null,
    addition_embed_type_num_heads: 64,
    attention_head_dim: heads.every((h) => h === heads[0]) ? heads[0] : heads,
    block_out_channels: [...c.blockChannels],
    center_input_sample: c.centerInputSample ?? false,
    class_embed_type: null,
    class_embeddings_concat: false,
    conv_in_kernel: c.convInKernel ?? 3,
    conv_out_kernel: c.convOutKernel ?? 3,
    cross_attention_dim: c.crossAttentionDim,
    cross_attention_norm: null,
    down_block_types: c.blockChannels.map((_, l) => (down.has(l) ? 'CrossAttnDownBlock2D' : 'DownBlock2D')),
    downsample_padding: c.downsamplePadding ?? 1,
    dual_cross_attention: false,
    encoder_hid_dim: null,
    flip_sin_to_cos: c.flipSinToCos ?? true,
    freq_shift: c.freqShift ?? 0,
    in_channels: c.inChannels,
    layers_per_block: layers.every((x) => x === layers[0]) ? layers[0] : layers,
    mid_block_only_cross_attention: null,
    mid_block_scale_factor: c.midBlockScaleFactor ?? 1,
    mid_block_type: c.midBlock ? 'UNetMidBlock2DCrossAttn' : null,
    norm_eps: c.normEps,
    norm_num_groups: c.normGroups,
    num_class_embeds: null,
    only_cross_attention: false,
    out_channels: c.outChannels,
    projection_class_embeddings_input_dim: null,
    resnet_out_scale_factor: 1.0,
    resnet_skip_time_act: false,
    resnet_time_scale_shift: c.timeScaleShift ? 'scale_shift' : 'default',
    sample_size: c.sampleSize,
    time_cond_proj_dim: null,
    time_embedding_act_fn: null,
    time_embedding_dim: c.timeEmbeddingHiddenDim === 4 * c.blockChannels[0] ? null : c.timeEmbeddingHiddenDim,
    time_embedding_type: 'positional',
    timestep_post_act: null,
    up_block_types: Array.from({ length: n }, (_, i) => (up.has(n - 1 - i) ? 'CrossAttnUpBlock2D' : 'UpBlock2D')),
    upcast_attention: false,
    use_linear_projection: c.linearProjection ?? false,
  };
  return out;
}
