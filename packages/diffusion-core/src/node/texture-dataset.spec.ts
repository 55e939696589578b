import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { decodeImageFile } from './decode-image-file';
import { TEXTURE_CLASSES, textureImage, writeTextureDataset } from './texture-dataset';

const root = mkdtempSync(join(tmpdir(), 'fad-texture-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Variance of the row means and of the column means of an n x n image. */
function profiles(img: Float32Array, n: number): { rows: number; cols: number } {
  const rows = Array.from({ length: n }, (_, y) => img.slice(y * n, (y + 1) * n).reduce((a, b) => a + b, 0) / n);
  const cols = Array.from({ length: n }, (_, x) => Array.from({ length: n }, (_, y) => img[y * n + x]).reduce((a, b) => a + b, 0) / n);
  const variance = (v: number[]) => {
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    return v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length;
  };
  return { rows: variance(rows), cols: variance(cols) };
}

describe('textureImage / writeTextureDataset', () => {
  it('draws what each class names: horizontal stripes vary down the columns, vertical ones along the rows', () => {
    const g = new Generator(3);
    // Horizontal stripes: each row is one value (plus noise), so row means vary and column means do not.
    const h = profiles(textureImage({ classIndex: 0, size: 32, generator: g }), 32);
    const v = profiles(textureImage({ classIndex: 1, size: 32, generator: g }), 32);
    expect(h.rows).toBeGreaterThan(20 * h.cols);
    expect(v.cols).toBeGreaterThan(20 * v.rows);
    const img = textureImage({ classIndex: 3, size: 16, generator: new Generator(1) });
    expect(Math.min(...img)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...img)).toBeLessThanOrEqual(1);
    // Same seed, same image.
    expect(textureImage({ classIndex: 2, size: 8, generator: new Generator(9) })).toEqual(textureImage({ classIndex: 2, size: 8, generator: new Generator(9) }));
    expect(() => textureImage({ classIndex: 4, size: 8, generator: new Generator(0) })).toThrow(/classIndex must be 0\.\.3/);
  });

  it('writes the class folders with the images drawn class by class from one generator, and leaves a stamped folder alone', async () => {
    const dir = join(root, 'd');
    await writeTextureDataset({ dir, size: 8, perClass: 2, seed: 5 });
    expect(readdirSync(dir).sort()).toEqual([...TEXTURE_CLASSES, 'dataset.json'].sort());
    const g = new Generator(5);
    for (const c of TEXTURE_CLASSES) {
      expect(readdirSync(join(dir, c))).toEqual(['000.png', '001.png']);
      for (const f of ['000.png', '001.png']) {
        const want = textureImage({ classIndex: TEXTURE_CLASSES.indexOf(c), size: 8, generator: g });
        const got = await decodeImageFile({ path: join(dir, c, f), channels: 1 });
        got.pixels.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(0.5 / 255 + 1e-6));
      }
    }
    expect(JSON.parse(readFileSync(join(dir, 'dataset.json'), 'utf8'))).toEqual({ size: 8, perClass: 2, seed: 5, classes: [...TEXTURE_CLASSES] });
    const t = statSync(join(dir, TEXTURE_CLASSES[0], '000.png')).mtimeMs;
    await writeTextureDataset({ dir, size: 8, perClass: 2, seed: 5 });
    expect(statSync(join(dir, TEXTURE_CLASSES[0], '000.png')).mtimeMs).toBe(t);
    await expect(writeTextureDataset({ dir: '', size: 8, perClass: 2 })).rejects.toThrow(/dir must be a non-empty string/);
  });
});
