// Measures the page's ms per denoising step for the histology64 half-width U-Net (the histology
// example's model: blockChannels [16, 32, 64], 64x64x1, 8 classes; random weights, which cost the
// same as trained ones) in headless chromium, on WebGL and on wasm. Prints a Markdown table for
// the README. Run after `npm run build` (npm run measure does both):
//   node scripts/measure.mjs [--steps 10] [--backends webgl,wasm] [--images 1,8] [--chromium /usr/bin/chromium]
// --images: batch sizes to time (1: one image; 8: one per class). WebGL in headless chromium without
// a GPU is SwiftShader, a software renderer: a batch of 8 takes minutes per step there.
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { serializeUNet, UNET_PRESETS, UNet2DConditional } from '@fad/diffusion-core';
import { chromium } from 'playwright-core';
import { serveStatic } from './serve.mjs';

const arg = (k, d) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? process.argv[i + 1] : d;
};
const steps = Number(arg('--steps', 10));
const backends = arg('--backends', 'webgl,wasm').split(',');
const batches = arg('--images', '1,8').split(',').map(Number);
const executablePath = arg('--chromium', process.env.CHROMIUM_PATH ?? '/usr/bin/chromium');
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

await tf.setBackend('cpu');
const config = { ...UNET_PRESETS.histology64, blockChannels: [16, 32, 64] };
const model = new UNet2DConditional(config, { seed: 0 });
const params = model.namedParameters().reduce((n, [, v]) => n + v.size, 0);
const dir = mkdtempSync(join(tmpdir(), 'fad-measure-'));
const modelPath = join(dir, 'histology64-half.safetensors');
writeFileSync(modelPath, serializeUNet(model, { scheduler: JSON.stringify({ betaSchedule: 'linear', numTrainTimesteps: 1000 }) }));
model.dispose();

const server = await serveStatic({ root: join(root, 'dist') });
const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
const load = loadavg()[0];
const rows = [];
try {
  for (const backend of backends) {
    const page = await browser.newPage();
    await page.goto(`${server.url}?backend=${backend}`);
    await page.waitForFunction(() => window.fadPage?.status !== 'starting', null, { timeout: 120_000 });
    const s0 = await page.evaluate(() => window.fadPage);
    if (s0.backend?.name !== backend) {
      rows.push(`| ${backend} | not available: ${s0.error?.message} | | |`);
      await page.close();
      continue;
    }
    await page.setInputFiles('#file', modelPath);
    await page.waitForFunction(() => window.fadPage.status === 'loaded', null, { timeout: 120_000 });
    for (const classes of batches) {
      const perClass = 1;
      const boxes = await page.$$('#classes input');
      for (let i = 0; i < boxes.length; i++) await boxes[i].setChecked(i < classes);
      await page.fill('#per-class', String(perClass));
      await page.selectOption('#sampler', 'ddim');
      await page.fill('#steps', String(steps));
      await page.fill('#guidance', '2');
      await page.evaluate(() => { window.fadPage.status = 'loaded'; });
      await page.click('#sample');
      await page.waitForFunction(() => ['done', 'error'].includes(window.fadPage.status), null, { timeout: 600_000 });
      const s = await page.evaluate(() => window.fadPage);
      if (s.error) throw new Error(`${backend}: ${s.error.message}`);
      const images = classes * perClass;
      rows.push(`| ${backend} (${s.backend.detail}) | ${images} | ${s.result.msPerStep.toFixed(0)} | ${s.result.stepMs[0].toFixed(0)} |`);
      console.error(rows.at(-1));
    }
    await page.close();
  }
} finally {
  await browser.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
const version = browser.version();
console.log(`histology64 at half width (blockChannels [16, 32, 64], ${(params / 1e6).toFixed(2)}M parameters, 64x64x1), DDIM ${steps} steps, guidance scale 2 (two U-Net passes per image and step), headless Chromium ${version}, ${cpus().length} cores, load average ${load.toFixed(2)} at the start:\n`);
console.log('| backend | images per batch | ms per step (median) | first step (ms) |');
console.log('| --- | --- | --- | --- |');
for (const r of rows) console.log(r);
