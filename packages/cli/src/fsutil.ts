/**
 * File helpers for run directories: atomic writes (temp file + rename, so a reader never sees a
 * half-written file), content hashes, and step keys (a hash of a step's config and input hashes,
 * used to decide whether a finished step can be reused).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { CliError, fsError, withFs } from './errors';

/**
 * Writes a file atomically (same directory temp file, fsync, rename). Creates the folder. A
 * filesystem error names the path and `what` was written (e.g. "the final model"): an
 * EnvironmentError (exit 3) for a full disk, no permission or a read-only file system.
 */
export function writeFileAtomicSync(path: string, data: Uint8Array | string, what?: string): void {
  const doing = what ? `write ${what}` : 'write';
  withFs(dirname(path), 'create the folder', () => mkdirSync(dirname(path), { recursive: true }));
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      /* the original error matters */
    }
    throw fsError(e, path, doing);
  }
}

export function writeJsonAtomic(path: string, value: unknown, what?: string): void {
  writeFileAtomicSync(path, `${JSON.stringify(value, null, 2)}\n`, what);
}

export function readJson<T>(path: string, what = 'file'): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read the ${what} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new CliError(`the ${what} ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

export function readJsonIfExists<T>(path: string): T | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256File(path: string): string {
  return sha256(readFileSync(path));
}

/** JSON with object keys sorted at every level (a canonical form for hashing). */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const keys = Object.keys(value as Record<string, unknown>).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** A step key: sha256 of the step's name, its config and the hashes of its inputs. */
export function stepKey(name: string, config: unknown, inputs: Record<string, string> = {}): string {
  return sha256(stableStringify({ step: name, config, inputs })).slice(0, 16);
}

/** Marker written last in a step's folder: the step finished and its outputs are complete. */
export const COMPLETE_FILE = 'complete.json';

export interface CompleteMarker {
  step: string;
  key: string;
  finishedAt: string;
  [extra: string]: unknown;
}

export function readComplete(dir: string): CompleteMarker | null {
  return readJsonIfExists<CompleteMarker>(`${dir}/${COMPLETE_FILE}`);
}

export function writeComplete(dir: string, marker: Omit<CompleteMarker, 'finishedAt'>): void {
  writeJsonAtomic(`${dir}/${COMPLETE_FILE}`, { ...marker, finishedAt: new Date().toISOString() });
}

/** Formats seconds as 1h02m, 3m05s or 12s. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}
