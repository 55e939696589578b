/**
 * Adapting diffusion images to what an expert expects: value range, size, channels and
 * normalisation, in that order.
 *
 * The reference implementation adapted nothing: its ImageNet ResNet50 saw the raw 64x64, 1-channel
 * noisy input x_t in the diffusion range [-1, 1], with no resize and no mean/std normalisation
 * (`adaptation: 'raw'` reproduces that). By default (`'spec'`) the range, size and channel steps
 * follow the expert's `inputSpec`, so an expert taking 224x224 RGB images in [0, 1] gets exactly
 * that from 64x64 grayscale images in [-1, 1].
 *
 * Mean/std normalisation is never taken from `inputSpec`: by the `FeatureExtractor` contract of
 * `@fad/feature-align` (and in `@fad/expert-models`) the expert normalises internally, and `inputSpec.mean`/`std` only say
 * how. Applying them here too would normalise twice. For an expert that expects pre-normalised
 * input (e.g. a converted torchvision model without a normalisation layer), pass
 * `adaptation: { mean, std }`.
 *
 * This is the one home of expert-input adaptation in fad: feature alignment (`@fad/feature-align`
 * re-exports these names), expert guidance (`toExpertInput` in `@fad/expert-models`) and the CLI's
 * expert evaluation all go through `adaptExpertInput`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkFloatTensor, checkKnownKeys, checkParamsObject, fail, shapeText, valueText } from './image-checks';

/**
 * What an expert (a feature extractor or classifier) takes as input. Every field is optional;
 * `resolveInputAdaptation` turns `range`, `size` and `channels` into adaptation steps.
 */
export interface ExpertInputSpec {
  /** Square side, or [height, width], of the images the expert expects (e.g. 224). */
  readonly size?: number | readonly [number, number];
  /** Channels the expert expects (e.g. 3; a 1-channel input is repeated). */
  readonly channels?: number;
  /**
   * Per-channel mean the expert subtracts internally (e.g. ImageNet's [0.485, 0.456, 0.406]).
   * Informational: the adaptation does not apply it (see `InputAdaptation.mean`).
   */
  readonly mean?: readonly number[];
  /** Per-channel standard deviation the expert divides by internally. Informational, as `mean`. */
  readonly std?: readonly number[];
  /** Value range of the images the expert takes, e.g. [0, 1]. */
  readonly range?: readonly [number, number];
}

/** The fully resolved steps; `null` skips a step. */
export interface InputAdaptation {
  /** Value range of the diffusion images (default [-1, 1]). */
  readonly dataRange: readonly [number, number];
  /** Map values linearly from `dataRange` to this range; null keeps them. */
  readonly range: readonly [number, number] | null;
  /** Resize to [height, width], bilinear with half-pixel centres; null keeps the size. */
  readonly size: readonly [number, number] | null;
  /** Repeat a 1-channel image to this many channels; null keeps the channels. */
  readonly channels: number | null;
  /**
   * Per-channel mean subtracted last (one value for all channels, or one per channel); null for
   * none. Only set by an explicit override, never from `inputSpec` (see the module docs).
   */
  readonly mean: readonly number[] | null;
  /** Per-channel standard deviation (one value, or one per channel); null for none. */
  readonly std: readonly number[] | null;
}

/** Overrides of single steps; a number `size` means a square. */
export type InputAdaptationOverrides = Partial<Omit<InputAdaptation, 'size'>> & {
  size?: number | readonly [number, number] | null;
};

/**
 * `'spec'` (default): range, size and channels from the expert's `inputSpec`, no normalisation.
 * `'raw'`: pass the images unchanged (the reference implementation). An object: `'spec'` with
 * these fields overridden (`null` turns a step off; `mean`/`std` add normalisation).
 */
export type InputAdaptationOption = (typeof INPUT_ADAPTATION_NAMES)[number] | InputAdaptationOverrides;

/** The named input adaptations (`InputAdaptationOption` without the override object). */
export const INPUT_ADAPTATION_NAMES = ['spec', 'raw'] as const;

/** What the reference implementation did: the expert sees the diffusion images unchanged. */
export const RAW_INPUT_ADAPTATION: InputAdaptation = Object.freeze({
  dataRange: Object.freeze([-1, 1]) as unknown as readonly [number, number],
  range: null,
  size: null,
  channels: null,
  mean: null,
  std: null,
});

const FIELDS = ['dataRange', 'range', 'size', 'channels', 'mean', 'std'] as const;

export interface ResolveInputAdaptationParams {
  /** The expert's `inputSpec`, if any. */
  spec?: ExpertInputSpec;
  adaptation?: InputAdaptationOption;
}

/** Resolves and validates the adaptation steps. */
export function resolveInputAdaptation(params: ResolveInputAdaptationParams = {}): InputAdaptation {
  const where = 'resolveInputAdaptation';
  checkParamsObject(where, params);
  const { spec, adaptation = 'spec' } = params;
  if (adaptation === 'raw') return RAW_INPUT_ADAPTATION;
  if (spec !== undefined && (spec === null || typeof spec !== 'object')) {
    fail(where, `spec must be an ExpertInputSpec object, got ${valueText(spec)}`, TypeError);
  }
  let overrides: InputAdaptationOverrides = {};
  if (adaptation !== 'spec') {
    if (adaptation === null || typeof adaptation !== 'object' || Array.isArray(adaptation)) {
      fail(where, `adaptation must be 'spec', 'raw' or an object of overrides {${FIELDS.join(', ')}}, got ${valueText(adaptation)}`, TypeError);
    }
    checkKnownKeys(where, adaptation as Record<string, unknown>, FIELDS);
    overrides = adaptation;
  }
  const s: ExpertInputSpec = spec ?? {};
  const pick = <K extends keyof InputAdaptationOverrides>(k: K, fromSpec: InputAdaptationOverrides[K]) =>
    k in overrides ? overrides[k] : fromSpec;
  const dataRange = checkRange(where, 'dataRange', pick('dataRange', [-1, 1]) ?? [-1, 1]);
  const range = nullable(pick('range', s.range), (v) => checkRange(where, 'range', v));
  const size = nullable(pick('size', s.size), (v) => checkSize(where, v));
  const channels = nullable(pick('channels', s.channels), (v) => {
    if (!Number.isInteger(v) || (v as number) <= 0) fail(where, `channels must be a positive integer or null, got ${valueText(v)}`, RangeError);
    return v as number;
  });
  // Never from the spec: the expert normalises internally (see the module docs).
  let mean = nullable(overrides.mean, (v) => checkVector(where, 'mean', v, false));
  let std = nullable(overrides.std, (v) => checkVector(where, 'std', v, true));
  if (mean && !std) std = [1];
  if (std && !mean) mean = [0];
  for (const [name, v] of [['mean', mean], ['std', std]] as const) {
    if (v && channels !== null && v.length !== 1 && v.length !== channels) {
      fail(where, `${name} has ${v.length} values but channels is ${channels}; give 1 or ${channels}`, RangeError);
    }
  }
  return { dataRange, range, size, channels, mean, std };
}

function nullable<T, U>(v: T | null | undefined, check: (v: T) => U): U | null {
  return v === null || v === undefined ? null : check(v);
}

function checkRange(where: string, name: string, v: unknown): readonly [number, number] {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)) || !(v[0] < v[1])) {
    fail(where, `${name} must be [low, high] with finite low < high, got ${valueText(v)}`, RangeError);
  }
  return [v[0], v[1]];
}

function checkSize(where: string, v: unknown): readonly [number, number] {
  const hw = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(hw) || hw.length !== 2 || !hw.every((x) => Number.isInteger(x) && x > 0)) {
    fail(where, `size must be a positive integer or [height, width], got ${valueText(v)}`, RangeError);
  }
  return [hw[0], hw[1]];
}

function checkVector(where: string, name: string, v: unknown, positive: boolean): readonly number[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0))) {
    fail(where, `${name} must be a non-empty array of finite numbers${positive ? ' > 0' : ''}, got ${valueText(v)}`, RangeError);
  }
  return [...v];
}

export interface AdaptExpertInputParams {
  /** Images [B,H,W,C] in `adaptation.dataRange`. */
  images: tf.Tensor4D;
  /** Steps from `resolveInputAdaptation`. */
  adaptation: InputAdaptation;
}

/**
 * Applies the steps: (1) map values from `dataRange` to `range`; (2) resize to `size`, bilinear
 * with half-pixel centres (PyTorch's `interpolate(mode='bilinear', align_corners=False)`, no
 * antialiasing); (3) repeat a single channel to `channels`; (4) subtract `mean`, divide by `std`.
 * Returns a new tensor (a cheap copy when no step applies).
 */
export function adaptExpertInput(params: AdaptExpertInputParams): tf.Tensor4D {
  const where = 'adaptExpertInput';
  checkParamsObject(where, params);
  const { images, adaptation: a } = params;
  checkFloatTensor(where, 'images', images, [4], '[B,H,W,C]');
  if (a === null || typeof a !== 'object' || !FIELDS.every((k) => k in a)) {
    fail(where, `adaptation must be a resolved InputAdaptation (use resolveInputAdaptation), got ${valueText(a)}`, TypeError);
  }
  const c = images.shape[3];
  const outC = a.channels ?? c;
  if (outC !== c && c !== 1) {
    fail(where, `images have ${c} channels (shape ${shapeText(images.shape)}); the expert expects ${outC}, and only 1 channel can be repeated`);
  }
  for (const [name, v] of [['mean', a.mean], ['std', a.std]] as const) {
    if (v && v.length !== 1 && v.length !== outC) {
      fail(where, `${name} has ${v.length} values for ${outC} channels (images ${shapeText(images.shape)})`, RangeError);
    }
  }
  return tf.tidy(() => {
    let x: tf.Tensor4D = images;
    if (a.range) {
      const [d0, d1] = a.dataRange;
      const [r0, r1] = a.range;
      const scale = (r1 - r0) / (d1 - d0);
      if (scale !== 1 || r0 !== d0) x = tf.add(tf.mul(tf.sub(x, d0), scale), r0);
    }
    if (a.size && (a.size[0] !== x.shape[1] || a.size[1] !== x.shape[2])) {
      x = tf.image.resizeBilinear(x, [a.size[0], a.size[1]], false, true);
    }
    if (outC !== c) x = tf.tile(x, [1, 1, 1, outC]);
    if (a.mean && a.std) {
      x = tf.div(tf.sub(x, tf.tensor1d(a.mean as number[])), tf.tensor1d(a.std as number[]));
    }
    return x === images ? tf.clone(images) : x;
  });
}
