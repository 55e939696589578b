#!/usr/bin/env node
// The paper's two claims with paired bootstrap CIs, over several training seeds of `fad experiment`:
//   node scripts/paper-ci.mjs [--json OUT.json] RUN_SEED0 RUN_SEED1 ...
// Each RUN is a `fad experiment` run folder (one training seed; the same generate.* seeds in all).
// Per judge it reads RUN/variants/<v>/<file> with <file> in: eval.json (the experiment's expert),
// eval-expert.json (the same expert, re-evaluated), eval-judge.json (an independent judge: fad evaluate
// --out), and needs their per-image `predictions` (fad evaluate writes them). Items are paired by
// file name (same sampling seed, class and index, so the same initial noise) across variants and
// runs; training seeds are the bootstrap's groups (metrics' pairedAccuracies).
// A variant missing from some runs (still training) is reported over the runs that have it, and each
// difference over the runs that have both variants; the tables name those runs.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pairedAccuracies } from '@fad/metrics';

const args = process.argv.slice(2);
let jsonOut = null;
if (args[0] === '--json') { jsonOut = args[1]; args.splice(0, 2); }
if (args.length === 0) { console.error('usage: node scripts/paper-ci.mjs [--json OUT.json] RUN_SEED0 [RUN_SEED1 ...]'); process.exit(2); }
const runs = args;
const variants = ['baseline', 'aligned-noisy', 'aligned-clean'];
const judges = [
  { name: 'expert (ResNet50)', files: ['eval-expert.json', 'eval.json'] },
  { name: 'independent judge (ResNet18)', files: ['eval-judge.json'] },
];
const read = (p) => JSON.parse(readFileSync(p, 'utf8'));
const pct = (x) => `${(x * 100).toFixed(1)}`;
const ci = (c) => `[${pct(c[0])}, ${pct(c[1])}]`;
const signed = (x) => `${x >= 0 ? '+' : ''}${pct(x)}`;

const out = { runs, judges: [] };
for (const judge of judges) {
  // eval[v][r]: the evaluation with predictions, or null.
  const evals = variants.map((v) => runs.map((r) => {
    for (const f of judge.files) {
      const p = join(r, 'variants', v, f);
      if (existsSync(p)) { const e = read(p); if (Array.isArray(e.predictions)) return e; }
    }
    return null;
  }));
  // A variant counts where it has predictions; a difference uses the seeds that have both variants
  // (a seed still training one variant adds nothing to that variant's rows, and says so).
  const present = variants.filter((_, k) => evals[k].some((e) => e));
  if (present.length < 2) { console.log(`${judge.name}: fewer than two variants have per-image predictions; skipped\n`); continue; }
  const runsOf = (vs) => runs.map((_, r) => r).filter((r) => vs.every((v) => evals[variants.indexOf(v)][r]));
  const first = evals[variants.indexOf(present[0])].find((e) => e);
  const counted = new Set(first.countedClasses);
  const files = first.predictions.filter((p) => counted.has(p.class)).map((p) => p.file).sort();
  const outcomesOf = (v, rs) => rs.map((r) => {
    const byFile = new Map(evals[variants.indexOf(v)][r].predictions.map((p) => [p.file, p]));
    return files.map((f) => {
      const p = byFile.get(f);
      if (!p) throw new Error(`${join(runs[r], 'variants', v)}: no prediction for ${f} (the runs must share generate.* seeds, classes and images per class)`);
      return p.predicted === p.class ? 1 : 0;
    });
  });
  const seedsLabel = (rs) => (rs.length === runs.length ? '' : ` (training seed${rs.length > 1 ? 's' : ''} ${rs.map((r) => basename(runs[r])).join(', ')} only)`);
  const arms = present.map((v) => {
    const rs = runsOf([v]);
    const a = pairedAccuracies({ arms: [v], outcomes: [outcomesOf(v, rs)], samples: 4000, seed: 0 }).arms[0];
    return { ...a, runs: rs.map((r) => runs[r]), frechetDistance: rs.map((r) => evals[variants.indexOf(v)][r].frechetDistance) };
  });
  const contrasts = [['aligned-noisy', 'baseline'], ['aligned-noisy', 'aligned-clean'], ['aligned-clean', 'baseline']]
    .filter(([a, b]) => present.includes(a) && present.includes(b) && runsOf([a, b]).length > 0)
    .map(([a, b]) => {
      const rs = runsOf([a, b]);
      const c = pairedAccuracies({ arms: [a, b], outcomes: [outcomesOf(a, rs), outcomesOf(b, rs)], contrasts: [[a, b]], samples: 4000, seed: 0 }).contrasts[0];
      return { ...c, runs: rs.map((r) => runs[r]) };
    });
  console.log(`### ${judge.name}: ${files.length} generated images per variant and run, ${runs.length} training seed(s)\n`);
  console.log('| variant | generation accuracy, % (95% CI) | per training seed | Fréchet distance per seed |');
  console.log('|---|---:|---:|---:|');
  for (const a of arms) console.log(`| ${a.arm}${seedsLabel(a.runs.map((x) => runs.indexOf(x)))} | ${pct(a.accuracy)} ${ci(a.ci)} | ${a.perGroup.map(pct).join(' / ')} | ${a.frechetDistance.map((x) => x.toFixed(1)).join(' / ')} |`);
  console.log('\n| difference | points (95% CI) | per training seed |');
  console.log('|---|---:|---:|');
  for (const c of contrasts) console.log(`| ${c.a} − ${c.b}${seedsLabel(c.runs.map((x) => runs.indexOf(x)))} | ${signed(c.difference)} ${ci(c.ci)} | ${c.perGroup.map(signed).join(' / ')} |`);
  console.log('');
  out.judges.push({ judge: judge.name, numItems: files.length, samples: 4000, level: 0.95, arms, contrasts });
}
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(out, null, 2)}\n`);
