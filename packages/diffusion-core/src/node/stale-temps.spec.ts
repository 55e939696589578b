import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeStaleTemps } from './stale-temps';

const root = mkdtempSync(join(tmpdir(), 'fad-stale-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('stale temp files of interrupted atomic writes', () => {
  it('are removed (a dead writer\'s), a live writer\'s are kept, and the count is logged', () => {
    const dir = mkdtempSync(join(root, 'temps-'));
    let dead = 999_999;
    for (;;) {
      try {
        process.kill(dead, 0);
        dead++;
      } catch {
        break;
      }
    }
    writeFileSync(join(dir, `checkpoint.safetensors.tmp-${dead}-1700000000000`), 'half');
    writeFileSync(join(dir, `model.safetensors.tmp-${dead}-1`), 'half');
    writeFileSync(join(dir, `live.safetensors.tmp-${process.pid}-1`), 'writing');
    writeFileSync(join(dir, 'checkpoint.safetensors'), 'keep');
    const logs: string[] = [];
    const removed = removeStaleTemps({ dir, log: (m) => logs.push(m) });
    expect(removed.sort()).toEqual([`checkpoint.safetensors.tmp-${dead}-1700000000000`, `model.safetensors.tmp-${dead}-1`]);
    expect(readdirSync(dir).sort()).toEqual(['checkpoint.safetensors', `live.safetensors.tmp-${process.pid}-1`]);
    expect(logs).toEqual([expect.stringMatching(/removed 2 temp file\(s\) left by an interrupted write/)]);
  });
});

describe('removeStaleTemps params', () => {
  it('keeps to the prefix, ignores a missing folder, and refuses bad params', () => {
    const dir = mkdtempSync(join(root, 'prefix-'));
    writeFileSync(join(dir, 'a.json.tmp-999999999-1'), 'x');
    writeFileSync(join(dir, 'b.json.tmp-999999999-1'), 'x');
    writeFileSync(join(dir, 'metrics.jsonl.tmp'), 'x');
    expect(removeStaleTemps({ dir, prefix: 'a' })).toEqual(['a.json.tmp-999999999-1']);
    expect(removeStaleTemps({ dir }).sort()).toEqual(['b.json.tmp-999999999-1', 'metrics.jsonl.tmp']);
    expect(removeStaleTemps({ dir: join(root, 'none') })).toEqual([]);
    expect(() => removeStaleTemps({ dir: '' })).toThrow(/dir must be a non-empty string/);
  });
});
