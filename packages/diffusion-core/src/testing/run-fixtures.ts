/**
 * Test helper for the run specs (node/*-run.spec.ts): temp folders and models made per test and
 * removed after it, and the check of a run's derived step key.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect } from 'vitest';

/** Registers the cleanup; `tmp()` makes a folder, `keep(x)` disposes `x` after the test. */
export function runFixtures(prefix: string): { tmp: () => string; keep: (...xs: Array<{ dispose(): void }>) => void } {
  const dirs: string[] = [];
  const disposables: Array<{ dispose(): void }> = [];
  afterEach(() => {
    disposables.splice(0).forEach((d) => d.dispose());
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return {
    tmp: () => {
      const d = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
    keep: (...xs) => disposables.push(...xs),
  };
}

/** Two runs with the same settings get the same 16-digit key, a run with other settings another. */
export async function expectDerivedKeys(run: (other: boolean) => Promise<{ key: string }>): Promise<void> {
  const a = await run(false);
  const b = await run(false);
  const c = await run(true);
  expect(a.key).toMatch(/^[0-9a-f]{16}$/);
  expect(b.key).toBe(a.key);
  expect(c.key).not.toBe(a.key);
}
