import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TrainingRunError, withRunFs } from './training-run-error';

describe('withRunFs', () => {
  it('turns an errno error into a TrainingRunError fs naming the path and what was being done, keeping the cause', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fad-runerr-'));
    const path = join(dir, 'missing.safetensors');
    let err: unknown;
    try {
      withRunFs(path, 'read the training checkpoint', () => readFileSync(path));
    } catch (e) {
      err = e;
    }
    rmSync(dir, { recursive: true, force: true });
    expect(err).toBeInstanceOf(TrainingRunError);
    expect((err as TrainingRunError).code).toBe('fs');
    expect((err as TrainingRunError).details).toEqual({ path, doing: 'read the training checkpoint' });
    expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect((err as Error).message).toMatch(/^cannot read the training checkpoint .*missing.safetensors: ENOENT/);
  });

  it('passes other errors through unchanged and returns the value', () => {
    const plain = new RangeError('not a file system error');
    expect(() => withRunFs('/x', 'do', () => { throw plain; })).toThrow(plain);
    const own = new TrainingRunError('non-finite', 'diverged');
    expect(() => withRunFs('/x', 'do', () => { throw own; })).toThrow(own);
    expect(withRunFs('/x', 'do', () => 42)).toBe(42);
  });
});
