/**
 * Pieces of the resumable training checkpoints (Node only: part of `@fad/diffusion-core/node`).
 * A checkpoint is one safetensors file: module weights under a prefix (`model.<name>`,
 * `align.<name>`), numbered flat arrays (`adam.m.<i>`, `adam.v.<i>`, `ema.<i>`) and the JSON state
 * in the metadata. These helpers build and take apart those tensor maps, and keep a metrics log in
 * step with a checkpoint that is resumed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomicSync } from './write-file-atomic';

/** A float32 tensor of a checkpoint, as `encodeSafetensors` takes it. */
export interface CheckpointTensor {
  dtype: 'F32';
  shape: number[];
  data: Float32Array;
}

/** A tensor as `decodeSafetensors` returns it. */
export interface StoredTensor {
  shape: number[];
  data: Float32Array;
}

/** `{ name: tensor }` (a module's `stateDict()`) as `{ <prefix><name>: F32 tensor }`. */
export function prefixTensors(prefix: string, dict: Record<string, StoredTensor>): Record<string, CheckpointTensor> {
  const out: Record<string, CheckpointTensor> = {};
  for (const [k, v] of Object.entries(dict)) out[`${prefix}${k}`] = { dtype: 'F32', shape: v.shape, data: v.data };
  return out;
}

/** Flat arrays as `{ <prefix>0, <prefix>1, ... }` (Adam moments, EMA weights). */
export function numberTensors(prefix: string, arrays: readonly Float32Array[]): Record<string, CheckpointTensor> {
  const out: Record<string, CheckpointTensor> = {};
  arrays.forEach((a, i) => (out[`${prefix}${i}`] = { dtype: 'F32', shape: [a.length], data: a }));
  return out;
}

/** The tensors whose names start with `prefix`, with the prefix taken off (for `loadStateDict`). */
export function tensorsWithPrefix(tensors: Record<string, StoredTensor>, prefix: string): Record<string, StoredTensor> {
  const out: Record<string, StoredTensor> = {};
  for (const [k, v] of Object.entries(tensors)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

/** The data of `<prefix>0`, `<prefix>1`, ... up to the first missing index. */
export function numberedTensors(tensors: Record<string, StoredTensor>, prefix: string): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; tensors[`${prefix}${i}`]; i++) out.push(tensors[`${prefix}${i}`].data);
  return out;
}

/**
 * Keeps the lines of a JSON-lines metrics log whose `step` (or the field `key`, e.g. `epoch`) is at
 * most `step` (a resumed run rewrites what came after its checkpoint); unparsable lines go too.
 * Atomic; nothing happens without the file.
 */
export function truncateMetricsLog(path: string, step: number, key: 'step' | 'epoch' = 'step'): void {
  if (!existsSync(path)) return;
  const keep = readFileSync(path, 'utf8').split('\n').filter((l) => {
    try {
      return l.trim() !== '' && (JSON.parse(l) as Record<string, number>)[key] <= step;
    } catch {
      return false;
    }
  });
  writeFileAtomicSync(path, keep.length ? `${keep.join('\n')}\n` : '');
}
