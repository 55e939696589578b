// Test helper (not exported): the read-only reference files in `<repo root>/../shared/reference`.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(start: string): string | null {
  let dir = start;
  for (;;) {
    if (existsSync(path.join(dir, 'nx.json')) && existsSync(path.join(dir, 'packages'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));

/** The shared reference folder; `FAD_SHARED_REFERENCE_DIR` overrides it (point it at a missing folder to see the skips). */
export const SHARED_REFERENCE_DIR =
  process.env.FAD_SHARED_REFERENCE_DIR ?? (repoRoot ? path.resolve(repoRoot, '..', 'shared', 'reference') : path.resolve('/nonexistent-shared-reference'));

/** Absolute path of `relativePath` under the shared reference folder. */
export function sharedReferencePath(relativePath: string): string {
  return path.join(SHARED_REFERENCE_DIR, relativePath);
}

/** Whether `relativePath` exists under the shared reference folder. */
export function hasSharedReference(relativePath: string): boolean {
  return existsSync(sharedReferencePath(relativePath));
}

/** Suffix for a describe() name: empty when present, else why the block is skipped (also warned). */
export function skipReason(relativePath: string): string {
  if (hasSharedReference(relativePath)) return '';
  const reason = ` [SKIPPED: reference ${sharedReferencePath(relativePath)} not found]`;
  console.warn(`@fad/expert-models tests:${reason}`);
  return reason;
}
