/**
 * Up-front parameter checks shared by the library runs of this entry point (the training run and the
 * generation run): one message shape, `<fn>: <field> must be <expected>, got <value>`.
 */

/** Throws `E` (RangeError by default) naming the function, the field, what was expected and what came. */
export function failParam(fn: string, field: string, expected: string, got: unknown, E: typeof TypeError | typeof RangeError = RangeError): never {
  let shown: string;
  try {
    shown = JSON.stringify(got) ?? String(got);
  } catch {
    shown = String(got);
  }
  throw new E(`${fn}: ${field} must be ${expected}, got ${shown.slice(0, 80)}`);
}

/** An integer at least `min`. */
export const isIntAtLeast = (v: unknown, min: number): v is number => Number.isInteger(v) && (v as number) >= min;
