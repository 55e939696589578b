#!/usr/bin/env node
// Micro-benchmark of the native kernels: GFLOP/s of Conv2D forward, backprop-input and
// backprop-filter on the U-Net's shapes (batch 16, NHWC, HWIO), and of a 1024^3 matmul.
//
//   npm run build -w @fad/tfjs-native && npm run build:native -w @fad/tfjs-native
//   node packages/tfjs-native/bench/kernels.mjs [--reps 10] [--cpu] [--threads 2]
//
// Columns:
//   native     the kernel through tfjs on backend 'native' (what an application gets:
//              includes tfjs dispatch and allocating the output)
//   call 2t/1t one raw addon call into preallocated arrays, with 2 and 1 OpenMP threads
//              (shows that the second thread is used)
//   hwio       raw call with the filter forced to plain HWIO instead of oneDNN's own layout
//   cpu        the pure-JS cpu backend (one call; only with --cpu: its backprop-filter takes
//              ~90 s per call on the large shapes, ~7 minutes in all)
// Times are the best (minimum) of --reps calls after warm-up: this machine's cores are
// shared with other processes, and the minimum is the estimate least disturbed by them
// (the load average is printed so that contended runs can be recognised).
import { loadavg } from 'node:os';

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

import { loadNativeAddon, nativeInfo, registerNativeBackend } from '../dist/index.js';

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const REPS = opt('--reps', 10);
const THREADS = opt('--threads', undefined);
const WITH_CPU = flag('--cpu');

const loaded = loadNativeAddon();
if (!loaded.ok) {
  console.error(`tfjs-native bench: ${loaded.reason}`);
  process.exit(1);
}
const addon = loaded.addon;
registerNativeBackend(THREADS ? { threads: THREADS } : {});
const maxThreads = addon.getThreads();
const info = nativeInfo();
console.log(
  `oneDNN ${info.addon.dnnlVersion} (${info.addon.dnnlCpuRuntime}), isa ${info.addon.isa}, ` +
    `threads ${info.addon.threads}/${info.addon.cores} cores, tfjs-core ${info.tfjsCore}, node ${process.version}`,
);

/** Best ms of fn() over `reps` runs after `warm` warm-up runs. */
function time(fn, reps = REPS, warm = 2) {
  for (let i = 0; i < warm; i++) fn();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return best;
}

/** Process CPU time / wall time while running fn repeatedly: ~2 when two threads work. */
function cpuPerWall(fn, reps = REPS) {
  fn();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) fn();
  const wallUs = Number(process.hrtime.bigint() - t0) / 1e3;
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / wallUs;
}

const rand = (n) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
  return a;
};
const gflops = (flop, ms) => flop / ms / 1e6;
const fmt = (flop, ms) => {
  if (ms === undefined) return '-';
  const g = gflops(flop, ms);
  return `${g >= 10 ? g.toFixed(0) : g.toPrecision(2)} (${ms >= 100 ? ms.toFixed(0) : ms.toFixed(2)} ms)`;
};
console.log(`load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (other processes make the numbers worse)`);

// name, H, W, Cin, Cout, k, stride — all batch 16, 'same' padding.
const CONVS = [
  ['64x64x32->32 3x3', 64, 64, 32, 32, 3, 1],
  ['32x32x64->64 3x3', 32, 32, 64, 64, 3, 1],
  ['16x16x128->128 3x3', 16, 16, 128, 128, 3, 1],
  ['32x32x64->128 1x1', 32, 32, 64, 128, 1, 1],
  ['64x64x32->64 3x3 s2', 64, 64, 32, 64, 3, 2],
];
const N = 16;

const rows = [];
for (const [name, H, W, CI, CO, K, S] of CONVS) {
  const OH = Math.ceil(H / S);
  const OW = Math.ceil(W / S);
  const flop = 2 * N * OH * OW * CO * K * K * CI;
  const padTotalH = Math.max(0, (OH - 1) * S + K - H);
  const padTotalW = Math.max(0, (OW - 1) * S + K - W);
  const params = Int32Array.of(N, H, W, CI, K, K, CO, OH, OW, S, S, 1, 1, Math.floor(padTotalH / 2), Math.floor(padTotalW / 2));
  const xa = rand(N * H * W * CI);
  const wa = rand(K * K * CI * CO);
  const dya = rand(N * OH * OW * CO);
  const ya = new Float32Array(N * OH * OW * CO);
  const dxa = new Float32Array(N * H * W * CI);
  const dwa = new Float32Array(K * K * CI * CO);

  const raw = {
    fwd: () => addon.conv2d(xa, wa, null, ya, params, 0, 0),
    bwdInput: () => addon.conv2dBackpropInput(dya, wa, dxa, params),
    bwdFilter: () => addon.conv2dBackpropFilter(xa, dya, dwa, params),
  };
  const result = {};
  for (const threads of new Set([maxThreads, 1])) {
    addon.setThreads(threads);
    for (const k of Object.keys(raw)) (result[k] ??= {})[`t${threads}`] = time(raw[k]);
  }
  addon.setThreads(maxThreads);
  addon.setWeightsMode(1);
  for (const k of Object.keys(raw)) result[k].hwio = time(raw[k], Math.max(3, REPS >> 1));
  addon.setWeightsMode(0);

  // Through tfjs.
  const x = tf.tensor4d(xa, [N, H, W, CI]);
  const w = tf.tensor4d(wa, [K, K, CI, CO]);
  const dy = tf.tensor4d(dya, [N, OH, OW, CO]);
  const attrs = { strides: S, pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined };
  const viaTf = {
    fwd: () => tf.conv2d(x, w, S, 'same'),
    bwdInput: () => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: [N, H, W, CI] }),
    bwdFilter: () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: [K, K, CI, CO] }),
  };
  for (const backend of WITH_CPU ? ['native', 'cpu'] : ['native']) {
    await tf.setBackend(backend);
    for (const k of Object.keys(viaTf)) {
      const run = () => tf.dispose(viaTf[k]());
      result[k][backend] = backend === 'cpu' ? time(run, 1, 0) : time(run);
    }
  }
  tf.dispose([x, w, dy]);
  if (name === CONVS[0][0]) result.fwd.util = cpuPerWall(raw.fwd);
  for (const k of Object.keys(raw)) rows.push({ name, kernel: k, flop, ...result[k] });
  process.stderr.write(`  done ${name}\n`);
}

console.log(`\nConv2D, batch ${N}, NHWC, 'same' padding: GFLOP/s (best ms)`);
const hdr = ['shape', 'kernel', 'native (tfjs)', `call ${maxThreads}t`, 'call 1t', `hwio ${maxThreads}t`, 'cpu (tfjs)'];
console.log(`| ${hdr.join(' | ')} |\n|${hdr.map(() => '---').join('|')}|`);
for (const r of rows) {
  const t2 = r[`t${maxThreads}`];
  console.log(
    `| ${r.name} | ${r.kernel} | ${fmt(r.flop, r.native)} | ${fmt(r.flop, t2)} | ${fmt(r.flop, r.t1)} | ${fmt(r.flop, r.hwio)} | ${fmt(r.flop, r.cpu)} |`,
  );
}

console.log(
  `\nCPU time / wall time of the first forward conv with ${maxThreads} threads: ${rows[0].util.toFixed(2)} ` +
    `(${maxThreads} = all threads busy)`,
);

// MatMul 1024 x 1024 x 1024.
{
  const M = 1024;
  const flop = 2 * M * M * M;
  const a = rand(M * M);
  const b = rand(M * M);
  const c = new Float32Array(M * M);
  const p = Int32Array.of(1, 1, M, M, M, 0, 0);
  const res = {};
  for (const threads of new Set([maxThreads, 1])) {
    addon.setThreads(threads);
    res[`t${threads}`] = time(() => addon.matmul(a, b, null, c, p, 0, 0));
  }
  addon.setThreads(maxThreads);
  const at = tf.tensor2d(a, [M, M]);
  const bt = tf.tensor2d(b, [M, M]);
  await tf.setBackend('native');
  res.native = time(() => tf.dispose(tf.matMul(at, bt)));
  res.nativeTT = time(() => tf.dispose(tf.matMul(at, bt, true, true)));
  if (WITH_CPU) {
    await tf.setBackend('cpu');
    res.cpu = time(() => tf.dispose(tf.matMul(at, bt)), 1, 0);
  }
  tf.dispose([at, bt]);
  console.log(`\nMatMul ${M}x${M}x${M}: GFLOP/s (best ms)`);
  console.log(`| native (tfjs) | native tA,tB | call ${maxThreads}t | call 1t | cpu (tfjs) |\n|---|---|---|---|---|`);
  console.log(
    `| ${fmt(flop, res.native)} | ${fmt(flop, res.nativeTT)} | ${fmt(flop, res[`t${maxThreads}`])} | ${fmt(flop, res.t1)} | ${fmt(flop, res.cpu)} |`,
  );
}

console.log(`\nload average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log('oneDNN implementations chosen:');
const seen = new Set();
for (const e of addon.cacheInfo().conv.entries.concat(addon.cacheInfo().matmul.entries)) {
  const line = `  ${e.key.padEnd(60)} ${e.impl}${e.weightsReorder ? ' (+weights reorder)' : ''}`;
  if (!seen.has(line)) console.log(line);
  seen.add(line);
}
