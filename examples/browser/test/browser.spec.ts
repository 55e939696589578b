/**
 * The page in a real browser: Debian's chromium driven by playwright-core (no browser download).
 * The test makes a tiny model with the Node libraries, serves the built page (dist/, `npm run
 * build`) from 127.0.0.1, loads the model through the page's file input, samples with a fixed seed
 * on the cpu and wasm backends and compares the images with the same sampling in Node on the same
 * backend (max abs error 1e-3); on WebGL it measures and reports the difference. It also checks
 * that the Node sampling equals `fad generate`'s PNGs, the page's messages for bad input, and that
 * no request leaves localhost. A screenshot (1200x900) is saved as test-output/page.png.
 *
 * Skips with a message when chromium is absent (CHROMIUM_PATH, default /usr/bin/chromium).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { AUTOENCODER_PRESETS, AutoencoderKL, type BuiltinSchedulerName, parseModelFile, serializeUNet, UNET_PRESETS, UNet2DConditional } from '@fad/diffusion-core';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateImages } from '../src/generate-images';
// @ts-expect-error a plain .mjs script without types
import { serveStatic } from '../scripts/serve.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const out = join(root, 'test-output');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const haveBuild = existsSync(join(root, 'dist', 'app.js'));
if (!haveChromium) console.warn(`examples/browser: SKIPPED the browser test: no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);

const CLASSES = ['benign', 'tumor', 'stroma'];
/** A tiny class-conditional U-Net with a null class (so guidance works), random weights. */
const CONFIG = { ...UNET_PRESETS.tiny, numClasses: 3, sampleSize: 16 };
const SCHEDULE = { betaSchedule: 'linear', numTrainTimesteps: 1000 };

interface Run {
  sampler: BuiltinSchedulerName;
  steps: number;
  guidanceScale: number;
  seed: number;
  imagesPerClass: number;
  classLabels: number[];
}
const RUNS: Record<'cpu' | 'wasm' | 'webgl', Run> = {
  cpu: { sampler: 'ddim', steps: 5, guidanceScale: 2, seed: 3, imagesPerClass: 2, classLabels: [0, 1, 2] },
  wasm: { sampler: 'dpm-solver++', steps: 5, guidanceScale: 2, seed: 11, imagesPerClass: 2, classLabels: [0, 2] },
  // SwiftShader compiles every shader on the CPU: one image, few steps.
  webgl: { sampler: 'ddim', steps: 3, guidanceScale: 2, seed: 5, imagesPerClass: 1, classLabels: [1] },
};

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function nodeSample(backend: 'cpu' | 'wasm', bytes: Uint8Array, run: Run): Promise<number[][]> {
  await tf.setBackend(backend);
  await tf.ready();
  const file = parseModelFile({ bytes, name: 'tiny.safetensors' });
  try {
    const set = await generateImages({ file, ...run });
    return set.images.map((a) => Array.from(a));
  } finally {
    file.model.dispose();
    file.autoencoder?.dispose();
  }
}

describe.skipIf(!haveChromium)('examples/browser in chromium', () => {
  let browser: Browser;
  let server: { url: string; close: () => Promise<void> };
  let bytes: Uint8Array;
  const modelPath = join(out, 'models', 'tiny.safetensors');
  const requests: string[] = [];

  beforeAll(async () => {
    if (!haveBuild) throw new Error('examples/browser/dist is missing: run `npm run build -w @fad/example-browser` (npm test does) first');
    rmSync(out, { recursive: true, force: true });
    mkdirSync(join(out, 'models'), { recursive: true });
    await tf.setBackend('cpu');
    const model = new UNet2DConditional(CONFIG, { seed: 7 });
    bytes = serializeUNet(model, { classes: JSON.stringify(CLASSES), scheduler: JSON.stringify(SCHEDULE) });
    model.dispose();
    writeFileSync(modelPath, bytes);
    // Not a model, and a model whose config this version cannot build.
    writeFileSync(join(out, 'models', 'notes.txt'), 'these are not weights');
    const m2 = new UNet2DConditional(CONFIG, { seed: 1 });
    const bad = serializeUNet(m2, { classes: JSON.stringify(CLASSES) });
    m2.dispose();
    const header = JSON.stringify({ ...CONFIG, classConditioning: 'telepathy' });
    writeFileSync(join(out, 'models', 'unsupported.safetensors'), rewriteConfig(bad, header));
    server = await serveStatic({ root: join(root, 'dist'), mounts: { models: join(out, 'models') } });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function openPage(query: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${server.url}${query}`);
    await page.waitForFunction(() => (window as unknown as { fadPage?: { status: string } }).fadPage?.status !== 'starting', null, { timeout: 60_000 });
    return page;
  }

  const state = (page: Page) => page.evaluate(() => (window as unknown as { fadPage: Record<string, unknown> }).fadPage) as Promise<{
    status: string;
    backend: { name: string; detail: string } | null;
    error: { kind: string; title: string; message: string } | null;
    result: { images: number[][]; stepMs: number[]; msPerStep: number } | null;
  }>;

  async function sampleInPage(page: Page, run: Run, path = modelPath): Promise<number[][]> {
    await page.setInputFiles('#file', path);
    await page.waitForFunction(() => (window as unknown as { fadPage: { status: string } }).fadPage.status === 'loaded', null, { timeout: 30_000 });
    for (const box of await page.$$('#classes input')) {
      const v = Number(await box.getAttribute('value'));
      await box.setChecked(run.classLabels.includes(v));
    }
    await page.fill('#per-class', String(run.imagesPerClass));
    await page.selectOption('#sampler', run.sampler);
    await page.fill('#steps', String(run.steps));
    await page.fill('#guidance', String(run.guidanceScale));
    await page.fill('#seed', String(run.seed));
    await page.click('#sample');
    await page.waitForFunction(() => ['done', 'error'].includes((window as unknown as { fadPage: { status: string } }).fadPage.status), null, { timeout: 60_000 });
    const s = await state(page);
    expect(s.error).toBeNull();
    expect(s.result!.stepMs).toHaveLength(run.steps);
    expect(await page.locator('#grid canvas').count()).toBe(run.classLabels.length * run.imagesPerClass);
    return s.result!.images;
  }

  it('samples on cpu exactly as Node does (max abs error 1e-3), as fad generate does, and shows the images', async () => {
    const page = await openPage('?backend=cpu');
    expect((await state(page)).backend?.name).toBe('cpu');
    const inPage = await sampleInPage(page, RUNS.cpu);
    const ref = await nodeSample('cpu', bytes, RUNS.cpu);
    const err = maxAbs(inPage.flat(), ref.flat());
    console.log(`examples/browser: cpu, page vs Node: max abs error ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-3);
    // The images are not trivial (a test that compares two blank grids would prove nothing).
    const flat = ref.flat();
    const mean = flat.reduce((a, b) => a + b, 0) / flat.length;
    const sd = Math.sqrt(flat.reduce((a, b) => a + (b - mean) ** 2, 0) / flat.length);
    expect(sd).toBeGreaterThan(0.05);
    expect(maxAbs(ref[0], ref[2])).toBeGreaterThan(0.05); // different classes differ
    // The page shows the backend, the config and the time per step.
    await expect(page.locator('#backend').textContent()).resolves.toBe('cpu');
    await expect(page.locator('#config').textContent()).resolves.toContain('benign, tumor, stroma');
    await expect(page.locator('#timing').textContent()).resolves.toMatch(/ms per step/);
    await page.screenshot({ path: join(out, 'page.png') });
    // A downloaded image is the PNG of those pixels.
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#grid canvas').first().click()]);
    expect(download.suggestedFilename()).toBe('benign-s3-000.png');
    const png = join(out, 'download.png');
    await download.saveAs(png);
    const raw = await sharp(png).extractChannel(0).raw().toBuffer();
    expect(maxAbs(Array.from(raw), ref[0].map((v) => Math.round(v * 255)))).toBe(0);
    await page.close();

    // fad generate (the CLI, cpu backend) writes the same images, as PNG (x * 255, rounded).
    const cliOut = join(out, 'cli');
    const bin = join(root, '..', '..', 'packages', 'cli', 'dist', 'bin.js');
    execFileSync(process.execPath, [bin, '--backend', 'cpu', '-q', 'generate', '-m', modelPath, '-o', cliOut, '-n', '2', '--seeds', '3', '--sampler', 'ddim', '--steps', '5', '--guidance-scale', '2'], { stdio: 'pipe' });
    let k = 0;
    for (const cls of CLASSES) {
      const files = readdirSync(join(cliOut, cls)).sort();
      expect(files).toEqual(['s3-000.png', 's3-001.png']);
      for (const f of files) {
        const px = await sharp(join(cliOut, cls, f)).extractChannel(0).raw().toBuffer();
        expect(maxAbs(Array.from(px), ref[k++].map((v) => Math.round(v * 255))), `${cls}/${f}`).toBeLessThanOrEqual(1);
      }
    }
  });

  it('samples on wasm as Node does on wasm (max abs error 1e-3)', async () => {
    const page = await openPage('?backend=wasm');
    const s = await state(page);
    expect(s.backend?.name).toBe('wasm');
    const inPage = await sampleInPage(page, RUNS.wasm);
    const ref = await nodeSample('wasm', bytes, RUNS.wasm);
    const err = maxAbs(inPage.flat(), ref.flat());
    console.log(`examples/browser: wasm (${s.backend?.detail}), page vs Node wasm: max abs error ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-3);
    await page.close();
  });

  it('reports how far WebGL is from the cpu result (or that WebGL is unavailable)', async () => {
    const page = await openPage('?backend=webgl');
    const s = await state(page);
    if (s.backend?.name !== 'webgl') {
      console.log(`examples/browser: WebGL is not available in this headless chromium: ${s.error?.message}`);
      expect(s.error?.kind).toBe('backend');
      await page.close();
      return;
    }
    const inPage = await sampleInPage(page, RUNS.webgl);
    const ref = await nodeSample('cpu', bytes, RUNS.webgl);
    const err = maxAbs(inPage.flat(), ref.flat());
    console.log(`examples/browser: WebGL (${s.backend.detail}) vs Node cpu: max abs error ${err.toExponential(2)}`);
    // float32 textures: close to cpu; the README states the measured value.
    expect(err).toBeLessThanOrEqual(1e-2);
    await page.close();
  });

  it('samples a latent model (the embedded autoencoder decodes) as Node does', async () => {
    await tf.setBackend('cpu');
    const ae = new AutoencoderKL(AUTOENCODER_PRESETS.tiny);
    const k = ae.config.latentChannels;
    const unet = new UNet2DConditional({ ...CONFIG, sampleSize: 8, inChannels: k, outChannels: k }, { seed: 5 });
    const latent = serializeUNet(unet, { classes: JSON.stringify(CLASSES) }, { autoencoder: ae });
    unet.dispose();
    ae.dispose();
    const path = join(out, 'models', 'latent.safetensors');
    writeFileSync(path, latent);
    const run: Run = { sampler: 'ddim', steps: 2, guidanceScale: 2, seed: 1, imagesPerClass: 1, classLabels: [2] };
    const page = await openPage('?backend=cpu');
    const inPage = await sampleInPage(page, run, path);
    await expect(page.locator('#config').textContent()).resolves.toMatch(/latents, decoded to 32×32×1/);
    const ref = await nodeSample('cpu', latent, run);
    expect(ref[0]).toHaveLength(32 * 32);
    expect(maxAbs(inPage.flat(), ref.flat())).toBeLessThanOrEqual(1e-3);
    await page.close();
  });

  it('explains a file that is not a fad model, an unsupported config, and a backend that fails', async () => {
    const page = await openPage('?backend=cpu');
    await page.setInputFiles('#file', join(out, 'models', 'notes.txt'));
    await page.waitForFunction(() => (window as unknown as { fadPage: { status: string } }).fadPage.status === 'error');
    let s = await state(page);
    expect(s.error?.kind).toBe('not-a-model');
    await expect(page.locator('#error-title').textContent()).resolves.toBe('This file is not a fad model');
    await expect(page.locator('#error-message').textContent()).resolves.toMatch(/^the model notes\.txt is not a usable safetensors file/);
    expect(await page.locator('#sample').isDisabled()).toBe(true);
    // By URL (same site), a model whose config this version cannot build.
    await page.fill('#url', 'models/unsupported.safetensors');
    await page.click('#load-url');
    await page.waitForFunction(() => (window as unknown as { fadPage: { error: { kind: string } | null } }).fadPage.error?.kind !== 'not-a-model');
    s = await state(page);
    expect(s.error?.kind).toBe('unsupported-config');
    expect(s.error?.message).toMatch(/metadata\.config: .*classConditioning/);
    await page.close();
    // A backend that does not work here: the message names it and why.
    const gpu = await openPage('?backend=webgpu');
    const g = await state(gpu);
    if (g.backend?.name === 'webgpu') console.log('examples/browser: this chromium has WebGPU; the backend-failure message was not exercised through it');
    else {
      expect(g.error?.kind).toBe('backend');
      expect(g.error?.message).toMatch(/^no TensorFlow\.js backend works in this browser: webgpu: /);
      await expect(gpu.locator('#error').isVisible()).resolves.toBe(true);
    }
    await gpu.close();
  });

  it('picks the fastest working backend by itself and says why it skipped the others', async () => {
    const page = await openPage('');
    const s = await state(page) as unknown as { backend: { name: string; skipped: Array<{ name: string; why: string }> } };
    console.log(`examples/browser: the page chose ${s.backend.name}; skipped: ${s.backend.skipped.map((k) => `${k.name} (${k.why})`).join('; ') || 'none'}`);
    const order = ['webgpu', 'webgl', 'wasm', 'cpu'];
    expect(s.backend.skipped.map((k) => k.name)).toEqual(order.slice(0, order.indexOf(s.backend.name)));
    const gl = s.backend.skipped.find((k) => k.name === 'webgl');
    if (gl && /SwiftShader/.test(gl.why)) expect(s.backend.name).toBe('wasm'); // software WebGL is slower than wasm
    await expect(page.locator('#backend-skipped').textContent()).resolves.toContain(s.backend.skipped[0]?.why ?? '');
    await page.close();
  });

  it('sends no request outside localhost', () => {
    expect(requests.length).toBeGreaterThan(5);
    const outside = requests.filter((u) => !/^(https?:\/\/127\.0\.0\.1:\d+\/|blob:http:\/\/127\.0\.0\.1:\d+\/|data:)/.test(u));
    expect(outside).toEqual([]);
  });
});

/** The same safetensors file with metadata.config replaced (the tensors unchanged). */
function rewriteConfig(file: Uint8Array, config: string): Uint8Array {
  const n = Number(new DataView(file.buffer, file.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n)));
  header.__metadata__.config = config;
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += ' ';
  const h = new TextEncoder().encode(json);
  const outBytes = new Uint8Array(8 + h.length + (file.length - 8 - n));
  new DataView(outBytes.buffer).setBigUint64(0, BigInt(h.length), true);
  outBytes.set(h, 8);
  outBytes.set(file.subarray(8 + n), 8 + h.length);
  return outBytes;
}
