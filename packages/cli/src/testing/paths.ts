/** Paths the tests need: the repository root (the folder holding nx.json) and the shared data. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export function repoRoot(): string {
  let d = here;
  for (let i = 0; i < 10; i++) {
    if (existsSync(join(d, 'nx.json'))) return d;
    d = dirname(d);
  }
  throw new Error(`cannot find the repository root (nx.json) above ${here}`);
}

/** `<repo>/../shared/data/<name>`, or null (with the path, for the skip message) when absent. */
export function sharedData(name: string): { path: string; present: boolean } {
  const path = resolve(repoRoot(), '..', 'shared', 'data', name);
  return { path, present: existsSync(path) };
}

/** The built executable. */
export const BIN = resolve(here, '..', '..', 'dist', 'bin.js');
