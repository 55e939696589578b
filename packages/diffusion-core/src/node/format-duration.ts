/**
 * Wall times for run logs and tables (Node only: part of `@fad/diffusion-core/node`, beside the
 * other run-folder helpers): `1h02m`, `3m05s` or `12s`.
 */

/** Seconds as 1h02m, 3m05s or 12s (rounded to whole seconds); `?` for a negative or non-finite value. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}
