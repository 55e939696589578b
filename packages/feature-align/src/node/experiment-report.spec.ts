/**
 * writeExperimentReport on a tiny hand-made run folder (test-support/report-run-folder.ts): the
 * HTML is the one the `fad` CLI wrote before the report moved here (pinned, figures and timestamp
 * aside), the tables hold the hand values, the grids show the real images area-resized beside the
 * generated ones, and every refusal writes nothing.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { fixtureUtilityResults, writeReportRunFolder } from '../test-support/report-run-folder';
import { type ExperimentReport, writeExperimentReport } from './experiment-report';
import { ReportError } from './report-error';

// Whether a system font is installed decides a warning; the tests choose.
const font = vi.hoisted(() => ({ available: true }));
vi.mock('./system-font', () => ({ systemFontAvailable: () => font.available }));

const root = mkdtempSync(join(tmpdir(), 'fad-report-'));
const run = join(root, 'run');
let report: ExperimentReport;
let html = '';
const logged: string[] = [];

/** The HTML with what changes between runs replaced: figure bytes, the time, the run folder. */
function normalized(text: string, runDir: string): string {
  return text
    .replace(/base64,[A-Za-z0-9+/=]+/g, 'base64,…')
    .replace(/report written \d{4}-\d\d-\d\dT[\d:.]+Z\./, 'report written TIME.')
    .replace(/<title>fad report: [^<]*<\/title>/, '<title>fad report: RUN_DIR</title>')
    .split(runDir)
    .join('RUN_DIR');
}

/** A copy of the fixture run folder without its report. */
function copyRun(name: string): string {
  const dir = join(root, name);
  cpSync(run, dir, { recursive: true });
  rmSync(join(dir, 'report'), { recursive: true, force: true });
  return dir;
}

/** The RGB of pixel (x, y) of a PNG. */
async function pixel(file: string, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return [data[i], data[i + 1], data[i + 2]];
}

const FIGURES = [
  'loss-diffusion.png', 'loss-alignment.png', 'expert-training.png', 'confusion-expert-real.png', 'confusion-baseline.png', 'confusion-aligned-clean.png',
  'accuracy-per-seed.png', 'ssim-diversity.png', 'intensity.png', 'dreambooth-accuracy-per-seed.png', 'utility-accuracy.png', 'grid-dark.png', 'grid-light.png', 'grid-dreambooth.png',
];

beforeAll(async () => {
  await writeReportRunFolder(run);
  report = await writeExperimentReport({ runDir: run, log: (m) => logged.push(m) });
  html = readFileSync(report.html, 'utf8');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('writeExperimentReport', () => {
  it('writes the HTML the fad CLI wrote before the move (figures and time aside), its figures in order, and the warnings', async () => {
    const pinned = readFileSync(join(__dirname, '..', 'test-support', 'report-run-folder.report.html'), 'utf8');
    expect(normalized(html, run)).toBe(pinned);
    expect(html).toContain(`<title>fad report: ${relative(process.cwd(), run)}</title>`);
    expect(report.html).toBe(join(run, 'report', 'report.html'));
    expect(report.figures).toEqual(FIGURES.map((f) => join(run, 'report', 'figures', f)));
    expect(report.warnings).toEqual(['variant aligned-noisy has no evaluation yet', 'DreamBooth arm dreambooth-aligned has no evaluation yet']);
    // Every chart is logged as it is written (the grids are not).
    expect(logged).toEqual(FIGURES.filter((f) => !f.startsWith('grid-')).map((f) => `report: ${f}`));
    // Each figure is a PNG file and is embedded once, as the file's own bytes; no temp folder is left.
    expect(readdirSync(join(run, 'report', 'figures')).sort()).toEqual([...FIGURES].sort());
    for (const f of FIGURES) {
      const bytes = readFileSync(join(run, 'report', 'figures', f));
      expect((await sharp(bytes).metadata()).format, f).toBe('png');
      expect(html.split(`data-file="figures/${f}" src="data:image/png;base64,${bytes.toString('base64')}"`)).toHaveLength(2);
    }
    expect(readdirSync(run).filter((f) => f.startsWith('report.tmp-'))).toEqual([]);
  });

  it('fills the summary and DreamBooth tables with the evaluations\' values (the utility table: utility-report.spec.ts)', () => {
    // baseline: seeds 0.5 and 0.75 -> 62.5%, sd 0.1768; Fréchet 12.3456; KID 0.0123 ± 0.00456.
    expect(html).toContain('<tr><td>baseline</td><td>62.5%</td><td>57.5%</td><td>62.5% ± 17.7%</td><td>0.400</td><td>0.375</td><td>12.35</td><td>0.0123 ± 0.0046</td><td>4</td></tr>');
    // aligned-clean has no Fréchet distance (null in eval.json): a dash.
    expect(html).toContain('<tr><td>aligned-clean</td><td>87.5%</td><td>82.5%</td><td>87.5% ± 17.7%</td><td>0.400</td><td>0.375</td><td>–</td>');
    expect(html).toContain('<tr><td>dreambooth</td><td>75.0%</td><td>75.0% ± 35.4%</td><td>0.400</td><td>0.375</td><td>3.50</td><td>4</td></tr>');
    expect(html).toContain('Expert accuracy on real held-out images: 75.0%.');
    expect(html).toContain('images of "light" bound to a new token ("sks")');
    // The variants in the experiment's order, whatever the folder order.
    expect(html.indexOf('<tr><td>baseline</td>')).toBeLessThan(html.indexOf('<tr><td>aligned-clean</td>'));
    expect(html).toContain('<p class="warn">Generated images were filtered with <code>--match-mean</code>');
    expect(html).toContain('<pre>experiment:\n  name: &lt;tiny&gt; &amp; &#39;fixture&#39;\n</pre>');
  });

  it('shows the validation images, area-resized to the model size, beside the generated ones, nearest-upscaled; an unreadable real image is left out', async () => {
    const grid = (f: string) => join(run, 'report', 'figures', f);
    // Three blocks (real, baseline, aligned-clean) of 4 tiles of 48 px a row, 18 px apart.
    expect(await sharp(grid('grid-dark.png')).metadata()).toMatchObject({ width: 3 * (4 * 52 - 4 + 18) - 18 + 20, height: 24 + 18 + 52 + 10 });
    // The real "dark" validation image is data/dark/1.png, a 12x12 checkerboard. Its 8x8 area resize
    // averages each output pixel's 1.5x1.5 source footprint (reference in float64 below); each
    // resized pixel is a 6x6 square of the tile, which starts at (10, 42).
    const src = await sharp(join(run, 'data', 'dark', '1.png')).extractChannel(0).raw().toBuffer();
    const overlap = (i: number, o: number) => Math.max(0, Math.min(i + 1, (o + 1) * 1.5) - Math.max(i, o * 1.5));
    const area = (ox: number, oy: number) => {
      let sum = 0;
      for (let y = 0; y < 12; y++) for (let x = 0; x < 12; x++) sum += overlap(x, ox) * overlap(y, oy) * src[y * 12 + x];
      return sum / 2.25;
    };
    expect(area(0, 0)).not.toBeCloseTo(src[0], 0); // the footprint mixes both squares
    for (let oy = 0; oy < 8; oy++) {
      for (let ox = 0; ox < 8; ox++) {
        const [r, g, b] = await pixel(grid('grid-dark.png'), 10 + 6 * ox + 3, 42 + 6 * oy + 3);
        expect([r, g, b].every((c) => Math.abs(c - area(ox, oy)) <= 1), `(${ox}, ${oy}): ${r} vs ${area(ox, oy)}`).toBe(true);
      }
    }
    // baseline's first "dark" image starts at 0 (black) at x0 = 10 + 222.
    expect(await pixel(grid('grid-dark.png'), 234, 44)).toEqual([0, 0, 0]);
    // "light": validation images 3 (readable) and 4 (not a PNG): one real tile; the second is white.
    expect((await pixel(grid('grid-light.png'), 12, 44))[0]).toBeLessThan(255);
    expect(await pixel(grid('grid-light.png'), 10 + 52 + 10, 44)).toEqual([255, 255, 255]);
    // DreamBooth: one block, the arm with a generated set.
    expect((await sharp(grid('grid-dreambooth.png')).metadata()).width).toBe(4 * 52 - 4 + 20);
  });

  it('shows the intensity table only for evaluations with the section, and neither table nor figure without any', async () => {
    expect(html).toContain('<th>baseline mean (diff)</th><th>baseline contrast</th></tr>');
    expect(html).not.toContain('<th>aligned-clean mean (diff)</th>');
    const dir = copyRun('no-intensity');
    const evalPath = join(dir, 'variants', 'baseline', 'eval.json');
    const { intensity: _i, ...old } = JSON.parse(readFileSync(evalPath, 'utf8'));
    writeFileSync(evalPath, JSON.stringify(old));
    const r = await writeExperimentReport({ runDir: dir });
    expect(r.figures.map((f) => f.split('/').at(-1))).toEqual(FIGURES.filter((f) => f !== 'intensity.png'));
    expect(readFileSync(r.html, 'utf8')).not.toContain('Mean intensity and contrast');
  });

  it('reports a utility study\'s folder (utility.json alone): its figure and table', async () => {
    const dir = join(root, 'utility-only');
    mkdirSync(dir);
    writeFileSync(join(dir, 'utility.json'), JSON.stringify(fixtureUtilityResults()));
    const r = await writeExperimentReport({ runDir: dir });
    expect(r.figures).toEqual([join(dir, 'report', 'figures', 'utility-accuracy.png')]);
    expect(r.warnings).toEqual([]);
    const text = readFileSync(r.html, 'utf8');
    expect(text).toContain('<h2>Does the synthetic data help? (downstream utility)</h2>');
    expect(text).toContain('<p>Run directory <code>' + dir + '</code>; backend <b>?</b>; started ?;');
  });

  it('warns when no system font is installed (chart text would render as boxes)', async () => {
    font.available = false;
    try {
      const dir = join(root, 'no-font');
      mkdirSync(dir);
      writeFileSync(join(dir, 'utility.json'), JSON.stringify(fixtureUtilityResults()));
      const r = await writeExperimentReport({ runDir: dir });
      const warning = 'no system font found: chart text renders as boxes (install fonts-dejavu-core)';
      expect(r.warnings).toEqual([warning]);
      expect(readFileSync(r.html, 'utf8')).toContain(`<p class="warn">${warning}</p>`);
    } finally {
      font.available = true;
    }
  });

  it('refuses a missing folder and one that is not a run folder, writing nothing', async () => {
    const missing = join(root, 'missing');
    await expect(writeExperimentReport({ runDir: missing })).rejects.toMatchObject({ name: 'ReportError', code: 'missing', message: `run directory ${missing} does not exist`, details: { runDir: missing } });
    expect(existsSync(missing)).toBe(false);
    const other = join(root, 'other');
    mkdirSync(join(other, 'data'), { recursive: true });
    writeFileSync(join(other, 'utility.json'), JSON.stringify({ ...fixtureUtilityResults(), format: 'something-else' }));
    const e = await writeExperimentReport({ runDir: other }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ReportError);
    expect(e).toMatchObject({ code: 'not-run-dir', message: `${other} is not an experiment run directory (no variants/ or expert/ folder, and no utility results)`, details: { runDir: other } });
    expect(readdirSync(other).sort()).toEqual(['data', 'utility.json']);
  });

  it('a generated image that cannot be decoded is a ReportError bad-image; the previous report stays and no temp folder is left', async () => {
    const dir = copyRun('bad-image');
    mkdirSync(join(dir, 'report'));
    writeFileSync(join(dir, 'report', 'report.html'), 'previous');
    const bad = join(dir, 'variants', 'baseline', 'generated', 'dark', 's0-001.png');
    writeFileSync(bad, 'not a png');
    const e = await writeExperimentReport({ runDir: dir }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ReportError);
    expect(e).toMatchObject({ code: 'bad-image', details: { path: bad } });
    expect((e as ReportError).message).toMatch(new RegExp(`^cannot read the generated image ${bad}: `));
    expect((e as ReportError).message).toContain(String((e as ReportError).details.reason));
    expect(readFileSync(join(dir, 'report', 'report.html'), 'utf8')).toBe('previous');
    expect(readdirSync(dir).filter((f) => f.startsWith('report.tmp-'))).toEqual([]);
  });

  it('checks its params up front', async () => {
    await expect(writeExperimentReport(undefined as never)).rejects.toThrow(TypeError);
    await expect(writeExperimentReport({ runDir: '' })).rejects.toThrow(/writeExperimentReport: runDir must be a non-empty string, got ""/);
    await expect(writeExperimentReport({ runDir: run, log: 'x' as never })).rejects.toThrow(/writeExperimentReport: log must be a function/);
    await expect(writeExperimentReport({ runDir: run, out: 'x' } as never)).rejects.toThrow(/unknown parameter "out"/);
  });
});
