#!/usr/bin/env node
// Consumer smoke test: the packages as a user gets them, with no workspace links.
//
// 1. `npm pack` every package (packages/*, built beforehand: `npm run smoke` builds first) into a
//    temporary directory, and check that no tarball holds a spec file or a test helper.
// 2. Install the tarballs into one fresh project there (offline from the npm cache when it has
//    everything, else from the registry; `--ignore-scripts`, so @fad/tfjs-native is installed
//    without its addon, which exercises the "not built" path and its hint outside the monorepo).
// 3. Run one feature-alignment gradient step with models that are not fad's (a tf.layers expert,
//    a hand-written U-Net-like function) from ESM and from CJS; check that the /node entry points
//    share the main entry point's classes, and that selectBackend explains the missing addon.
// 4. Type-check, with TypeScript's `node16` and `bundler` module resolution, a consumer file
//    (ESM and CJS) and every ```ts block of the root README and the packages' READMEs. Names a
//    snippet uses without defining them (`batches`, `myUNet`, ...) are declared `any`, and listed.
//    Blocks marked `// consumer-smoke: run` are also run with node (they must be plain JavaScript
//    apart from the fence): on a folder of tiny PNGs written with sharp, with the environment
//    variables they read (DATA, STEPS=3, RUN_DIR), twice: the second run must reuse the first.
// 5. Bundle the main entry points for the browser with esbuild (platform browser): any Node import
//    (fs, node:*) fails the bundle.
//
// Usage: node scripts/consumer-smoke.mjs [--keep] (keeps the temporary directory and prints it).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const keep = process.argv.includes('--keep');
const t0 = Date.now();
const work = mkdtempSync(join(tmpdir(), 'fad-consumer-'));
const say = (m) => console.log(`[consumer-smoke ${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${m}`);
const failures = [];
const fail = (m) => {
  failures.push(m);
  console.error(`[consumer-smoke] FAIL: ${m}`);
};

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...opts });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const lockedVersion = (name) => {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  return lock.packages[`node_modules/${name}`]?.version;
};

// ---- 1. pack ------------------------------------------------------------------------------------
const tarDir = join(work, 'tarballs');
mkdirSync(tarDir);
const packages = readdirSync(join(root, 'packages'))
  .map((d) => join(root, 'packages', d))
  .filter((d) => existsSync(join(d, 'package.json')))
  .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
  .filter(({ pkg }) => !pkg.private);
const tarballs = {};
for (const { dir, pkg } of packages) {
  if (!existsSync(join(dir, 'dist'))) throw new Error(`${pkg.name} is not built (run \`npm run build\` first)`);
  const json = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', tarDir], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  const { filename, files } = json[0];
  tarballs[pkg.name] = join(tarDir, filename);
  const bad = files.map((f) => f.path).filter((p) => /\.spec\.|(^|\/)(testing|test-support)\/|test-utils/.test(p));
  if (bad.length) fail(`${pkg.name} tarball holds specs or test helpers: ${bad.slice(0, 5).join(', ')}`);
  for (const need of ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json']) {
    if (!files.some((f) => f.path === need)) fail(`${pkg.name} tarball has no ${need}`);
  }
}
say(`packed ${packages.length} packages into ${tarDir}`);

// ---- 2. install ---------------------------------------------------------------------------------
const app = join(work, 'app');
mkdirSync(app);
const pin = (n) => lockedVersion(n) ?? rootPkg.devDependencies?.[n];
const deps = {
  ...Object.fromEntries(Object.entries(tarballs).map(([n, f]) => [n, `file:${f}`])),
  '@tensorflow/tfjs-core': pin('@tensorflow/tfjs-core'),
  '@tensorflow/tfjs-layers': pin('@tensorflow/tfjs-layers'),
  '@tensorflow/tfjs-backend-cpu': pin('@tensorflow/tfjs-backend-cpu'),
  '@tensorflow/tfjs-backend-wasm': pin('@tensorflow/tfjs-backend-wasm'),
  sharp: pin('sharp'),
  typescript: pin('typescript'),
  esbuild: pin('esbuild'),
  '@types/node': pin('@types/node'),
};
writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'fad-consumer', private: true, type: 'module', dependencies: deps }, null, 2));
const npmArgs = ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error'];
let inst = run('npm', [...npmArgs, '--offline'], { cwd: app });
if (!inst.ok) {
  say('the npm cache lacks something; installing from the registry (--prefer-offline)');
  inst = run('npm', [...npmArgs, '--prefer-offline'], { cwd: app });
}
if (!inst.ok) throw new Error(`npm install of the tarballs failed:\n${inst.out}`);
say('installed the tarballs into a fresh project');

// ---- 3. run from ESM and CJS --------------------------------------------------------------------
// One feature-alignment step: a tf.layers expert (conv + global pooling) and a tiny U-Net-like
// denoiser written with raw ops, whose bottleneck activation is aligned to the expert's features.
const stepBody = (tf, tfl, fa) => `
  await tf.setBackend('cpu');
  const expertModel = tfl.sequential({ layers: [
    tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }),
    tfl.layers.globalAveragePooling2d({ name: 'pool' }),
    tfl.layers.dense({ units: 3, name: 'logits' }),
  ] });
  const expert = ${fa}.featureExtractorFromLayersModel({ model: expertModel, layer: 'pool', inputSpec: { size: 8, channels: 1, range: [-1, 1] } });
  const w1 = ${tf}.variable(${tf}.randomNormal([3, 3, 1, 6], 0, 0.3, 'float32', 1));
  const w2 = ${tf}.variable(${tf}.randomNormal([3, 3, 6, 1], 0, 0.3, 'float32', 2));
  const unet = (x) => {
    const h = ${tf}.relu(${tf}.conv2d(x, w1, 2, 'same'));           // down: [B,4,4,6], the tapped features
    const up = ${tf}.image.resizeNearestNeighbor(h, [8, 8]);
    return { eps: ${tf}.conv2d(up, w2, 1, 'same'), features: h };
  };
  const align = new ${fa}.FeatureAlignmentLoss({ diffusionDim: 6, expertDim: expert.featureDim, seed: 0 });
  const x0 = ${tf}.randomUniform([2, 8, 8, 1], -1, 1, 'float32', 3);
  const noise = ${tf}.randomNormal([2, 8, 8, 1], 0, 1, 'float32', 4);
  const xt = ${tf}.add(${tf}.mul(x0, 0.8), ${tf}.mul(noise, 0.6));
  const vars = [w1, w2, ...align.trainableVariables()];
  const before = w1.dataSync().slice();
  const opt = ${tf}.train.adam(1e-2);
  const { value, grads } = ${tf}.variableGrads(() => {
    const { eps, features } = unet(xt);
    const diffusionLoss = ${tf}.losses.meanSquaredError(noise, eps);
    const expertFeatures = ${fa}.extractExpertFeatures({ expert, images: xt });
    const alignLoss = align.forward({ diffusionFeatures: features, expertFeatures });
    return ${fa}.combinedLoss({ diffusionLoss, alignLoss, lambda1: 1, lambda2: 1 });
  }, vars);
  opt.applyGradients(grads);
  const loss = value.dataSync()[0];
  const moved = w1.dataSync().some((v, i) => v !== before[i]);
  if (!Number.isFinite(loss) || !moved || Object.keys(grads).length !== vars.length) throw new Error('feature-alignment step: loss ' + loss + ', weights moved: ' + moved);
  console.log('step ok: loss ' + loss.toFixed(4) + ', ' + vars.length + ' variables updated');
`;
writeFileSync(
  join(app, 'step.mjs'),
  `import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as fa from '@fad/feature-align';
import { saveFeatureAlignmentLoss, loadFeatureAlignmentLoss } from '@fad/feature-align/node';
import { UNet2DConditional, UNET_PRESETS, FUSED_ADAM_KERNEL } from '@fad/diffusion-core';
import { saveUNet, loadUNet } from '@fad/diffusion-core/node';
import { selectBackend } from '@fad/diffusion-core/backend';
import { createExpert, EXPERT_PRESETS } from '@fad/expert-models';
import { trainExpert } from '@fad/expert-models/node';
import { ssim } from '@fad/metrics';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
${stepBody('tf', 'tfl', 'fa')}
  // The /node entry points return the main entry point's classes (no second copy).
  const dir = mkdtempSync(join(tmpdir(), 'fad-consumer-io-'));
  const m = new UNet2DConditional(UNET_PRESETS.tiny, { seed: 0 });
  await saveUNet(m, join(dir, 'u.safetensors'));
  const back = await loadUNet(join(dir, 'u.safetensors'));
  if (!(back.model instanceof UNet2DConditional)) throw new Error('loadUNet returned another copy of UNet2DConditional');
  await saveFeatureAlignmentLoss({ loss: align, path: join(dir, 'a.safetensors') });
  const a2 = await loadFeatureAlignmentLoss({ path: join(dir, 'a.safetensors') });
  if (!(a2.loss instanceof fa.FeatureAlignmentLoss)) throw new Error('loadFeatureAlignmentLoss returned another copy of FeatureAlignmentLoss');
  if (typeof trainExpert !== 'function' || typeof createExpert !== 'function' || !EXPERT_PRESETS || typeof ssim !== 'function' || !FUSED_ADAM_KERNEL) throw new Error('missing exports');
  // selectBackend: @fad/tfjs-native is installed without its addon here (--ignore-scripts).
  const lines = [];
  const r = await selectBackend({ log: (l) => lines.push(l) });
  const native = r.attempts.find((x) => x.name === 'native');
  if (!native || native.ok || !native.detail.includes('node_modules/@fad/tfjs-native/scripts/install.mjs')) throw new Error('native backend detail: ' + JSON.stringify(native));
  console.log('selectBackend: ' + lines[0]);
`,
);
writeFileSync(
  join(app, 'step.cjs'),
  `const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const tfl = require('@tensorflow/tfjs-layers');
const fa = require('@fad/feature-align');
const core = require('@fad/diffusion-core');
const coreNode = require('@fad/diffusion-core/node');
const { selectBackend } = require('@fad/diffusion-core/backend');
const em = require('@fad/expert-models');
const emNode = require('@fad/expert-models/node');
const faNode = require('@fad/feature-align/node');
const metrics = require('@fad/metrics');
const cli = require('@fad/cli');
(async () => {
${stepBody('tf', 'tfl', 'fa')}
  for (const [n, f] of Object.entries({ loadUNet: coreNode.loadUNet, selectBackend, trainExpert: emNode.trainExpert, loadFeatureAlignmentLoss: faNode.loadFeatureAlignmentLoss, ssim: metrics.ssim, createExpert: em.createExpert, cliSelectBackend: cli.selectBackend, UNet: core.UNet2DConditional })) {
    if (typeof f !== 'function') throw new Error(n + ' missing from the CJS build');
  }
})().catch((e) => { console.error(e); process.exit(1); });
`,
);
for (const f of ['step.mjs', 'step.cjs']) {
  const r = run(process.execPath, [f], { cwd: app });
  if (!r.ok) fail(`${f}:\n${r.out}`);
  else say(`${f}: ${r.out.trim().split('\n').filter((l) => /ok|selectBackend/.test(l)).join(' | ')}`);
}
const help = run(process.execPath, [join(app, 'node_modules', '@fad', 'cli', 'dist', 'bin.js'), '--help'], { cwd: app });
if (!help.ok || !/Usage: fad/.test(help.out)) fail(`fad --help from the installed CLI:\n${help.out}`);
else say('the installed `fad --help` works');

// ---- 4. type-check ------------------------------------------------------------------------------
const tsDir = join(app, 'ts');
mkdirSync(tsDir);
writeFileSync(
  join(tsDir, 'consumer.ts'),
  `import * as tf from '@tensorflow/tfjs-core';
import { combinedLoss, featureExtractorFromLayersModel, FeatureAlignmentLoss } from '@fad/feature-align';
import { loadFeatureAlignmentLoss } from '@fad/feature-align/node';
import { UNet2DConditional } from '@fad/diffusion-core';
import { loadUNet } from '@fad/diffusion-core/node';
import { selectBackend, type BackendName } from '@fad/diffusion-core/backend';
import { trainExpert, type TrainExpertParams } from '@fad/expert-models';
import { readExpertTrainingState } from '@fad/expert-models/node';
import { ssim } from '@fad/metrics';
import type { NativeInfo } from '@fad/tfjs-native';
import { selectBackend as cliSelect } from '@fad/cli';
declare const model: import('@tensorflow/tfjs-layers').LayersModel;
const expert = featureExtractorFromLayersModel({ model });
const dim: number = expert.featureDim;
const loss = new FeatureAlignmentLoss({ diffusionDim: 4, expertDim: dim });
const total: tf.Scalar = combinedLoss({ diffusionLoss: tf.losses.meanSquaredError(tf.zeros([2]), tf.ones([2])), alignLoss: tf.scalar(0) });
export const uses = [loss, total, loadFeatureAlignmentLoss, UNet2DConditional, loadUNet, selectBackend, trainExpert, readExpertTrainingState, ssim, cliSelect];
export type Uses = [BackendName, TrainExpertParams, NativeInfo];
`,
);
writeFileSync(
  join(tsDir, 'consumer-cjs.cts'),
  `import fa = require('@fad/feature-align');
import core = require('@fad/diffusion-core/node');
import em = require('@fad/expert-models/node');
export const uses = [fa.combinedLoss, core.loadUNet, em.trainExpert];
`,
);
// README code blocks
const readmes = [join(root, 'README.md'), ...packages.map(({ dir }) => join(dir, 'README.md'))].filter((f) => existsSync(f));
const snippets = [];
for (const f of readmes) {
  const text = readFileSync(f, 'utf8');
  const re = /^```ts\n([\s\S]*?)^```/gm;
  let m;
  let i = 0;
  while ((m = re.exec(text))) {
    const name = `readme-${f.slice(root.length + 1).replace(/[\\/]/g, '-').replace(/\.md$/i, '')}-${++i}.ts`;
    snippets.push({ name, source: f.slice(root.length + 1), code: m[1] });
  }
}
const snippetDir = join(tsDir, 'readme');
mkdirSync(snippetDir);
const writeSnippets = (stubs) => {
  for (const s of snippets) {
    const decl = [...(stubs.get(s.name) ?? [])].map((n) => `declare const ${n}: any;`).join(' ');
    writeFileSync(join(snippetDir, s.name), `${decl}\n${s.code}\nexport {};\n`);
  }
};
const tsc = join(app, 'node_modules', 'typescript', 'bin', 'tsc');
const configs = {
  node16: { module: 'node16', moduleResolution: 'node16' },
  bundler: { module: 'esnext', moduleResolution: 'bundler' },
};
// README blocks are excerpts: parameters of callbacks on reader-defined (any) values stay implicit.
const tsconfig = (kind, include, readme = false) =>
  JSON.stringify({
    compilerOptions: {
      ...configs[kind], target: 'es2022', lib: ['es2022', 'dom'], strict: true, noEmit: true, skipLibCheck: true, types: ['node'], esModuleInterop: true,
      ...(readme ? { noImplicitAny: false } : {}),
    },
    include,
  });
// Names a snippet uses without defining them become `declare const X: any` (first pass).
const stubs = new Map();
writeSnippets(stubs);
for (let pass = 0; pass < 4; pass++) {
  writeFileSync(join(tsDir, 'tsconfig.readme.json'), tsconfig('bundler', ['readme/*.ts'], true));
  const r = run(process.execPath, [tsc, '-p', 'tsconfig.readme.json'], { cwd: tsDir });
  let added = 0;
  for (const m of r.out.matchAll(/readme\/(\S+?\.ts)\(\d+,\d+\): error TS(?:2304|2552|2582|18004): (?:Cannot find name|No value exists in scope for the shorthand property) '([^']+)'/g)) {
    const set = stubs.get(m[1]) ?? new Set();
    if (!set.has(m[2])) {
      set.add(m[2]);
      added++;
    }
    stubs.set(m[1], set);
  }
  if (!added) break;
  writeSnippets(stubs);
}
const checks = Object.keys(configs).flatMap((kind) => [
  { kind, name: `${kind}`, include: kind === 'node16' ? ['consumer.ts', 'consumer-cjs.cts'] : ['consumer.ts'], readme: false },
  { kind, name: `${kind}-readme`, include: ['readme/*.ts'], readme: true },
]);
for (const { kind, name, include, readme } of checks) {
  writeFileSync(join(tsDir, `tsconfig.${name}.json`), tsconfig(kind, include, readme));
  const r = run(process.execPath, [tsc, '-p', `tsconfig.${name}.json`], { cwd: tsDir });
  if (!r.ok) {
    const where = (line) => {
      const s = snippets.find((x) => line.includes(x.name));
      return s ? `${line}   [${s.source}]` : line;
    };
    fail(`TypeScript (${name}):\n${r.out.trim().split('\n').map(where).join('\n')}`);
  } else say(`TypeScript (moduleResolution ${kind}): ${readme ? `${snippets.length} README blocks` : include.join(', ')} type-check`);
}
// A block that uses a library export without importing it is a README bug, not a reader's name.
const exportsOut = run(process.execPath, ['--input-type=module', '-e', `
  const names = new Set(['tf', 'tfl']);
  for (const e of ${JSON.stringify(['@fad/diffusion-core', '@fad/diffusion-core/node', '@fad/diffusion-core/backend', '@fad/feature-align', '@fad/feature-align/node', '@fad/expert-models', '@fad/expert-models/node', '@fad/metrics', '@fad/tfjs-native', '@fad/cli'])}) {
    for (const k of Object.keys(await import(e))) names.add(k);
  }
  console.log(JSON.stringify([...names]));`], { cwd: app });
const exported = new Set(exportsOut.ok ? JSON.parse(exportsOut.out.trim().split('\n').pop()) : []);
if (!exportsOut.ok) fail(`listing the packages' exports:\n${exportsOut.out}`);
for (const [f, set] of stubs) {
  const missing = [...set].filter((n) => exported.has(n));
  if (missing.length) fail(`${snippets.find((s) => s.name === f)?.source} (${f}) uses ${missing.join(', ')} without importing it`);
}
const stubbed = [...stubs.entries()].map(([f, s]) => `${f}: ${[...s].join(', ')}`);
if (stubbed.length) say(`README names declared \`any\` (defined by the reader): ${stubbed.join('; ')}`);

// README blocks marked `// consumer-smoke: run`: run for real, a few seconds each (tiny data, STEPS=3).
const runnable = snippets.filter((s) => s.code.includes('// consumer-smoke: run'));
if (runnable.length) {
  const data = join(app, 'smoke-data');
  writeFileSync(join(app, 'write-pngs.mjs'), `
    import sharp from 'sharp';
    import { mkdirSync } from 'node:fs';
    for (const [c, cls] of ['01_TUMOR', '02_STROMA'].entries()) {
      mkdirSync('${data}/' + cls, { recursive: true });
      for (let i = 0; i < 4; i++) {
        const px = Buffer.alloc(16 * 16 * 3);
        for (let k = 0; k < px.length; k++) px[k] = (37 * k * (c + 1) + 91 * i) % 256;
        await sharp(px, { raw: { width: 16, height: 16, channels: 3 } }).png().toFile('${data}/' + cls + '/' + i + '.png');
      }
    }`);
  const pngs = run(process.execPath, ['write-pngs.mjs'], { cwd: app });
  if (!pngs.ok) fail(`writing the PNGs for the runnable README blocks with sharp:\n${pngs.out}`);
  for (const s of runnable) {
    const file = join(app, `run-${s.name.replace(/\.ts$/, '.mjs')}`);
    const runDir = join(app, `run-${s.name.replace(/\.ts$/, '')}`);
    writeFileSync(file, s.code);
    const env = { ...process.env, DATA: data, STEPS: '3', RUN_DIR: runDir };
    const first = run(process.execPath, [file], { cwd: app, env });
    if (!first.ok || !/^finished /m.test(first.out) || !existsSync(join(runDir, 'complete.json'))) {
      fail(`running the README block ${s.name} [${s.source}] (STEPS=3):\n${first.out}`);
      continue;
    }
    const again = run(process.execPath, [file], { cwd: app, env });
    if (!again.ok || !/^reused/m.test(again.out)) fail(`running the README block ${s.name} [${s.source}] again should reuse the finished run:\n${again.out}`);
    else say(`README block ${s.name} [${s.source}] runs (3 steps, then reused): ${first.out.split('\n').filter((l) => /^(step |finished )/.test(l)).join(' | ')}`);
  }
}

// ---- 5. browser bundles -------------------------------------------------------------------------
const esbuild = join(app, 'node_modules', 'esbuild', 'bin', 'esbuild');
for (const entry of ['@fad/diffusion-core', '@fad/feature-align', '@fad/expert-models', '@fad/metrics']) {
  const file = join(app, `browser-${entry.split('/')[1]}.mjs`);
  writeFileSync(file, `import * as m from '${entry}';\nconsole.log(Object.keys(m).length);\n`);
  const out = `${file}.bundle.js`;
  const r = run(process.execPath, [esbuild, file, '--bundle', '--platform=browser', '--format=esm', `--outfile=${out}`, '--log-level=error'], { cwd: app });
  if (!r.ok) {
    fail(`browser bundle of ${entry}:\n${r.out}`);
    continue;
  }
  const code = readFileSync(out, 'utf8');
  const nodeImport = code.match(/(?:from\s*|import\(\s*|require\(\s*)["'](node:[^"']+|fs|fs\/promises|path|os|child_process)["']/);
  if (nodeImport) fail(`browser bundle of ${entry} imports ${nodeImport[1]}`);
  else say(`browser bundle of ${entry}: ${(code.length / 1e6).toFixed(2)} MB, no Node import`);
}

// -------------------------------------------------------------------------------------------------
if (keep) say(`kept ${work}`);
else rmSync(work, { recursive: true, force: true });
if (failures.length) {
  console.error(`[consumer-smoke] ${failures.length} failure(s) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  process.exit(1);
}
say('all checks passed');
