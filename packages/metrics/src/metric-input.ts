/**
 * Input types shared by every metric, and the checks that turn them into plain Float64 data.
 *
 * Metrics never run tensor ops: a tensor is read once with `dataSync()` (which creates no tensor),
 * so no metric can leak tensor memory and none depends on the active backend.
 */
import type { Tensor } from '@tensorflow/tfjs-core';

/** A flat array of numbers: any numeric typed array or a plain array. */
export type NumericArray =
  | Float64Array
  | Float32Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint16Array
  | Uint8Array
  | Uint8ClampedArray
  | readonly number[];

/** A flat row-major array together with its shape, e.g. `{ data, shape: [8, 64, 64, 1] }`. */
export interface ShapedArray {
  readonly data: NumericArray;
  readonly shape: readonly number[];
}

/** A tensor or a flat row-major array with its shape. */
export type ArrayInput = Tensor | ShapedArray;

/** Feature matrix `[N, D]`: a rank-2 tensor, a shaped flat array, or an array of N rows. */
export type FeatureInput = ArrayInput | readonly (readonly number[])[];

/**
 * Class labels: integer labels `[N]` (tensor, typed array or plain array), or scores `[N, K]`
 * (logits or probabilities, as a tensor or shaped array), which are reduced to their arg-max.
 */
export type LabelInput = ArrayInput | NumericArray;

/** Thrown when an argument has the wrong shape, type or values. Its message names the argument. */
export class MetricInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetricInputError';
  }
}

/** Plain data read from an input: values as given (not copied when already Float64) and the shape. */
export interface ReadArray {
  readonly data: NumericArray;
  readonly shape: number[];
}

/** `[2,64,64]` style rendering used in messages. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

function isTensorLike(value: unknown): value is Tensor {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Tensor).dataSync === 'function' &&
    Array.isArray((value as Tensor).shape) &&
    typeof (value as Tensor).dtype === 'string'
  );
}

function isNumericArray(value: unknown): value is NumericArray {
  return Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView));
}

/**
 * Reads a tensor or shaped array into plain data plus its shape, checking that the data length
 * matches the shape. Does not check values (see {@link assertFinite}).
 */
export function readArray(fn: string, arg: string, input: ArrayInput): ReadArray {
  if (isTensorLike(input)) {
    if (input.isDisposed) throw new MetricInputError(`${fn}: argument "${arg}" is a disposed tensor`);
    if (input.dtype === 'string' || input.dtype === 'complex64') {
      throw new MetricInputError(`${fn}: argument "${arg}" has dtype ${input.dtype}, expected a real numeric dtype`);
    }
    return { data: input.dataSync() as NumericArray, shape: input.shape.slice() };
  }
  if (typeof input !== 'object' || input === null || !('data' in input) || !('shape' in input)) {
    throw new MetricInputError(`${fn}: argument "${arg}" must be a tensor or { data, shape }, got ${describe(input)}`);
  }
  const { data, shape } = input;
  if (!isNumericArray(data)) {
    throw new MetricInputError(`${fn}: argument "${arg}.data" must be a numeric typed array or number[], got ${describe(data)}`);
  }
  if (!Array.isArray(shape) || !shape.every((s) => Number.isInteger(s) && s >= 0)) {
    throw new MetricInputError(`${fn}: argument "${arg}.shape" must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (data.length !== size) {
    throw new MetricInputError(
      `${fn}: argument "${arg}" has ${data.length} values but its shape ${formatShape(shape)} needs ${size}`,
    );
  }
  return { data, shape: shape.slice() };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  return typeof value;
}

/** Multi-index of flat position `flat` in `shape`, for messages. */
export function unravelIndex(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  let r = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    const s = shape[d];
    idx[d] = s > 0 ? r % s : 0;
    r = s > 0 ? Math.floor(r / s) : 0;
  }
  return idx;
}

/** Throws if any value is NaN or infinite, naming the argument and the first bad index. */
export function assertFinite(fn: string, arg: string, data: NumericArray, shape: readonly number[]): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) {
      throw new MetricInputError(
        `${fn}: argument "${arg}" contains ${Number.isNaN(v) ? 'NaN' : String(v)} at index ${formatShape(unravelIndex(i, shape))} (shape ${formatShape(shape)})`,
      );
    }
  }
}

/** Throws unless `shape` has one of the ranks in `ranks`. `expected` describes the layout, e.g. "[N,D]". */
export function assertRank(fn: string, arg: string, shape: readonly number[], ranks: readonly number[], expected: string): void {
  if (!ranks.includes(shape.length)) {
    throw new MetricInputError(`${fn}: argument "${arg}" has shape ${formatShape(shape)}, expected ${expected}`);
  }
}

/** Copies any numeric array into a new Float64Array. */
export function toFloat64(data: NumericArray): Float64Array {
  return Float64Array.from(data as ArrayLike<number>);
}

/** A feature matrix read as Float64, row-major `[rows, cols]`. */
export interface FeatureMatrix {
  readonly data: Float64Array;
  readonly rows: number;
  readonly cols: number;
}

/**
 * Reads a feature matrix `[N, D]` (tensor, shaped array or array of rows) into Float64, checking
 * rank, consistent row lengths, at least `minRows` rows, and finiteness.
 */
export function readFeatures(fn: string, arg: string, input: FeatureInput, minRows = 1): FeatureMatrix {
  let data: Float64Array;
  let rows: number;
  let cols: number;
  if (Array.isArray(input) && (input.length === 0 || Array.isArray(input[0]))) {
    const rowsIn = input as readonly (readonly number[])[];
    rows = rowsIn.length;
    cols = rows > 0 ? rowsIn[0].length : 0;
    data = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      const r = rowsIn[i];
      if (!Array.isArray(r) || r.length !== cols) {
        throw new MetricInputError(
          `${fn}: argument "${arg}" row ${i} has length ${Array.isArray(r) ? r.length : 'n/a'}, expected ${cols} (the length of row 0)`,
        );
      }
      for (let j = 0; j < cols; j++) data[i * cols + j] = r[j];
    }
  } else {
    const read = readArray(fn, arg, input as ArrayInput);
    assertRank(fn, arg, read.shape, [2], '[N,D] (rank 2: samples x features)');
    [rows, cols] = read.shape;
    data = read.data instanceof Float64Array ? read.data : toFloat64(read.data);
  }
  if (rows < minRows || cols < 1) {
    throw new MetricInputError(
      `${fn}: argument "${arg}" has shape ${formatShape([rows, cols])}, expected [N,D] with N >= ${minRows} and D >= 1`,
    );
  }
  assertFinite(fn, arg, data, [rows, cols]);
  return { data, rows, cols };
}

/**
 * Reads class labels: integers `[N]`, or scores `[N, K]` reduced to their arg-max (first maximum
 * on ties). Checks integrality, `0 <= label < numClasses` when `numClasses` is given, and finiteness.
 */
export function readLabels(
  fn: string,
  arg: string,
  input: LabelInput,
  numClasses?: number,
): { labels: Int32Array; numScores: number | null } {
  const read = isNumericArray(input)
    ? { data: input, shape: [input.length] }
    : readArray(fn, arg, input as ArrayInput);
  assertRank(fn, arg, read.shape, [1, 2], '[N] integer labels or [N,K] logits/probabilities');
  assertFinite(fn, arg, read.data, read.shape);
  const n = read.shape[0];
  const labels = new Int32Array(n);
  if (read.shape.length === 2) {
    const k = read.shape[1];
    if (k < 1) throw new MetricInputError(`${fn}: argument "${arg}" has shape ${formatShape(read.shape)}, expected [N,K] with K >= 1`);
    if (numClasses !== undefined && k !== numClasses) {
      throw new MetricInputError(
        `${fn}: argument "${arg}" has shape ${formatShape(read.shape)}, expected [${n},${numClasses}] (numClasses = ${numClasses})`,
      );
    }
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bestV = read.data[i * k];
      for (let j = 1; j < k; j++) {
        const v = read.data[i * k + j];
        if (v > bestV) {
          bestV = v;
          best = j;
        }
      }
      labels[i] = best;
    }
    return { labels, numScores: k };
  }
  for (let i = 0; i < n; i++) {
    const v = read.data[i];
    if (!Number.isInteger(v) || v < 0) {
      throw new MetricInputError(`${fn}: argument "${arg}" has label ${v} at index [${i}], expected a non-negative integer`);
    }
    if (numClasses !== undefined && v >= numClasses) {
      throw new MetricInputError(`${fn}: argument "${arg}" has label ${v} at index [${i}], expected < numClasses = ${numClasses}`);
    }
    labels[i] = v;
  }
  return { labels, numScores: null };
}
