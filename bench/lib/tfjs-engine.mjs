#!/usr/bin/env node
// One benchmark step on one tfjs backend, in its own process (so its peak RSS is its own).
// Run by bench/run.mjs:  node bench/lib/tfjs-engine.mjs '<json spec>'
// Prints one line "BENCH_RESULT <json>" (and progress on stderr).
//
// Steps (the reference workload, see docs/BENCHMARKS.md):
//   unet-forward   one U-Net forward pass (a sampling step), no gradients
//   unet-train     DiffusionTrainer.step: noise, forward, MSE, backward, Adam
//   aligned-train  unet-train + frozen ResNet50 expert on x_t + projection 2048->128 + (1 - cos)
//                  on the pooled down_out (@fad/feature-align's objective)
//   expert-train   ResNet50 (BatchNorm, training mode) forward, cross-entropy, backward, Adam
//   sgemm          a 2048^3 float32 matmul through the native addon (oneDNN), best of N
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

import { installKernelTimers } from './kernel-timer.mjs';

const spec = JSON.parse(process.argv[2] ?? '{}');
const { step, batch = 16, steps = 5, warmup = 2, warmupSeconds = 0, threads, seed = 0 } = spec;
const notes = [];
const log = (m) => process.stderr.write(`  [tfjs ${spec.backend} ${step}] ${m}\n`);

async function useBackend(want) {
  const order = want === 'auto' ? ['native', 'wasm', 'cpu'] : [want];
  for (const name of order) {
    try {
      if (name === 'native') {
        const native = await import('@fad/tfjs-native');
        if (!native.registerNativeBackend({ threads })) {
          notes.push(`native backend unavailable: ${native.nativeInfo().reason}`);
          continue;
        }
        await tf.setBackend('native');
        const info = native.nativeInfo();
        return { name, detail: `oneDNN ${info.addon.dnnlVersion} ${info.addon.isa}, ${info.addon.threads} threads`, threads: info.addon.threads, native };
      }
      if (name === 'wasm') {
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        if (threads) wasm.setThreadsCount(threads);
        if (!(await tf.setBackend('wasm'))) throw new Error('setBackend(wasm) returned false');
        return { name, detail: `tfjs-backend-wasm ${wasm.version_wasm}`, threads: wasm.getThreadsCount?.() ?? 1 };
      }
      await tf.setBackend('cpu');
      return { name: 'cpu', detail: 'pure-JS kernels', threads: 1 };
    } catch (err) {
      notes.push(`${name} backend failed: ${String(err?.message ?? err).split('\n')[0]}`);
    }
  }
  throw new Error(`no usable tfjs backend among ${order.join(', ')}`);
}

/** Seeded uniform ints / normals on the host (the same draws on every backend). */
function rng(s) {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function images(b, lo, hi, s) {
  const r = rng(s);
  return tf.tensor4d(Float32Array.from({ length: b * 64 * 64 }, () => lo + (hi - lo) * r()), [b, 64, 64, 1]);
}

async function build(stepName, b) {
  const dc = await import('@fad/diffusion-core');
  const labels = Array.from({ length: b }, (_, i) => i % 8);
  if (stepName === 'unet-forward' || stepName === 'unet-train' || stepName === 'aligned-train') {
    const model = new dc.UNet2DConditional(dc.UNET_PRESETS.reference, { seed });
    if (stepName === 'unet-forward') {
      const x = images(b, -1, 1, seed + 1);
      const r = rng(seed + 2);
      const timesteps = Array.from({ length: b }, () => Math.floor(r() * 1000));
      return {
        run: () => {
          const out = model.forward({ sample: x, timesteps, classLabels: labels });
          out.sample.dataSync();
          out.sample.dispose();
        },
        dispose: () => {
          x.dispose();
          model.dispose();
        },
      };
    }
    const objectives = [];
    let expert;
    if (stepName === 'aligned-train') {
      const em = await import('@fad/expert-models');
      const fa = await import('@fad/feature-align');
      expert = em.createExpert({ config: em.presetConfig({ name: 'resnet50-kather' }), seed });
      expert.freeze();
      const loss = new fa.FeatureAlignmentLoss({ diffusionDim: 128, expertDim: 2048, seed });
      // 'raw': x_t goes to the expert as is, as in the reference workload.
      objectives.push(fa.featureAlignmentObjective({ loss, expert, tap: 'down_out', alignTo: 'noisy', inputAdaptation: 'raw' }));
    }
    const trainer = new dc.DiffusionTrainer({
      model,
      scheduler: new dc.DDPMScheduler({}),
      optimizer: { learningRate: 1e-4 },
      objectives,
      microBatchSize: spec.microBatch ?? undefined,
      seed,
    });
    const x0 = images(b, -1, 1, seed + 1);
    return {
      run: () => trainer.step({ x0, classLabels: labels }),
      dispose: () => {
        trainer.dispose();
        x0.dispose();
        model.dispose();
        expert?.dispose();
      },
    };
  }
  if (stepName === 'expert-train') {
    const em = await import('@fad/expert-models');
    const expert = em.createExpert({ config: em.presetConfig({ name: 'resnet50-kather' }), seed });
    const trainer = new em.ExpertTrainer({ expert, learningRate: 1e-4 });
    const x = images(b, 0, 1, seed + 1);
    return {
      run: () => trainer.trainStep({ images: x, labels }),
      dispose: () => {
        trainer.dispose?.();
        x.dispose();
        expert.dispose();
      },
    };
  }
  throw new Error(`unknown step ${stepName}`);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const backend = await useBackend(spec.backend ?? 'auto');
  const result = { engine: 'tfjs', backend: backend.name, backendDetail: backend.detail, threads: backend.threads, step, batch, notes };
  if (spec.precision === 'bf16') {
    // Mixed precision of the native backend (bf16 convolutions and matmuls, fp32 accumulation).
    if (!backend.native) throw new Error(`precision bf16 needs the native backend, got ${backend.name}`);
    backend.native.setNativePrecision('bf16');
    result.precision = 'bf16';
    result.backendDetail += ', bf16';
  }
  if (step === 'sgemm') {
    if (!backend.native) throw new Error('sgemm needs the native addon');
    const { addon } = backend.native.loadNativeAddon();
    const n = 2048;
    const a = new Float32Array(n * n).fill(0.5);
    const bm = new Float32Array(n * n).fill(0.25);
    const c = new Float32Array(n * n);
    const p = Int32Array.of(1, 1, n, n, n, 0, 0);
    const times = [];
    for (let i = 0; i < 2 + steps; i++) {
      const t0 = performance.now();
      addon.matmul(a, bm, null, c, p, 0, 0);
      if (i >= 2) times.push((performance.now() - t0) / 1000);
    }
    result.times = times;
    result.gflops = (2 * n ** 3) / Math.min(...times) / 1e9;
    result.impl = 'oneDNN matmul via @fad/tfjs-native';
  } else {
    const t0 = performance.now();
    const work = await build(step, batch);
    result.setupSeconds = (performance.now() - t0) / 1000;
    // At least `warmup` steps and at least `warmupSeconds` of them (see run.mjs).
    const w0 = performance.now();
    for (let i = 0; i < warmup || performance.now() - w0 < warmupSeconds * 1000; i++) {
      const tw = performance.now();
      work.run();
      log(`warm-up ${i + 1}: ${((performance.now() - tw) / 1000).toFixed(2)} s`);
    }
    const timers = spec.profile ? installKernelTimers(tf.getBackend()) : null;
    timers?.reset();
    const times = [];
    const cpuTimes = [];
    for (let i = 0; i < steps; i++) {
      const c0 = process.cpuUsage();
      const ts = performance.now();
      work.run();
      times.push((performance.now() - ts) / 1000);
      const c = process.cpuUsage(c0);
      cpuTimes.push((c.user + c.system) / 1e6);
      log(`step ${i + 1}/${steps}: ${times[i].toFixed(2)} s (CPU ${cpuTimes[i].toFixed(2)} s)`);
    }
    result.cpuTimes = cpuTimes;
    result.cpuSecondsPerStep = median(cpuTimes);
    result.bestSecondsPerStep = Math.min(...times);
    if (timers) {
      const total = times.reduce((a, b) => a + b, 0) * 1000;
      result.profile = timers.table(total, steps);
      result.profile.stepMs = total / steps;
    }
    result.times = times;
    result.secondsPerStep = median(times);
    result.imgPerSec = batch / result.secondsPerStep;
    result.tensorsAfter = tf.memory().numTensors;
    work.dispose();
  }
  result.maxRssMB = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`BENCH_RESULT ${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  process.stdout.write(`BENCH_RESULT ${JSON.stringify({ engine: 'tfjs', step, error: String(err?.stack ?? err), notes })}\n`);
  process.exitCode = 1;
});
