/**
 * The utility part of the experiment report: when the run folder holds `utility/utility.json` (the
 * experiment's utility stage) or `utility.json` (a folder of the utility study alone), a figure of
 * held-out accuracy against the fraction of real data (one line per synthetic set and ratio, one for
 * real-only, 95% CIs as error bars, synthetic-only as dashed rules) and a table of every protocol.
 */
import { join } from 'node:path';
import { readJsonFileIfExists } from '@fad/diffusion-core/node';
import { esc, pct, pts } from './report-format';
import type { ReportUtilityResults } from './report-inputs';

/** The utility results of a run folder (format `fad-utility/1`) and where they are, or null. */
export function readUtilityResults(runDir: string): { path: string; json: ReportUtilityResults } | null {
  for (const path of [join(runDir, 'utility', 'utility.json'), join(runDir, 'utility.json')]) {
    const json = readJsonFileIfExists<ReportUtilityResults>(path);
    if (json?.format === 'fad-utility/1') return { path, json };
  }
  return null;
}

/** Vega-lite spec of accuracy against the real fraction. */
export function utilityFigureSpec(json: ReportUtilityResults): Record<string, unknown> {
  const ps = json.summary.protocols;
  const series = (p: (typeof ps)[number]) => (p.kind === 'real' ? 'real only' : `real + ${p.synthetic} ${p.ratio}:1`);
  const points = ps.filter((p) => p.kind !== 'synthetic').map((p) => ({ series: series(p), fraction: p.fraction, accuracy: p.accuracy.mean, lo: p.accuracy.ci95[0], hi: p.accuracy.ci95[1] }));
  const synOnly = ps.filter((p) => p.kind === 'synthetic').map((p) => ({ series: `${p.synthetic} only (TSTR)`, accuracy: p.accuracy.mean }));
  const names = [...new Set([...points.map((p) => p.series), ...synOnly.map((p) => p.series)])];
  const fractions = [...new Set(points.map((p) => p.fraction as number))].sort((a, b) => a - b);
  const x = {
    field: 'fraction', type: 'quantitative', title: 'fraction of the real training split (log scale)',
    scale: { type: 'log', domain: [fractions[0] / 1.25, 1.1], nice: false }, axis: { values: fractions },
  };
  const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22'];
  let k = 0;
  const range = names.map((n) => (n === 'real only' ? '#7f7f7f' : palette[k++ % palette.length]));
  const color = { field: 'series', type: 'nominal', title: null, sort: names, scale: { domain: names, range }, legend: { labelLimit: 320 } };
  return {
    title: 'Downstream accuracy on held-out real images',
    width: 440, height: 280,
    layer: [
      { data: { values: points }, mark: { type: 'line', point: true }, encoding: { x, y: { field: 'accuracy', type: 'quantitative', title: 'accuracy (mean over seeds)', scale: { zero: false } }, color } },
      { data: { values: points }, mark: { type: 'errorbar', ticks: true, opacity: 0.6 }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'accuracy (mean over seeds)' }, y2: { field: 'hi' }, color } },
      ...(synOnly.length ? [{ data: { values: synOnly }, mark: { type: 'rule', strokeDash: [4, 4] }, encoding: { y: { field: 'accuracy', type: 'quantitative', title: 'accuracy (mean over seeds)' }, color } }] : []),
    ],
  };
}

/** The HTML section with the table of every protocol; `figureFile` is linked when given. */
export function utilityTableHtml(json: ReportUtilityResults, figureFile: string | null): string {
  const s = json.summary;
  const classes = json.data.classNames;
  const ci = (c: [number, number], f: (v: number) => string) => `<br><small>[${f(c[0])}, ${f(c[1])}]</small>`;
  const rows = s.protocols.map((p) => `<tr><td>${esc(p.id)}</td><td>${Math.round(p.numReal)}</td><td>${Math.round(p.numSynthetic)}${p.repeatedClasses.length ? '*' : ''}</td>`
    + `<td>${pct(p.accuracy.mean)}${ci(p.accuracy.ci95, pct)}</td><td>${pct(p.macroF1.mean)}${ci(p.macroF1.ci95, pct)}</td>`
    + `<td>${p.gain ? `${pts(p.gain.accuracy.mean)}${ci(p.gain.accuracy.ci95, pts)}` : ''}</td><td>${p.gain ? `${pts(p.gain.macroF1.mean)}${ci(p.gain.macroF1.ci95, pts)}` : ''}</td>`
    + `${p.perClassRecall.map((c) => `<td>${pct(c.mean)}</td>`).join('')}<td>${p.seconds.perClassifier.toFixed(1)}</td></tr>`);
  return `<h2>Does the synthetic data help? (downstream utility)</h2>
<p>A ${esc(json.classifier.preset)} classifier (not the generator's expert) trained per protocol and seed (${s.protocols[0]?.seeds.length ?? 0} seeds), tested on ${s.numTest} held-out real images. Values are means over seeds; 95% CIs by ${esc(s.bootstrap.method)} (${s.bootstrap.samples} replicates). Gains (percentage points) are over real-only at the same fraction (synthetic-only: over the largest fraction). * synthetic images repeat in some class (the set is smaller than the ratio asks).${figureFile ? ` Figure: <a href="#${esc(figureFile)}">${esc(figureFile)}</a>.` : ''}</p>
<table><tr><th>protocol</th><th>real imgs</th><th>synthetic imgs</th><th>accuracy</th><th>macro-F1</th><th>gain accuracy</th><th>gain macro-F1</th>${classes.map((c) => `<th>recall ${esc(c)}</th>`).join('')}<th>s / classifier</th></tr>
${rows.join('\n')}
</table>
<p>Wall time: ${json.wallTime.perClassifierMean.toFixed(1)} s per classifier, ${(json.wallTime.classifiersTotal / 60).toFixed(1)} min for all ${json.runs.length} (${esc(json.backend)}).</p>`;
}
