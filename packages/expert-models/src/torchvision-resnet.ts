/**
 * torchvision ResNet state dicts in and out: `loadTorchvisionResNet` builds a {@link ResNet} expert
 * from `torchvision.models.resnet*(...).state_dict()` saved as safetensors (or a hub file in the
 * same names), and `exportTorchvisionResNet` writes an expert back in torchvision's names and
 * layouts, so `model.load_state_dict(safetensors.torch.load_file(path))` reads it.
 *
 * fad's ResNet already uses torchvision's parameter names (`conv1.weight`, `bn1.running_mean`,
 * `layer2.0.downsample.0.weight`, `fc.weight`, ...); only layouts differ: Conv2d OIHW
 * `[out, in, kh, kw]` <-> HWIO `[kh, kw, in, out]`, Linear `[out, in]` <-> `[in, out]`. BatchNorm
 * running statistics are loaded with the weights; `num_batches_tracked` (an integer counter that
 * no computation reads) is skipped on import and left out on export (PyTorch's BatchNorm fills it
 * in when it is missing).
 *
 * The paper's surgery as options: a 1-channel `conv1` (the RGB kernels summed over their input
 * channels, or a new seeded Kaiming-normal one) and a new classifier head (seeded, linear or
 * `hidden`-unit MLP) for another number of classes.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Generator, encodeSafetensors } from '@fad/diffusion-core';
import type { SafetensorsTensor } from '@fad/diffusion-core';
import { ClassifierHead } from './classifier-head';
import type { HeadConfig, InputSpecInput, ResNetConfig } from './expert-config';
import { ResNet } from './resnet';
import { type TorchStateDict, type TorchStateTensor, decodeTorchStateDict } from './torch-state-dict';
import { assertInt, assertKnownKeys, assertObject, assertOneOf, formatShape, show } from './validate';
import { kaimingNormalFanOut } from './weight-init';

/** torchvision's ResNet constructors this loader knows by name (`torchvision.models.<name>`). */
export const TORCHVISION_RESNET_ARCHS = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2], widthPerGroup: 64 },
  resnet34: { block: 'basic', layers: [3, 4, 6, 3], widthPerGroup: 64 },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3], widthPerGroup: 64 },
  resnet101: { block: 'bottleneck', layers: [3, 4, 23, 3], widthPerGroup: 64 },
  resnet152: { block: 'bottleneck', layers: [3, 8, 36, 3], widthPerGroup: 64 },
  wide_resnet50_2: { block: 'bottleneck', layers: [3, 4, 6, 3], widthPerGroup: 128 },
  wide_resnet101_2: { block: 'bottleneck', layers: [3, 4, 23, 3], widthPerGroup: 128 },
} as const satisfies Record<string, TorchvisionResNetBackbone>;

/** A name of {@link TORCHVISION_RESNET_ARCHS}. */
export type TorchvisionResNetArch = keyof typeof TORCHVISION_RESNET_ARCHS;

/** The backbone of a torchvision ResNet (the stem is always 64 channels in torchvision). */
export interface TorchvisionResNetBackbone {
  block: 'basic' | 'bottleneck';
  layers: readonly number[];
  /** torchvision's `width_per_group` (64 except the wide ResNets). */
  widthPerGroup: number;
}

/** What a state dict holds, read from its tensor names and shapes alone. */
export interface TorchvisionResNetLayout extends TorchvisionResNetBackbone {
  /** Channels of the stem (`conv1.weight.shape[0]`; 64 in torchvision). */
  baseWidth: number;
  /** Input channels of `conv1`. */
  inChannels: number;
  /** `fc.weight` -> linear; `fc.0.weight` + `fc.2.weight` -> MLP (fad's `head: {type: 'mlp'}`); null: no head in the file. */
  head: HeadConfig | null;
  /** Output size of the head; null without a head. */
  numClasses: number | null;
  /** The matching name of {@link TORCHVISION_RESNET_ARCHS} (stem 64), or null for another layout. */
  arch: TorchvisionResNetArch | null;
}

/** A tensor given directly: a tf.Tensor or row-major values with their PyTorch-layout shape. */
export type TorchTensorInput = tf.Tensor | { shape: readonly number[]; data: ArrayLike<number> };

/** A new classifier head for the loaded backbone. */
export interface NewHeadOption {
  numClasses: number;
  /** Hidden units of an MLP head (`Linear, ReLU, Linear`, e.g. 256 as in the paper); absent: one linear layer. */
  hidden?: number;
}

/** Parameters of {@link loadTorchvisionResNet}; exactly one of `file`, `bytes`, `tensors`. */
export interface LoadTorchvisionResNetParams {
  /** A safetensors file: only with `loadTorchvisionResNet` from `@fad/expert-models/node`. */
  file?: string;
  /** How messages name `bytes` (default "the state dict"; the Node version passes the file's path). */
  source?: string;
  /** The bytes of a safetensors file. */
  bytes?: Uint8Array;
  /** The state dict itself, by torchvision name, in PyTorch layouts. */
  tensors?: Record<string, TorchTensorInput>;
  /**
   * The expected architecture; the state dict must match it exactly. Absent: read from the tensor
   * names and shapes (any block count per stage, `width_per_group`, stem width).
   */
  arch?: TorchvisionResNetArch;
  /** Input channels of the expert (1 or 3); default the file's. */
  inChannels?: number;
  /**
   * `conv1` of the expert. `'sum-rgb'`: a 3-channel `conv1` summed over its input channels into a
   * 1-channel one (the default when `inChannels` is 1 and the file's is 3: on a gray image it
   * computes what the RGB stem computes on that image replicated to 3 channels, given the same
   * normalisation on every channel). `'new'`: a new seeded Kaiming-normal `conv1` of `inChannels`.
   * Absent with matching channels: the file's.
   */
  conv1?: 'sum-rgb' | 'new';
  /** `'keep'` (default): the file's `fc`; or a new seeded head. */
  head?: 'keep' | NewHeadOption;
  /** Class names (length = number of classes); default `class_0`, ... */
  classNames?: readonly string[];
  /**
   * The expert's input spec. Default: size 224, range [0, 1], ImageNet's mean/std for 3 channels
   * ([0.485, 0.456, 0.406] / [0.229, 0.224, 0.225]) and their averages for 1 channel (0.449 / 0.226).
   * Give mean 0 and std 1 to feed already-normalised tensors.
   */
  input?: InputSpecInput;
  /** Seed of a new `conv1` and/or head (drawn in that order), default 0. */
  seed?: number;
}

/** The loaded expert and what was done to the file's tensors. */
export interface LoadedTorchvisionResNet {
  expert: ResNet;
  /** What the file holds (architecture read from its names and shapes). */
  layout: TorchvisionResNetLayout;
  /** The expert's tensors that did not come from the file as they are: `conv1.weight` (summed or new), the head's (new). */
  replaced: string[];
  /** File tensors not used: `num_batches_tracked`, and the file's head when a new one was asked for. */
  ignored: string[];
}

const FN = 'loadTorchvisionResNet';
const PARAM_KEYS = ['file', 'source', 'bytes', 'tensors', 'arch', 'inChannels', 'conv1', 'head', 'classNames', 'input', 'seed'];
const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

function archNames(): string {
  return Object.keys(TORCHVISION_RESNET_ARCHS).join(', ');
}

function describeBackbone(b: TorchvisionResNetBackbone & { baseWidth?: number }): string {
  const wide = b.widthPerGroup !== 64 ? `, width_per_group ${b.widthPerGroup}` : '';
  const stem = b.baseWidth !== undefined && b.baseWidth !== 64 ? `, stem ${b.baseWidth}` : '';
  return `${b.block} ${JSON.stringify(b.layers)}${wide}${stem}`;
}

function matchArch(b: TorchvisionResNetBackbone & { baseWidth: number }): TorchvisionResNetArch | null {
  if (b.baseWidth !== 64) return null;
  for (const [name, a] of Object.entries(TORCHVISION_RESNET_ARCHS)) {
    if (a.block === b.block && a.widthPerGroup === b.widthPerGroup && a.layers.length === b.layers.length && a.layers.every((n, i) => n === b.layers[i])) {
      return name as TorchvisionResNetArch;
    }
  }
  return null;
}

/**
 * Reads the architecture of a torchvision ResNet state dict from its tensor names and shapes.
 * Throws (naming the tensor) when it is not one: no `conv1.weight`, no `layer1`, grouped
 * convolutions (ResNeXt), an unrecognised head.
 */
export function describeTorchvisionResNet(params: { tensors: Record<string, { shape: readonly number[] }> }): TorchvisionResNetLayout {
  const fn = 'describeTorchvisionResNet';
  assertObject(fn, 'params', params);
  assertObject(fn, 'tensors', params.tensors);
  const t = params.tensors;
  const names = Object.keys(t);
  const shapeOf = (n: string) => t[n]?.shape;
  const conv1 = shapeOf('conv1.weight');
  if (!conv1) {
    const prefixed = names.find((n) => n.endsWith('conv1.weight') && !n.startsWith('layer'));
    const hint = prefixed ? ` (there is "${prefixed}": strip the prefix "${prefixed.slice(0, -'conv1.weight'.length)}" from the names, as PyTorch's DataParallel or a wrapper module adds it)` : '';
    throw new Error(`${fn}: not a torchvision ResNet state dict: no tensor "conv1.weight"${hint}; the first names are ${names.slice(0, 5).map((n) => JSON.stringify(n)).join(', ') || '(none)'}`);
  }
  if (conv1.length !== 4 || conv1[2] !== 7 || conv1[3] !== 7) {
    throw new Error(`${fn}: "conv1.weight" has shape ${formatShape(conv1)}, expected [out, in, 7, 7] (torchvision's 7x7 stem, PyTorch layout OIHW)`);
  }
  const baseWidth = conv1[0];
  const inChannels = conv1[1];
  const layers: number[] = [];
  for (let i = 1; ; i++) {
    const re = new RegExp(`^layer${i}\\.(\\d+)\\.`);
    let count = 0;
    for (const n of names) {
      const m = re.exec(n);
      if (m) count = Math.max(count, Number(m[1]) + 1);
    }
    if (count === 0) break;
    layers.push(count);
  }
  if (layers.length === 0) throw new Error(`${fn}: not a torchvision ResNet state dict: no "layer1.0.*" tensors`);
  const block = 'layer1.0.conv3.weight' in t ? 'bottleneck' : 'basic';
  let widthPerGroup = 64;
  const c2 = shapeOf('layer1.0.conv2.weight');
  if (c2 && c2.length === 4 && c2[1] !== c2[0]) {
    throw new Error(`${fn}: "layer1.0.conv2.weight" has shape ${formatShape(c2)}: a grouped convolution (ResNeXt); only groups = 1 (ResNet, wide ResNet) is supported`);
  }
  if (block === 'bottleneck') {
    const c1 = shapeOf('layer1.0.conv1.weight');
    if (!c1 || c1.length !== 4) throw new Error(`${fn}: a bottleneck state dict needs "layer1.0.conv1.weight" [width, ${baseWidth}, 1, 1], got ${c1 ? formatShape(c1) : 'none'}`);
    widthPerGroup = Math.round((c1[0] * 64) / baseWidth);
  }
  let head: HeadConfig | null = null;
  let numClasses: number | null = null;
  const fc = shapeOf('fc.weight');
  const fc0 = shapeOf('fc.0.weight');
  const fc2 = shapeOf('fc.2.weight');
  if (fc) {
    if (fc.length !== 2) throw new Error(`${fn}: "fc.weight" has shape ${formatShape(fc)}, expected [classes, features] (a Linear)`);
    head = { type: 'linear' };
    numClasses = fc[0];
  } else if (fc0 && fc2) {
    if (fc0.length !== 2 || fc2.length !== 2) throw new Error(`${fn}: "fc.0.weight" ${formatShape(fc0)} and "fc.2.weight" ${formatShape(fc2)} must both be Linear weights [out, in]`);
    head = { type: 'mlp', hiddenDim: fc0[0] };
    numClasses = fc2[0];
  } else if (names.some((n) => n.startsWith('fc.'))) {
    throw new Error(`${fn}: unrecognised head: ${names.filter((n) => n.startsWith('fc.')).join(', ')}; supported: fc.weight/fc.bias (Linear) or fc.0.* + fc.2.* (Linear, ReLU, Linear)`);
  }
  const backbone = { block, layers, widthPerGroup, baseWidth } as const;
  return { ...backbone, inChannels, head, numClasses, arch: matchArch(backbone) };
}

/** Converts a tensor input to {shape, data}. */
function fromInput(name: string, v: TorchTensorInput): TorchStateTensor {
  if (v instanceof tf.Tensor) {
    if (v.dtype !== 'float32') return { dtype: v.dtype === 'int32' ? 'I32' : v.dtype, shape: v.shape.slice(), data: null };
    return { dtype: 'F32', shape: v.shape.slice(), data: v.dataSync() as Float32Array };
  }
  if (typeof v !== 'object' || v === null || !Array.isArray(v.shape) || typeof (v.data as ArrayLike<number>)?.length !== 'number') {
    throw new TypeError(`${FN}: tensors["${name}"] must be a tf.Tensor or {shape, data}, got ${show(v)}`);
  }
  const count = v.shape.reduce((a, b) => a * b, 1);
  if (v.data.length !== count) throw new RangeError(`${FN}: tensors["${name}"] has ${v.data.length} values for shape ${formatShape(v.shape)}`);
  return { dtype: 'F32', shape: v.shape.slice(), data: v.data instanceof Float32Array ? v.data : Float32Array.from(v.data) };
}

async function readSource(params: LoadTorchvisionResNetParams): Promise<{ tensors: Record<string, TorchStateTensor>; source: string }> {
  const given = (['file', 'bytes', 'tensors'] as const).filter((k) => params[k] !== undefined);
  if (given.length !== 1) throw new TypeError(`${FN}: give exactly one of file, bytes, tensors, got ${given.length ? given.join(' and ') : 'none'}`);
  if (params.file !== undefined) {
    throw new TypeError(`${FN}: file needs file access: import loadTorchvisionResNet from '@fad/expert-models/node' (Node), or pass bytes`);
  }
  if (params.source !== undefined && (typeof params.source !== 'string' || params.source === '')) {
    throw new TypeError(`${FN}: source must be a non-empty string, got ${show(params.source)}`);
  }
  if (params.bytes !== undefined) {
    if (!(params.bytes instanceof Uint8Array)) throw new TypeError(`${FN}: bytes must be a Uint8Array, got ${show(params.bytes)}`);
    const source = params.source ?? 'the state dict';
    return { tensors: decodeTorchStateDict({ bytes: params.bytes, ...(params.source ? { source } : {}) }).tensors, source };
  }
  assertObject(FN, 'tensors', params.tensors);
  const tensors: Record<string, TorchStateTensor> = {};
  for (const [n, v] of Object.entries(params.tensors)) tensors[n] = fromInput(n, v);
  return { tensors, source: 'the state dict' };
}

/** PyTorch layout -> fad layout: conv OIHW -> HWIO, linear [out, in] -> [in, out]. */
function toFad(shape: readonly number[], data: Float32Array): tf.Tensor {
  return tf.tidy(() => {
    const x = tf.tensor(data, shape as number[], 'float32');
    if (shape.length === 4) return tf.transpose(x, [2, 3, 1, 0]);
    if (shape.length === 2) return tf.transpose(x, [1, 0]);
    return x;
  });
}

/** The PyTorch shape of a fad variable shape. */
function torchShape(shape: readonly number[]): number[] {
  if (shape.length === 4) return [shape[3], shape[2], shape[0], shape[1]];
  if (shape.length === 2) return [shape[1], shape[0]];
  return shape.slice();
}

const isHead = (n: string) => n.startsWith('fc.');

function listOf(items: string[], max = 8): string {
  return items.length <= max ? items.join('; ') : `${items.slice(0, max).join('; ')}; ... (${items.length - max} more)`;
}

/**
 * Builds a {@link ResNet} expert from a torchvision ResNet state dict (see the file comment).
 * Every tensor must be there with torchvision's shape for the architecture; a missing, extra or
 * wrongly shaped one is an error naming it (with both shapes). BatchNorm running statistics are
 * loaded; the expert is in inference mode unless called with `{training: true}`.
 */
export async function loadTorchvisionResNet(params: LoadTorchvisionResNetParams): Promise<LoadedTorchvisionResNet> {
  assertObject(FN, 'params', params as unknown);
  assertKnownKeys(FN, '', params, PARAM_KEYS);
  if (params.arch !== undefined && !(typeof params.arch === 'string' && Object.hasOwn(TORCHVISION_RESNET_ARCHS, params.arch))) {
    throw new RangeError(`${FN}: arch must be one of ${archNames()} (torchvision's ResNet constructors), got ${show(params.arch)}`);
  }
  if (params.inChannels !== undefined) assertInt(FN, 'inChannels', params.inChannels, 1);
  if (params.conv1 !== undefined) assertOneOf(FN, 'conv1', params.conv1, ['sum-rgb', 'new'] as const);
  const headOpt = params.head ?? 'keep';
  if (headOpt !== 'keep') {
    if (typeof headOpt !== 'object' || headOpt === null) throw new TypeError(`${FN}: head must be "keep" or {numClasses, hidden?}, got ${show(headOpt)}`);
    assertKnownKeys(FN, 'head', headOpt, ['numClasses', 'hidden']);
    assertInt(FN, 'head.numClasses', headOpt.numClasses, 1);
    if (headOpt.hidden !== undefined) assertInt(FN, 'head.hidden', headOpt.hidden, 1);
  }
  const seed = params.seed ?? 0;
  assertInt(FN, 'seed', seed, 0, 0xffffffff);
  if (params.input !== undefined) assertObject(FN, 'input', params.input as unknown);

  const { tensors: all, source } = await readSource(params);
  const ignored: string[] = [];
  const tensors: Record<string, TorchStateTensor> = {};
  for (const [n, v] of Object.entries(all)) {
    if (n.endsWith('.num_batches_tracked')) ignored.push(n);
    else if (v.data === null) throw new Error(`${FN}: ${source}: tensor "${n}" has dtype ${v.dtype}; weights must be floating point (F32, F16, BF16, F64)`);
    else tensors[n] = v;
  }
  const layout = describeTorchvisionResNet({ tensors });
  const backbone: TorchvisionResNetBackbone & { baseWidth: number } = params.arch
    ? { ...TORCHVISION_RESNET_ARCHS[params.arch as TorchvisionResNetArch], baseWidth: 64 }
    : layout;
  const expected = params.arch ? `${params.arch} (${describeBackbone(backbone)})` : `the layout read from its names (${describeBackbone(layout)})`;

  // The expert's input channels and conv1.
  const fileIn = layout.inChannels;
  const inChannels = params.inChannels ?? fileIn;
  let conv1Mode: 'file' | 'sum-rgb' | 'new' = params.conv1 ?? (inChannels === fileIn ? 'file' : 'sum-rgb');
  if (conv1Mode === 'sum-rgb' && !(fileIn === 3 && inChannels === 1)) {
    throw new RangeError(`${FN}: conv1 "sum-rgb" turns a 3-channel conv1 into a 1-channel one, but ${source} has a ${fileIn}-channel conv1 and inChannels is ${inChannels}; use conv1 "new" for a new ${inChannels}-channel conv1${inChannels === fileIn ? ', or leave conv1 out to keep the file\'s' : ''}`);
  }
  if (conv1Mode === 'file' && inChannels !== fileIn) conv1Mode = 'new';

  // The head.
  let head: HeadConfig;
  let numClasses: number;
  if (headOpt === 'keep') {
    if (!layout.head || layout.numClasses === null) throw new Error(`${FN}: ${source} has no head (fc.*) to keep; pass head: {numClasses} for a new one`);
    head = layout.head;
    numClasses = layout.numClasses;
  } else {
    head = headOpt.hidden !== undefined ? { type: 'mlp', hiddenDim: headOpt.hidden } : { type: 'linear' };
    numClasses = headOpt.numClasses;
  }

  const input: InputSpecInput = {
    size: 224,
    range: [0, 1],
    ...(params.input ?? {}),
    channels: inChannels,
  };
  if (params.input?.channels !== undefined && params.input.channels !== inChannels) {
    throw new RangeError(`${FN}: input.channels (${params.input.channels}) differs from inChannels (${inChannels}); give one of them`);
  }
  if (input.mean === undefined) input.mean = inChannels === 3 ? IMAGENET_MEAN : new Array<number>(inChannels).fill(0.449);
  if (input.std === undefined) input.std = inChannels === 3 ? IMAGENET_STD : new Array<number>(inChannels).fill(0.226);
  const config: ResNetConfig = {
    arch: 'resnet',
    block: backbone.block,
    layers: backbone.layers.slice(),
    baseWidth: backbone.baseWidth,
    ...(backbone.widthPerGroup !== 64 ? { widthPerGroup: backbone.widthPerGroup } : {}),
    numClasses,
    head,
    input: input as ResNetConfig['input'],
  };
  let expert: ResNet;
  try {
    expert = new ResNet({ config, classNames: params.classNames, initialize: false });
  } catch (e) {
    throw new Error(`${FN}: ${(e as Error).message}`);
  }
  try {
    const replaced: string[] = [];
    // What the file must hold: every variable of the expert in PyTorch layout, conv1 with the
    // file's input channels, and the file's head unless a new one replaces it.
    const want = new Map<string, number[]>();
    for (const [n, v] of expert.namedParameters()) {
      if (isHead(n) && headOpt !== 'keep') continue;
      const s = torchShape(v.shape);
      if (n === 'conv1.weight') s[1] = fileIn;
      want.set(n, s);
    }
    if (headOpt !== 'keep') {
      for (const n of Object.keys(tensors)) {
        if (isHead(n)) {
          ignored.push(n);
          delete tensors[n];
        }
      }
    }
    const missing: string[] = [];
    const wrong: string[] = [];
    for (const [n, s] of want) {
      const t = tensors[n];
      if (!t) missing.push(`${n} (expected ${formatShape(s)})`);
      else if (t.shape.length !== s.length || t.shape.some((d, i) => d !== s[i])) wrong.push(`${n} is ${formatShape(t.shape)} in the file, expected ${formatShape(s)}`);
    }
    const extra = Object.keys(tensors).filter((n) => !want.has(n)).map((n) => `${n} ${formatShape(tensors[n].shape)}`);
    if (missing.length || wrong.length || extra.length) {
      const parts = [
        wrong.length ? `wrong shape (PyTorch layout): ${listOf(wrong)}` : '',
        missing.length ? `missing: ${listOf(missing)}` : '',
        extra.length ? `unexpected: ${listOf(extra)}` : '',
      ].filter(Boolean);
      const looks = params.arch && layout.arch !== params.arch ? `; the file looks like ${layout.arch ?? 'a ResNet'} (${describeBackbone(layout)})` : '';
      throw new Error(`${FN}: ${source} does not match ${expected}: ${parts.join('; ')}${looks}`);
    }

    const generator = new Generator(seed);
    for (const [n, v] of expert.namedParameters()) {
      if (isHead(n) && headOpt !== 'keep') continue;
      const t = tensors[n];
      if (n === 'conv1.weight' && conv1Mode !== 'file') {
        replaced.push(n);
        tf.tidy(() => {
          if (conv1Mode === 'sum-rgb') v.assign(tf.sum(toFad(t.shape, t.data!), 2, true));
          else v.assign(kaimingNormalFanOut(generator, v.shape as [number, number, number, number]));
        });
        continue;
      }
      tf.tidy(() => v.assign(toFad(t.shape, t.data!)));
    }
    if (headOpt !== 'keep') {
      // A head as ResNet builds it (PyTorch's default Linear init), drawn after a new conv1.
      const fresh = new ClassifierHead({ head, inFeatures: expert.featureDim, numClasses, generator });
      try {
        const byName = new Map(fresh.namedParameters().map(([n, v]) => [`fc.${n}`, v]));
        for (const [n, v] of expert.namedParameters()) {
          const src = byName.get(n);
          if (src) {
            v.assign(src);
            replaced.push(n);
          }
        }
      } finally {
        fresh.dispose();
      }
    }
    return { expert, layout, replaced, ignored };
  } catch (e) {
    expert.dispose();
    throw e;
  }
}

/** Parameters of {@link torchvisionStateDict} and {@link exportTorchvisionResNet}. */
export interface ExportTorchvisionResNetParams {
  /** A ResNet expert (any head; an MLP head is written as `fc.0.*`, `fc.2.*`). */
  expert: ResNet;
}

/** The expert's variables by torchvision name, in PyTorch layouts (float32). */
export function torchvisionStateDict(params: ExportTorchvisionResNetParams): Record<string, { shape: number[]; data: Float32Array }> {
  const fn = 'torchvisionStateDict';
  assertObject(fn, 'params', params);
  if (!(params.expert instanceof ResNet)) throw new TypeError(`${fn}: expert must be a ResNet expert, got ${show(params.expert)}`);
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [n, v] of params.expert.namedParameters()) {
    const t = tf.tidy(() => (v.rank === 4 ? tf.transpose(v, [3, 2, 0, 1]) : v.rank === 2 ? tf.transpose(v, [1, 0]) : tf.clone(v)));
    out[n] = { shape: t.shape.slice(), data: t.dataSync() as Float32Array };
    t.dispose();
  }
  return out;
}

/**
 * The expert as a torchvision state dict in safetensors (F32, metadata `format: "pt"`), for
 * `model.load_state_dict(safetensors.torch.load_file(path))` on `torchvision.models.resnet*`
 * built with the same `num_classes` and a conv1 of the expert's input channels.
 */
export function exportTorchvisionResNet(params: ExportTorchvisionResNetParams): Uint8Array {
  const state = torchvisionStateDict(params);
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const [n, s] of Object.entries(state)) tensors[n] = { dtype: 'F32', shape: s.shape, data: s.data };
  return encodeSafetensors({ tensors, metadata: { format: 'pt' } });
}

/** Parameters of {@link saveTorchvisionResNet}. */
export interface SaveTorchvisionResNetParams extends ExportTorchvisionResNetParams {
  /** Destination file, written atomically (`saveTorchvisionResNet` is in `@fad/expert-models/node`). */
  path: string;
}
