/**
 * Argument checks shared by the package (internal). Every failure names the function, the
 * argument, what it got and what it expected.
 */
import * as tf from '@tensorflow/tfjs-core';

/** `[4,8,8,16]`-style shape text. */
export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

export function fail(where: string, message: string, ErrorType: ErrorConstructor = Error): never {
  throw new ErrorType(`${where}: ${message}`);
}

/** Throws unless `params` is a plain object (functions here take one params object). */
export function assertParamsObject(where: string, params: unknown): asserts params is Record<string, unknown> {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    fail(where, `expected one params object, got ${describe(params)}`, TypeError);
  }
}

/** Throws unless `value` is a tfjs tensor of one of the given ranks and float32. */
export function assertTensor(where: string, name: string, value: unknown, ranks: readonly number[], expected: string): asserts value is tf.Tensor {
  if (!(value instanceof tf.Tensor)) {
    fail(where, `${name} must be a tf.Tensor ${expected}, got ${describe(value)}`, TypeError);
  }
  if (value.isDisposed) fail(where, `${name} (shape ${shapeText(value.shape)}) has been disposed`);
  if (!ranks.includes(value.rank)) {
    fail(where, `${name} must be ${expected}, got shape ${shapeText(value.shape)} (rank ${value.rank})`);
  }
  if (value.dtype !== 'float32') {
    fail(where, `${name} must be float32, got ${value.dtype} (shape ${shapeText(value.shape)})`);
  }
}

export function assertPositiveInteger(where: string, name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    fail(where, `${name} must be a positive integer, got ${describe(value)}`, RangeError);
  }
}

export function assertFiniteNonNegative(where: string, name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    fail(where, `${name} must be a finite number >= 0, got ${describe(value)}`, RangeError);
  }
}

export function assertOneOf<T extends string>(where: string, name: string, value: unknown, allowed: readonly T[]): asserts value is T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    fail(where, `${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(value)}`, RangeError);
  }
}

/** Rejects keys a params object does not accept (catches typos such as `lamda2`). */
export function assertKnownKeys(where: string, params: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(params)) {
    if (!known.includes(k)) fail(where, `unknown parameter "${k}"; accepted: ${known.join(', ')}`, RangeError);
  }
}

/** Short description of any value for error messages. */
export function describe(v: unknown): string {
  if (v instanceof tf.Tensor) return `a ${v.dtype} tensor of shape ${shapeText(v.shape)}`;
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return `[${v.map((x) => (typeof x === 'number' || typeof x === 'string' ? JSON.stringify(x) : typeof x)).join(', ')}]`;
  if (typeof v === 'object') return `an object with keys {${Object.keys(v as object).join(', ')}}`;
  return JSON.stringify(v);
}
