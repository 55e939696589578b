/** systemFontAvailable on made-up font folders. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { systemFontAvailable, systemFontDirs } from './system-font';

const root = mkdtempSync(join(tmpdir(), 'fad-fonts-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('systemFontAvailable', () => {
  it('finds a .ttf/.otf/.ttc file up to 4 folders down, in any of the folders', () => {
    const deep = join(root, 'a', 'b', 'c', 'd');
    mkdirSync(join(deep, 'e', 'f'), { recursive: true });
    writeFileSync(join(root, 'a', 'readme.txt'), '');
    expect(systemFontAvailable([join(root, 'a')])).toBe(false);
    writeFileSync(join(deep, 'e', 'f', 'Font.otf'), '');
    expect(systemFontAvailable([join(root, 'a')])).toBe(false); // 5 folders down (a/b/c/d/e/f)
    writeFileSync(join(deep, 'e', 'DejaVuSans.TTF'), '');
    expect(systemFontAvailable([join(root, 'missing'), join(root, 'a')])).toBe(true);
    expect(systemFontAvailable([join(root, 'missing')])).toBe(false);
    expect(systemFontAvailable([])).toBe(false);
  });

  it('looks where fontconfig looks by default', () => {
    expect(systemFontDirs()).toContain('/usr/share/fonts');
    expect(systemFontDirs()).toContain(`${process.env.HOME ?? ''}/.fonts`);
  });
});
