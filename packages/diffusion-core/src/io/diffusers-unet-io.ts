/**
 * diffusers `UNet2DConditionModel` folders (`config.json` + `diffusion_pytorch_model.safetensors`)
 * to and from {@link UNet2DConditional}.
 *
 * - Import: the config is translated by `unetConfigFromDiffusers` (unsupported keys are errors);
 *   every weight is mapped by diffusers' state-dict name onto the model's variable, conv weights
 *   transposed OIHW -> HWIO, Linear [out, in] -> [in, out], 1x1-conv proj_in/proj_out [C, C, 1, 1]
 *   -> Linear [in, out]. A missing, extra or wrongly shaped tensor is an error naming it with the
 *   shape in the file and the shape the config implies. F16 and F64 weights are converted to F32.
 * - Surgery (the feature-alignment paper's): new `inChannels`/`outChannels` replace conv_in/conv_out
 *   by freshly initialised convolutions (seeded by `seed`); `numClasses` adds learned class
 *   embeddings (optionally `classEmbeddingDim` wide and mapped to cross_attention_dim by a learned
 *   Linear) fed as the encoder_hidden_states; any diffusers module path is an activation name of
 *   the model (see unet.ts), so `down_blocks.2.resnets.0.conv_shortcut` works as a tap.
 * - Export: config.json (every v0.16.1 key) and the weights in diffusers' names, layout and
 *   state-dict order, readable by `UNet2DConditionModel.from_pretrained(dir)`. Import then export
 *   gives the same safetensors bytes. fad's class/token embeddings, which diffusers' U-Net does not
 *   have, go to a separate `fad_conditioning.safetensors` (read back by the importer).
 *
 * Nothing here downloads anything: the files come from the user (see the package README).
 */
import { UNet2DConditional } from '../unet/unet';
import { DiffusersConfigError, diffusersConfigFromUNet, unetConfigFromDiffusers } from '../unet/diffusers-config';
import type { ConditioningToken, UNetConfig } from '../unet/unet-config';
import { unetLayout } from '../unet/unet-layout';
import { type SafetensorsFile, type SafetensorsTensor, decodeSafetensors, encodeSafetensors } from './safetensors';

export const DIFFUSERS_CONFIG_FILE = 'config.json';
export const DIFFUSERS_WEIGHTS_FILE = 'diffusion_pytorch_model.safetensors';
/** fad's class-label (and token) embeddings of an exported model; diffusers ignores the file. */
export const FAD_CONDITIONING_FILE = 'fad_conditioning.safetensors';

/** How a diffusers tensor maps onto a model variable. */
export type DiffusersWeightKind = 'conv' | 'linear' | 'conv1x1-linear' | 'vector';

export interface DiffusersWeightName {
  /** diffusers' state-dict name, e.g. `down_blocks.0.resnets.0.conv1.weight`. */
  diffusers: string;
  /** The model's parameter name, e.g. `down_res.0.conv1.weight`. */
  fad: string;
  kind: DiffusersWeightKind;
}

/**
 * Every weight of a diffusers UNet2DConditionModel with this config, in diffusers' state-dict
 * order, with the model parameter it maps to. fad-only parameters (class_emb, class_proj,
 * class_to_time, token_emb) are not in it.
 */
export function diffusersWeightNames(config: UNetConfig): DiffusersWeightName[] {
  const L = unetLayout(config);
  const out: DiffusersWeightName[] = [];
  const proj: DiffusersWeightKind = config.linearProjection ? 'linear' : 'conv1x1-linear';
  const add = (d: string, f: string, kind: DiffusersWeightKind, bias = true) => {
    out.push({ diffusers: `${d}.weight`, fad: `${f}.weight`, kind });
    if (bias) out.push({ diffusers: `${d}.bias`, fad: `${f}.bias`, kind: 'vector' });
  };
  const norm = (d: string, f: string) => add(d, f, 'vector');
  const transformer = (d: string, f: string) => {
    norm(`${d}.norm`, `${f}.norm`);
    add(`${d}.proj_in`, `${f}.proj_in`, proj);
    const t = `${d}.transformer_blocks.0`;
    norm(`${t}.norm1`, `${f}.ln1`);
    for (const a of ['attn1', 'attn2']) {
      add(`${t}.${a}.to_q`, `${f}.${a}.q`, 'linear', false);
      add(`${t}.${a}.to_k`, `${f}.${a}.k`, 'linear', false);
      add(`${t}.${a}.to_v`, `${f}.${a}.v`, 'linear', false);
      add(`${t}.${a}.to_out.0`, `${f}.${a}.o`, 'linear');
      if (a === 'attn1') norm(`${t}.norm2`, `${f}.ln2`);
    }
    norm(`${t}.norm3`, `${f}.ln3`);
    add(`${t}.ff.net.0.proj`, `${f}.ff1`, 'linear');
    add(`${t}.ff.net.2`, `${f}.ff2`, 'linear');
    add(`${d}.proj_out`, `${f}.proj_out`, proj);
  };
  const resnet = (d: string, f: string, shortcut: boolean) => {
    norm(`${d}.norm1`, `${f}.norm1`);
    add(`${d}.conv1`, `${f}.conv1`, 'conv');
    add(`${d}.time_emb_proj`, `${f}.temb`, 'linear');
    norm(`${d}.norm2`, `${f}.norm2`);
    add(`${d}.conv2`, `${f}.conv2`, 'conv');
    if (shortcut) add(`${d}.conv_shortcut`, `${f}.skip`, 'conv');
  };
  add('conv_in', 'conv_in', 'conv');
  add('time_embedding.linear_1', 'time_mlp1', 'linear');
  add('time_embedding.linear_2', 'time_mlp2', 'linear');
  // nn.Module registration order: a block's attentions, then its resnets, then its resampler;
  // UNet2DConditionModel registers down_blocks and up_blocks before mid_block.
  for (const blk of L.down) {
    const p = `down_blocks.${blk.level}`;
    for (const r of blk.resnets) if (r.attention) transformer(`${p}.attentions.${r.j}`, `down_attn.${r.index}`);
    for (const r of blk.resnets) resnet(`${p}.resnets.${r.j}`, `down_res.${r.index}`, r.inChannels !== r.outChannels);
    if (blk.downsample) add(`${p}.downsamplers.0.conv`, `downsample.${blk.level}`, 'conv');
  }
  for (const blk of L.up) {
    const p = `up_blocks.${blk.block}`;
    for (const r of blk.resnets) if (r.attention) transformer(`${p}.attentions.${r.j}`, `up_attn.${r.index}`);
    for (const r of blk.resnets) resnet(`${p}.resnets.${r.j}`, `up_res.${r.index}`, r.inChannels !== r.outChannels);
    if (blk.upsample) add(`${p}.upsamplers.0.conv`, `upsample.${blk.block}`, 'conv');
  }
  if (L.mid) {
    if (L.mid.attention) transformer('mid_block.attentions.0', 'mid_attn');
    resnet('mid_block.resnets.0', 'mid_res1', false);
    resnet('mid_block.resnets.1', 'mid_res2', false);
  }
  norm('conv_norm_out', 'norm_out');
  add('conv_out', 'conv_out', 'conv');
  return out;
}

/** The diffusers shape of a model variable of shape `fadShape`. */
function diffusersShape(kind: DiffusersWeightKind, s: readonly number[]): number[] {
  if (kind === 'conv') return [s[3], s[2], s[0], s[1]];
  if (kind === 'linear') return [s[1], s[0]];
  if (kind === 'conv1x1-linear') return [s[1], s[0], 1, 1];
  return [...s];
}

/** diffusers layout -> model layout (a pure permutation: bit-exact both ways). */
function toFad(kind: DiffusersWeightKind, data: Float32Array, shape: readonly number[]): Float32Array {
  if (kind === 'vector') return data;
  if (kind === 'linear' || kind === 'conv1x1-linear') return transpose2d(data, shape[0], shape[1]);
  // OIHW -> HWIO
  const [o, i, kh, kw] = shape;
  const out = new Float32Array(data.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
    out[((y * kw + x) * i + b) * o + a] = data[((a * i + b) * kh + y) * kw + x];
  }
  return out;
}

/** model layout -> diffusers layout. */
function toDiffusers(kind: DiffusersWeightKind, data: Float32Array, fadShape: readonly number[]): Float32Array {
  if (kind === 'vector') return data;
  if (kind === 'linear' || kind === 'conv1x1-linear') return transpose2d(data, fadShape[0], fadShape[1]);
  // HWIO -> OIHW
  const [kh, kw, i, o] = fadShape;
  const out = new Float32Array(data.length);
  for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let b = 0; b < i; b++) for (let a = 0; a < o; a++) {
    out[((a * i + b) * kh + y) * kw + x] = data[((y * kw + x) * i + b) * o + a];
  }
  return out;
}

function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** IEEE half -> float. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function asFloat32(name: string, t: SafetensorsTensor): Float32Array {
  if (t.dtype === 'F32') return t.data as Float32Array;
  if (t.dtype === 'F64') return Float32Array.from(t.data as Float64Array);
  if (t.dtype === 'F16') return Float32Array.from(t.data as Uint16Array, halfToFloat);
  throw new DiffusersConfigError(`diffusers weights: "${name}" is ${t.dtype}; supported dtypes: F32, F16, F64`);
}

/** Surgery and conditioning options of the importer. */
export interface DiffusersSurgeryOptions {
  /** Image channels in; when it differs from the config's in_channels, conv_in is replaced by a new, seeded convolution. */
  inChannels?: number;
  /** Channels out; when it differs from out_channels, conv_out is replaced likewise. */
  outChannels?: number;
  /** Image size the model is used at (default: the config's sample_size when usable). Must be divisible by 2^(blocks-1). */
  sampleSize?: number;
  /** Class-label conditioning: learned embeddings for this many classes, fed as encoder_hidden_states (a single token). */
  numClasses?: number;
  /** Adds a learned null class (index numClasses) for classifier-free guidance (default true when numClasses > 0). */
  nullClass?: boolean;
  /** Width of the class embeddings, mapped to cross_attention_dim by a learned Linear (`class_proj`); absent: cross_attention_dim wide, used directly. */
  classEmbeddingDim?: number;
  /** Seed of every newly initialised weight (replaced convs, class embeddings); default 0. */
  seed?: number;
}

export interface DiffusersUNetFromFilesParams extends DiffusersSurgeryOptions {
  /** The parsed config.json (or its text). */
  config: unknown;
  /** diffusion_pytorch_model.safetensors: its bytes, or decoded. */
  weights: Uint8Array | SafetensorsFile;
  /** fad_conditioning.safetensors of an exported class-conditional model (bytes or decoded), when present. */
  conditioning?: Uint8Array | SafetensorsFile;
}

export interface LoadedDiffusersUNet {
  model: UNet2DConditional;
  /** The diffusers config the model was built from (as read). */
  diffusersConfig: Record<string, unknown>;
  /** Model parameters that did not come from the file (replaced convs, class embeddings), newly initialised. */
  initialized: string[];
}

const SURGERY_KEYS = ['inChannels', 'outChannels', 'sampleSize', 'numClasses', 'nullClass', 'classEmbeddingDim', 'seed'] as const;

function checkSurgery(where: string, p: Record<string, unknown>): void {
  for (const k of ['inChannels', 'outChannels', 'sampleSize', 'classEmbeddingDim'] as const) {
    const v = p[k];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) > 0)) throw new TypeError(`${where}: params.${k} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  if (p.numClasses !== undefined && !(Number.isInteger(p.numClasses) && (p.numClasses as number) >= 0)) {
    throw new TypeError(`${where}: params.numClasses must be an integer >= 0, got ${JSON.stringify(p.numClasses)}`);
  }
  if (p.nullClass !== undefined && typeof p.nullClass !== 'boolean') throw new TypeError(`${where}: params.nullClass must be a boolean, got ${JSON.stringify(p.nullClass)}`);
  if (p.seed !== undefined && !(Number.isInteger(p.seed) && (p.seed as number) >= 0)) throw new TypeError(`${where}: params.seed must be an integer >= 0, got ${JSON.stringify(p.seed)}`);
}

/**
 * Builds a U-Net from a diffusers UNet2DConditionModel config and weights (see the module docs),
 * applying the surgery options. Throws naming every problem (up to 10) of the weights.
 */
export function diffusersUNetFromFiles(params: DiffusersUNetFromFilesParams): LoadedDiffusersUNet {
  const where = 'diffusersUNetFromFiles';
  if (params === null || typeof params !== 'object') throw new TypeError(`${where}: params must be an object`);
  for (const k of Object.keys(params)) {
    if (!['config', 'weights', 'conditioning', ...SURGERY_KEYS].includes(k)) throw new TypeError(`${where}: unknown parameter "${k}"; expected config, weights, conditioning, ${SURGERY_KEYS.join(', ')}`);
  }
  checkSurgery(where, params as unknown as Record<string, unknown>);
  let raw = params.config;
  if (typeof raw === 'string') {
    try {
      raw = JSON.parse(raw);
    } catch (e) {
      throw new DiffusersConfigError(`diffusers config: not valid JSON (${(e as Error).message})`);
    }
  }
  const base = unetConfigFromDiffusers(raw);
  if (!(params.weights instanceof Uint8Array) && !(params.weights && typeof params.weights === 'object' && 'tensors' in params.weights)) {
    throw new TypeError(`${where}: params.weights must be the bytes of diffusion_pytorch_model.safetensors or a decoded SafetensorsFile`);
  }
  const file = params.weights instanceof Uint8Array ? decodeSafetensors(params.weights) : params.weights;
  const cond = params.conditioning === undefined ? null : params.conditioning instanceof Uint8Array ? decodeSafetensors(params.conditioning) : params.conditioning;

  // Conditioning: explicit options win; else an exported model's fad_conditioning file; else none.
  let conditioning: Partial<UNetConfig> = {};
  const condMeta = cond ? parseConditioningMeta(cond.metadata) : null;
  if (params.numClasses !== undefined) {
    if (params.numClasses > 0) {
      conditioning = { numClasses: params.numClasses, nullClass: params.nullClass ?? true, ...(params.classEmbeddingDim !== undefined ? { classEmbeddingDim: params.classEmbeddingDim } : {}) };
    }
  } else if (condMeta) {
    conditioning = condMeta;
  } else if (params.classEmbeddingDim !== undefined || params.nullClass !== undefined) {
    throw new TypeError(`${where}: params.classEmbeddingDim and params.nullClass need params.numClasses (> 0)`);
  }
  const cfg: Partial<UNetConfig> = {
    ...base,
    ...(params.sampleSize !== undefined ? { sampleSize: params.sampleSize } : {}),
    ...(params.inChannels !== undefined ? { inChannels: params.inChannels } : {}),
    ...(params.outChannels !== undefined ? { outChannels: params.outChannels } : {}),
    ...conditioning,
  };
  const model = new UNet2DConditional(cfg, { seed: params.seed ?? 0 });
  try {
    const initialized = loadDiffusersWeights({ model, file, original: base });
    if (cond && params.numClasses === undefined) {
      loadConditioning(model, cond);
      for (const n of conditioningParamNames(model)) initialized.splice(initialized.indexOf(n), 1);
    }
    return { model, diffusersConfig: raw as Record<string, unknown>, initialized };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Assigns the file's weights; returns the model parameters left at their initialisation. */
function loadDiffusersWeights(p: { model: UNet2DConditional; file: SafetensorsFile; original: UNetConfig }): string[] {
  const { model, file, original } = p;
  const params = new Map(model.namedParameters());
  const names = diffusersWeightNames(model.config);
  const replacedIn = model.config.inChannels !== original.inChannels;
  const replacedOut = model.config.outChannels !== original.outChannels;
  const problems: string[] = [];
  const state: Record<string, { shape: number[]; data: Float32Array }> = {};
  const seen = new Set<string>();
  for (const w of names) {
    const v = params.get(w.fad);
    if (!v) throw new Error(`diffusersWeightNames: the model has no parameter "${w.fad}" (for "${w.diffusers}")`);
    let expected = diffusersShape(w.kind, v.shape);
    // A replaced conv_in/conv_out: the file still holds the original one, checked against the config.
    if (replacedIn && w.diffusers === 'conv_in.weight') expected = [expected[0], original.inChannels, expected[2], expected[3]];
    if (replacedOut && w.diffusers === 'conv_out.weight') expected = [original.outChannels, ...expected.slice(1)];
    if (replacedOut && w.diffusers === 'conv_out.bias') expected = [original.outChannels];
    const t = file.tensors[w.diffusers];
    seen.add(w.diffusers);
    if (!t) {
      problems.push(`missing tensor "${w.diffusers}" (shape [${expected.join(', ')}] expected from config.json)`);
      continue;
    }
    if (t.shape.length !== expected.length || t.shape.some((d, i) => d !== expected[i])) {
      problems.push(`tensor "${w.diffusers}" has shape [${t.shape.join(', ')}] in the weights, but config.json implies [${expected.join(', ')}]`);
      continue;
    }
    const skip = (replacedIn && w.diffusers.startsWith('conv_in.')) || (replacedOut && w.diffusers.startsWith('conv_out.'));
    if (skip) continue;
    state[w.fad] = { shape: [...v.shape], data: toFad(w.kind, asFloat32(w.diffusers, t), t.shape) };
  }
  for (const [n, t] of Object.entries(file.tensors)) {
    if (!seen.has(n)) problems.push(`unexpected tensor "${n}" (shape [${t.shape.join(', ')}]): config.json's architecture has no such weight`);
  }
  if (problems.length > 0) {
    const more = problems.length > 10 ? ` (+${problems.length - 10} more)` : '';
    throw new DiffusersConfigError(`diffusers weights do not match config.json: ${problems.slice(0, 10).join('; ')}${more}`);
  }
  model.loadStateDict(state, { strict: false });
  return [...params.keys()].filter((n) => !(n in state));
}

function conditioningParamNames(model: UNet2DConditional): string[] {
  return model.namedParameters().map(([n]) => n).filter((n) => n.startsWith('class_emb.') || n.startsWith('class_proj.') || n.startsWith('token_emb.'));
}

interface ConditioningMeta {
  numClasses: number;
  nullClass: boolean;
  classEmbeddingDim?: number;
  conditioningTokens?: ConditioningToken[];
}

function parseConditioningMeta(meta: Record<string, string>): ConditioningMeta {
  if (meta.format !== 'fad-conditioning/1' || typeof meta.conditioning !== 'string') {
    throw new DiffusersConfigError(`${FAD_CONDITIONING_FILE}: metadata.format must be "fad-conditioning/1" with a conditioning entry`);
  }
  try {
    return JSON.parse(meta.conditioning) as ConditioningMeta;
  } catch {
    throw new DiffusersConfigError(`${FAD_CONDITIONING_FILE}: metadata.conditioning is not valid JSON`);
  }
}

/** fad's conditioning parameters and their stored layout (Linear as [out, in] like PyTorch). */
function conditioningEntries(model: UNet2DConditional): Array<{ fad: string; kind: DiffusersWeightKind }> {
  return conditioningParamNames(model).map((fad) => ({ fad, kind: fad === 'class_proj.weight' ? 'linear' : 'vector' }));
}

function loadConditioning(model: UNet2DConditional, file: SafetensorsFile): void {
  const params = new Map(model.namedParameters());
  const state: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const { fad, kind } of conditioningEntries(model)) {
    const t = file.tensors[fad];
    const v = params.get(fad)!;
    const expected = diffusersShape(kind, v.shape);
    if (!t) throw new DiffusersConfigError(`${FAD_CONDITIONING_FILE}: missing tensor "${fad}" (shape [${expected.join(', ')}])`);
    if (t.shape.join() !== expected.join()) throw new DiffusersConfigError(`${FAD_CONDITIONING_FILE}: tensor "${fad}" has shape [${t.shape.join(', ')}], expected [${expected.join(', ')}]`);
    state[fad] = { shape: [...v.shape], data: toFad(kind, asFloat32(fad, t), t.shape) };
  }
  model.loadStateDict(state, { strict: false });
}

export interface SerializedDiffusersUNet {
  /** config.json's content. */
  config: Record<string, unknown>;
  /** config.json's text (diffusers' format: 2-space indent, sorted keys, newline). */
  configJson: string;
  /** diffusion_pytorch_model.safetensors: diffusers' names, layout and state-dict order, metadata {format: "pt"}. */
  weights: Uint8Array;
  /** fad_conditioning.safetensors when the model has class or token embeddings, else null. */
  conditioning: Uint8Array | null;
}

/** A U-Net as a diffusers UNet2DConditionModel folder's files (see the module docs). */
export function serializeDiffusersUNet(params: { model: UNet2DConditional }): SerializedDiffusersUNet {
  if (!params || !(params.model instanceof UNet2DConditional)) throw new TypeError('serializeDiffusersUNet: params.model must be a UNet2DConditional');
  const { model } = params;
  const config = diffusersConfigFromUNet(model.config);
  const vars = new Map(model.namedParameters());
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const w of diffusersWeightNames(model.config)) {
    const v = vars.get(w.fad)!;
    tensors[w.diffusers] = { dtype: 'F32', shape: diffusersShape(w.kind, v.shape), data: toDiffusers(w.kind, v.dataSync() as Float32Array, v.shape) };
  }
  const weights = encodeSafetensors({ tensors, metadata: { format: 'pt' } }, { keepOrder: true });
  let conditioning: Uint8Array | null = null;
  const entries = conditioningEntries(model);
  if (entries.length > 0) {
    const c = model.config;
    const meta: ConditioningMeta = {
      numClasses: c.numClasses,
      nullClass: c.nullClass,
      ...(c.classEmbeddingDim !== undefined ? { classEmbeddingDim: c.classEmbeddingDim } : {}),
      ...(c.conditioningTokens ? { conditioningTokens: c.conditioningTokens } : {}),
    };
    const ct: Record<string, SafetensorsTensor> = {};
    for (const { fad, kind } of entries) {
      const v = vars.get(fad)!;
      ct[fad] = { dtype: 'F32', shape: diffusersShape(kind, v.shape), data: toDiffusers(kind, v.dataSync() as Float32Array, v.shape) };
    }
    conditioning = encodeSafetensors({ tensors: ct, metadata: { format: 'fad-conditioning/1', conditioning: JSON.stringify(meta) } }, { keepOrder: true });
  }
  return { config, configJson: `${JSON.stringify(config, null, 2)}\n`, weights, conditioning };
}
