/**
 * Test helper (private, never published): locates the read-only reference values in
 * `<repo root>/../shared/reference` and loads them. Tests that need them skip, with the reason in
 * their name and a warning, when the folder is missing. One home for every package's specs.
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

/** Absolute path of `relativePath` under the shared reference folder (it may not exist). */
export function sharedReferencePath(relativePath: string): string {
  return path.join(SHARED_REFERENCE_DIR, relativePath);
}

/** Whether `relativePath` (e.g. 'ssim/ssim-64.json') exists under the shared reference folder. */
export function hasSharedReference(relativePath: string): boolean {
  return existsSync(sharedReferencePath(relativePath));
}

/**
 * Suffix for a describe() name: empty when present, else the reason the block is skipped (also
 * warned, prefixed with `owner`, e.g. "@fad/metrics tests").
 */
export function skipReason(relativePath: string, owner = 'fad tests'): string {
  if (hasSharedReference(relativePath)) return '';
  const reason = ` [SKIPPED: reference file ${sharedReferencePath(relativePath)} not found]`;
  console.warn(`${owner}:${reason}`);
  return reason;
}

/** Parses a reference JSON file. */
export function loadSharedReference<T>(relativePath: string): T {
  return JSON.parse(readFileSync(sharedReferencePath(relativePath), 'utf8')) as T;
}
