/** The report's table of generated-vs-real mean intensity and contrast per class. */
import { esc, num } from './report-format';
import type { ReportClassIntensity } from './report-inputs';

/**
 * Per-class table of generated-vs-real mean intensity and contrast, one column pair per variant
 * (`[name, its evaluation's intensity section]`, in report order); '' without any.
 */
export function intensityTableHtml(intensityEvals: Array<[string, { intensity: { perClass: ReportClassIntensity[] } }]>): string {
  if (intensityEvals.length === 0) return '';
  const classes = [...new Set(intensityEvals.flatMap(([, e]) => e.intensity.perClass.map((c) => c.class)))];
  const cell = (e: { intensity: { perClass: ReportClassIntensity[] } }, cls: string) => {
    const c = e.intensity.perClass.find((x) => x.class === cls);
    return c ? `<td>${num(c.generatedMean)} (${c.meanDifference === null ? '–' : `${c.meanDifference >= 0 ? '+' : ''}${num(c.meanDifference)}`})</td><td>${num(c.generatedContrast)}</td>` : '<td>–</td><td>–</td>';
  };
  const realOf = (cls: string) => intensityEvals.map(([, e]) => e.intensity.perClass.find((x) => x.class === cls)).find((c) => c);
  const head = `<tr><th>class</th><th>real mean</th><th>real contrast</th>${intensityEvals.map(([v]) => `<th>${esc(v)} mean (diff)</th><th>${esc(v)} contrast</th>`).join('')}</tr>`;
  const rows = classes.map((cls) => {
    const r = realOf(cls);
    return `<tr><td>${esc(cls)}</td><td>${num(r?.realMean)}</td><td>${num(r?.realContrast)}</td>${intensityEvals.map(([, e]) => cell(e, cls)).join('')}</tr>`;
  });
  return `<h2>Mean intensity and contrast</h2>
<table>${head}
${rows.join('\n')}
</table>
<p>Mean: the mean over images of each image's mean pixel value (in [0,1]); diff: generated minus real. Contrast: the mean over images of the standard deviation of the pixel values within each image. Every generated class is listed, including those left out of generation accuracy.</p>`;
}
