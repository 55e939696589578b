#!/usr/bin/env node
// Quickstart: train a small class-conditional diffusion U-Net on four procedural texture classes,
// then sample a grid of images per class. Needs no data. Usage:
//   node run.mjs [--steps 300] [--batch 16] [--sample-steps 25] [--seed 0] [--out runs/quickstart] [--backend auto]
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '@fad/diffusion-core/backend';
import { DDIMScheduler, DDPMScheduler, DiffusionTrainer, Generator, UNET_PRESETS, UNet2DConditional, sampleImages } from '@fad/diffusion-core';
import { saveUNet } from '@fad/diffusion-core/node';
import sharp from 'sharp';

const { values: opt } = parseArgs({
  options: {
    steps: { type: 'string', default: '300' },
    batch: { type: 'string', default: '16' },
    'sample-steps': { type: 'string', default: '25' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string', default: 'runs/quickstart' },
    backend: { type: 'string', default: 'auto' },
    check: { type: 'boolean', default: false },
  },
});
const steps = Number(opt.steps);
const batch = Number(opt.batch);
const sampleSteps = Number(opt['sample-steps']);
const seed = Number(opt.seed);
for (const [k, v] of Object.entries({ steps, batch, 'sample-steps': sampleSteps, seed })) {
  if (!Number.isInteger(v) || v < (k === 'seed' ? 0 : 1)) {
    console.error(`quickstart: --${k} must be a ${k === 'seed' ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(opt[k])}`);
    process.exit(2);
  }
}
const out = resolve(opt.out);
mkdirSync(out, { recursive: true });

const CLASSES = ['stripes-h', 'stripes-v', 'checker', 'rings'];
const SIZE = 16;

/** One procedural texture in [-1, 1] with random frequency and phase. */
function texture(cls, g) {
  const f = 0.5 + g.nextFloat() * 0.6;
  const p = g.nextFloat() * 2 * Math.PI;
  const cx = SIZE / 2 + (g.nextFloat() - 0.5) * 4;
  const cy = SIZE / 2 + (g.nextFloat() - 0.5) * 4;
  const img = new Float32Array(SIZE * SIZE);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      let v;
      if (cls === 0) v = Math.sin(f * y + p);
      else if (cls === 1) v = Math.sin(f * x + p);
      else if (cls === 2) v = Math.sign(Math.sin(f * x + p) * Math.sin(f * y + p));
      else v = Math.sin(f * Math.hypot(x - cx, y - cy) + p);
      img[y * SIZE + x] = 0.85 * v + 0.1 * g.nextNormal();
    }
  }
  return img;
}

function batchOf(g) {
  const labels = Array.from({ length: batch }, (_, i) => i % CLASSES.length);
  const data = new Float32Array(batch * SIZE * SIZE);
  labels.forEach((c, i) => data.set(texture(c, g), i * SIZE * SIZE));
  return { x0: tf.tensor4d(data, [batch, SIZE, SIZE, 1]), labels };
}

const backend = await selectBackend({ preferred: opt.backend });
const model = new UNet2DConditional({ ...UNET_PRESETS.tiny, sampleSize: SIZE, numClasses: CLASSES.length }, { seed });
const scheduler = new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2' });
const trainer = new DiffusionTrainer({
  model, scheduler, seed, condDropProb: 0.1, gradClipNorm: 1, emaDecay: 0.99,
  optimizer: { learningRate: 2e-3 },
  lrSchedule: { type: 'cosine', totalSteps: Math.max(steps, 2), warmupSteps: Math.min(20, steps - 1), minLearningRate: 1e-4 },
});
console.log(`quickstart: ${model.numParameters().toLocaleString()} parameters, ${steps} steps of batch ${batch} on "${backend.name}"`);
const data = new Generator(seed + 1);
const losses = [];
const t0 = Date.now();
for (let s = 0; s < steps; s++) {
  const { x0, labels } = batchOf(data);
  const r = trainer.step({ x0, classLabels: labels });
  x0.dispose();
  losses.push(r.loss);
  if (!Number.isFinite(r.loss)) throw new Error(`quickstart: non-finite loss at step ${r.step}`);
  if (r.step % 25 === 0 || r.step === steps) {
    const recent = losses.slice(-25);
    const avg = recent.reduce((a, b) => a + b, 0) / recent.length;
    const eta = ((Date.now() - t0) / r.step) * (steps - r.step) / 1000;
    console.log(`step ${r.step}/${steps}  loss ${avg.toFixed(4)}  lr ${r.learningRate.toExponential(2)}  eta ${eta.toFixed(0)}s`);
  }
}
trainer.copyEmaTo();
await saveUNet(model, `${out}/model.safetensors`, { example: 'quickstart', classes: JSON.stringify(CLASSES) });

// Sample 8 images per class with DDIM and guidance, and write one grid: a row per class.
const perClass = 8;
const labels = CLASSES.flatMap((_, c) => new Array(perClass).fill(c));
const imgs = await sampleImages({
  model, scheduler: new DDIMScheduler({ betaSchedule: 'squaredcos_cap_v2' }), classLabels: labels,
  numInferenceSteps: sampleSteps, guidanceScale: 2, seed,
  onProgress: (p) => p.step % 10 === 0 && console.log(`sampling ${p.step}/${p.totalSteps}`),
});
const px = imgs.dataSync();
imgs.dispose();
const scale = 4;
const W = perClass * SIZE * scale;
const H = CLASSES.length * SIZE * scale;
const grid = Buffer.alloc(W * H);
for (let i = 0; i < labels.length; i++) {
  const gx = (i % perClass) * SIZE * scale;
  const gy = Math.floor(i / perClass) * SIZE * scale;
  for (let y = 0; y < SIZE * scale; y++)
    for (let x = 0; x < SIZE * scale; x++)
      grid[(gy + y) * W + gx + x] = Math.round(255 * px[i * SIZE * SIZE + Math.floor(y / scale) * SIZE + Math.floor(x / scale)]);
}
await sharp(grid, { raw: { width: W, height: H, channels: 1 } }).png().toFile(`${out}/samples.png`);
writeFileSync(`${out}/losses.json`, JSON.stringify({ backend: backend.name, steps, batch, losses }));
console.log(`quickstart: done in ${((Date.now() - t0) / 1000).toFixed(0)}s; rows are ${CLASSES.join(', ')}`);
console.log(`quickstart: wrote ${out}/samples.png, ${out}/model.safetensors, ${out}/losses.json`);
if (opt.check) {
  if (losses.some((l) => !Number.isFinite(l))) process.exit(1);
  if (tf.memory().numTensors > model.namedParameters().length * 4 + 10) {
    console.error(`quickstart: ${tf.memory().numTensors} tensors alive at the end: a leak`);
    process.exit(1);
  }
}
trainer.dispose();
model.dispose();
