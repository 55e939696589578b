#!/usr/bin/env node
// The paper's two claims with paired bootstrap CIs, over several training seeds of `fad experiment`:
//   node scripts/paper-ci.mjs [--json OUT.json] RUN_SEED0 RUN_SEED1 ...
// Each RUN is a `fad experiment` run folder (one training seed; the same generate.* seeds in all).
// Per judge it reads RUN/variants/<v>/<file> with <file> in: eval.json (the experiment's expert),
// eval-expert.json (the same expert, re-evaluated), eval-judge.json (an independent judge: fad evaluate
// --out), and needs their per-image `predictions` (fad evaluate writes them). Items are paired by
// file name (same sampling seed, class and index, so the same initial noise) across variants and
// runs; training seeds are the bootstrap's groups (metrics' pairedAccuracies).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
  const present = variants.filter((_, k) => evals[k].every((e) => e));
  if (present.length < 2) { console.log(`${judge.name}: fewer than two variants have per-image predictions in every run; skipped\n`); continue; }
  const first = evals[variants.indexOf(present[0])][0];
  const counted = new Set(first.countedClasses);
  const files = first.predictions.filter((p) => counted.has(p.class)).map((p) => p.file).sort();
  const outcomes = present.map((v) => evals[variants.indexOf(v)].map((e, r) => {
    const byFile = new Map(e.predictions.map((p) => [p.file, p]));
    return files.map((f) => {
      const p = byFile.get(f);
      if (!p) throw new Error(`${join(runs[r], 'variants', v)}: no prediction for ${f} (the runs must share generate.* seeds, classes and images per class)`);
      return p.predicted === p.class ? 1 : 0;
    });
  }));
  const contrasts = [['aligned-noisy', 'baseline'], ['aligned-noisy', 'aligned-clean'], ['aligned-clean', 'baseline']].filter(([a, b]) => present.includes(a) && present.includes(b));
  const r = pairedAccuracies({ arms: present, outcomes, contrasts, samples: 4000, seed: 0 });
  const fd = (v) => evals[variants.indexOf(v)].map((e) => e.frechetDistance);
  console.log(`### ${judge.name}: ${files.length} generated images per variant and run, ${runs.length} training seed(s)\n`);
  console.log('| variant | generation accuracy, % (95% CI) | per training seed | Fréchet distance per seed |');
  console.log('|---|---:|---:|---:|');
  for (const a of r.arms) console.log(`| ${a.arm} | ${pct(a.accuracy)} ${ci(a.ci)} | ${a.perGroup.map(pct).join(' / ')} | ${fd(a.arm).map((x) => x.toFixed(1)).join(' / ')} |`);
  console.log('\n| difference | points (95% CI) | per training seed |');
  console.log('|---|---:|---:|');
  for (const c of r.contrasts) console.log(`| ${c.a} − ${c.b} | ${signed(c.difference)} ${ci(c.ci)} | ${c.perGroup.map(signed).join(' / ')} |`);
  console.log('');
  out.judges.push({ judge: judge.name, numItems: r.numItems, numGroups: r.numGroups, samples: r.samples, level: r.level, arms: r.arms.map((a) => ({ ...a, frechetDistance: fd(a.arm) })), contrasts: r.contrasts });
}
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(out, null, 2)}\n`);
