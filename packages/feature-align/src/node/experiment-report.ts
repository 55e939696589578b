/**
 * The report of the paper's experiment (Node only: part of `@fad/feature-align/node`): one
 * self-contained HTML file, `RUN_DIR/report/report.html` (every figure embedded as base64 PNG, works
 * offline), plus the PNG figures in `RUN_DIR/report/figures/`, from the files of an experiment run
 * folder (`fad experiment`, `fad demo`, or a utility study's folder): the loss curves, the expert's
 * training and confusion matrices, generation accuracy per seed (paper Fig. 4), SSIM diversity per
 * class (Fig. 6), mean intensity and contrast, DreamBooth, downstream utility, and image grids of
 * real beside generated images. Missing parts (a variant not evaluated yet, no expert metrics) are
 * left out with a warning.
 *
 * The report is written to `RUN_DIR/report.tmp-<pid>` and renamed over `RUN_DIR/report` when
 * complete. Charts need vega, vega-lite and sharp (optional peer dependencies; see
 * report-renderer.ts).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { resizeImageData, withFsError } from '@fad/diffusion-core';
import { decodeImageFile, type GeneratedSetManifest, ImageFolderError, readGeneratedSetManifest, readJsonFileIfExists, writeFileAtomicSync } from '@fad/diffusion-core/node';
import { assertKnownKeys, assertParamsObject, describe, fail } from '../validate';
import { intensityTableHtml } from './intensity-table';
import { colorEnc, COLORS, confusionSpec } from './report-charts';
import { DREAMBOOTH_ARMS, EXPERIMENT_VARIANTS } from './experiment-variants';
import { ReportError } from './report-error';
import { esc, mean, num, pct, sd } from './report-format';
import { type GridColumn, gridPng } from './report-grid';
import type { ReportEvaluation, ReportExpertEvaluation, ReportExpertMetrics, ReportRunInfo, ReportSplit, ReportTrainingMetrics } from './report-inputs';
import { readJsonl } from './report-inputs';
import { loadRenderers, renderVegaLite } from './report-renderer';
import { systemFontAvailable } from './system-font';
import { readUtilityResults, utilityFigureSpec, utilityTableHtml } from './utility-report';

/** Parameters of {@link writeExperimentReport}. */
export interface WriteExperimentReportParams {
  /** The experiment run folder (`variants/`, `expert/`, `dreambooth/`, `utility/`, run.json, split.json, ...). */
  runDir: string;
  /** Progress lines (`report: <figure file>` as each chart is written). */
  log?: (message: string) => void;
}

/** Result of {@link writeExperimentReport}. */
export interface ExperimentReport {
  /** `RUN_DIR/report/report.html`. */
  html: string;
  /** The figure files, in report order. */
  figures: string[];
  /** What is missing or may be wrong (a variant not evaluated yet, no system font), also shown in the HTML. */
  warnings: string[];
}

interface Figure {
  file: string;
  title: string;
  caption: string;
}

/** A generated set's manifest with the DreamBooth record's fields the report reads. */
type Manifest = GeneratedSetManifest<unknown, { class: string; token: string }>;

/**
 * Writes the report of an experiment run folder. A folder that does not exist is a ReportError
 * `missing`, one without variants/, expert/ or utility results `not-run-dir`; vega, vega-lite or
 * sharp not installed `no-renderer`; a generated image that cannot be decoded `bad-image`; a failed
 * write `fs`. A generated set whose manifest.json fails its checks is a GenerationRunError.
 */
export async function writeExperimentReport(params: WriteExperimentReportParams): Promise<ExperimentReport> {
  const where = 'writeExperimentReport';
  assertParamsObject(where, params);
  assertKnownKeys(where, params as unknown as Record<string, unknown>, ['runDir', 'log']);
  const { runDir } = params;
  if (typeof runDir !== 'string' || runDir === '') fail(where, `runDir must be a non-empty string, got ${describe(runDir)}`, TypeError);
  if (params.log !== undefined && typeof params.log !== 'function') fail(where, `log must be a function, got ${describe(params.log)}`, TypeError);
  const log = params.log ?? (() => {});

  if (!existsSync(runDir)) throw new ReportError('missing', `run directory ${runDir} does not exist`, { runDir });
  const variantsDir = join(runDir, 'variants');
  const variants = existsSync(variantsDir) ? readdirSync(variantsDir).filter((v) => !v.startsWith('.')).sort((a, b) => order(a) - order(b)) : [];
  const utility = readUtilityResults(runDir);
  if (variants.length === 0 && !existsSync(join(runDir, 'expert')) && !utility) {
    throw new ReportError('not-run-dir', `${runDir} is not an experiment run directory (no variants/ or expert/ folder, and no utility results)`, { runDir });
  }
  await loadRenderers();

  const outDir = join(runDir, 'report');
  const tmpDir = join(runDir, `report.tmp-${process.pid}`);
  rmSync(tmpDir, { recursive: true, force: true });
  mkdirSync(join(tmpDir, 'figures'), { recursive: true });
  try {
    const { figures, warnings } = await writeReportFiles({ runDir, tmpDir, variantsDir, variants, utility, log });
    rmSync(outDir, { recursive: true, force: true });
    renameSync(tmpDir, outDir);
    return { html: join(outDir, 'report.html'), figures: figures.map((f) => join(outDir, 'figures', f.file)), warnings };
  } catch (e) {
    rmSync(tmpDir, { recursive: true, force: true });
    throw e;
  }
}

/** Writes a report file; a file system failure is a ReportError `fs` naming the path. */
function writeReportFile(path: string, data: Uint8Array | string): void {
  withFsError({ path, doing: 'write', error: (m, d, c) => new ReportError('fs', m, d, c), run: () => writeFileAtomicSync(path, data) });
}

/** Decodes a generated image; one that cannot be decoded is a ReportError `bad-image`. */
async function decodeGenerated(path: string, channels: number) {
  try {
    return await decodeImageFile({ path, channels: channels as 1 | 3 });
  } catch (e) {
    if (e instanceof ImageFolderError || !(e instanceof Error)) throw e;
    throw new ReportError('bad-image', `cannot read the generated image ${path}: ${e.message}`, { path, reason: e.message }, e);
  }
}

/** A generated set's manifest, checked like any input (names, image paths inside the folder); null when absent. */
function checkedManifest(dir: string): Manifest | null {
  return existsSync(join(dir, 'manifest.json')) ? readGeneratedSetManifest<unknown, { class: string; token: string }>({ dir }) : null;
}

async function writeReportFiles(p: {
  runDir: string;
  tmpDir: string;
  variantsDir: string;
  variants: string[];
  utility: ReturnType<typeof readUtilityResults>;
  log: (m: string) => void;
}): Promise<{ figures: Figure[]; warnings: string[] }> {
  const { runDir, tmpDir, variantsDir, variants, utility, log } = p;
  const warnings: string[] = [];
  if (!systemFontAvailable()) warnings.push('no system font found: chart text renders as boxes (install fonts-dejavu-core)');
  const figures: Figure[] = [];
  const save = async (file: string, title: string, caption: string, png: Uint8Array) => {
    writeReportFile(join(tmpDir, 'figures', file), png);
    figures.push({ file, title, caption });
    log(`report: ${file}`);
  };
  const chart = (spec: Record<string, unknown>) => renderVegaLite({ spec });
  const runInfo = readJsonFileIfExists<ReportRunInfo>(join(runDir, 'run.json')) ?? {};

  // 1. Loss curves: the diffusion term and the alignment term, separately.
  const diffusionRows: Array<Record<string, unknown>> = [];
  const alignRows: Array<Record<string, unknown>> = [];
  for (const v of variants) {
    for (const r of readJsonl<ReportTrainingMetrics>(join(variantsDir, v, 'train', 'metrics.jsonl'))) {
      const terms = r.terms ?? {};
      if (terms.diffusion !== undefined) diffusionRows.push({ step: r.step, value: terms.diffusion, variant: v });
      for (const [k, val] of Object.entries(terms)) if (k !== 'diffusion') alignRows.push({ step: r.step, value: val, variant: v, term: k });
    }
  }
  if (diffusionRows.length) {
    await save('loss-diffusion.png', 'Diffusion loss', 'Mean squared error of the noise prediction (the diffusion term, before weighting by lambda1), averaged over each logging window.', await chart({
      title: 'Diffusion loss (MSE) during fine-tuning', width: 480, height: 260, data: { values: diffusionRows },
      mark: { type: 'line', interpolate: 'monotone' },
      encoding: { x: { field: 'step', type: 'quantitative', title: 'step' }, y: { field: 'value', type: 'quantitative', title: 'diffusion loss', scale: { zero: false } }, color: colorEnc(variants) },
    }));
  }
  if (alignRows.length) {
    await save('loss-alignment.png', 'Alignment loss', 'Feature-alignment term 1 - cos(P(expert features), pooled U-Net features), before weighting by lambda2; aligned variants only.', await chart({
      title: 'Feature-alignment loss (1 - cosine)', width: 480, height: 260, data: { values: alignRows },
      mark: { type: 'line', interpolate: 'monotone' },
      encoding: { x: { field: 'step', type: 'quantitative' }, y: { field: 'value', type: 'quantitative', title: 'alignment loss', scale: { zero: false } }, color: colorEnc(variants) },
    }));
  }
  const expertMetrics = readJsonl<ReportExpertMetrics>(join(runDir, 'expert', 'metrics.jsonl'));
  if (expertMetrics.length) {
    const rows = expertMetrics.flatMap((r) => [
      { epoch: r.epoch, value: r.trainAccuracy, series: 'train accuracy (augmented)' },
      ...(r.validationAccuracy !== null ? [{ epoch: r.epoch, value: r.validationAccuracy, series: 'validation accuracy' }] : []),
    ]);
    await save('expert-training.png', 'Expert training', 'Accuracy of the expert classifier per epoch.', await chart({
      title: 'Expert training', width: 420, height: 220, data: { values: rows },
      mark: { type: 'line', point: true },
      encoding: { x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1 } }, y: { field: 'value', type: 'quantitative', title: 'accuracy', scale: { domain: [0, 1] } }, color: { field: 'series', type: 'nominal', title: null } },
    }));
  }

  // 2. Confusion matrices: the expert on real validation images, then each variant's generations.
  const expertEval = readJsonFileIfExists<ReportExpertEvaluation>(join(runDir, 'expert', 'eval.json'));
  if (expertEval?.confusionMatrix) {
    await save('confusion-expert-real.png', 'Expert on real images', `The expert on ${expertEval.numSamples} held-out real images: accuracy ${pct(expertEval.accuracy)}.`,
      await chart(confusionSpec(expertEval.confusionMatrix, expertEval.classNames, 'Expert on real validation images')));
  }
  const evals: Record<string, ReportEvaluation> = {};
  for (const v of variants) {
    const e = readJsonFileIfExists<ReportEvaluation>(join(variantsDir, v, 'eval.json'));
    if (e) evals[v] = e;
    else warnings.push(`variant ${v} has no evaluation yet`);
  }
  for (const [v, e] of Object.entries(evals)) {
    await save(`confusion-${v}.png`, `Generated images: ${v}`, `Expert predictions on ${e.numGenerated} images generated by ${v} (rows: intended class); generation accuracy ${pct(e.generationAccuracy.overall)}.`,
      await chart(confusionSpec(e.confusionMatrix, e.classNames, `Expert on images generated by ${v}`)));
  }

  // 3. Generation accuracy per seed per variant (paper Fig. 4).
  const seedRows = Object.entries(evals).flatMap(([v, e]) => e.generationAccuracy.perSeed.map((s) => ({ variant: v, seed: s.seed, accuracy: s.overall })));
  if (seedRows.length) {
    await save('accuracy-per-seed.png', 'Generation accuracy per seed', 'Share of each seed\'s generated images that the expert classifies as intended, per variant; the horizontal rules are the means over seeds (paper Fig. 4).', await chart({
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
    await save('ssim-diversity.png', 'SSIM diversity per class', `Mean pairwise SSIM within each class (lower = more diverse; window ${firstEval.diversity.window}); real images beside each variant (paper Fig. 6).`, await chart({
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
  const intensityEvals = Object.entries(evals).filter((ve): ve is [string, ReportEvaluation & Required<Pick<ReportEvaluation, 'intensity'>>] => Boolean(ve[1].intensity));
  const intensityHtml = intensityTableHtml(intensityEvals);
  if (intensityEvals.length) {
    const sources = ['real', ...intensityEvals.map(([v]) => v)];
    const rows: Array<Record<string, unknown>> = [];
    for (const c of intensityEvals[0][1].intensity.perClass) {
      rows.push({ class: c.class, source: 'real', measure: 'mean intensity', value: c.realMean }, { class: c.class, source: 'real', measure: 'contrast (sd within image)', value: c.realContrast });
    }
    for (const [v, e] of intensityEvals) {
      for (const c of e.intensity.perClass) {
        rows.push({ class: c.class, source: v, measure: 'mean intensity', value: c.generatedMean }, { class: c.class, source: v, measure: 'contrast (sd within image)', value: c.generatedContrast });
      }
    }
    const nClasses = intensityEvals[0][1].intensity.perClass.length;
    await save('intensity.png', 'Mean intensity and contrast per class', 'Mean over images of each image\'s mean pixel value (left) and of each image\'s contrast, the standard deviation of its pixel values (right), per class: real images beside each variant\'s generated ones. A generator that cannot set the brightness of a tile shows the same mean in every class.', await chart({
      title: 'Generated vs real: mean intensity and contrast per class', data: { values: rows.filter((r) => r.value !== null && Number.isFinite(r.value as number)) },
      facet: { column: { field: 'measure', type: 'nominal', title: null, sort: ['mean intensity', 'contrast (sd within image)'] } },
      resolve: { scale: { y: 'independent' } },
      spec: {
        width: Math.max(240, nClasses * 50), height: 220, mark: 'bar',
        encoding: {
          x: { field: 'class', type: 'nominal', sort: intensityEvals[0][1].intensity.perClass.map((c) => c.class), axis: { labelAngle: -30 } }, xOffset: { field: 'source', type: 'nominal', sort: sources },
          y: { field: 'value', type: 'quantitative', title: null }, color: { field: 'source', type: 'nominal', sort: sources, scale: { domain: sources, range: sources.map((x) => COLORS[x] ?? '#9467bd') }, title: null },
        },
      },
    }));
  }

  // 4b. DreamBooth (paper Fig. 4, second panel): generation accuracy per seed of the token's images.
  const dbEvals: Record<string, ReportEvaluation> = {};
  const dbManifests: Record<string, Manifest> = {};
  for (const arm of DREAMBOOTH_ARMS) {
    const e = readJsonFileIfExists<ReportEvaluation>(join(runDir, 'dreambooth', arm, 'eval.json'));
    if (e) dbEvals[arm] = e;
    const m = checkedManifest(join(runDir, 'dreambooth', arm, 'generated'));
    if (m) dbManifests[arm] = m;
  }
  const dbArms = Object.keys(dbEvals);
  const dbInfo = Object.values(dbManifests)[0];
  const dbClass = dbInfo?.dreambooth?.class ?? Object.values(dbEvals)[0]?.countedClasses.join(', ') ?? '';
  const dbSeedRows = Object.entries(dbEvals).flatMap(([arm, e]) => e.generationAccuracy.perSeed.map((s) => ({ variant: arm, seed: s.seed, accuracy: s.overall })));
  if (dbSeedRows.length) {
    await save('dreambooth-accuracy-per-seed.png', `DreamBooth: generation accuracy per seed (${dbClass})`, `DreamBooth fine-tuning of the baseline model on "${dbClass}"${dbInfo?.dreambooth ? ` (token "${dbInfo.dreambooth.token}")` : ''}, without and with feature alignment: share of each seed's images generated with the token that the expert classifies as "${dbClass}"; the horizontal rules are the means over seeds (paper Fig. 4, second panel).`, await chart({
      title: `DreamBooth on "${dbClass}": generation accuracy per seed`, width: Math.max(300, new Set(dbSeedRows.map((r) => r.seed)).size * 22 * Math.max(1, dbArms.length)), height: 240, data: { values: dbSeedRows },
      layer: [
        { mark: 'bar', encoding: { x: { field: 'seed', type: 'ordinal', title: 'seed', axis: { labelAngle: 0 } }, xOffset: { field: 'variant', type: 'nominal', sort: dbArms }, y: { field: 'accuracy', type: 'quantitative', title: 'generation accuracy', scale: { domain: [0, 1] } }, color: colorEnc(dbArms) } },
        { mark: { type: 'rule', strokeDash: [6, 3], strokeWidth: 2 }, encoding: { y: { aggregate: 'mean', field: 'accuracy', type: 'quantitative' }, color: colorEnc(dbArms) } },
      ],
    }));
  }
  for (const arm of DREAMBOOTH_ARMS) if (existsSync(join(runDir, 'dreambooth', arm)) && !dbEvals[arm]) warnings.push(`DreamBooth arm ${arm} has no evaluation yet`);

  // 4c. Downstream utility (the utility study / the experiment's utility stage).
  let utilityHtml = '';
  if (utility) {
    await save('utility-accuracy.png', 'Downstream accuracy vs real data', 'Held-out real accuracy of the downstream classifier against the fraction of real training data: real only, and real + each synthetic set at each ratio (mean over seeds, 95% bootstrap CIs); dashed: trained on a synthetic set alone.', await chart(utilityFigureSpec(utility.json)));
    utilityHtml = utilityTableHtml(utility.json, 'utility-accuracy.png');
  }

  // 5. Image grids per class: real beside each variant.
  const split = readJsonFileIfExists<ReportSplit>(join(runDir, 'split.json'));
  const manifests: Record<string, Manifest> = {};
  for (const v of variants) {
    const m = checkedManifest(join(variantsDir, v, 'generated'));
    if (m) manifests[v] = m;
  }
  const classList = split?.classNames ?? Object.values(manifests)[0]?.classNames ?? [];
  const perBlock = 8;
  const gridFiles: Figure[] = [];
  for (const [k, cls] of classList.entries()) {
    const columns: GridColumn[] = [];
    if (split && runInfo.dataDir && runInfo.imageSize) {
      const pool = (split.validation.length ? split.validation : split.files.map((_, i) => i)).filter((i) => split.labels[i] === k).slice(0, perBlock);
      const tiles = [];
      const channels = runInfo.channels ?? 1;
      for (const i of pool) {
        try {
          const d = await decodeImageFile({ path: join(runInfo.dataDir, split.files[i]), channels: channels as 1 | 3 });
          tiles.push({ pixels: resizeImageData({ pixels: d.pixels, height: d.height, width: d.width, channels, outHeight: runInfo.imageSize, outWidth: runInfo.imageSize, method: 'area' }), size: runInfo.imageSize, channels });
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
        const d = await decodeGenerated(join(variantsDir, v, 'generated', i.file), m.channels);
        tiles.push({ pixels: d.pixels, size: m.imageSize, channels: m.channels });
      }
      if (tiles.length) columns.push({ label: v, tiles });
    }
    if (columns.length === 0) continue;
    const file = `grid-${cls.replace(/[^a-z0-9_-]/gi, '_')}.png`;
    writeReportFile(join(tmpDir, 'figures', file), await gridPng(`Class "${cls}": real images beside each variant's`, columns, 4));
    gridFiles.push({ file, title: `Images: ${cls}`, caption: `Real images (validation split) beside the first images generated by each variant for "${cls}".` });
  }
  const dbColumns: GridColumn[] = [];
  for (const [arm, m] of Object.entries(dbManifests)) {
    const tiles = [];
    for (const i of m.images.slice(0, perBlock)) {
      const d = await decodeGenerated(join(runDir, 'dreambooth', arm, 'generated', i.file), m.channels);
      tiles.push({ pixels: d.pixels, size: m.imageSize, channels: m.channels });
    }
    if (tiles.length) dbColumns.push({ label: arm, tiles });
  }
  if (dbColumns.length) {
    writeReportFile(join(tmpDir, 'figures', 'grid-dreambooth.png'), await gridPng(`DreamBooth on "${dbClass}": images generated with the token`, dbColumns, 4));
    gridFiles.push({ file: 'grid-dreambooth.png', title: `Images: DreamBooth (${dbClass})`, caption: `The first images generated with the DreamBooth token by each arm (compare with the real "${dbClass}" images above).` });
  }
  figures.push(...gridFiles);

  // HTML.
  const perSeedText = (e: ReportEvaluation) => `${pct(mean(e.generationAccuracy.perSeed.map((s) => s.overall)))} ± ${pct(sd(e.generationAccuracy.perSeed.map((s) => s.overall)))}`;
  const rowsHtml = Object.entries(evals).map(([v, e]) => `<tr><td>${esc(v)}</td><td>${pct(e.generationAccuracy.overall)}</td><td>${pct(e.generationAccuracy.macro)}</td><td>${perSeedText(e)}</td><td>${num(e.diversity.overall.generated)}</td><td>${num(e.diversity.overall.real)}</td><td>${num(e.frechetDistance, 2)}</td><td>${num(e.kid.mean, 4)} ± ${num(e.kid.std, 4)}</td><td>${e.numGenerated}</td></tr>`).join('\n');
  const dbRowsHtml = Object.entries(dbEvals).map(([arm, e]) => `<tr><td>${esc(arm)}</td><td>${pct(e.generationAccuracy.overall)}</td><td>${perSeedText(e)}</td><td>${num(e.diversity.overall.generated)}</td><td>${num(e.diversity.overall.real)}</td><td>${num(e.frechetDistance, 2)}</td><td>${e.numGenerated}</td></tr>`).join('\n');
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
  writeReportFile(join(tmpDir, 'report.html'), html);
  return { figures, warnings };
}

/** Report order of the experiment's variants (others after them). */
function order(v: string): number {
  const i = (EXPERIMENT_VARIANTS as readonly string[]).indexOf(v);
  return i < 0 ? 99 : i;
}
