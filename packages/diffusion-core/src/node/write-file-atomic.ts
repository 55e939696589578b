/**
 * Atomic file writes (Node only: part of `@fad/diffusion-core/node`): the data goes to a temporary
 * file beside the target (`<path>.tmp-<pid>-<ms>`), is flushed to disk (fsync), then renamed over
 * the target. A reader never sees a half-written file, and after a crash the target holds either
 * the old or the new content. On failure the temporary file is removed and the error is rethrown
 * unchanged (its `code` and `path` intact, so callers can classify it).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

function tempName(path: string): string {
  return `${path}.tmp-${process.pid}-${Date.now()}`;
}

function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/** Writes a file atomically (temp file, fsync, rename). The folder must exist (a missing one rejects). */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = tempName(path);
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(toBytes(data));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/** The synchronous {@link writeFileAtomic}: temp file, fsync, rename; creates the folder. */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempName(path);
  try {
    const fd = openSync(tmp, 'w');
    try {
      const buf = toBytes(data);
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
    throw e;
  }
}
