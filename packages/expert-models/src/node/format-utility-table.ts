/**
 * The utility study's results as a plain-text table (one row per protocol: training images,
 * accuracy and macro-F1 with 95% CIs, gains over real-only in percentage points, wall time per
 * classifier), with a header line saying what the numbers are and a wall-time line. Part of
 * `@fad/expert-models/node` beside the run that writes `utility.json`.
 */
import { formatDuration } from '@fad/diffusion-core/node';
import type { UtilityProtocolSummary } from '@fad/expert-models';
import type { UtilityJson } from './utility-files';

/** A share as a percentage with one decimal (`12.5%`), `–` when not finite. */
export const percent = (v: number): string => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '–');
const points = (v: number) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)}` : '–');
const ciPercent = (c: [number, number]) => `[${percent(c[0]).replace('%', '')}, ${percent(c[1])}]`;
const ciPoints = (c: [number, number]) => `[${points(c[0])}, ${points(c[1])}]`;

const secs = (v: number) => (v < 60 ? `${v.toFixed(1)}s` : formatDuration(v));

/** Parameters of {@link formatUtilityTable}. */
export interface FormatUtilityTableParams {
  /** The results (`utility.json`). */
  json: UtilityJson;
}

/** The table of the results (see the file comment); lines joined by `\n`, no trailing newline. */
export function formatUtilityTable(p: FormatUtilityTableParams): string {
  if (p === null || typeof p !== 'object' || p.json === null || typeof p.json !== 'object' || !Array.isArray(p.json.summary?.protocols)) {
    throw new TypeError('formatUtilityTable: expected { json: the utility.json of a utility run }');
  }
  const { json } = p;
  const rows = json.summary.protocols.map((x: UtilityProtocolSummary) => [
    x.id,
    String(Math.round(x.numTrain)),
    `${percent(x.accuracy.mean)} ${ciPercent(x.accuracy.ci95)}`,
    `${percent(x.macroF1.mean)} ${ciPercent(x.macroF1.ci95)}`,
    x.gain ? `${points(x.gain.accuracy.mean)} ${ciPoints(x.gain.accuracy.ci95)}` : '',
    x.gain ? `${points(x.gain.macroF1.mean)} ${ciPoints(x.gain.macroF1.ci95)}` : '',
    secs(x.seconds.perClassifier),
  ]);
  const head = ['protocol', 'train imgs', 'accuracy [95% CI]', 'macro-F1 [95% CI]', 'gain acc, pts [CI]', 'gain F1, pts [CI]', 'time/classifier'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  const s = json.summary;
  return [
    `downstream classifier ${json.classifier.preset}, ${s.protocols[0]?.seeds.length ?? 0} seed(s) per protocol, tested on ${s.numTest} held-out real images; means over seeds, 95% CIs by ${s.bootstrap.method} (${s.bootstrap.samples} replicates); gains over real-only at the same fraction (synthetic-only: over the largest fraction)`,
    line(head),
    ...rows.map(line),
    `wall time: ${secs(json.wallTime.perClassifierMean)} per classifier, ${secs(json.wallTime.classifiersTotal)} for all ${json.runs.length} (train + evaluate, on ${json.backend})`,
  ].join('\n');
}
