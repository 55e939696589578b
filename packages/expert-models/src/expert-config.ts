/**
 * Expert architectures as plain JSON-able configs (saved in checkpoints), the built-in presets and
 * the validation that turns a partial config into a complete one.
 */
import { assertInt, assertKnownKeys, assertNumber, assertObject, assertOneOf, show } from './validate';

/** What the expert expects as input, and how it normalises it. */
export interface InputSpec {
  /** Height and width in pixels (square images). */
  size: number;
  /** Number of channels: 1 (grayscale) or 3 (RGB), or any positive count. */
  channels: number;
  /** Per-channel mean subtracted after scaling (length `channels`). */
  mean: number[];
  /** Per-channel standard deviation divided by (length `channels`, all > 0). */
  std: number[];
  /**
   * The value range images must be in, `[min, max]`, e.g. `[0, 1]`. The expert normalises
   * internally with `(x - mean) / std`, so callers only need to bring images into this range.
   */
  range: [number, number];
}

/** The classifier on top of the pooled features. */
export type HeadConfig =
  /** One linear layer `featureDim -> numClasses` (torchvision's `fc`). */
  | { type: 'linear' }
  /** `featureDim -> hiddenDim -> ReLU -> numClasses`; the paper's expert uses hiddenDim 256. */
  | { type: 'mlp'; hiddenDim: number };

/** ResNet (He et al. 2016) in torchvision's layout, v1.5 (stride on the 3x3 convolution). */
export interface ResNetConfig {
  arch: 'resnet';
  /** `'basic'` (two 3x3, ResNet18/34) or `'bottleneck'` (1x1-3x3-1x1, expansion 4, ResNet50+). */
  block: 'basic' | 'bottleneck';
  /** Blocks per stage, e.g. `[3, 4, 6, 3]`; stage i has `baseWidth * 2^i` planes, stride 2 from stage 2 on. */
  layers: number[];
  /** Planes of the stem and first stage (64 in torchvision). */
  baseWidth: number;
  /**
   * torchvision's `width_per_group`: a bottleneck's inner (1x1-reduce and 3x3) width is
   * `floor(planes * widthPerGroup / 64)`. 64 (absent) in ResNet50/101/152, 128 in
   * `wide_resnet50_2`; only bottlenecks accept another value. Present in a resolved config only
   * when it is not 64, so configs written before it existed are unchanged.
   */
  widthPerGroup?: number;
  numClasses: number;
  head: HeadConfig;
  input: InputSpec;
}

/** Vision Transformer (Dosovitskiy et al. 2021): pre-LN encoder, GELU MLP, learned position embeddings. */
export interface ViTConfig {
  arch: 'vit';
  /** Side of the square patches; must divide `input.size`. */
  patchSize: number;
  /** Number of encoder blocks. */
  depth: number;
  /** Attention heads; must divide `width`. */
  numHeads: number;
  /** Token dimension (hidden size). */
  width: number;
  /** MLP hidden size = `width * mlpRatio` (must be an integer). */
  mlpRatio: number;
  /** `'cls'`: a learned class token is prepended and its final state is the feature; `'mean'`: mean of the patch tokens. */
  pooling: 'cls' | 'mean';
  /** Epsilon of every LayerNorm (torchvision: 1e-6). */
  layerNormEps: number;
  numClasses: number;
  head: HeadConfig;
  input: InputSpec;
}

/** Any expert architecture. */
export type ExpertConfig = ResNetConfig | ViTConfig;

/** Input fields as accepted by {@link resolveExpertConfig} (all optional except `size`). */
export interface InputSpecInput {
  size?: number;
  channels?: number;
  mean?: readonly number[];
  std?: readonly number[];
  range?: readonly [number, number];
}

/** Accepted by {@link resolveExpertConfig}: architecture fields required, `head`/`input` parts optional. */
export type ExpertConfigInput =
  | (Omit<ResNetConfig, 'head' | 'input' | 'baseWidth' | 'layers'> & {
      layers: readonly number[];
      baseWidth?: number;
      head?: HeadConfig;
      input?: InputSpecInput;
    })
  | (Omit<ViTConfig, 'head' | 'input' | 'pooling' | 'layerNormEps' | 'mlpRatio'> & {
      pooling?: ViTConfig['pooling'];
      layerNormEps?: number;
      mlpRatio?: number;
      head?: HeadConfig;
      input?: InputSpecInput;
    });

/** The architecture names. */
export const EXPERT_ARCHS = ['resnet', 'vit'] as const;
/** The head types. */
export const HEAD_TYPES = ['linear', 'mlp'] as const;

const IMAGENET_INPUT: InputSpec = { size: 224, channels: 3, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], range: [0, 1] };
/** Kather 2016 as the project uses it: grayscale 64x64 in [0, 1], normalised to about [-1, 1]. */
const KATHER_INPUT: InputSpec = { size: 64, channels: 1, mean: [0.5], std: [0.5], range: [0, 1] };

/** The 8 Kather 2016 tissue classes, in the dataset's folder order. */
export const KATHER_CLASS_NAMES: readonly string[] = Object.freeze([
  'tumor',
  'stroma',
  'complex',
  'lympho',
  'debris',
  'mucosa',
  'adipose',
  'empty',
]);

function resnet(block: ResNetConfig['block'], layers: number[], extra: Partial<ResNetConfig> = {}): ResNetConfig {
  return { arch: 'resnet', block, layers, baseWidth: 64, numClasses: 1000, head: { type: 'linear' }, input: IMAGENET_INPUT, ...extra };
}

/**
 * Built-in configurations. ImageNet ones match torchvision exactly (parameter counts are tested):
 * resnet18 11,689,512; resnet34 21,797,672; resnet50 25,557,032; vit-b16 86,567,656.
 * `resnet50-kather` is the project's reference expert (1-channel stem, 8 classes, 64x64,
 * 23,518,152 parameters); `resnet50-kather-paper` has the paper's 2048-256-8 head.
 */
export const EXPERT_PRESETS = {
  resnet18: resnet('basic', [2, 2, 2, 2]),
  resnet34: resnet('basic', [3, 4, 6, 3]),
  resnet50: resnet('bottleneck', [3, 4, 6, 3]),
  'resnet50-kather': resnet('bottleneck', [3, 4, 6, 3], { numClasses: 8, input: KATHER_INPUT }),
  'resnet50-kather-paper': resnet('bottleneck', [3, 4, 6, 3], { numClasses: 8, head: { type: 'mlp', hiddenDim: 256 }, input: KATHER_INPUT }),
  'resnet18-kather': resnet('basic', [2, 2, 2, 2], { numClasses: 8, input: KATHER_INPUT }),
  'vit-b16': {
    arch: 'vit', patchSize: 16, depth: 12, numHeads: 12, width: 768, mlpRatio: 4, pooling: 'cls', layerNormEps: 1e-6,
    numClasses: 1000, head: { type: 'linear' }, input: IMAGENET_INPUT,
  } satisfies ViTConfig,
  /** A small ViT for 64x64 grayscale: 8x8 patches (64 tokens), width 192, 6 blocks, 3 heads. */
  'vit-small-kather': {
    arch: 'vit', patchSize: 8, depth: 6, numHeads: 3, width: 192, mlpRatio: 4, pooling: 'cls', layerNormEps: 1e-6,
    numClasses: 8, head: { type: 'linear' }, input: KATHER_INPUT,
  } satisfies ViTConfig,
} satisfies Record<string, ExpertConfig>;

/** Names of {@link EXPERT_PRESETS}. */
export type ExpertPresetName = keyof typeof EXPERT_PRESETS;

const RESNET_KEYS = ['arch', 'block', 'layers', 'baseWidth', 'widthPerGroup', 'numClasses', 'head', 'input'];
const VIT_KEYS = ['arch', 'patchSize', 'depth', 'numHeads', 'width', 'mlpRatio', 'pooling', 'layerNormEps', 'numClasses', 'head', 'input'];
const INPUT_KEYS = ['size', 'channels', 'mean', 'std', 'range'];

function resolveHead(fn: string, head: unknown): HeadConfig {
  if (head === undefined) return { type: 'linear' };
  assertObject(fn, 'head', head);
  assertOneOf(fn, 'head.type', head.type, HEAD_TYPES);
  if (head.type === 'linear') {
    assertKnownKeys(fn, 'head', head, ['type']);
    return { type: 'linear' };
  }
  assertKnownKeys(fn, 'head', head, ['type', 'hiddenDim']);
  assertInt(fn, 'head.hiddenDim', head.hiddenDim, 1);
  return { type: 'mlp', hiddenDim: head.hiddenDim };
}

function resolveInput(fn: string, input: unknown, defaults: { size?: number }): InputSpec {
  const given = input ?? {};
  assertObject(fn, 'input', given);
  assertKnownKeys(fn, 'input', given, INPUT_KEYS);
  const size = given.size ?? defaults.size;
  if (size === undefined) throw new RangeError(`${fn}: input.size is required (an integer >= 1, the image side in pixels), got undefined`);
  assertInt(fn, 'input.size', size, 1);
  const channels = given.channels ?? 1;
  assertInt(fn, 'input.channels', channels, 1);
  const perChannel = (field: 'mean' | 'std', fallback: number): number[] => {
    const v = given[field] ?? new Array<number>(channels).fill(fallback);
    if (!Array.isArray(v) || v.length !== channels) {
      throw new RangeError(`${fn}: input.${field} must be an array of ${channels} numbers (one per channel), got ${show(v)}`);
    }
    v.forEach((x, i) => assertNumber(fn, `input.${field}[${i}]`, x, field === 'std' ? { min: 0, minExclusive: true } : {}));
    return v.slice() as number[];
  };
  const mean = perChannel('mean', 0);
  const std = perChannel('std', 1);
  const range = given.range ?? [0, 1];
  if (!Array.isArray(range) || range.length !== 2 || !range.every((r) => typeof r === 'number' && Number.isFinite(r)) || !(range[1] > range[0])) {
    throw new RangeError(`${fn}: input.range must be [min, max] with finite min < max, got ${show(range)}`);
  }
  return { size, channels, mean, std, range: [range[0], range[1]] };
}

/**
 * Validates an expert config and fills defaults: `head` `{type: 'linear'}`; `input.channels` 1,
 * `input.mean` 0 and `input.std` 1 per channel, `input.range` [0, 1] (`input.size` is required);
 * ResNet `baseWidth` 64 (`widthPerGroup` 64, left out); ViT `mlpRatio` 4, `pooling` 'cls', `layerNormEps` 1e-6. Unknown fields are
 * rejected. Returns a new object; the input is not modified.
 */
export function resolveExpertConfig(config: ExpertConfigInput): ExpertConfig {
  const fn = 'resolveExpertConfig';
  assertObject(fn, 'config', config);
  assertOneOf(fn, 'config.arch', config.arch, EXPERT_ARCHS);
  if (config.arch === 'resnet') {
    assertKnownKeys(fn, 'config', config, RESNET_KEYS);
    assertOneOf(fn, 'config.block', config.block, ['basic', 'bottleneck'] as const);
    if (!Array.isArray(config.layers) || config.layers.length === 0) {
      throw new RangeError(`${fn}: config.layers must be a non-empty array of block counts per stage, e.g. [3,4,6,3], got ${show(config.layers)}`);
    }
    config.layers.forEach((n, i) => assertInt(fn, `config.layers[${i}]`, n, 1));
    const baseWidth = config.baseWidth ?? 64;
    assertInt(fn, 'config.baseWidth', baseWidth, 1);
    const widthPerGroup = config.widthPerGroup ?? 64;
    assertInt(fn, 'config.widthPerGroup', widthPerGroup, 1);
    if (config.block === 'basic' && widthPerGroup !== 64) {
      throw new RangeError(`${fn}: config.widthPerGroup must be 64 (or absent) with block "basic" (as in torchvision's BasicBlock); only "bottleneck" accepts another, got ${widthPerGroup}`);
    }
    if (Math.floor(baseWidth * (widthPerGroup / 64)) < 1) {
      throw new RangeError(`${fn}: config.widthPerGroup ${widthPerGroup} with config.baseWidth ${baseWidth} gives an inner bottleneck width of 0 (floor(baseWidth * widthPerGroup / 64) must be >= 1)`);
    }
    assertInt(fn, 'config.numClasses', config.numClasses, 1);
    return {
      arch: 'resnet',
      block: config.block,
      layers: config.layers.slice(),
      baseWidth,
      ...(widthPerGroup !== 64 ? { widthPerGroup } : {}),
      numClasses: config.numClasses,
      head: resolveHead(fn, config.head),
      input: resolveInput(fn, config.input, {}),
    };
  }
  assertKnownKeys(fn, 'config', config, VIT_KEYS);
  const { patchSize, depth, numHeads, width, mlpRatio = 4, pooling = 'cls', layerNormEps = 1e-6, numClasses } = config;
  assertInt(fn, 'config.patchSize', patchSize, 1);
  assertInt(fn, 'config.depth', depth, 1);
  assertInt(fn, 'config.numHeads', numHeads, 1);
  assertInt(fn, 'config.width', width, 1);
  if (width % numHeads !== 0) {
    throw new RangeError(`${fn}: config.width (${width}) must be divisible by config.numHeads (${numHeads})`);
  }
  assertNumber(fn, 'config.mlpRatio', mlpRatio, { min: 0, minExclusive: true });
  if (!Number.isInteger(width * mlpRatio)) {
    throw new RangeError(`${fn}: config.width * config.mlpRatio must be an integer (the MLP size), got ${width} * ${mlpRatio} = ${width * mlpRatio}`);
  }
  assertOneOf(fn, 'config.pooling', pooling, ['cls', 'mean'] as const);
  assertNumber(fn, 'config.layerNormEps', layerNormEps, { min: 0, minExclusive: true });
  assertInt(fn, 'config.numClasses', numClasses, 1);
  const input = resolveInput(fn, config.input, {});
  if (input.size % patchSize !== 0) {
    throw new RangeError(`${fn}: config.patchSize (${patchSize}) must divide input.size (${input.size})`);
  }
  return { arch: 'vit', patchSize, depth, numHeads, width, mlpRatio, pooling, layerNormEps, numClasses, head: resolveHead(fn, config.head), input };
}

/** Fields that may be overridden on a preset; `input` is merged field by field. */
export type ExpertConfigOverrides = Partial<Omit<ResNetConfig, 'arch' | 'input' | 'layers'>> &
  Partial<Omit<ViTConfig, 'arch' | 'input'>> & { layers?: readonly number[]; input?: InputSpecInput };

/** Parameters of {@link presetConfig}. */
export interface PresetConfigParams {
  /** One of {@link EXPERT_PRESETS}. */
  name: ExpertPresetName;
  /** Changes to the preset, e.g. `{ numClasses: 8, input: { size: 64, channels: 1 } }`. */
  overrides?: ExpertConfigOverrides;
}

/**
 * A preset with overrides, validated. When `input.channels` changes and `mean`/`std` are not given,
 * they are reset to the preset's first-channel value repeated (e.g. ImageNet RGB -> 1 channel uses
 * mean 0.485, std 0.229).
 */
export function presetConfig(params: PresetConfigParams): ExpertConfig {
  const fn = 'presetConfig';
  assertObject(fn, 'params', params);
  assertKnownKeys(fn, '', params, ['name', 'overrides']);
  const names = Object.keys(EXPERT_PRESETS) as ExpertPresetName[];
  assertOneOf(fn, 'name', params.name, names);
  const base = EXPERT_PRESETS[params.name] as ExpertConfig;
  const overrides = params.overrides ?? {};
  assertObject(fn, 'overrides', overrides);
  const input: InputSpecInput = { ...base.input, ...(overrides.input ?? {}) };
  if (overrides.input?.channels !== undefined && overrides.input.channels !== base.input.channels) {
    const c = overrides.input.channels;
    if (overrides.input.mean === undefined) input.mean = new Array<number>(c).fill(base.input.mean[0]);
    if (overrides.input.std === undefined) input.std = new Array<number>(c).fill(base.input.std[0]);
  }
  if ('arch' in overrides) throw new RangeError(`${fn}: overrides.arch cannot be changed (preset ${params.name} is ${base.arch})`);
  return resolveExpertConfig({ ...base, ...overrides, input } as ExpertConfigInput);
}

/** The dimension of the pooled features: the last stage's output channels (ResNet) or `width` (ViT). */
export function featureDimOf(config: ExpertConfig): number {
  if (config.arch === 'vit') return config.width;
  const expansion = config.block === 'bottleneck' ? 4 : 1;
  return config.baseWidth * 2 ** (config.layers.length - 1) * expansion;
}
