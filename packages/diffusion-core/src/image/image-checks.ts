/**
 * Argument checks of the image functions (internal). Every message starts with the function name,
 * then names the field, what was expected and what was received, with the same wording the
 * functions had in `@fad/expert-models` and `@fad/feature-align` before they moved here.
 */
import * as tf from '@tensorflow/tfjs-core';

/** `[4,8,8,16]`-style shape text. */
export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** Short text for any value: `[1, 0]`, `"cubic"`, `a float32 tensor of shape [2,2]`, `an object with keys {a, b}`. */
export function valueText(v: unknown): string {
  switch (true) {
    case v instanceof tf.Tensor:
      return `a ${(v as tf.Tensor).dtype} tensor of shape ${shapeText((v as tf.Tensor).shape)}`;
    case v === undefined || v === null:
      return String(v);
    case typeof v === 'function':
      return 'a function';
    case typeof v === 'number':
      return String(v);
    case Array.isArray(v):
      return `[${(v as unknown[]).map((x) => (['number', 'string'].includes(typeof x) ? JSON.stringify(x) : typeof x)).join(', ')}]`;
    case typeof v === 'object':
      return `an object with keys {${Object.keys(v as object).join(', ')}}`;
    default:
      return JSON.stringify(v);
  }
}

/** Throws `ErrorType("<where>: <message>")`. */
export function fail(where: string, message: string, ErrorType: ErrorConstructor = Error): never {
  throw new ErrorType(`${where}: ${message}`);
}

/** Throws unless `images` is a rank-4 tensor: `<where>: images must be a [B,H,W,C] tensor, got [2,2]`. */
export function checkImageBatch(where: string, images: unknown): asserts images is tf.Tensor4D {
  if (images instanceof tf.Tensor && images.rank === 4) return;
  fail(where, `images must be a [B,H,W,C] tensor, got ${images instanceof tf.Tensor ? shapeText(images.shape) : String(images)}`, RangeError);
}

/** Throws unless `value` is an integer in [min, max] (`turns must be an integer in [0, 3], got 4`). */
export function checkInteger(where: string, field: string, value: unknown, min: number, max?: number): asserts value is number {
  const ok = typeof value === 'number' && Number.isInteger(value) && value >= min && (max === undefined || value <= max);
  if (!ok) fail(where, `${field} must be an integer ${max === undefined ? `>= ${min}` : `in [${min}, ${max}]`}, got ${valueText(value)}`, RangeError);
}

/** Throws unless `value` is one of `accepted` (`method must be one of "a", "b", got "c"`). */
export function checkChoice<T extends string>(where: string, field: string, value: unknown, accepted: readonly T[]): asserts value is T {
  if ((accepted as readonly unknown[]).includes(value)) return;
  fail(where, `${field} must be one of ${accepted.map((a) => JSON.stringify(a)).join(', ')}, got ${valueText(value)}`, RangeError);
}

/** Throws unless `params` is a plain object (the functions take one params object). */
export function checkParamsObject(where: string, params: unknown): asserts params is Record<string, unknown> {
  if (typeof params === 'object' && params !== null && !Array.isArray(params)) return;
  fail(where, `expected one params object, got ${valueText(params)}`, TypeError);
}

/** Rejects keys outside `known` (catches typos): `unknown parameter "resize"; accepted: ...`. */
export function checkKnownKeys(where: string, params: object, known: readonly string[]): void {
  const unknown = Object.keys(params).find((k) => !known.includes(k));
  if (unknown !== undefined) fail(where, `unknown parameter "${unknown}"; accepted: ${known.join(', ')}`, RangeError);
}

/** Throws unless `value` is a live float32 tensor of one of `ranks`; `expected` describes it (`[B,H,W,C]`). */
export function checkFloatTensor(where: string, name: string, value: unknown, ranks: readonly number[], expected: string): asserts value is tf.Tensor {
  if (!(value instanceof tf.Tensor)) fail(where, `${name} must be a tf.Tensor ${expected}, got ${valueText(value)}`, TypeError);
  const shape = shapeText(value.shape);
  if (value.isDisposed) fail(where, `${name} (shape ${shape}) has been disposed`);
  if (!ranks.includes(value.rank)) fail(where, `${name} must be ${expected}, got shape ${shape} (rank ${value.rank})`);
  if (value.dtype !== 'float32') fail(where, `${name} must be float32, got ${value.dtype} (shape ${shape})`);
}
