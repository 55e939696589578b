#!/usr/bin/env node
// `npm run bench`: the reference workload on our packages (best tfjs backend: native > wasm >
// cpu) and on PyTorch in the same run, one process per (engine, step) so that peak RSS is per
// engine and step. Prints a table of ratios; --update-docs writes it into docs/BENCHMARKS.md.
//
//   npm run bench                                   # all steps, batch 16, PyTorch peer
//   npm run bench -- --only unet-forward --steps 3  # quick (< 2 min)
//   npm run bench -- --no-torch --profile           # per-kernel profile of the tfjs steps
//
// Flags:
//   --only a,b        steps among unet-forward, unet-train, aligned-train, expert-train, sgemm
//   --steps N         timed steps per benchmark (default 5; the median is reported)
//   --warmup N        untimed steps first (default 2), and at least
//   --warmup-seconds S of them (default 4). V8 keeps compiling the step's JS on background
//                     threads for the first ~1.5 s of steps, which on 2 cores slows our
//                     OpenMP kernels by ~20%; a training run is past that within seconds.
//   --rounds N        alternate the engines N times per step (default 2), pooling their steps
//   --batch N         batch size (default 16)
//   --threads N       threads for both engines (default: all cores)
//   --backend B       auto | native | wasm | cpu (default auto = the first that works)
//   --micro-batch N   DiffusionTrainer microBatchSize for the U-Net train steps
//   --no-bf16         skip the bf16 rows (U-Net forward and train step: the native backend's
//                     setNativePrecision('bf16') and PyTorch's torch.autocast('cpu', bfloat16))
//   --no-torch        skip the PyTorch column
//   --python PATH     python with torch (default: $FAD_BENCH_PYTHON, /usr/bin/python3, python3)
//   --profile         per-kernel time table of every tfjs step (wraps every kernel in a timer)
//   --update-docs     rewrite the results block of docs/BENCHMARKS.md
//   --no-build        do not (re)build the packages' dist first
//   --json PATH       where to write all results (default bench/results/latest.json)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { resnet50Counts, unetCounts } from './lib/flops.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ALL_STEPS = ['unet-forward', 'unet-train', 'aligned-train', 'expert-train'];
const BF16_STEPS = ['unet-forward', 'unet-train'];
const STEP_LABEL = {
  'unet-forward': 'U-Net forward (one sampling step)',
  'unet-train': 'U-Net train step (fwd + bwd + Adam)',
  'aligned-train': 'feature-aligned train step',
  'expert-train': 'expert train step (ResNet50, BN)',
};
const REFERENCE = { 'unet-forward': 16.4, 'unet-train': 5.8, 'aligned-train': 5.3, 'expert-train': 56 };

const { values: opt } = parseArgs({
  options: {
    only: { type: 'string' },
    steps: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    'warmup-seconds': { type: 'string', default: '4' },
    rounds: { type: 'string', default: '2' },
    batch: { type: 'string', default: '16' },
    threads: { type: 'string' },
    backend: { type: 'string', default: 'auto' },
    'micro-batch': { type: 'string' },
    'no-torch': { type: 'boolean', default: false },
    'no-bf16': { type: 'boolean', default: false },
    python: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'update-docs': { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
  process.exit(0);
}
const int = (name, v, min) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`bench: --${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
};
const steps = int('steps', opt.steps, 1);
const warmup = int('warmup', opt.warmup, 0);
const rounds = int('rounds', opt.rounds, 1);
const warmupSeconds = int('warmup-seconds', opt['warmup-seconds'], 0);
const batch = int('batch', opt.batch, 1);
const threads = opt.threads ? int('threads', opt.threads, 1) : availableParallelism();
const microBatch = opt['micro-batch'] ? int('micro-batch', opt['micro-batch'], 1) : undefined;
const only = opt.only ? opt.only.split(',').map((s) => s.trim()).filter(Boolean) : [...ALL_STEPS, 'sgemm'];
for (const s of only) {
  if (![...ALL_STEPS, 'sgemm'].includes(s)) {
    console.error(`bench: unknown step "${s}"; steps: ${[...ALL_STEPS, 'sgemm'].join(', ')}`);
    process.exit(2);
  }
}
if (!['auto', 'native', 'wasm', 'cpu'].includes(opt.backend)) {
  console.error(`bench: --backend must be auto, native, wasm or cpu, got ${opt.backend}`);
  process.exit(2);
}

const say = (m) => console.log(m);
const machine = machineInfo();
say(`bench: ${machine.cpu}, ${machine.cores} cores, ${machine.memGB} GB; node ${process.version}; commit ${machine.commit}`);
say(`bench: batch ${batch}, ${threads} threads, ${rounds} round(s) of ${steps} timed steps (after >= ${warmup} warm-up steps and >= ${warmupSeconds} s) per engine, load average ${machine.loadStart}`);

if (!opt['no-build']) {
  say('bench: building the packages (nx, cached when unchanged)...');
  const r = spawnSync('npx', ['nx', 'run-many', '-t', 'build', '-p', '@fad/diffusion-core', '@fad/tfjs-native', '@fad/expert-models', '@fad/feature-align', '--outputStyle=static'], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' },
  });
  if (r.status !== 0) {
    console.error(`bench: build failed:\n${r.stdout}\n${r.stderr}`);
    process.exit(1);
  }
}

const python = opt['no-torch'] ? null : findTorchPython();
const notes = [];
if (opt['no-torch']) notes.push('PyTorch column skipped (--no-torch).');
else if (!python) notes.push('PyTorch column skipped: no python3 with torch found (Debian: apt-get install python3-torch; or --python PATH).');

// Each round runs ours, then PyTorch, each in a fresh process; the rounds alternate so that a
// change in the machine's background load (shared cores) during the run hits both engines
// alike. Each engine's timed steps of all rounds are pooled: its median and peak RSS are
// over all of them.
const results = [];
for (const step of only) {
  const spec = { step, batch, steps, warmup, warmupSeconds, threads, backend: opt.backend, microBatch, profile: opt.profile, seed: 0 };
  const ours = [];
  const peers = [];
  const n = step === 'sgemm' ? 1 : rounds;
  for (let round = 1; round <= n; round++) {
    const tag = n > 1 ? ` (round ${round}/${n})` : '';
    say(`\nbench: ${step} on tfjs (${opt.backend})${tag}...`);
    ours.push(await runChild(process.execPath, [join(root, 'bench/lib/tfjs-engine.mjs'), JSON.stringify(spec)]));
    report(ours[ours.length - 1]);
    if (python) {
      say(`bench: ${step} on PyTorch${tag}...`);
      peers.push(await runChild(python, [join(root, 'bench/torch_peer.py'), '--step', step, '--batch', String(batch), '--steps', String(steps), '--warmup', String(warmup), '--warmup-seconds', String(warmupSeconds), '--threads', String(threads)], { OMP_NUM_THREADS: String(threads) }));
      report(peers[peers.length - 1]);
    }
  }
  results.push(pool(ours));
  if (python) results.push(pool(peers));
  if (n > 1) for (const r of results.slice(python ? -2 : -1)) if (!r.error) say(`  ${r.engine} over ${n} rounds: ${r.imgPerSec.toFixed(2)} img/s (median ${r.secondsPerStep.toFixed(3)} s/step of ${r.times.length})`);
  if (opt['no-bf16'] || !BF16_STEPS.includes(step)) continue;
  // bf16 mixed precision on both engines, alternating as above; results are labelled
  // engine 'tfjs-bf16' / 'torch-bf16'.
  const oursB = [];
  const peersB = [];
  for (let round = 1; round <= n; round++) {
    const tag = n > 1 ? ` (round ${round}/${n})` : '';
    say(`\nbench: ${step} bf16 on tfjs (${opt.backend})${tag}...`);
    oursB.push({ ...(await runChild(process.execPath, [join(root, 'bench/lib/tfjs-engine.mjs'), JSON.stringify({ ...spec, precision: 'bf16' })])), engine: 'tfjs-bf16' });
    report(oursB[oursB.length - 1]);
    if (python) {
      say(`bench: ${step} bf16 (autocast) on PyTorch${tag}...`);
      peersB.push({ ...(await runChild(python, [join(root, 'bench/torch_peer.py'), '--step', step, '--batch', String(batch), '--steps', String(steps), '--warmup', String(warmup), '--warmup-seconds', String(warmupSeconds), '--threads', String(threads), '--precision', 'bf16'], { OMP_NUM_THREADS: String(threads) })), engine: 'torch-bf16' });
      report(peersB[peersB.length - 1]);
    }
  }
  results.push(pool(oursB));
  if (python) results.push(pool(peersB));
  if (n > 1) for (const r of results.slice(python ? -2 : -1)) if (!r.error) say(`  ${r.engine} over ${n} rounds: ${r.imgPerSec.toFixed(2)} img/s (median ${r.secondsPerStep.toFixed(3)} s/step of ${r.times.length})`);
}
machine.loadEnd = loadavg().map((x) => x.toFixed(2)).join(' ');

const counts = { unet: unetCounts((await import('@fad/diffusion-core')).UNET_PRESETS.reference), expert: resnet50Counts() };
const table = makeTable(results, counts);
say(`\n${table}`);
const jsonPath = resolve(opt.json ?? join(root, 'bench/results/latest.json'));
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, JSON.stringify({ machine, options: { batch, threads, steps, warmup, warmupSeconds, rounds, backend: opt.backend, microBatch }, counts, notes, results }, null, 2));
say(`bench: results in ${jsonPath}`);
if (opt['update-docs']) {
  updateDocs(table);
  say('bench: docs/BENCHMARKS.md updated');
}

// ---------------------------------------------------------------------------------------

function machineInfo() {
  let cpu = cpus()[0]?.model ?? 'unknown CPU';
  let flags = '';
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    cpu = /model name\s*:\s*(.*)/.exec(info)?.[1] ?? cpu;
    flags = /flags\s*:\s*(.*)/.exec(info)?.[1] ?? '';
  } catch {
    // not Linux
  }
  const isa = flags.includes('avx512f') ? 'AVX-512' : flags.includes('avx2') ? 'AVX2' : 'SSE';
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'bench', 'packages/tfjs-native', 'packages/diffusion-core/src'], { cwd: root, encoding: 'utf8' }).trim();
    if (dirty) commit += '+local changes';
  } catch {
    // not a git checkout
  }
  return {
    cpu: `${cpu} (${isa})`,
    cores: availableParallelism(),
    memGB: (totalmem() / 2 ** 30).toFixed(0),
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    commit,
    node: process.version,
    loadStart: loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

function findTorchPython() {
  const cands = [opt.python, process.env.FAD_BENCH_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean);
  for (const py of cands) {
    const r = spawnSync(py, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) {
      say(`bench: PyTorch ${r.stdout.trim()} via ${py}`);
      return py;
    }
  }
  return null;
}

function runChild(cmd, args, env = {}) {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      process.stderr.write(d);
    });
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
      if (!line) {
        resolvePromise({ engine: cmd.includes('python') ? 'torch' : 'tfjs', error: `exit ${code}: ${err.split('\n').slice(-5).join(' ')}` });
        return;
      }
      resolvePromise(JSON.parse(line.slice('BENCH_RESULT '.length)));
    });
  });
}

/** One result from several rounds of the same engine and step: pooled step times, max RSS. */
function pool(rs) {
  const ok = rs.filter((r) => !r.error);
  if (ok.length === 0) return rs[0];
  if (ok.length === 1 || ok[0].step === 'sgemm') return ok[0];
  const times = ok.flatMap((r) => r.times);
  const sorted = [...times].sort((a, b) => a - b);
  const m = sorted.length;
  const secondsPerStep = m % 2 ? sorted[(m - 1) / 2] : (sorted[m / 2 - 1] + sorted[m / 2]) / 2;
  return {
    ...ok[0],
    rounds: ok.length,
    times,
    secondsPerStep,
    bestSecondsPerStep: sorted[0],
    imgPerSec: ok[0].batch / secondsPerStep,
    roundImgPerSec: ok.map((r) => r.imgPerSec),
    maxRssMB: Math.max(...ok.map((r) => r.maxRssMB)),
    notes: [...new Set(ok.flatMap((r) => r.notes ?? []))],
  };
}

function report(r) {
  if (r.error) {
    say(`  ${r.engine} ${r.step}: ERROR ${r.error.split('\n')[0]}`);
    return;
  }
  for (const n of r.notes ?? []) say(`  note: ${n}`);
  if (r.step === 'sgemm') {
    say(`  ${r.engine}: sgemm 2048^3 ${r.gflops.toFixed(0)} GFLOP/s (${r.impl})${r.numpyGflops ? `, numpy ${r.numpyGflops.toFixed(0)}` : ''}`);
    return;
  }
  say(`  ${r.engine} ${r.backend}: ${r.imgPerSec.toFixed(2)} img/s (median ${r.secondsPerStep.toFixed(3)} s/step), peak RSS ${r.maxRssMB.toFixed(0)} MB`);
  if (r.profile) {
    say(`  per-kernel profile (ms per step; kernels ${r.profile.kernelMs.toFixed(0)} of ${r.profile.stepMs.toFixed(0)} ms):`);
    for (const row of r.profile.rows.slice(0, 20)) {
      say(`    ${row.kernel.padEnd(24)} ${row.ms.toFixed(1).padStart(8)} ms ${row.pct.toFixed(1).padStart(5)}% ${String(Math.round(row.calls)).padStart(6)} calls`);
    }
  }
}

function makeTable(rs, cnt) {
  const get = (engine, step) => rs.find((r) => r.engine === engine && r.step === step && !r.error);
  const fmt = (x, d = 2) => (x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d));
  const ours0 = rs.find((r) => r.engine === 'tfjs' && !r.error);
  const peer0 = rs.find((r) => r.engine === 'torch' && !r.error);
  const sg = [get('tfjs', 'sgemm'), get('torch', 'sgemm')].filter(Boolean);
  const peak = sg.length ? Math.max(...sg.flatMap((r) => [r.gflops, r.numpyGflops ?? 0])) : undefined;
  const lines = [];
  lines.push(`Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memGB} GB RAM. Date: ${machine.date}. Commit: ${machine.commit}. Node ${machine.node}.`);
  lines.push(`Ours: tfjs ${ours0?.backend ?? '—'} (${ours0?.backendDetail ?? '—'}). Peer: ${peer0 ? `${peer0.backend} (${peer0.backendDetail})` : '—'}. Batch ${batch}, ${threads} threads, median of ${rounds > 1 ? `${rounds} alternating rounds x ` : ''}${steps} steps, each after >= ${warmup} warm-up steps and >= ${warmupSeconds} s; load average ${machine.loadStart} (start) / ${machine.loadEnd} (end).`);
  lines.push('');
  lines.push('| step | ours img/s | PyTorch img/s | ratio | ours peak RSS | PyTorch peak RSS | RSS ratio | reference PyTorch img/s |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  const rows = ALL_STEPS.flatMap((step) => [[step, '', ''], ...(BF16_STEPS.includes(step) ? [[step, '-bf16', ', bf16']] : [])]);
  for (const [step, suffix, labelSuffix] of rows) {
    const a = get(`tfjs${suffix}`, step);
    const b = get(`torch${suffix}`, step);
    if (!a && !b) continue;
    const ratio = a && b ? a.imgPerSec / b.imgPerSec : undefined;
    const rss = a && b ? a.maxRssMB / b.maxRssMB : undefined;
    lines.push(
      `| ${STEP_LABEL[step]}${labelSuffix} | ${fmt(a?.imgPerSec)} | ${fmt(b?.imgPerSec)} | ${ratio ? `**${fmt(ratio)}x**` : '—'} | ${a ? `${fmt(a.maxRssMB / 1024)} GB` : '—'} | ${b ? `${fmt(b.maxRssMB / 1024)} GB` : '—'} | ${fmt(rss)} | ${suffix ? "—" : REFERENCE[step]} |`,
    );
  }
  const f = get('tfjs', 'unet-forward');
  const fp = get('torch', 'unet-forward');
  lines.push('');
  const gf = (r) => (r ? (r.imgPerSec * cnt.unet.flops) / 1e9 : undefined);
  lines.push(`U-Net forward: ${fmt(cnt.unet.flops / 1e9)} GFLOP/image (analytic count, bench/lib/flops.mjs; ${cnt.unet.params.toLocaleString('en-US')} parameters) -> ours ${fmt(gf(f), 0)} GFLOP/s, PyTorch ${fmt(gf(fp), 0)} GFLOP/s.`);
  if (peak) {
    lines.push(`sgemm peak (2048^3, best of ${steps}): ${sg.map((r) => `${r.impl} ${fmt(r.gflops, 0)}${r.numpyGflops ? `, numpy ${fmt(r.numpyGflops, 0)}` : ''}`).join('; ')} GFLOP/s -> ours reach ${f ? fmt((100 * gf(f)) / peak, 0) : '—'}% of the ${fmt(peak, 0)} GFLOP/s peak on the forward (target >= 50%).`);
  }
  for (const r of rs.filter((x) => x.error)) lines.push(`- ${r.engine} ${r.step ?? ''}: failed: ${r.error.split('\n')[0]}`);
  for (const n of [...notes, ...new Set(rs.flatMap((r) => r.notes ?? []))]) lines.push(`- ${n}`);
  return lines.join('\n');
}

function updateDocs(tableText) {
  const path = join(root, 'docs/BENCHMARKS.md');
  const start = '<!-- bench:results:start -->';
  const end = '<!-- bench:results:end -->';
  let doc;
  try {
    doc = readFileSync(path, 'utf8');
  } catch {
    doc = `# Benchmarks\n\n${start}\n${end}\n`;
  }
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  const block = `${start}\n<!-- written by \`npm run bench -- --update-docs\`; do not edit by hand -->\n${tableText}\n${end}`;
  doc = i >= 0 && j > i ? doc.slice(0, i) + block + doc.slice(j + end.length) : `${doc.trimEnd()}\n\n${block}\n`;
  writeFileSync(path, doc);
}
