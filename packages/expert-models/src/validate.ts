/**
 * Argument checks shared by the package (internal). Every message names the function, the field,
 * the value received and what is accepted, e.g.
 * `trainExpert: batchSize must be an integer >= 1, got 0`.
 */

/** Renders a value for an error message (short, JSON-like). */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return value.length > 8 ? `[${value.slice(0, 8).map(show).join(',')},...] (${value.length} items)` : `[${value.map(show).join(',')}]`;
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as unknown as ArrayLike<number>).length})`;
  if (typeof value === 'function') return 'a function';
  try {
    const s = JSON.stringify(value);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(value);
  }
}

/** Throws unless `value` is a plain object (not null, not an array). */
export function assertObject(fn: string, field: string, value: unknown): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${fn}: ${field} must be an object, got ${show(value)}`);
  }
}

/** Throws if `obj` has a key outside `accepted` (catches typos such as `learningrate`). */
export function assertKnownKeys(fn: string, field: string, obj: object, accepted: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!accepted.includes(k)) {
      throw new RangeError(`${fn}: unknown field ${field ? `${field}.` : ''}${k}; accepted: ${accepted.join(', ')}`);
    }
  }
}

/** Throws unless `value` is an integer in [min, max]. */
export function assertInt(fn: string, field: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new RangeError(`${fn}: ${field} must be an integer ${range}, got ${show(value)}`);
  }
}

/**
 * Throws unless `value` is a finite number within the bounds. `minExclusive` makes the lower
 * bound strict (e.g. a positive learning rate).
 */
export function assertNumber(
  fn: string,
  field: string,
  value: unknown,
  bounds: { min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean } = {},
): asserts value is number {
  const { min = -Infinity, max = Infinity, minExclusive = false, maxExclusive = false } = bounds;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (minExclusive ? value > min : value >= min) &&
    (maxExclusive ? value < max : value <= max);
  if (!ok) {
    const lo = min === -Infinity ? '' : `${minExclusive ? '>' : '>='} ${min}`;
    const hi = max === Infinity ? '' : `${maxExclusive ? '<' : '<='} ${max}`;
    const what = [lo, hi].filter(Boolean).join(' and ');
    throw new RangeError(`${fn}: ${field} must be a finite number${what ? ` ${what}` : ''}, got ${show(value)}`);
  }
}

/** Throws unless `value` is one of `accepted`. */
export function assertOneOf<T extends string>(fn: string, field: string, value: unknown, accepted: readonly T[]): asserts value is T {
  if (typeof value !== 'string' || !(accepted as readonly string[]).includes(value)) {
    throw new RangeError(`${fn}: ${field} must be one of ${accepted.map((a) => JSON.stringify(a)).join(', ')}, got ${show(value)}`);
  }
}

/** Throws unless `value` is a boolean. */
export function assertBoolean(fn: string, field: string, value: unknown): asserts value is boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${fn}: ${field} must be true or false, got ${show(value)}`);
}

/** Throws unless `value` is a function. */
export function assertFunction(fn: string, field: string, value: unknown): void {
  if (typeof value !== 'function') throw new TypeError(`${fn}: ${field} must be a function, got ${show(value)}`);
}

/** `[2,64,64,1]` style rendering of a shape. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
