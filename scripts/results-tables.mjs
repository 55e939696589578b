#!/usr/bin/env node
// Prints the markdown tables of docs/RESULTS.md from a `fad experiment` run folder:
//   node scripts/results-tables.mjs runs/histology
// Reads RUN/expert/eval.json, RUN/variants/*/eval.json (the experiment's judge), the optional
// RUN/variants/*/eval-judge.json (a second judge: fad evaluate --out ...), RUN/guidance/*/eval.json
// and RUN/guidance/*/manifest.json (examples/histology/guidance-sweep.sh).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const run = process.argv[2] ?? 'runs/histology';
const read = (p) => (existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : null);
const pct = (x) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(1)}%`);
const f3 = (x) => (x === null || x === undefined ? '—' : x.toFixed(3));
const mean = (a) => a.reduce((s, v) => s + v, 0) / a.length;
const sd = (a) => Math.sqrt(a.reduce((s, v) => s + (v - mean(a)) ** 2, 0) / Math.max(1, a.length - 1));

const expert = read(join(run, 'expert', 'eval.json'));
if (expert) console.log(`Expert (ResNet50) accuracy on ${expert.numSamples} held-out real tiles: ${pct(expert.accuracy)} (best epoch ${expert.bestEpoch}).\n`);

const vdir = join(run, 'variants');
const variants = existsSync(vdir) ? readdirSync(vdir).filter((v) => existsSync(join(vdir, v, 'eval.json'))) : [];
const order = ['baseline', 'aligned-noisy', 'aligned-clean'];
variants.sort((a, b) => order.indexOf(a) - order.indexOf(b));
if (variants.length) {
  console.log('| variant | generation accuracy (ResNet50 judge) | per-seed mean ± sd | ResNet18 judge | SSIM diversity (mean pairwise SSIM; real) | Fréchet distance | KID |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const v of variants) {
    const e = read(join(vdir, v, 'eval.json'));
    const j = read(join(vdir, v, 'eval-judge.json'));
    const seeds = e.generationAccuracy.perSeed.map((s) => s.overall);
    console.log(`| ${v} | ${pct(e.generationAccuracy.overall)} | ${pct(mean(seeds))} ± ${(sd(seeds) * 100).toFixed(1)} | ${j ? pct(j.generationAccuracy.overall) : '—'} | ${f3(e.diversity.overall.generated)} (${f3(e.diversity.overall.real)}) | ${e.frechetDistance.toFixed(1)} | ${e.kid.mean.toFixed(3)} |`);
  }
  console.log('\nPer class (generation accuracy, ResNet50 judge):\n');
  const classes = read(join(vdir, variants[0], 'eval.json')).generationAccuracy.perClass.map((c) => c.class);
  console.log(`| variant | ${classes.join(' | ')} |`);
  console.log(`|---|${classes.map(() => '---:').join('|')}|`);
  for (const v of variants) {
    const e = read(join(vdir, v, 'eval.json'));
    console.log(`| ${v} | ${e.generationAccuracy.perClass.map((c) => pct(c.accuracy)).join(' | ')} |`);
  }
  console.log('\nPer class (SSIM diversity, generated / real):\n');
  console.log(`| variant | ${classes.join(' | ')} |`);
  console.log(`|---|${classes.map(() => '---:').join('|')}|`);
  for (const v of variants) {
    const e = read(join(vdir, v, 'eval.json'));
    console.log(`| ${v} | ${e.diversity.perClass.map((c) => `${f3(c.generated)} / ${f3(c.real)}`).join(' | ')} |`);
  }
  // Mean intensity and contrast (evaluations written before fad evaluate reported them have none).
  const withIntensity = variants.filter((v) => read(join(vdir, v, 'eval.json')).intensity);
  if (withIntensity.length) {
    const iclasses = read(join(vdir, withIntensity[0], 'eval.json')).intensity.perClass.map((c) => c.class);
    const real = read(join(vdir, withIntensity[0], 'eval.json')).intensity.perClass;
    console.log('\nPer class mean intensity and contrast (sd of the pixel values within an image), real and generated:\n');
    console.log(`| variant | measure | ${iclasses.join(' | ')} |`);
    console.log(`|---|---|${iclasses.map(() => '---:').join('|')}|`);
    console.log(`| real | mean | ${real.map((c) => f3(c.realMean)).join(' | ')} |`);
    console.log(`| real | contrast | ${real.map((c) => f3(c.realContrast)).join(' | ')} |`);
    for (const v of withIntensity) {
      const pc = read(join(vdir, v, 'eval.json')).intensity.perClass;
      const at = (cls) => pc.find((c) => c.class === cls);
      console.log(`| ${v} | mean | ${iclasses.map((cls) => f3(at(cls)?.generatedMean)).join(' | ')} |`);
      console.log(`| ${v} | contrast | ${iclasses.map((cls) => f3(at(cls)?.generatedContrast)).join(' | ')} |`);
    }
  }
}

const gdir = join(run, 'guidance');
if (existsSync(gdir)) {
  const rows = readdirSync(gdir).filter((g) => existsSync(join(gdir, g, 'eval.json')));
  const key = (g) => (g === 'unguided' ? [0, 0] : [['classifier', 'entropy', 'margin', 'least-confidence'].indexOf(g.replace(/-s[\d.]+$/, '')) + 1, Number(g.match(/-s([\d.]+)$/)?.[1] ?? 0)]);
  rows.sort((a, b) => key(a)[0] - key(b)[0] || key(a)[1] - key(b)[1]);
  console.log('\n| sampling | scale | generation accuracy | SSIM diversity (real) | Fréchet distance | KID | ms/step (guidance part) |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const g of rows) {
    const e = read(join(gdir, g, 'eval.json'));
    const m = read(join(gdir, g, 'manifest.json'));
    // Step timing: timing.json (fad generate since shards), or the manifest of older sets.
    const t = read(join(gdir, g, 'timing.json'))?.timing ?? m?.timing;
    const kind = g === 'unguided' ? 'unguided (CFG 2 only)' : g.replace(/-s[\d.]+$/, '');
    const scale = g === 'unguided' ? '—' : g.match(/-s([\d.]+)$/)[1];
    console.log(`| ${kind} | ${scale} | ${pct(e.generationAccuracy.overall)} | ${f3(e.diversity.overall.generated)} (${f3(e.diversity.overall.real)}) | ${e.frechetDistance.toFixed(1)} | ${e.kid.mean.toFixed(3)} | ${t ? `${t.msPerStep.toFixed(0)} (${(t.guidanceMsPerStep ?? 0).toFixed(0)})` : '—'} |`);
  }
}
