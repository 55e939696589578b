/** Atomic file writes (Node only: part of `@fad/diffusion-core/node`). */
import { rename, rm, writeFile } from 'node:fs/promises';

/** Writes a file atomically: to a temporary name beside it, then renamed into place. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
