#!/usr/bin/env node
// Feature alignment (Nair 2024) in a hand-written training loop: tf.variableGrads + an optimizer,
// a tiny 2-level convolutional denoiser written in raw tfjs-core ops, and a tiny tfjs-layers
// "expert" with BatchNorm. Neither is @fad/diffusion-core's: @fad/feature-align only needs the
// denoiser's intermediate features and something with `features(x)`. Needs no data. Usage:
//   node run.mjs [--steps 50] [--seed 0] [--align-to noisy|clean] [--lambda2 1] [--check]
// --check exits non-zero if a loss term is missing or not finite, the expert changed, or tensors leaked.
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { combinedLoss, extractExpertFeatures, FeatureAlignmentLoss, featureExtractorFromLayersModel } from '@fad/feature-align';

const { values: opt } = parseArgs({
  options: {
    steps: { type: 'string', default: '50' },
    seed: { type: 'string', default: '0' },
    'align-to': { type: 'string', default: 'noisy' },
    lambda2: { type: 'string', default: '1' },
    check: { type: 'boolean', default: false },
  },
});
const steps = Number(opt.steps);
const seed = Number(opt.seed);
const lambda2 = Number(opt.lambda2);
const alignTo = opt['align-to'];
if (!Number.isInteger(steps) || steps < 1) fail(`--steps must be a positive integer, got ${JSON.stringify(opt.steps)}`, 2);
if (!Number.isInteger(seed) || seed < 0) fail(`--seed must be a non-negative integer, got ${JSON.stringify(opt.seed)}`, 2);
if (!(lambda2 >= 0)) fail(`--lambda2 must be a number >= 0, got ${JSON.stringify(opt.lambda2)}`, 2);
if (alignTo !== 'noisy' && alignTo !== 'clean') fail(`--align-to must be noisy or clean, got ${JSON.stringify(alignTo)}`, 2);

function fail(message, code = 1) {
  console.error(`custom-loop: ${message}`);
  process.exit(code);
}

tf.env().set('IS_TEST', true); // silences the "install tfjs-node" banner
await tf.setBackend('cpu');

const SIZE = 8;
const BATCH = 8;
const T = 1000;

// --- Forward process: DDPM's linear betas, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.
const alphaBar = new Float32Array(T);
for (let t = 0, p = 1; t < T; t++) alphaBar[t] = p *= 1 - (1e-4 + ((0.02 - 1e-4) * t) / (T - 1));

// --- Synthetic data: 32 8x8 images of four patterns in [-1, 1].
function dataset() {
  const n = 32;
  const d = new Float32Array(n * SIZE * SIZE);
  for (let i = 0; i < n; i++) {
    const f = 0.6 + 0.1 * (i >> 2);
    for (let y = 0; y < SIZE; y++)
      for (let x = 0; x < SIZE; x++) {
        const k = i % 4;
        const v = k === 0 ? Math.sin(f * y) : k === 1 ? Math.sin(f * x) : k === 2 ? Math.sign(Math.sin(f * x) * Math.sin(f * y)) : Math.cos(f * Math.hypot(x - 3.5, y - 3.5));
        d[(i * SIZE + y) * SIZE + x] = 0.9 * v;
      }
  }
  return tf.tensor4d(d, [n, SIZE, SIZE, 1]);
}

// --- The diffusion model: a 2-level conv net predicting the noise. Its down-path output
// (8x8 -> 4x4, 16 channels) is the tap point, as the paper's U-Net bottleneck input.
function convWeight(shape, s) {
  const fanIn = shape[0] * shape[1] * shape[2];
  return tf.variable(tf.randomUniform(shape, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn), 'float32', s));
}
const net = {
  enc: convWeight([3, 3, 2, 8], seed + 1), encB: tf.variable(tf.zeros([8])),
  down: convWeight([3, 3, 8, 16], seed + 2), downB: tf.variable(tf.zeros([16])),
  up: convWeight([3, 3, 24, 8], seed + 3), upB: tf.variable(tf.zeros([8])),
  out: convWeight([3, 3, 8, 1], seed + 4), outB: tf.variable(tf.zeros([1])),
};
function denoise(xt, t) {
  const tChannel = tf.mul(tf.onesLike(xt), tf.reshape(tf.div(tf.tensor1d(t, 'float32'), T), [-1, 1, 1, 1]));
  const h1 = tf.relu(tf.add(tf.conv2d(tf.concat([xt, tChannel], 3), net.enc, 1, 'same'), net.encB));
  const features = tf.relu(tf.add(tf.conv2d(h1, net.down, 2, 'same'), net.downB)); // [B,4,4,16]
  const up = tf.image.resizeNearestNeighbor(features, [SIZE, SIZE]);
  const h3 = tf.relu(tf.add(tf.conv2d(tf.concat([up, h1], 3), net.up, 1, 'same'), net.upB));
  return { eps: tf.add(tf.conv2d(h3, net.out, 1, 'same'), net.outB), features };
}

// --- The expert: a small tfjs-layers conv net (untrained here; a real one would be a trained
// classifier) that takes 16x16 RGB images in [0, 1]. feature-align adapts the 8x8 grayscale
// [-1, 1] inputs (range, bilinear resize, channel repeat) and runs it frozen, BatchNorm in
// inference mode.
const expertModel = tfl.sequential({
  layers: [
    tfl.layers.conv2d({ inputShape: [16, 16, 3], filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed }) }),
    tfl.layers.batchNormalization({ name: 'bn' }),
    tfl.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }),
    tfl.layers.globalAveragePooling2d({ name: 'pool' }),
  ],
});
const expert = featureExtractorFromLayersModel({ model: expertModel, inputSpec: { size: 16, channels: 3, range: [0, 1] } });
const expertSnapshot = () => expertModel.getWeights().map((w) => Array.from(w.dataSync()));
const expertBefore = expertSnapshot();

// --- Feature alignment: projection P (expert D=16 -> diffusion C=16), trained with the model.
const alignment = new FeatureAlignmentLoss({ diffusionDim: 16, expertDim: expert.featureDim, seed });
const optimizer = tf.train.adam(5e-3);
const variables = [...Object.values(net), ...alignment.trainableVariables()];

const data = dataset();
let rng = seed * 7919 + 1;
const nextInt = (n) => {
  rng = (Math.imul(rng, 1103515245) + 12345) >>> 0;
  return rng % n;
};
console.log(`custom-loop: ${steps} steps, batch ${BATCH}, align to ${alignTo === 'noisy' ? 'x_t' : 'x_0'}, lambda2 ${lambda2}`);
const problems = [];
let tensorsAfterFirstStep = 0;
for (let step = 1; step <= steps; step++) {
  const idx = Array.from({ length: BATCH }, () => nextInt(32));
  const t = Array.from({ length: BATCH }, () => nextInt(T));
  const terms = tf.tidy(() => {
    const x0 = tf.gather(data, idx);
    const noise = tf.randomNormal(x0.shape, 0, 1, 'float32', seed * 100003 + step);
    const ab = tf.reshape(tf.tensor1d(t.map((i) => alphaBar[i])), [-1, 1, 1, 1]);
    const xt = tf.add(tf.mul(tf.sqrt(ab), x0), tf.mul(tf.sqrt(tf.sub(1, ab)), noise));
    const kept = {};
    const { value, grads } = tf.variableGrads(() => {
      const { eps, features } = denoise(xt, t);
      const diffusionLoss = tf.losses.meanSquaredError(noise, eps);
      // The expert's features are constants of this step: no gradient reaches the expert.
      const expertFeatures = extractExpertFeatures({ expert, images: alignTo === 'noisy' ? xt : x0 });
      const alignLoss = alignment.forward({ diffusionFeatures: features, expertFeatures });
      kept.diffusion = tf.keep(diffusionLoss);
      kept.align = tf.keep(alignLoss);
      return combinedLoss({ diffusionLoss, alignLoss, lambda1: 1, lambda2 });
    }, variables);
    optimizer.applyGradients(grads);
    return { total: value, ...kept };
  });
  const v = Object.fromEntries(Object.entries(terms).map(([k, x]) => [k, x.dataSync()[0]]));
  tf.dispose(Object.values(terms));
  for (const k of ['diffusion', 'align', 'total']) {
    if (!(k in v)) problems.push(`step ${step}: loss term "${k}" missing`);
    else if (!Number.isFinite(v[k])) problems.push(`step ${step}: loss term "${k}" is ${v[k]}`);
  }
  if (step === 1) tensorsAfterFirstStep = tf.memory().numTensors; // Adam's slots exist from here on
  if (step % 10 === 0 || step === steps || step === 1) {
    console.log(`step ${String(step).padStart(4)}  diffusion ${v.diffusion.toFixed(4)}  align ${v.align.toFixed(4)}  total ${v.total.toFixed(4)}`);
  }
}
const after = expertSnapshot();
if (after.some((w, i) => w.some((x, j) => x !== expertBefore[i][j]))) problems.push('the expert changed (weights or BatchNorm statistics)');
const leaked = tf.memory().numTensors - tensorsAfterFirstStep;
if (leaked !== 0) problems.push(`${leaked} tensors leaked after step 1`);
console.log(`custom-loop: done; ${tf.memory().numTensors} tensors alive`);

if (opt.check) {
  if (problems.length > 0) fail(`check failed:\n  ${problems.join('\n  ')}`);
  console.log('custom-loop: check passed (both loss terms finite at every step, expert unchanged, no tensor leaked)');
}
