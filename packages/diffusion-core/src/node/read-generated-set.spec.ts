import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GENERATED_SET_FORMAT } from './generated-set';
import { GenerationRunError } from './generation-run-error';
import { readGeneratedSetImages, readGeneratedSetManifest } from './read-generated-set';
import { writePngFile } from './write-png-file';

const root = mkdtempSync(join(tmpdir(), 'fad-read-gen-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A 2-image set of 2x2 gray PNGs with known pixel values (multiples of 1/255 survive 8 bits exactly). */
async function makeSet(name: string, manifest: Record<string, unknown> = {}): Promise<string> {
  const dir = join(root, name);
  mkdirSync(join(dir, 'a'), { recursive: true });
  mkdirSync(join(dir, 'b'), { recursive: true });
  await writePngFile({ path: join(dir, 'a', '0.png'), pixels: [0, 51 / 255, 102 / 255, 1], size: 2, channels: 1 });
  await writePngFile({ path: join(dir, 'b', '0.png'), pixels: [1, 1, 0, 204 / 255], size: 2, channels: 1 });
  const m = {
    format: GENERATED_SET_FORMAT, classNames: ['a', 'b'], imageSize: 2, channels: 1,
    images: [{ file: 'b/0.png', class: 'b' }, { file: 'a/0.png', class: 'a' }],
    ...manifest,
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
  return dir;
}

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof GenerationRunError ? `${e.code}: ${e.message}` : `other: ${(e as Error).message}`;
  }
  return undefined;
};

describe('readGeneratedSetManifest / readGeneratedSetImages', () => {
  it('reads the images in manifest order with their exact pixel values', async () => {
    const dir = await makeSet('ok');
    const m = readGeneratedSetManifest({ dir });
    expect(m.classNames).toEqual(['a', 'b']);
    const px = await readGeneratedSetImages({ dir, manifest: m, concurrency: 1 });
    expect(Array.from(px, (v) => Math.round(v * 255))).toEqual([255, 255, 0, 204, 0, 51, 102, 255]);
    const part = await readGeneratedSetImages({ dir, manifest: { ...m, images: m.images.slice(1) } });
    expect(Array.from(part, (v) => Math.round(v * 255))).toEqual([0, 51, 102, 255]);
  });

  it('names what is wrong with a folder or manifest', async () => {
    const dirs = [
      await makeSet('fmt', { format: 'x' }),
      await makeSet('size', { imageSize: 0 }),
      await makeSet('ch', { channels: 2 }),
      await makeSet('names', { classNames: ['a', '../b'] }),
      await makeSet('cls', { images: [{ file: 'a/0.png', class: 'z' }] }),
      await makeSet('escape', { images: [{ file: '../ok/a/0.png', class: 'a' }] }),
    ];
    expect(code(() => readGeneratedSetManifest({ dir: join(root, 'missing') }))).toMatch(/^not-generated-set: .*missing is not a generated set \(cannot read .*manifest\.json: no such file\)/);
    expect(code(() => readGeneratedSetManifest({ dir: dirs.shift()! }))).toMatch(/^bad-manifest: .*is not a fad generate manifest/);
    expect(code(() => readGeneratedSetManifest({ dir: dirs.shift()! }))).toMatch(/^bad-manifest: .*imageSize must be an integer in 1\.\.2048, got 0/);
    expect(code(() => readGeneratedSetManifest({ dir: dirs.shift()! }))).toMatch(/^bad-manifest: .*channels must be 1 or 3, got 2/);
    expect(code(() => readGeneratedSetManifest({ dir: dirs.shift()! }))).toMatch(/^bad-manifest: .*classNames\[1\] "\.\.\/b" is not a usable class name/);
    expect(code(() => readGeneratedSetManifest({ dir: dirs.shift()! }))).toMatch(/^bad-manifest: .*images\[0\] must have a file and a class of classNames/);
    expect(code(() => readGeneratedSetManifest({ dir: dirs.shift()! }))).toMatch(/^outside-folder: refusing to read .*images\[0\]\.file would put it outside the input folder/);
    expect(() => readGeneratedSetManifest({ dir: '' })).toThrow(TypeError);
  });

  it('refuses a symlink out of the set', async () => {
    const dir = await makeSet('link');
    symlinkSync(join(root, 'ok', 'a'), join(dir, 'out'));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ format: GENERATED_SET_FORMAT, classNames: ['a'], imageSize: 2, channels: 1, images: [{ file: 'out/0.png', class: 'a' }] }));
    expect(code(() => readGeneratedSetManifest({ dir }))).toMatch(/^outside-folder:/);
  });

  it('names an image of the wrong size or an unreadable file, and returns nothing', async () => {
    const dir = await makeSet('bad-image', { imageSize: 3 });
    const m = readGeneratedSetManifest({ dir });
    await expect(readGeneratedSetImages({ dir, manifest: m })).rejects.toThrow(/generated image .*0\.png is 2x2, the manifest says 3x3/);
    writeFileSync(join(dir, 'a', '0.png'), 'not a png');
    const e = await readGeneratedSetImages({ dir, manifest: { ...m, imageSize: 2, images: [{ file: 'a/0.png', class: 'a' } as never] } }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GenerationRunError);
    expect((e as GenerationRunError).code).toBe('bad-image');
    expect((e as GenerationRunError).details.path).toBe(join(dir, 'a', '0.png'));
  });
});

