#!/usr/bin/env node
// Measures whether a trained fad model sets each image's mean intensity (issue G):
//   node scripts/diagnose-mean.mjs MODEL.safetensors DATA_DIR [--per-class 24] [--samples 8] [--steps 25] [--out FILE.json]
// 1. Predicted x_0 against true per-image means on real tiles noised to several timesteps
//    (`predictedMeanByTimestep` of @fad/diffusion-core), per class.
// 2. The mean intensity per class of samples under sampler settings (DDIM spacing leading/trailing,
//    x_0 clipping on/off, classifier-free guidance 1/2), against the real tiles' class means.
// Needs the packages built (npm run build). Real tiles: the last --per-class files of each class
// folder, 128x128 gray PNG area-resized to the model's size.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { selectBackend } from '@fad/diffusion-core/backend';
import { DDIMScheduler, deserializeUNet, predictedMeanByTimestep, sampleImages } from '@fad/diffusion-core';
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const [modelPath, dataDir] = args;
if (!modelPath || !dataDir) {
  console.error('usage: node scripts/diagnose-mean.mjs MODEL.safetensors DATA_DIR [--per-class N] [--samples N] [--steps N] [--out FILE]');
  process.exit(2);
}
const perClass = Number(opt('per-class', 24));
const samples = Number(opt('samples', 8));
const steps = Number(opt('steps', 25));
const outPath = opt('out', null);

await selectBackend({ log: (m) => console.error(m) });
const { model, metadata } = deserializeUNet(new Uint8Array(readFileSync(modelPath)));
const classNames = JSON.parse(metadata.classes);
const schedulerConfig = metadata.scheduler ? JSON.parse(metadata.scheduler) : {};
const size = model.config.sampleSize;

// Real tiles, in [-1, 1].
const folders = readdirSync(dataDir).filter((f) => !f.includes('.')).sort();
const imgs = [];
const labels = [];
const realMeans = {};
for (const folder of folders) {
  const name = folder.replace(/^\d+[\s._-]*/, '').toLowerCase();
  const k = classNames.indexOf(name);
  if (k < 0) continue;
  const files = readdirSync(join(dataDir, folder)).filter((f) => f.endsWith('.png')).sort().slice(-perClass);
  let sum = 0;
  for (const f of files) {
    const { data, info } = await sharp(join(dataDir, folder, f)).greyscale().raw().toBuffer({ resolveWithObject: true });
    const r = info.width / size;
    const px = new Float32Array(size * size);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        let s = 0;
        for (let dy = 0; dy < r; dy++) for (let dx = 0; dx < r; dx++) s += data[((y * r + dy) * info.width + x * r + dx) * info.channels];
        px[y * size + x] = s / (r * r) / 255;
      }
    sum += px.reduce((a, b) => a + b, 0) / px.length;
    imgs.push(px);
    labels.push(k);
  }
  realMeans[name] = sum / files.length;
}
const n = imgs.length;
const flat = new Float32Array(n * size * size);
imgs.forEach((p, i) => flat.set(p, i * size * size));
const x01 = tf.tensor4d(flat, [n, size, size, 1]);
const x0 = tf.tidy(() => tf.sub(tf.mul(x01, 2), 1));
x01.dispose();

const report = { model: modelPath, scheduler: schedulerConfig, realMeans, byTimestep: {}, sampling: [] };
const probe = [999, 900, 750, 500, 250, 100, 20];
const sched = new DDIMScheduler(schedulerConfig);
console.log(`\n1. predicted x_0 mean vs true (model space [-1,1]); ${n} real tiles; scheduler ${JSON.stringify(schedulerConfig)}`);
console.log('| t | alpha-bar | slope (all) | mean abs err | x0 mse | ' + classNames.map((c) => `${c} true/pred`).join(' | ') + ' |');
const all = predictedMeanByTimestep({ model, scheduler: sched, x0, classLabels: labels, timesteps: probe, seed: 0 });
const perClassRows = {};
for (const [k, c] of classNames.entries()) {
  const idx = labels.flatMap((l, i) => (l === k ? [i] : []));
  if (!idx.length) continue;
  const xs = tf.gather(x0, idx);
  perClassRows[c] = predictedMeanByTimestep({ model, scheduler: sched, x0: xs, classLabels: idx.map(() => k), timesteps: probe, seed: 0 });
  xs.dispose();
}
for (const [i, r] of all.entries()) {
  const cells = classNames.map((c) => (perClassRows[c] ? `${perClassRows[c][i].trueMean.toFixed(2)}/${perClassRows[c][i].predictedMean.toFixed(2)}` : '—'));
  console.log(`| ${r.timestep} | ${r.alphaBar.toExponential(2)} | ${r.slope.toFixed(3)} | ${r.meanAbsError.toFixed(3)} | ${r.x0Mse.toFixed(3)} | ${cells.join(' | ')} |`);
}
report.byTimestep = { all, perClass: perClassRows };

console.log(`\n2. sample mean intensity per class ([0,1]; ${samples} per class, DDIM ${steps} steps); real: ${classNames.map((c) => `${c} ${realMeans[c]?.toFixed(2)}`).join(', ')}`);
console.log('| spacing | clip | cfg | ' + classNames.join(' | ') + ' | mean abs gap |');
const sampleLabels = classNames.flatMap((_, k) => new Array(samples).fill(k));
for (const timestepSpacing of ['leading', 'trailing'])
  for (const clipSample of [true, false])
    for (const guidanceScale of [1, 2]) {
      let s;
      try {
        s = new DDIMScheduler({ ...schedulerConfig, timestepSpacing, clipSample });
      } catch (e) {
        console.log(`| ${timestepSpacing} | ${clipSample} | ${guidanceScale} | ${e.message} |`);
        continue;
      }
      const out = await sampleImages({ model, scheduler: s, classLabels: sampleLabels, numInferenceSteps: steps, guidanceScale, seed: 1 });
      const m = tf.tidy(() => tf.mean(out, [1, 2, 3]).dataSync());
      out.dispose();
      const means = classNames.map((_, k) => {
        let t = 0;
        for (let i = 0; i < samples; i++) t += m[k * samples + i];
        return t / samples;
      });
      const gap = classNames.reduce((acc, c, k) => acc + Math.abs(means[k] - realMeans[c]), 0) / classNames.length;
      report.sampling.push({ timestepSpacing, clipSample, guidanceScale, means: Object.fromEntries(classNames.map((c, k) => [c, means[k]])), meanAbsGap: gap });
      console.log(`| ${timestepSpacing} | ${clipSample} | ${guidanceScale} | ${means.map((v) => v.toFixed(2)).join(' | ')} | ${gap.toFixed(3)} |`);
    }
x0.dispose();
if (outPath) writeFileSync(outPath, JSON.stringify(report, null, 2));
