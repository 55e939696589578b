/** The utility part of the report: where the results are read from, the figure's spec, the table. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fixtureUtilityResults } from '../test-support/report-run-folder';
import { readUtilityResults, utilityFigureSpec, utilityTableHtml } from './utility-report';

const root = mkdtempSync(join(tmpdir(), 'fad-utility-report-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

type Layer = { data: { values: Array<Record<string, unknown>> }; mark: { type: string }; encoding: Record<string, Record<string, unknown>> };

describe('readUtilityResults', () => {
  it('reads utility/utility.json (an experiment) before utility.json (a study folder), and only the fad-utility/1 format', () => {
    const dir = join(root, 'run');
    mkdirSync(join(dir, 'utility'), { recursive: true });
    expect(readUtilityResults(dir)).toBeNull();
    const json = fixtureUtilityResults();
    writeFileSync(join(dir, 'utility.json'), JSON.stringify(json));
    expect(readUtilityResults(dir)).toEqual({ path: join(dir, 'utility.json'), json });
    writeFileSync(join(dir, 'utility', 'utility.json'), JSON.stringify({ ...json, backend: 'native' }));
    expect(readUtilityResults(dir)?.path).toBe(join(dir, 'utility', 'utility.json'));
    writeFileSync(join(dir, 'utility', 'utility.json'), JSON.stringify({ ...json, format: 'fad-utility/2' }));
    writeFileSync(join(dir, 'utility.json'), '{ not json');
    expect(readUtilityResults(dir)).toBeNull();
  });
});

describe('utilityFigureSpec', () => {
  it('draws accuracy against the real fraction per series with CIs, synthetic-only sets as dashed rules', () => {
    const spec = utilityFigureSpec(fixtureUtilityResults());
    const [line, bars, rule] = spec.layer as Layer[];
    expect(line.mark.type).toBe('line');
    expect(line.data.values).toEqual([
      { series: 'real only', fraction: 0.5, accuracy: 0.6, lo: 0.6 - 0.05, hi: 0.6 + 0.05 },
      { series: 'real only', fraction: 1, accuracy: 0.7, lo: 0.7 - 0.05, hi: 0.7 + 0.05 },
      { series: 'real + baseline 1:1', fraction: 0.5, accuracy: 0.65, lo: 0.65 - 0.05, hi: 0.65 + 0.05 },
      { series: 'real + baseline 1:1', fraction: 1, accuracy: 0.72, lo: 0.72 - 0.05, hi: 0.72 + 0.05 },
    ]);
    expect(bars.mark.type).toBe('errorbar');
    expect(bars.encoding.y2).toEqual({ field: 'hi' });
    expect(rule.mark).toEqual({ type: 'rule', strokeDash: [4, 4] });
    expect(rule.data.values).toEqual([{ series: 'baseline only (TSTR)', accuracy: 0.4 }]);
    // Real-only gray, the others from the palette in order; a log x axis just around the fractions.
    expect(line.encoding.color.scale).toEqual({ domain: ['real only', 'real + baseline 1:1', 'baseline only (TSTR)'], range: ['#7f7f7f', '#1f77b4', '#d62728'] });
    expect(line.encoding.x.scale).toEqual({ type: 'log', domain: [0.5 / 1.25, 1.1], nice: false });
    expect(line.encoding.x.axis).toEqual({ values: [0.5, 1] });
  });

  it('has no rule layer without synthetic-only protocols', () => {
    const json = fixtureUtilityResults();
    json.summary.protocols = json.summary.protocols.filter((p) => p.kind !== 'synthetic');
    expect((utilityFigureSpec(json).layer as Layer[]).map((l) => l.mark.type)).toEqual(['line', 'errorbar']);
  });
});

describe('utilityTableHtml', () => {
  it('lists every protocol with CIs, gains in points, recall per class, and marks repeated synthetic images', () => {
    const html = utilityTableHtml(fixtureUtilityResults(), 'utility-accuracy.png');
    expect(html).toContain('<th>recall dark</th><th>recall light</th><th>s / classifier</th></tr>');
    expect(html).toContain('<tr><td>real-f1</td><td>4</td><td>0</td><td>70.0%<br><small>[65.0%, 75.0%]</small></td><td>60.0%<br><small>[55.0%, 65.0%]</small></td><td></td><td></td><td>70.0%</td><td>60.0%</td><td>1.3</td></tr>');
    expect(html).toContain('<tr><td>mix-baseline-r1-f0.5</td><td>2</td><td>4</td><td>65.0%<br><small>[60.0%, 70.0%]</small></td><td>55.0%<br><small>[50.0%, 60.0%]</small></td><td>+5.0<br><small>[+0.0, +10.0]</small></td><td>+2.5<br><small>[-2.5, +7.5]</small></td>');
    expect(html).toContain('<tr><td>syn-baseline</td><td>0</td><td>4*</td>');
    expect(html).toContain('trained per protocol and seed (2 seeds), tested on 6 held-out real images');
    expect(html).toContain('95% CIs by percentile bootstrap (100 replicates)');
    expect(html).toContain(' Figure: <a href="#utility-accuracy.png">utility-accuracy.png</a>.</p>');
    expect(html).toContain('<p>Wall time: 1.3 s per classifier, 2.1 min for all 10 (cpu).</p>');
    expect(utilityTableHtml(fixtureUtilityResults(), null)).not.toContain('Figure:');
  });
});
