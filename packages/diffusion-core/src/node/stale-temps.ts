/**
 * Temp files left by interrupted atomic writes (`writeFileAtomic` writes `name.tmp-<pid>[-<time>]`
 * and renames it; a killed process leaves the temp behind). A run removes them from its folder when
 * it starts, keeping those of writers that still run.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** `name.tmp-<pid>` or `name.tmp-<pid>-<time>` (atomic writes). */
const TEMP = /\.tmp-(\d+)(?:-\d+)?$/;

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Parameters of {@link removeStaleTemps}. */
export interface RemoveStaleTempsParams {
  /** The folder to clean (not recursive); a missing or unreadable folder removes nothing. */
  dir: string;
  /** Only entries whose name starts with this. */
  prefix?: string;
  /** Told how many were removed, when any were. */
  log?: (message: string) => void;
}

/**
 * Removes the temp files and folders in `dir` of processes that no longer run (`*.tmp-<pid>[-<time>]`),
 * and `metrics.jsonl.tmp`. An entry that cannot be removed is left for the next start. Returns the
 * names removed.
 */
export function removeStaleTemps(params: RemoveStaleTempsParams): string[] {
  if (params === null || typeof params !== 'object') throw new TypeError(`removeStaleTemps: expected one params object, got ${String(params)}`);
  const { dir, prefix, log } = params;
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`removeStaleTemps: dir must be a non-empty string, got ${JSON.stringify(dir)}`);
  if (prefix !== undefined && typeof prefix !== 'string') throw new TypeError(`removeStaleTemps: prefix must be a string, got ${JSON.stringify(prefix)}`);
  if (!existsSync(dir)) return [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (prefix !== undefined && !name.startsWith(prefix)) continue;
    const m = TEMP.exec(name);
    const stale = m ? !alive(Number(m[1])) : name === 'metrics.jsonl.tmp';
    if (!stale) continue;
    try {
      rmSync(join(dir, name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      /* left for the next start */
    }
  }
  if (removed.length) log?.(`fad: removed ${removed.length} temp file(s) left by an interrupted write in ${dir} (${removed.slice(0, 3).join(', ')}${removed.length > 3 ? ', ...' : ''})`);
  return removed;
}
