/**
 * `fad report RUN_DIR`: one self-contained HTML file (`RUN_DIR/report/report.html`, every figure
 * embedded as base64 PNG, works offline) plus the PNG figures in `RUN_DIR/report/figures/`.
 *
 * Charts are vega-lite specs compiled to Vega, rendered to SVG by Vega's headless renderer and
 * rasterised by sharp (librsvg). Text needs a system font (Debian: fonts-dejavu-core); without one,
 * labels render as boxes and the report warns. Image grids are composed as SVG with embedded,
 * nearest-neighbour-upscaled PNGs.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { decodeImage, resizeImage } from './data';
import { CliError } from './errors';
import { readJsonIfExists, writeFileAtomicSync } from './fsutil';
import type { EvaluationResult } from '@fad/expert-models/node';
import { readManifest } from './generated-set';
import type { GenerateManifest } from './generate';
import { readUtilityJson, utilityFigureSpec, utilityTableHtml } from './utility-report';

interface Figure {
  file: string;
  title: string;
  caption: string;
}

const COLORS = { real: '#7f7f7f', baseline: '#1f77b4', 'aligned-noisy': '#d62728', 'aligned-clean': '#2ca02c', dreambooth: '#ff7f0e', 'dreambooth-aligned': '#9467bd' } as Record<string, string>;
/** The experiment's DreamBooth arms (folders under RUN_DIR/dreambooth/), in report order. */
const DREAMBOOTH_ARMS = ['dreambooth', 'dreambooth-aligned'];

/** True when some TrueType/OpenType font is installed where fontconfig looks by default. */
export function systemFontAvailable(): boolean {
  const roots = ['/usr/share/fonts', '/usr/local/share/fonts', `${process.env.HOME ?? ''}/.fonts`, '/System/Library/Fonts', 'C:\\Windows\\Fonts'];
  const walk = (d: string, depth: number): boolean => {
    if (depth > 4 || !existsSync(d)) return false;
    try {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isFile() && /\.(ttf|otf|ttc)$/i.test(e.name)) return true;
        if (e.isDirectory() && walk(join(d, e.name), depth + 1)) return true;
      }
    } catch {
      return false;
    }
    return false;
  };
  return roots.some((r) => walk(r, 0));
}

/** Renders a vega-lite spec to PNG bytes. */
export async function renderVegaLite(spec: Record<string, unknown>, scale = 2): Promise<Buffer> {
  const vl = await import('vega-lite');
  const vega = await import('vega');
  const full = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', background: 'white', config: { font: 'DejaVu Sans, sans-serif' }, ...spec };
  const compiled = vl.compile(full as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    const svg = await view.toSVG(scale);
    return await sharp(Buffer.from(svg), { density: 72 }).png().toBuffer();
  } finally {
    view.finalize();
  }
}

function readJsonl(path: string): Array<Record<string, unknown>> {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

const pct = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(1)}%`);
const num = (v: number | null | undefined, d = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));

function confusionSpec(matrix: number[][], names: string[], title: string) {
  const values = matrix.flatMap((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((v, p) => ({ true: names[t], predicted: names[p], count: v, share: total ? v / total : 0 }));
  }).filter((v) => matrix[names.indexOf(v.true)].reduce((a, b) => a + b, 0) > 0);
  return {
    title,
    data: { values },
    width: Math.max(160, names.length * 34),
    height: Math.max(120, new Set(values.map((v) => v.true)).size * 28),
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: names, title: 'predicted by the expert', axis: { labelAngle: -40 } },
      y: { field: 'true', type: 'nominal', sort: names, title: 'true / intended class' },
    },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'share', type: 'quantitative', scale: { scheme: 'blues', domain: [0, 1] }, title: 'row share' } } },
      {
        mark: { type: 'text', fontSize: 10 },
        encoding: { text: { field: 'count', type: 'quantitative' }, color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: 'black' } },
      },
    ],
  };
}

/** Upscales a [S,S,C] image in [0,1] by nearest neighbour to `px` pixels and returns PNG bytes. */
async function tilePng(pixels: Float32Array, size: number, channels: number, px: number): Promise<Buffer> {
  const buf = Buffer.alloc(size * size * channels);
  for (let i = 0; i < buf.length; i++) buf[i] = Math.max(0, Math.min(255, Math.round(pixels[i] * 255)));
  return sharp(buf, { raw: { width: size, height: size, channels: channels as 1 | 3 } }).resize(px, px, { kernel: 'nearest' }).png().toBuffer();
}

interface GridColumn {
  label: string;
  tiles: Array<{ pixels: Float32Array; size: number; channels: number }>;
}

/** One class: a block of up to `perBlock` images per source (real, then each variant), labelled. */
async function gridPng(title: string, columns: GridColumn[], perRow: number): Promise<Buffer> {
  const tile = 48;
  const gap = 4;
  const blockGap = 18;
  const labelH = 18;
  const titleH = 24;
  const rows = Math.max(1, ...columns.map((c) => Math.ceil(c.tiles.length / perRow)));
  const blockW = perRow * (tile + gap) - gap;
  const width = columns.length * (blockW + blockGap) - blockGap + 20;
  const height = titleH + labelH + rows * (tile + gap) + 10;
  const parts: string[] = [];
  for (let b = 0; b < columns.length; b++) {
    const x0 = 10 + b * (blockW + blockGap);
    parts.push(`<text x="${x0}" y="${titleH + 13}" font-family="DejaVu Sans, sans-serif" font-size="12">${esc(columns[b].label)}</text>`);
    for (let i = 0; i < columns[b].tiles.length; i++) {
      const t = columns[b].tiles[i];
      const png = await tilePng(t.pixels, t.size, t.channels, tile);
      const x = x0 + (i % perRow) * (tile + gap);
      const y = titleH + labelH + Math.floor(i / perRow) * (tile + gap);
      parts.push(`<image x="${x}" y="${y}" width="${tile}" height="${tile}" href="data:image/png;base64,${png.toString('base64')}"/>`);
    }
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/><text x="10" y="17" font-family="DejaVu Sans, sans-serif" font-size="14" font-weight="bold">${esc(title)}</text>${parts.join('')}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

export interface ReportResult {
  html: string;
  figures: string[];
  warnings: string[];
}

/**
 * Writes the report of an experiment run directory (see the README for the layout). Missing parts
 * (a variant not evaluated yet, no expert metrics) are left out with a note.
 */
export async function writeReport(runDir: string, opts: { log?: (m: string) => void } = {}): Promise<ReportResult> {
  if (!existsSync(runDir)) throw new CliError(`run directory ${runDir} does not exist`);
  const log = opts.log ?? (() => {});
  const outDir = join(runDir, 'report');
  const tmpDir = join(runDir, `report.tmp-${process.pid}`);
  rmSync(tmpDir, { recursive: true, force: true });
  mkdirSync(join(tmpDir, 'figures'), { recursive: true });
  const warnings: string[] = [];
  if (!systemFontAvailable()) warnings.push('no system font found: chart text renders as boxes (install fonts-dejavu-core)');
  const figures: Figure[] = [];
  const save = async (file: string, title: string, caption: string, png: Buffer) => {
    writeFileAtomicSync(join(tmpDir, 'figures', file), png);
    figures.push({ file, title, caption });
    log(`fad: report: ${file}`);
  };

  const runInfo = readJsonIfExists<Record<string, unknown>>(join(runDir, 'run.json')) ?? {};
  const variantsDir = join(runDir, 'variants');
  const variants = existsSync(variantsDir) ? readdirSync(variantsDir).filter((v) => !v.startsWith('.')).sort((a, b) => order(a) - order(b)) : [];
  const utility = readUtilityJson(runDir);
  if (variants.length === 0 && !existsSync(join(runDir, 'expert')) && !utility) {
    throw new CliError(`${runDir} is not an experiment run directory (no variants/ or expert/ folder); run fad experiment or fad demo first`);
  }

  // 1. Loss curves: the diffusion term and the alignment term, separately.
  const diffusionRows: Array<Record<string, unknown>> = [];
  const alignRows: Array<Record<string, unknown>> = [];
  for (const v of variants) {
    for (const r of readJsonl(join(variantsDir, v, 'train', 'metrics.jsonl'))) {
      const terms = (r.terms ?? {}) as Record<string, number>;
      if (terms.diffusion !== undefined) diffusionRows.push({ step: r.step, value: terms.diffusion, variant: v });
      for (const [k, val] of Object.entries(terms)) if (k !== 'diffusion') alignRows.push({ step: r.step, value: val, variant: v, term: k });
    }
  }
  if (diffusionRows.length) {
    await save('loss-diffusion.png', 'Diffusion loss', 'Mean squared error of the noise prediction (the diffusion term, before weighting by lambda1), averaged over each logging window.', await renderVegaLite({
      title: 'Diffusion loss (MSE) during fine-tuning', width: 480, height: 260, data: { values: diffusionRows },
      mark: { type: 'line', interpolate: 'monotone' },
      encoding: { x: { field: 'step', type: 'quantitative', title: 'step' }, y: { field: 'value', type: 'quantitative', title: 'diffusion loss', scale: { zero: false } }, color: colorEnc(variants) },
    }));
  }
  if (alignRows.length) {
    await save('loss-alignment.png', 'Alignment loss', 'Feature-alignment term 1 - cos(P(expert features), pooled U-Net features), before weighting by lambda2; aligned variants only.', await renderVegaLite({
      title: 'Feature-alignment loss (1 - cosine)', width: 480, height: 260, data: { values: alignRows },
      mark: { type: 'line', interpolate: 'monotone' },
      encoding: { x: { field: 'step', type: 'quantitative' }, y: { field: 'value', type: 'quantitative', title: 'alignment loss', scale: { zero: false } }, color: colorEnc(variants) },
    }));
  }
  const expertMetrics = readJsonl(join(runDir, 'expert', 'metrics.jsonl'));
  if (expertMetrics.length) {
    const rows = expertMetrics.flatMap((r) => [
      { epoch: r.epoch, value: r.trainAccuracy, series: 'train accuracy (augmented)' },
      ...(r.validationAccuracy !== null ? [{ epoch: r.epoch, value: r.validationAccuracy, series: 'validation accuracy' }] : []),
    ]);
    await save('expert-training.png', 'Expert training', 'Accuracy of the expert classifier per epoch.', await renderVegaLite({
      title: 'Expert training', width: 420, height: 220, data: { values: rows },
      mark: { type: 'line', point: true },
      encoding: { x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1 } }, y: { field: 'value', type: 'quantitative', title: 'accuracy', scale: { domain: [0, 1] } }, color: { field: 'series', type: 'nominal', title: null } },
    }));
  }

  // 2. Confusion matrices: the expert on real validation images, then each variant's generations.
  const expertEval = readJsonIfExists<{ classNames: string[]; confusionMatrix: number[][] | null; accuracy: number | null; numSamples: number }>(join(runDir, 'expert', 'eval.json'));
  if (expertEval?.confusionMatrix) {
    await save('confusion-expert-real.png', 'Expert on real images', `The expert on ${expertEval.numSamples} held-out real images: accuracy ${pct(expertEval.accuracy)}.`,
      await renderVegaLite(confusionSpec(expertEval.confusionMatrix, expertEval.classNames, 'Expert on real validation images')));
  }
  const evals: Record<string, EvaluationResult> = {};
  for (const v of variants) {
    const e = readJsonIfExists<EvaluationResult>(join(variantsDir, v, 'eval.json'));
    if (e) evals[v] = e;
    else warnings.push(`variant ${v} has no evaluation yet`);
  }
  for (const [v, e] of Object.entries(evals)) {
    await save(`confusion-${v}.png`, `Generated images: ${v}`, `Expert predictions on ${e.numGenerated} images generated by ${v} (rows: intended class); generation accuracy ${pct(e.generationAccuracy.overall)}.`,
      await renderVegaLite(confusionSpec(e.confusionMatrix, e.classNames, `Expert on images generated by ${v}`)));
  }

  // 3. Generation accuracy per seed per variant (paper Fig. 4).
  const seedRows = Object.entries(evals).flatMap(([v, e]) => e.generationAccuracy.perSeed.map((s) => ({ variant: v, seed: s.seed, accuracy: s.overall })));
  if (seedRows.length) {
    await save('accuracy-per-seed.png', 'Generation accuracy per seed', 'Share of each seed\'s generated images that the expert classifies as intended, per variant; the horizontal rules are the means over seeds (paper Fig. 4).', await renderVegaLite({
      title: 'Generation accuracy per seed', width: Math.max(300, new Set(seedRows.map((r) => r.seed)).size * 22 * Math.max(1, variants.length)), height: 240, data: { values: seedRows },
      layer: [
        { mark: 'bar', encoding: { x: { field: 'seed', type: 'ordinal', title: 'seed', axis: { labelAngle: 0 } }, xOffset: { field: 'variant', type: 'nominal', sort: variants }, y: { field: 'accuracy', type: 'quantitative', title: 'generation accuracy', scale: { domain: [0, 1] } }, color: colorEnc(variants) } },
        { mark: { type: 'rule', strokeDash: [6, 3], strokeWidth: 2 }, encoding: { y: { aggregate: 'mean', field: 'accuracy', type: 'quantitative' }, color: colorEnc(variants) } },
      ],
    }));
  }

  // 4. SSIM diversity per class (paper Fig. 6), real beside the variants.
  const divRows: Array<Record<string, unknown>> = [];
  const firstEval = Object.values(evals)[0];
  if (firstEval) {
    for (const c of firstEval.diversity.perClass) divRows.push({ class: c.class, source: 'real', ssim: c.real });
    for (const [v, e] of Object.entries(evals)) for (const c of e.diversity.perClass) divRows.push({ class: c.class, source: v, ssim: c.generated });
    const sources = ['real', ...Object.keys(evals)];
    await save('ssim-diversity.png', 'SSIM diversity per class', `Mean pairwise SSIM within each class (lower = more diverse; window ${firstEval.diversity.window}); real images beside each variant (paper Fig. 6).`, await renderVegaLite({
      title: 'Diversity: mean pairwise SSIM per class (lower = more diverse)', width: Math.max(320, firstEval.diversity.perClass.length * 70), height: 240, data: { values: divRows.filter((r) => Number.isFinite(r.ssim as number)) },
      mark: 'bar',
      encoding: {
        x: { field: 'class', type: 'nominal', axis: { labelAngle: -30 } }, xOffset: { field: 'source', type: 'nominal', sort: sources },
        y: { field: 'ssim', type: 'quantitative', title: 'mean SSIM' }, color: { field: 'source', type: 'nominal', sort: sources, scale: { domain: sources, range: sources.map((s) => COLORS[s] ?? '#9467bd') }, title: null },
      },
    }));
  }

  // 4a. Mean intensity and contrast per class, real beside the variants (evaluations written
  //     before the intensity section was added have none and are left out).
  const intensityEvals = Object.entries(evals).filter(([, e]) => e.intensity);
  const intensityHtml = intensityTableHtml(intensityEvals);
  if (intensityEvals.length) {
    const sources = ['real', ...intensityEvals.map(([v]) => v)];
    const rows: Array<Record<string, unknown>> = [];
    for (const c of intensityEvals[0][1].intensity!.perClass) {
      rows.push({ class: c.class, source: 'real', measure: 'mean intensity', value: c.realMean }, { class: c.class, source: 'real', measure: 'contrast (sd within image)', value: c.realContrast });
    }
    for (const [v, e] of intensityEvals) {
      for (const c of e.intensity!.perClass) {
        rows.push({ class: c.class, source: v, measure: 'mean intensity', value: c.generatedMean }, { class: c.class, source: v, measure: 'contrast (sd within image)', value: c.generatedContrast });
      }
    }
    const nClasses = intensityEvals[0][1].intensity!.perClass.length;
    await save('intensity.png', 'Mean intensity and contrast per class', 'Mean over images of each image\'s mean pixel value (left) and of each image\'s contrast, the standard deviation of its pixel values (right), per class: real images beside each variant\'s generated ones. A generator that cannot set the brightness of a tile shows the same mean in every class.', await renderVegaLite({
      title: 'Generated vs real: mean intensity and contrast per class', data: { values: rows.filter((r) => r.value !== null && Number.isFinite(r.value as number)) },
      facet: { column: { field: 'measure', type: 'nominal', title: null, sort: ['mean intensity', 'contrast (sd within image)'] } },
      resolve: { scale: { y: 'independent' } },
      spec: {
        width: Math.max(240, nClasses * 50), height: 220, mark: 'bar',
        encoding: {
          x: { field: 'class', type: 'nominal', sort: intensityEvals[0][1].intensity!.perClass.map((c) => c.class), axis: { labelAngle: -30 } }, xOffset: { field: 'source', type: 'nominal', sort: sources },
          y: { field: 'value', type: 'quantitative', title: null }, color: { field: 'source', type: 'nominal', sort: sources, scale: { domain: sources, range: sources.map((x) => COLORS[x] ?? '#9467bd') }, title: null },
        },
      },
    }));
  }

  // 4b. DreamBooth (paper Fig. 4, second panel): generation accuracy per seed of the token's images.
  const dbEvals: Record<string, EvaluationResult> = {};
  const dbManifests: Record<string, GenerateManifest> = {};
  for (const arm of DREAMBOOTH_ARMS) {
    const e = readJsonIfExists<EvaluationResult>(join(runDir, 'dreambooth', arm, 'eval.json'));
    if (e) dbEvals[arm] = e;
    const m = checkedManifest(join(runDir, 'dreambooth', arm, 'generated'));
    if (m) dbManifests[arm] = m;
  }
  const dbArms = Object.keys(dbEvals);
  const dbInfo = Object.values(dbManifests)[0] as (GenerateManifest & { dreambooth?: { class: string; token: string } }) | undefined;
  const dbClass = dbInfo?.dreambooth?.class ?? Object.values(dbEvals)[0]?.countedClasses.join(', ') ?? '';
  const dbSeedRows = Object.entries(dbEvals).flatMap(([arm, e]) => e.generationAccuracy.perSeed.map((s) => ({ variant: arm, seed: s.seed, accuracy: s.overall })));
  if (dbSeedRows.length) {
    await save('dreambooth-accuracy-per-seed.png', `DreamBooth: generation accuracy per seed (${dbClass})`, `DreamBooth fine-tuning of the baseline model on "${dbClass}"${dbInfo?.dreambooth ? ` (token "${dbInfo.dreambooth.token}")` : ''}, without and with feature alignment: share of each seed's images generated with the token that the expert classifies as "${dbClass}"; the horizontal rules are the means over seeds (paper Fig. 4, second panel).`, await renderVegaLite({
      title: `DreamBooth on "${dbClass}": generation accuracy per seed`, width: Math.max(300, new Set(dbSeedRows.map((r) => r.seed)).size * 22 * Math.max(1, dbArms.length)), height: 240, data: { values: dbSeedRows },
      layer: [
        { mark: 'bar', encoding: { x: { field: 'seed', type: 'ordinal', title: 'seed', axis: { labelAngle: 0 } }, xOffset: { field: 'variant', type: 'nominal', sort: dbArms }, y: { field: 'accuracy', type: 'quantitative', title: 'generation accuracy', scale: { domain: [0, 1] } }, color: colorEnc(dbArms) } },
        { mark: { type: 'rule', strokeDash: [6, 3], strokeWidth: 2 }, encoding: { y: { aggregate: 'mean', field: 'accuracy', type: 'quantitative' }, color: colorEnc(dbArms) } },
      ],
    }));
  }
  for (const arm of DREAMBOOTH_ARMS) if (existsSync(join(runDir, 'dreambooth', arm)) && !dbEvals[arm]) warnings.push(`DreamBooth arm ${arm} has no evaluation yet`);

  // 4c. Downstream utility (fad utility / the experiment's utility stage).
  let utilityHtml = '';
  if (utility) {
    await save('utility-accuracy.png', 'Downstream accuracy vs real data', 'Held-out real accuracy of the downstream classifier against the fraction of real training data: real only, and real + each synthetic set at each ratio (mean over seeds, 95% bootstrap CIs); dashed: trained on a synthetic set alone.', await renderVegaLite(utilityFigureSpec(utility.json)));
    utilityHtml = utilityTableHtml(utility.json, 'utility-accuracy.png');
  }

  // 5. Image grids per class: real beside each variant.
  const split = readJsonIfExists<{ files: string[]; labels: number[]; classNames: string[]; validation: number[] }>(join(runDir, 'split.json'));
  const runCfg = readJsonIfExists<{ dataDir?: string; imageSize?: number; channels?: number }>(join(runDir, 'run.json')) ?? {};
  const manifests: Record<string, GenerateManifest> = {};
  for (const v of variants) {
    const m = checkedManifest(join(variantsDir, v, 'generated'));
    if (m) manifests[v] = m;
  }
  const classList = split?.classNames ?? Object.values(manifests)[0]?.classNames ?? [];
  const perBlock = 8;
  const gridFiles: Figure[] = [];
  for (const [k, cls] of classList.entries()) {
    const columns: GridColumn[] = [];
    if (split && runCfg.dataDir && runCfg.imageSize) {
      const pool = (split.validation.length ? split.validation : split.files.map((_, i) => i)).filter((i) => split.labels[i] === k).slice(0, perBlock);
      const tiles = [];
      for (const i of pool) {
        try {
          const d = await decodeImage(join(runCfg.dataDir, split.files[i]), (runCfg.channels ?? 1) as 1 | 3);
          tiles.push({ pixels: resizeImage(d.pixels, d.height, d.width, runCfg.channels ?? 1, runCfg.imageSize, runCfg.imageSize, 'area'), size: runCfg.imageSize, channels: runCfg.channels ?? 1 });
        } catch {
          /* a real image that cannot be read is left out of the grid */
        }
      }
      if (tiles.length) columns.push({ label: 'real', tiles });
    }
    for (const [v, m] of Object.entries(manifests)) {
      const imgs = m.images.filter((i) => i.class === cls).slice(0, perBlock);
      const tiles = [];
      for (const i of imgs) {
        const d = await decodeImage(join(variantsDir, v, 'generated', i.file), m.channels as 1 | 3);
        tiles.push({ pixels: d.pixels, size: m.imageSize, channels: m.channels });
      }
      if (tiles.length) columns.push({ label: v, tiles });
    }
    if (columns.length === 0) continue;
    const file = `grid-${cls.replace(/[^a-z0-9_-]/gi, '_')}.png`;
    writeFileAtomicSync(join(tmpDir, 'figures', file), await gridPng(`Class "${cls}": real images beside each variant's`, columns, 4));
    gridFiles.push({ file, title: `Images: ${cls}`, caption: `Real images (validation split) beside the first images generated by each variant for "${cls}".` });
  }
  const dbColumns: GridColumn[] = [];
  for (const [arm, m] of Object.entries(dbManifests)) {
    const tiles = [];
    for (const i of m.images.slice(0, perBlock)) {
      const d = await decodeImage(join(runDir, 'dreambooth', arm, 'generated', i.file), m.channels as 1 | 3);
      tiles.push({ pixels: d.pixels, size: m.imageSize, channels: m.channels });
    }
    if (tiles.length) dbColumns.push({ label: arm, tiles });
  }
  if (dbColumns.length) {
    writeFileAtomicSync(join(tmpDir, 'figures', 'grid-dreambooth.png'), await gridPng(`DreamBooth on "${dbClass}": images generated with the token`, dbColumns, 4));
    gridFiles.push({ file: 'grid-dreambooth.png', title: `Images: DreamBooth (${dbClass})`, caption: `The first images generated with the DreamBooth token by each arm (compare with the real "${dbClass}" images above).` });
  }
  figures.push(...gridFiles);

  // HTML.
  const rowsHtml = Object.entries(evals).map(([v, e]) => `<tr><td>${esc(v)}</td><td>${pct(e.generationAccuracy.overall)}</td><td>${pct(e.generationAccuracy.macro)}</td><td>${pct(mean(e.generationAccuracy.perSeed.map((s) => s.overall)))} ± ${pct(sd(e.generationAccuracy.perSeed.map((s) => s.overall)))}</td><td>${num(e.diversity.overall.generated)}</td><td>${num(e.diversity.overall.real)}</td><td>${num(e.frechetDistance, 2)}</td><td>${num(e.kid.mean, 4)} ± ${num(e.kid.std, 4)}</td><td>${e.numGenerated}</td></tr>`).join('\n');
  const dbRowsHtml = Object.entries(dbEvals).map(([arm, e]) => `<tr><td>${esc(arm)}</td><td>${pct(e.generationAccuracy.overall)}</td><td>${pct(mean(e.generationAccuracy.perSeed.map((s) => s.overall)))} ± ${pct(sd(e.generationAccuracy.perSeed.map((s) => s.overall)))}</td><td>${num(e.diversity.overall.generated)}</td><td>${num(e.diversity.overall.real)}</td><td>${num(e.frechetDistance, 2)}</td><td>${e.numGenerated}</td></tr>`).join('\n');
  const dbHtml = dbArms.length
    ? `<h2>DreamBooth</h2>
<p>The baseline model fine-tuned with DreamBooth on a few training images of "${esc(dbClass)}" bound to a new token${dbInfo?.dreambooth ? ` ("${esc(dbInfo.dreambooth.token)}")` : ''}, without and with feature alignment, then sampled with the token. Generation accuracy: share of those images the expert classifies as "${esc(dbClass)}".</p>
<table><tr><th>arm</th><th>generation accuracy</th><th>per seed (mean ± sd)</th><th>SSIM diversity (generated)</th><th>SSIM diversity (real)</th><th>Fréchet distance</th><th>images</th></tr>
${dbRowsHtml}
</table>`
    : '';
  const config = existsSync(join(runDir, 'config.yaml')) ? readFileSync(join(runDir, 'config.yaml'), 'utf8') : '';
  const figHtml: string[] = [];
  for (const f of figures) {
    const b64 = readFileSync(join(tmpDir, 'figures', f.file)).toString('base64');
    figHtml.push(`<figure id="${esc(f.file)}"><h3>${esc(f.title)}</h3><img alt="${esc(f.title)}" data-file="figures/${esc(f.file)}" src="data:image/png;base64,${b64}"><figcaption>${esc(f.caption)} <span class="file">(figures/${esc(f.file)})</span></figcaption></figure>`);
  }
  const matchMeanUsed = Object.values(manifests).some((m) => m.matchMean);
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fad report: ${esc(relative(process.cwd(), runDir) || runDir)}</title>
<style>body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}figure{margin:2em 0}img{max-width:100%}figcaption{color:#555;font-size:90%}.file{color:#999}.warn{background:#fff3cd;padding:.5em 1em;border-left:4px solid #e0a800}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:85%}</style></head>
<body>
<h1>Feature-aligned diffusion: experiment report</h1>
<p>Run directory <code>${esc(runDir)}</code>; backend <b>${esc(runInfo.backend ?? '?')}</b>; started ${esc(runInfo.startedAt ?? '?')}; report written ${esc(new Date().toISOString())}.</p>
${warnings.map((w) => `<p class="warn">${esc(w)}</p>`).join('\n')}
${matchMeanUsed ? '<p class="warn">Generated images were filtered with <code>--match-mean</code> (kept only images whose mean intensity is near the real class mean). This biases every metric below.</p>' : ''}
<h2>Summary</h2>
<table><tr><th>variant</th><th>generation accuracy</th><th>macro</th><th>per seed (mean ± sd)</th><th>SSIM diversity (generated)</th><th>SSIM diversity (real)</th><th>Fréchet distance</th><th>KID</th><th>images</th></tr>
${rowsHtml}
</table>
<p>Generation accuracy: share of generated images the expert classifies as the class they were generated for${firstEval ? ` (classes: ${esc(firstEval.countedClasses.join(', '))})` : ''}. SSIM diversity: mean pairwise SSIM within a class (lower = more diverse). Fréchet distance and KID: between real and generated images on the expert's pooled features (lower = closer). Expert accuracy on real held-out images: ${pct(expertEval?.accuracy)}.</p>
${intensityHtml}
${dbHtml}
${utilityHtml}
<h2>Figures</h2>
${figHtml.join('\n')}
<h2>Configuration</h2>
<pre>${esc(config)}</pre>
</body></html>
`;
  writeFileAtomicSync(join(tmpDir, 'report.html'), html);
  rmSync(outDir, { recursive: true, force: true });
  renameSync(tmpDir, outDir);
  return { html: join(outDir, 'report.html'), figures: figures.map((f) => join(outDir, 'figures', f.file)), warnings };
}

/** Per-class table of generated-vs-real mean intensity and contrast, one column pair per variant; '' without data. */
export function intensityTableHtml(intensityEvals: Array<[string, EvaluationResult]>): string {
  if (intensityEvals.length === 0) return '';
  const classes = [...new Set(intensityEvals.flatMap(([, e]) => e.intensity!.perClass.map((c) => c.class)))];
  const cell = (v: string, e: EvaluationResult, cls: string) => {
    const c = e.intensity!.perClass.find((x) => x.class === cls);
    return c ? `<td>${num(c.generatedMean)} (${c.meanDifference === null ? '–' : `${c.meanDifference >= 0 ? '+' : ''}${num(c.meanDifference)}`})</td><td>${num(c.generatedContrast)}</td>` : '<td>–</td><td>–</td>';
  };
  const realOf = (cls: string) => intensityEvals.map(([, e]) => e.intensity!.perClass.find((x) => x.class === cls)).find((c) => c);
  const head = `<tr><th>class</th><th>real mean</th><th>real contrast</th>${intensityEvals.map(([v]) => `<th>${esc(v)} mean (diff)</th><th>${esc(v)} contrast</th>`).join('')}</tr>`;
  const rows = classes.map((cls) => {
    const r = realOf(cls);
    return `<tr><td>${esc(cls)}</td><td>${num(r?.realMean)}</td><td>${num(r?.realContrast)}</td>${intensityEvals.map(([v, e]) => cell(v, e, cls)).join('')}</tr>`;
  });
  return `<h2>Mean intensity and contrast</h2>
<table>${head}
${rows.join('\n')}
</table>
<p>Mean: the mean over images of each image's mean pixel value (in [0,1]); diff: generated minus real. Contrast: the mean over images of the standard deviation of the pixel values within each image. Every generated class is listed, including those left out of generation accuracy.</p>`;
}

function order(v: string): number {
  const i = ['baseline', 'aligned-noisy', 'aligned-clean'].indexOf(v);
  return i < 0 ? 99 : i;
}

function colorEnc(variants: string[]) {
  return { field: 'variant', type: 'nominal', sort: variants, scale: { domain: variants, range: variants.map((v) => COLORS[v] ?? '#9467bd') }, title: 'variant' };
}

function mean(a: number[]): number {
  return a.length ? a.reduce((x, y) => x + y, 0) / a.length : NaN;
}

function sd(a: number[]): number {
  if (a.length < 2) return NaN;
  const m = mean(a);
  return Math.sqrt(a.reduce((x, y) => x + (y - m) ** 2, 0) / (a.length - 1));
}

/** A generated set's manifest, checked like any input (names, image paths inside the folder); null when absent. */
function checkedManifest(dir: string): GenerateManifest | null {
  return existsSync(join(dir, 'manifest.json')) ? readManifest(dir) : null;
}
