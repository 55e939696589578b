/**
 * Test helper (not part of the package API): locates the read-only reference values in
 * `<repo root>/../shared/reference` and loads them. Tests that need them skip, with the reason in
 * their name and a warning, when the folder is missing.
 */
import { existsSync, readFileSync } from 'node:fs';
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

/**
 * Absolute path of the shared reference folder (it may not exist). `FAD_SHARED_REFERENCE_DIR`
 * overrides it (e.g. point it at a missing folder to check that the reference tests skip).
 */
export const SHARED_REFERENCE_DIR =
  process.env.FAD_SHARED_REFERENCE_DIR ??
  (repoRoot ? path.resolve(repoRoot, '..', 'shared', 'reference') : path.resolve('/nonexistent-shared-reference'));

/** Whether `relativePath` (e.g. 'ssim/ssim-64.json') exists under the shared reference folder. */
export function hasSharedReference(relativePath: string): boolean {
  return existsSync(path.join(SHARED_REFERENCE_DIR, relativePath));
}

/** Suffix for a describe() name: empty when present, else the reason the block is skipped. */
export function skipReason(relativePath: string): string {
  if (hasSharedReference(relativePath)) return '';
  const reason = ` [SKIPPED: reference file ${path.join(SHARED_REFERENCE_DIR, relativePath)} not found]`;
  console.warn(`@fad/metrics tests:${reason}`);
  return reason;
}

/** Parses a reference JSON file. */
export function loadSharedReference<T>(relativePath: string): T {
  return JSON.parse(readFileSync(path.join(SHARED_REFERENCE_DIR, relativePath), 'utf8')) as T;
}
