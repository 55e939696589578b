import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { parseConfig } from './config';
import { loadDataAndSplit } from './context';
import { inspectDataset, loadDataset, mapClassName, resizeImage, scanDataset } from './data';
import { CliError } from './errors';
import { sharedData } from './testing/paths';

const dataCfg = (over: Record<string, unknown>) => parseConfig({ data: over }).data;

async function png(path: string, w: number, h: number, channels: 1 | 3, value = 128): Promise<void> {
  const img = sharp(Buffer.alloc(w * h * channels, value), { raw: { width: w, height: h, channels } });
  await (channels === 1 ? img.toColourspace('b-w') : img).png().toFile(path);
}

/** A temporary data folder: { class: [[w, h, channels], ...] }. */
async function makeData(spec: Record<string, Array<[number, number, 1 | 3]>>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'fad-data-'));
  for (const [cls, files] of Object.entries(spec)) {
    mkdirSync(join(dir, cls), { recursive: true });
    for (const [i, [w, h, c]] of files.entries()) await png(join(dir, cls, `${i}.png`), w, h, c, 40 + 30 * i);
  }
  return dir;
}

async function loadError(cfg: Record<string, unknown>): Promise<string> {
  try {
    await loadDataset(dataCfg(cfg), { warn: () => {} });
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('class names', () => {
  it("understands Kather's folder names", () => {
    expect(mapClassName('01_TUMOR')).toBe('tumor');
    expect(mapClassName('08_EMPTY')).toBe('empty');
    expect(mapClassName('2-stroma')).toBe('stroma');
    expect(mapClassName('Adipose')).toBe('adipose');
    expect(mapClassName('7')).toBe('7');
  });
});

describe('resizing', () => {
  it('area averages exact footprints (integer and fractional factors) and bilinear uses half-pixel centres', () => {
    const src = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    expect(Array.from(resizeImage(src, 4, 4, 1, 2, 2, 'area'))).toEqual([3.5, 5.5, 11.5, 13.5]);
    const three = resizeImage(Float32Array.from([0, 3, 6]), 1, 3, 1, 1, 2, 'area');
    expect(three[0]).toBeCloseTo((0 * 1 + 3 * 0.5) / 1.5, 6);
    expect(three[1]).toBeCloseTo((3 * 0.5 + 6 * 1) / 1.5, 6);
    expect(Array.from(resizeImage(src, 4, 4, 1, 2, 2, 'bilinear'))).toEqual([3.5, 5.5, 11.5, 13.5]);
    const up = resizeImage(Float32Array.from([0, 1]), 1, 2, 1, 1, 4, 'bilinear');
    expect(Array.from(up)).toEqual([0, 0.25, 0.75, 1]);
  });
});

describe('loading class folders', () => {
  it('a missing folder, an empty class and no class folders are errors that say which', async () => {
    expect(await loadError({ dir: '/nonexistent/fad-data' })).toBe('data folder /nonexistent/fad-data does not exist');
    const empty = await makeData({ a: [[8, 8, 1]], b: [] });
    expect(await loadError({ dir: empty, imageSize: 8 })).toMatch(/class folder .*\/b \("b"\) has no PNG, TIFF or JPEG files/);
    const none = mkdtempSync(join(tmpdir(), 'fad-data-'));
    expect(await loadError({ dir: none })).toMatch(/has no class subfolders/);
    expect(await loadError({ dir: empty, classes: ['a', 'zebra'] })).toMatch(/data.classes names "zebra", which is not a class/);
  });

  it('a corrupt file, mixed sizes and a wrong channel count name the file; skip leaves them out and counts them', async () => {
    const dir = await makeData({ '01_A': [[8, 8, 1], [8, 8, 1], [12, 12, 1]], '02_B': [[8, 8, 1], [8, 8, 3]] });
    writeFileSync(join(dir, '02_B', 'broken.png'), Buffer.from('\x89PNG\r\n\x1a\nthis is not a png'));
    writeFileSync(join(dir, '02_B', 'notes.txt'), 'x');
    // In error mode the first bad file stops the load, with its name, the reason and the way out.
    const first = await loadError({ dir, imageSize: 8 });
    expect(first).toBe(`${join(dir, '01_A/2.png')} is 12x12, but the other images are 8x8 (mixed sizes). Fix or remove the file, or set data.onBadFile: skip to leave bad files out.`);
    expect(await loadError({ dir, imageSize: 8, classes: ['b', 'a'] })).toMatch(/02_B\/broken\.png cannot be decoded \(/);
    const warnings: string[] = [];
    const d = await loadDataset(dataCfg({ dir, imageSize: 4, onBadFile: 'skip' }), { warn: (m) => warnings.push(m) });
    expect(d.classNames).toEqual(['a', 'b']);
    expect(d.files).toEqual(['01_A/0.png', '01_A/1.png', '02_B/0.png', '02_B/1.png']);
    expect(d.skipped.map((s) => s.file)).toEqual(['01_A/2.png', '02_B/broken.png']);
    expect(d.skipped[0].reason).toBe('is 12x12, but the other images are 8x8 (mixed sizes)');
    expect(warnings).toHaveLength(2);
    expect(d.oddFiles).toEqual(['02_B/notes.txt']);
    expect(d.images.length).toBe(4 * 4 * 4);
    expect(Array.from(d.labels)).toEqual([0, 0, 1, 1]);
    // An RGB image is converted to gray (BT.601); gray images cannot become RGB.
    expect(d.images[3 * 16]).toBeCloseTo(70 / 255, 5);
    const rgb = await makeData({ a: [[8, 8, 3]], b: [[8, 8, 1]] });
    expect(await loadError({ dir: rgb, imageSize: 8, channels: 3 })).toMatch(/b\/0\.png has 1 channel\(s\) \(grayscale\), but data.channels is 3/);
    const nonSquare = await makeData({ a: [[8, 6, 1]], b: [[8, 8, 1]] });
    expect(await loadError({ dir: nonSquare, imageSize: 8 })).toMatch(/a\/0\.png is 8x6, not square/);
  });

  it('inspect reports classes, sizes, modes, unreadable and odd files', async () => {
    const dir = await makeData({ '01_A': [[8, 8, 1], [10, 10, 1]], '02_B': [[8, 8, 3]], '03_C': [] });
    writeFileSync(join(dir, '01_A', 'bad.png'), 'nope');
    writeFileSync(join(dir, 'stray.txt'), 'x');
    const r = await inspectDataset(dir);
    expect(r.classes.map((c) => [c.name, c.count])).toEqual([['a', 3], ['b', 1], ['c', 0]]);
    expect(r.sizes).toEqual({ '8x8': 2, '10x10': 1 });
    expect(Object.keys(r.modes).sort()).toEqual(['png b-w 1ch', 'png srgb 3ch']);
    expect(r.unreadable.map((u) => u.file)).toEqual(['01_A/bad.png']);
    expect(r.oddFiles).toEqual(['stray.txt']);
    expect(r.emptyClasses).toEqual(['03_C']);
    expect(r.warnings.join('\n')).toMatch(/mixed image sizes/);
  });

  it('the split is stratified and seeded, saved in the run folder and reused while the data is unchanged', async () => {
    const dir = await makeData({ a: new Array(5).fill([8, 8, 1]), b: new Array(5).fill([8, 8, 1]), c: [[8, 8, 1], [8, 8, 1]] });
    const runDir = mkdtempSync(join(tmpdir(), 'fad-run-'));
    const cfg = parseConfig({ data: { dir, imageSize: 8, validationFraction: 0.2, splitSeed: 3 } });
    const log = { info: () => {}, warn: () => {}, quiet: true };
    const { dataset, split } = await loadDataAndSplit(cfg, log, runDir);
    expect(split.train.length + split.validation.length).toBe(12);
    for (const c of [0, 1, 2]) {
      expect(split.validation.filter((i) => dataset.labels[i] === c)).toHaveLength(1);
      expect(split.train.some((i) => dataset.labels[i] === c)).toBe(true);
    }
    const saved = JSON.parse(readFileSync(join(runDir, 'split.json'), 'utf8'));
    expect(saved).toMatchObject({ seed: 3, validationFraction: 0.2, fingerprint: dataset.fingerprint, train: split.train, validation: split.validation });
    expect(saved.files[split.validation[0]]).toMatch(/^a\//);
    expect((await loadDataAndSplit(cfg, log, runDir)).split).toEqual(saved);
    const other = await loadDataAndSplit(parseConfig({ data: { dir, imageSize: 8, validationFraction: 0.2, splitSeed: 4 } }), log);
    expect(other.split.seed).toBe(4);
  });
});

describe('the Kather data in shared/', () => {
  const tif = sharedData('kather2016-sample-tif');
  const gray = sharedData('kather2016-gray128');

  it.skipIf(!tif.present)(`reads the original RGB TIFFs (${tif.present ? tif.path : `skipped: ${tif.path} is absent`})`, async () => {
    expect(scanDataset(tif.path).classes.map((c) => c.folder)).toEqual(['01_TUMOR', '02_STROMA', '03_COMPLEX', '04_LYMPHO', '05_DEBRIS', '06_MUCOSA', '07_ADIPOSE', '08_EMPTY']);
    const d = await loadDataset(dataCfg({ dir: tif.path, imageSize: 64 }));
    expect(d.classNames).toEqual(['tumor', 'stroma', 'complex', 'lympho', 'debris', 'mucosa', 'adipose', 'empty']);
    expect(d.files).toHaveLength(64);
    expect(d.sourceSize).toBe('150x150');
    expect(d.images.length).toBe(64 * 64 * 64);
    expect(d.skipped).toEqual([]);
    let min = 1;
    let max = 0;
    for (const v of d.images) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThanOrEqual(1);
    expect(max - min).toBeGreaterThan(0.3);
    const r = await inspectDataset(tif.path);
    expect(r).toMatchObject({ total: 64, sizes: { '150x150': 64 }, modes: { 'tiff srgb 3ch': 64 }, unreadable: [], warnings: [] });
    const rgb = await loadDataset(dataCfg({ dir: tif.path, imageSize: 32, channels: 3, classes: ['empty', 'tumor'] }));
    expect(rgb.classNames).toEqual(['empty', 'tumor']);
    expect(rgb.images.length).toBe(16 * 32 * 32 * 3);
  });

  it.skipIf(!gray.present)(`reads the grayscale 128x128 PNGs (${gray.present ? gray.path : `skipped: ${gray.path} is absent`})`, async () => {
    const d = await loadDataset(dataCfg({ dir: gray.path, imageSize: 64, maxPerClass: 10 }));
    expect(d.classNames).toHaveLength(8);
    expect(d.files).toHaveLength(80);
    expect(d.sourceSize).toBe('128x128');
    // A 2x area reduction is the mean of 2x2 blocks of the 8-bit source.
    const raw = await sharp(join(gray.path, d.files[0])).toColourspace('b-w').raw().toBuffer();
    const expected = (raw[0] + raw[1] + raw[128] + raw[129]) / 4 / 255;
    expect(d.images[0]).toBeCloseTo(expected, 5);
    expect(scanDataset(gray.path).classes.map((c) => c.files.length)).toEqual(new Array(8).fill(625));
  });
});
