/** How the report writes values into HTML: escaped text, percentages, fixed decimals, `–` for missing. */

/** `s` as HTML text (also safe inside a quoted attribute). */
export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

const finite = (v: number | null | undefined): v is number => v !== null && v !== undefined && Number.isFinite(v);

/** `62.5%`; `–` for a missing or non-finite value. */
export const pct = (v: number | null | undefined): string => (finite(v) ? `${(v * 100).toFixed(1)}%` : '–');

/** `v` with `d` decimals (default 3); `–` for a missing or non-finite value. */
export const num = (v: number | null | undefined, d = 3): string => (finite(v) ? v.toFixed(d) : '–');

/** Percentage points with a sign: `+5.0`; `–` for a non-finite value. */
export const pts = (v: number): string => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)}` : '–');

/** The mean (NaN for none). */
export function mean(a: number[]): number {
  return a.length ? a.reduce((x, y) => x + y, 0) / a.length : NaN;
}

/** The sample standard deviation (NaN for fewer than 2). */
export function sd(a: number[]): number {
  if (a.length < 2) return NaN;
  const m = mean(a);
  return Math.sqrt(a.reduce((x, y) => x + (y - m) ** 2, 0) / (a.length - 1));
}
