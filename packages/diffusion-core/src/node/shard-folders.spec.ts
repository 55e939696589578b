import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killedShardHints, listShardFolders } from './shard-folders';

const root = mkdtempSync(join(tmpdir(), 'fad-shard-folders-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('listShardFolders / killedShardHints', () => {
  it('lists I-of-N folders in order, and the temp folders of killed shards by shard', () => {
    const dir = join(root, 'shards');
    for (const n of ['2-of-3', '0-of-3', '1-of-3.tmp-4242', 'notes', '3-of-x']) mkdirSync(join(dir, n), { recursive: true });
    writeFileSync(join(dir, 'README'), '');
    const { names, killed } = listShardFolders({ dir });
    expect(names).toEqual(['0-of-3', '2-of-3']);
    expect([...killed]).toEqual([['1-of-3', '1-of-3.tmp-4242']]);
    const hints = killedShardHints({ problems: [{ shard: '1-of-3' }, { shard: '2-of-3' }], killed });
    expect(hints).toEqual(['  (1-of-3: 1-of-3.tmp-4242 was left by a run of it that was killed; run that shard again)']);
  });

  it('throws Node\'s error for a missing folder and refuses bad params', () => {
    expect(() => listShardFolders({ dir: join(root, 'none') })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => listShardFolders({ dir: '' })).toThrow(TypeError);
    expect(() => killedShardHints({ problems: [], killed: {} as never })).toThrow(TypeError);
  });
});
