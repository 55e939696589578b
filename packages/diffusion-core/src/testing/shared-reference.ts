/**
 * Test helper (not part of the package API): the read-only reference files in
 * `<repo root>/../shared/reference`. Tests that need them skip, with the reason in their name and
 * a warning, when the folder is missing. `FAD_SHARED_REFERENCE_DIR` overrides the location.
 */
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

export const SHARED_REFERENCE_DIR =
  process.env.FAD_SHARED_REFERENCE_DIR ??
  (repoRoot ? path.resolve(repoRoot, '..', 'shared', 'reference') : path.resolve('/nonexistent-shared-reference'));

/** Absolute path of `relativePath` under the shared reference folder (it may not exist). */
export function sharedReferencePath(relativePath: string): string {
  return path.join(SHARED_REFERENCE_DIR, relativePath);
}

/** Suffix for a describe() name: empty when present, else the reason the block is skipped. */
export function skipReason(relativePath: string): string {
  if (existsSync(sharedReferencePath(relativePath))) return '';
  const reason = ` [SKIPPED: reference folder ${sharedReferencePath(relativePath)} not found]`;
  console.warn(`@fad/diffusion-core tests:${reason}`);
  return reason;
}
