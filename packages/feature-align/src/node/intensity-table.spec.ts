/** The report's intensity table, on hand-made intensity sections. */
import { describe, expect, it } from 'vitest';
import { intensityTableHtml } from './intensity-table';
import type { ReportClassIntensity } from './report-inputs';

const row = (cls: string, generatedMean: number | null, realMean: number, generatedContrast: number, realContrast: number): ReportClassIntensity => ({
  class: cls, generatedMean, realMean, meanDifference: generatedMean === null ? null : generatedMean - realMean, generatedContrast, realContrast,
});

describe('intensityTableHtml', () => {
  it('is empty without any intensity section', () => {
    expect(intensityTableHtml([])).toBe('');
  });

  it('lists every class of any variant: real mean and contrast once, then each variant\'s mean (signed difference) and contrast', () => {
    const html = intensityTableHtml([
      ['baseline', { intensity: { perClass: [row('white', 128 / 255, 1, 0, 0), row('dark', 0.25, 0.3, 0.25, 0.2 / 3)] } }],
      ['a&b', { intensity: { perClass: [row('dark', 0.35, 0.3, 0.1, 0.2 / 3), row('empty', null, 0.5, 0, 0.01)] } }],
    ]);
    expect(html).toContain('<tr><th>class</th><th>real mean</th><th>real contrast</th><th>baseline mean (diff)</th><th>baseline contrast</th><th>a&amp;b mean (diff)</th><th>a&amp;b contrast</th></tr>');
    // white: only in baseline; 128/255 = 0.502, minus 1 = -0.498; a&b has no such class.
    expect(html).toContain('<tr><td>white</td><td>1.000</td><td>0.000</td><td>0.502 (-0.498)</td><td>0.000</td><td>–</td><td>–</td></tr>');
    expect(html).toContain('<tr><td>dark</td><td>0.300</td><td>0.067</td><td>0.250 (-0.050)</td><td>0.250</td><td>0.350 (+0.050)</td><td>0.100</td></tr>');
    // empty: real values from the one variant that has the class; no generated mean, no difference.
    expect(html).toContain('<tr><td>empty</td><td>0.500</td><td>0.010</td><td>–</td><td>–</td><td>– (–)</td><td>0.000</td></tr>');
    expect(html.indexOf('<td>white</td>')).toBeLessThan(html.indexOf('<td>dark</td>'));
    expect(html.indexOf('<td>dark</td>')).toBeLessThan(html.indexOf('<td>empty</td>'));
  });
});
