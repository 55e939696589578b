/**
 * File helpers for run directories, with the CLI's error messages: atomic writes, content hashes,
 * step keys and the resumable-step bookkeeping. The logic lives in @fad/diffusion-core/node
 * (write-file-atomic.ts, resumable-step.ts); this file maps its errors to the CLI's (exit codes,
 * `--force` / `--resume` in the messages).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertStateKey,
  COMPLETE_FILE,
  type CompleteMarker,
  type PreparedStep,
  type PrepareResumableStepParams,
  prepareResumableStep,
  ResumableStepError,
  readCompleteMarker,
  sha256,
  writeCompleteMarker,
  writeFileAtomicSync as writeFileAtomicSyncCore,
} from '@fad/diffusion-core/node';
import { CliError, withFs } from './errors';

/**
 * Writes a file atomically (`writeFileAtomicSync` of @fad/diffusion-core/node: same-directory temp
 * file, fsync, rename; creates the folder). A filesystem error names the path and `what` was
 * written (e.g. "the final model"): an EnvironmentError (exit 3) for a full disk, no permission or
 * a read-only file system.
 */
export function writeFileAtomicSync(path: string, data: Uint8Array | string, what?: string): void {
  withFs(path, what ? `write ${what}` : 'write', () => writeFileAtomicSyncCore(path, data));
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

export { COMPLETE_FILE, formatDuration, sha256, stableStringify, stepKey } from '@fad/diffusion-core/node';
export type { CompleteMarker } from '@fad/diffusion-core/node';

export function sha256File(path: string): string {
  return sha256(readFileSync(path));
}

export function readComplete(dir: string): CompleteMarker | null {
  return readCompleteMarker(dir);
}

export function writeComplete(dir: string, marker: Omit<CompleteMarker, 'finishedAt'>): void {
  withFs(join(dir, COMPLETE_FILE), 'write the completion marker', () => writeCompleteMarker(dir, marker));
}

/**
 * `prepareResumableStep` of @fad/diffusion-core/node with the CLI's flags in its messages
 * (`--resume`, `--force`); its refusals become CliErrors (exit 1).
 */
export function prepareStep(p: Omit<PrepareResumableStepParams, 'flags'>): PreparedStep {
  return asCliError(() => withFs(p.dir, 'prepare the output folder', () => prepareResumableStep({ ...p, flags: CLI_FLAGS })));
}

/** `assertStateKey` of @fad/diffusion-core/node with the CLI's flags; a mismatch is a CliError. */
export function assertSameStateKey(p: { where: string; stored: string; key: string; storedName?: string }): void {
  asCliError(() => assertStateKey({ ...p, flags: CLI_FLAGS }));
}

export const CLI_FLAGS = { force: '--force', resume: '--resume' };

function asCliError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ResumableStepError) throw new CliError(e.message);
    throw e;
  }
}

