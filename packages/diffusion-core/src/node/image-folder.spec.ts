import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ImageFolderError } from './image-folder-error';
import { inspectImageFolder, loadImageFolder } from './image-folder';
import { mapClassName, scanImageFolder } from './image-folder-scan';

const root = mkdtempSync(join(tmpdir(), 'fad-image-folder-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Writes an 8-bit PNG of `channels` channels from `values` (HWC). */
async function png(path: string, width: number, height: number, channels: 1 | 3, values: number[]): Promise<void> {
  await sharp(Buffer.from(values), { raw: { width, height, channels } }).toColourspace(channels === 1 ? 'b-w' : 'srgb').png().toFile(path);
}

const gray4 = Array.from({ length: 16 }, (_, i) => i * 16); // 4x4: 0, 16, ..., 240
const rgb4 = [255, 0, 0, 0, 255, 0, 0, 0, 255, ...Array.from({ length: 39 }, (_, i) => (i * 37) % 256)]; // 4x4x3: red, green, blue, then mixed

/** `ImageFolderError` code of a rejected promise or a throwing call. */
async function codeOf(p: () => unknown): Promise<string> {
  try {
    await p();
  } catch (e) {
    return e instanceof ImageFolderError ? e.code : `not an ImageFolderError: ${String(e)}`;
  }
  return 'no error';
}

let dir: string;
beforeAll(async () => {
  dir = join(root, 'data');
  mkdirSync(join(dir, '01_Gray'), { recursive: true });
  mkdirSync(join(dir, '02_Colour'));
  await png(join(dir, '01_Gray', 'a.png'), 4, 4, 1, gray4);
  await png(join(dir, '01_Gray', 'b.png'), 4, 4, 1, gray4.map((v) => 255 - v));
  await png(join(dir, '02_Colour', 'c.png'), 4, 4, 3, rgb4);
  writeFileSync(join(dir, 'README.md'), 'ignored');
  writeFileSync(join(dir, '02_Colour', 'notes.txt'), 'odd');
});

describe('loadImageFolder', () => {
  it('labels the class folders, converts colour to BT.601 luma and area-resizes exactly', async () => {
    const d = await loadImageFolder({ dir, imageSize: 2, channels: 1, onBadFile: 'error' });
    expect(d.classNames).toEqual(['gray', 'colour']);
    expect(d.folders).toEqual(['01_Gray', '02_Colour']);
    expect(d.files).toEqual(['01_Gray/a.png', '01_Gray/b.png', '02_Colour/c.png']);
    expect(Array.from(d.labels)).toEqual([0, 0, 1]);
    expect(d.oddFiles).toEqual(['02_Colour/notes.txt']);
    expect(d.sourceSize).toBe('4x4');
    // Independent reference: 2x2 block means of the 8-bit values / 255 (in float64, then float32).
    const pool = (v: number[]) => [0, 1].flatMap((y) => [0, 1].map((x) => Math.fround([0, 1].flatMap((dy) => [0, 1].map((dx) => v[(2 * y + dy) * 4 + 2 * x + dx] / 255)).reduce((a, b) => a + b) / 4)));
    const luma = Array.from({ length: 16 }, (_, i) => Math.round(0.299 * rgb4[3 * i] + 0.587 * rgb4[3 * i + 1] + 0.114 * rgb4[3 * i + 2]));
    const want = [...pool(gray4), ...pool(gray4.map((v) => 255 - v)), ...pool(luma)];
    Array.from(d.images).forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
    expect(d.images[0]).toBeCloseTo((0 + 16 + 64 + 80) / 4 / 255, 6);
    // At the file's size nothing is resized: exactly the 8-bit luma / 255.
    const full = await loadImageFolder({ dir, imageSize: 4, channels: 1, classes: ['colour'] });
    expect(Array.from(full.images)).toEqual(luma.map((v) => Math.fround(v / 255)));
    // The fingerprint depends on files, labels and settings, not on the call.
    const again = await loadImageFolder({ dir, imageSize: 2, channels: 1 });
    expect(again.fingerprint).toBe(d.fingerprint);
    expect((await loadImageFolder({ dir, imageSize: 2, channels: 1, resize: 'bilinear' })).fingerprint).not.toBe(d.fingerprint);
  });

  it('loads RGB, picks and orders classes by name, caps files per class', async () => {
    const d = await loadImageFolder({ dir, imageSize: 4, channels: 3, classes: ['colour'], maxPerClass: 1 });
    expect(d.classNames).toEqual(['colour']);
    expect(Array.from(d.images)).toEqual(rgb4.map((v) => Math.fround(v / 255)));
    const ordered = await loadImageFolder({ dir, imageSize: 4, channels: 1, classes: ['02_Colour', 'gray'], maxPerClass: 1 });
    expect(ordered.files).toEqual(['02_Colour/c.png', '01_Gray/a.png']);
    expect(Array.from(ordered.labels)).toEqual([0, 1]);
    expect(await codeOf(() => loadImageFolder({ dir, imageSize: 4, channels: 1, classes: ['zebra'] }))).toBe('unknown-class');
    expect(await codeOf(() => loadImageFolder({ dir, imageSize: 64, channels: 1, maxValues: 1000 }))).toBe('too-large');
  });

  it("bad files: 'error' names the file and the reason, 'skip' warns, leaves them out and lists them", async () => {
    const bad = join(root, 'bad');
    mkdirSync(join(bad, 'a'), { recursive: true });
    mkdirSync(join(bad, 'b'));
    await png(join(bad, 'a', '0.png'), 4, 4, 1, gray4);
    await png(join(bad, 'a', '1.png'), 4, 2, 1, gray4.slice(0, 8));
    await png(join(bad, 'b', '0.png'), 4, 4, 1, gray4);
    writeFileSync(join(bad, 'b', 'broken.png'), Buffer.from('\x89PNG\r\n\x1a\nnot a png'));
    let err: unknown;
    await loadImageFolder({ dir: bad, imageSize: 2, channels: 1 }).catch((e) => (err = e));
    expect(err).toBeInstanceOf(ImageFolderError);
    expect((err as ImageFolderError).code).toBe('bad-file');
    expect((err as ImageFolderError).message).toBe(`${join(bad, 'a/1.png')} is 4x2, not square. Fix or remove the file, or pass onBadFile: 'skip' to leave bad files out.`);
    const warnings: string[] = [];
    const d = await loadImageFolder({ dir: bad, imageSize: 2, channels: 1, onBadFile: 'skip', onWarning: (m) => warnings.push(m) });
    expect(d.files).toEqual(['a/0.png', 'b/0.png']);
    expect(d.skipped.map((s) => s.file)).toEqual(['a/1.png', 'b/broken.png']);
    expect(d.skipped[1].reason).toMatch(/^cannot be decoded \(/);
    expect(warnings).toEqual(d.warnings);
    expect(warnings).toHaveLength(2);
    expect(await codeOf(() => loadImageFolder({ dir: bad, imageSize: 2, channels: 3, onBadFile: 'skip' }))).toBe('empty-class');
  });

  it('skips symbolic link loops and second links to a class folder, with a warning', async () => {
    const linked = join(root, 'linked');
    mkdirSync(linked);
    symlinkSync(join(dir, '01_Gray'), join(linked, '01_Gray'));
    symlinkSync(join(dir, '01_Gray'), join(linked, '02_again'));
    symlinkSync(linked, join(linked, 'loop'));
    symlinkSync(join(linked, 'self'), join(linked, 'self'));
    const scan = scanImageFolder({ dir: linked });
    expect(scan.classes.map((c) => c.folder)).toEqual(['01_Gray']);
    expect(Object.fromEntries(scan.skippedLinks.map((l) => [l.path, l.reason.split(' (')[0]]))).toEqual({
      '02_again': 'a symbolic link to the class folder "01_Gray"',
      loop: 'a symbolic link loop',
      self: 'a symbolic link loop',
    });
    const d = await loadImageFolder({ dir: linked, imageSize: 4, channels: 1 });
    expect(d.files).toEqual(['01_Gray/a.png', '01_Gray/b.png']);
    expect(d.warnings).toEqual([expect.stringMatching(/^3 symbolic link\(s\) in .* skipped \(2 loop\(s\)\)/)]);
  });

  it('rejects bad arguments and missing folders up front', async () => {
    await expect(loadImageFolder({ dir, imageSize: 0, channels: 1 })).rejects.toThrow('loadImageFolder: imageSize must be an integer >= 1, got 0');
    await expect(loadImageFolder({ dir, imageSize: 2, channels: 2 as never })).rejects.toThrow('loadImageFolder: channels must be 1 or 3, got 2');
    await expect(loadImageFolder({ dir, imageSize: 2, channels: 1, onBadFile: 'ignore' as never })).rejects.toThrow(`loadImageFolder: onBadFile must be 'error' or 'skip', got "ignore"`);
    expect(await codeOf(() => loadImageFolder({ dir: join(root, 'nope'), imageSize: 2, channels: 1 }))).toBe('missing-folder');
    const empty = mkdtempSync(join(root, 'empty-'));
    expect(await codeOf(() => scanImageFolder({ dir: empty }))).toBe('no-classes');
    expect(mapClassName('01_TUMOR')).toBe('tumor');
  });
});

describe('inspectImageFolder', () => {
  it('counts classes, sizes and modes without loading', async () => {
    const r = await inspectImageFolder({ dir });
    expect(r.classes).toEqual([{ name: 'gray', folder: '01_Gray', count: 2 }, { name: 'colour', folder: '02_Colour', count: 1 }]);
    expect(r.total).toBe(3);
    expect(r.sizes).toEqual({ '4x4': 3 });
    expect(r.modes).toEqual({ 'png b-w 1ch': 2, 'png srgb 3ch': 1 });
    expect(r.unreadable).toEqual([]);
    expect(r.warnings).toEqual(['mixed image modes: png b-w 1ch; png srgb 3ch', '1 file(s) that are not images in class folders, or not in a class folder']);
  });
});

describe('without sharp', () => {
  it('says to install it', async () => {
    vi.resetModules();
    vi.doMock('sharp', () => {
      throw new Error("Cannot find package 'sharp'");
    });
    try {
      const fresh = await import('./image-folder');
      const err = await fresh.loadImageFolder({ dir, imageSize: 2, channels: 1 }).catch((e: Error) => e);
      expect((err as { code?: string }).code).toBe('no-sharp');
      expect((err as Error).message).toMatch(/needs the optional dependency sharp, .*install it with: npm i sharp$/);
    } finally {
      vi.doUnmock('sharp');
      vi.resetModules();
    }
  });
});
