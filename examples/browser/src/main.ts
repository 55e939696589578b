/**
 * The page: load a fad model file (file input or same-site URL), show its config, sample N images
 * per chosen class, show them in a grid with PNG downloads. Only the published entry point of
 * `@fad/diffusion-core` is used, as any application would.
 *
 * URL parameters: `backend=webgpu|webgl|wasm|cpu` forces a backend; `model=URL` loads a model at
 * start. `window.fadPage` exposes the page's state (used by the browser test).
 */
import { type BuiltinSchedulerName, ModelFileError, type ParsedModelFile, parseModelFile, tileClassGrid } from '@fad/diffusion-core';
import { type BackendChoice, chooseBackend, PAGE_BACKENDS, type PageBackend } from './backends';
import { generateImages, type GeneratedSet } from './generate-images';

type ErrorKind = 'not-a-model' | 'unsupported-config' | 'unusable-file' | 'settings' | 'backend';

interface PageState {
  status: 'starting' | 'ready' | 'loading' | 'loaded' | 'sampling' | 'done' | 'error';
  backend: BackendChoice | null;
  error: { kind: ErrorKind; title: string; message: string } | null;
  model: { name: string; classNames: string[]; config: unknown } | null;
  /** The last sampled set: pixel values in [0, 1], one array per image. */
  result: { images: number[][]; labels: number[]; size: number; channels: number; stepMs: number[]; msPerStep: number } | null;
}

const state: PageState = { status: 'starting', backend: null, error: null, model: null, result: null };
(window as unknown as { fadPage: PageState }).fadPage = state;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
let loaded: ParsedModelFile | null = null;
let lastSet: { set: GeneratedSet; seed: number; rows: number; columns: number } | null = null;

const TITLES: Record<ErrorKind, string> = {
  'not-a-model': 'This file is not a fad model',
  'unsupported-config': 'This model’s configuration is not supported',
  'unusable-file': 'This model file cannot be used',
  settings: 'These settings do not work with this model',
  backend: 'The TensorFlow.js backend failed',
};

function showError(kind: ErrorKind, message: string): void {
  state.error = { kind, title: TITLES[kind], message };
  state.status = 'error';
  $('error-title').textContent = TITLES[kind];
  $('error-message').textContent = message;
  $('error').style.display = 'block';
}

function clearError(): void {
  state.error = null;
  $('error').style.display = 'none';
}

function modelErrorKind(e: unknown): ErrorKind {
  if (!(e instanceof ModelFileError)) return 'backend';
  if (e.reason === 'not-safetensors' || e.reason === 'not-a-model') return 'not-a-model';
  if (e.reason === 'unsupported-config' || e.reason === 'limits') return 'unsupported-config';
  return 'unusable-file';
}

async function startBackend(): Promise<void> {
  const forced = params.get('backend');
  let order: readonly PageBackend[] = PAGE_BACKENDS;
  if (forced !== null) {
    if (!(PAGE_BACKENDS as readonly string[]).includes(forced)) {
      showError('backend', `?backend=${forced} is not one of ${PAGE_BACKENDS.join(', ')}`);
      $('backend').textContent = 'none';
      return;
    }
    order = [forced as PageBackend];
  }
  try {
    const choice = await chooseBackend(order);
    state.backend = choice;
    state.status = 'ready';
    $('backend').textContent = choice.name;
    $('backend-detail').textContent = `(${choice.detail})`;
    $('backend-skipped').textContent = choice.skipped.length ? `Not used: ${choice.skipped.map((s) => `${s.name} (${s.why})`).join('; ')}` : '';
  } catch (e) {
    $('backend').textContent = 'none';
    showError('backend', (e as Error).message);
  }
}

function describe(file: ParsedModelFile, name: string, bytes: number): void {
  const c = file.config;
  const s = file.schedulerConfig as Record<string, unknown>;
  let params = 0;
  for (const [, v] of file.model.namedParameters()) params += v.size;
  const rows: Array<[string, string]> = [
    ['File', `${name} (${(bytes / 1e6).toFixed(2)} MB)`],
    ['Images', `${c.sampleSize}×${c.sampleSize}×${c.inChannels}${file.autoencoder ? ` latents, decoded to ${c.sampleSize * file.autoencoder.downsamplingFactor}×${c.sampleSize * file.autoencoder.downsamplingFactor}×${file.autoencoder.config.outChannels} by the embedded autoencoder` : ' pixels'}`],
    ['U-Net', `levels [${c.blockChannels.join(', ')}], ${JSON.stringify(c.layersPerBlock)} res-blocks per level, ${(params / 1e6).toFixed(2)}M parameters`],
    ['Classes', `${file.classNames.length}: ${file.classNames.join(', ')}`],
    ['Conditioning', `${c.classConditioning}${c.nullClass ? ', with a null class (classifier-free guidance works)' : ', no null class (guidance scale must be 1)'}`],
    ['Noise schedule', Object.keys(s).length ? Object.entries(s).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', ') : 'the defaults'],
  ];
  if (file.dreambooth) rows.push(['DreamBooth', `token ${file.dreambooth.token} on class ${file.dreambooth.class}`]);
  const el = $('config');
  el.className = '';
  el.replaceChildren();
  const table = document.createElement('table');
  for (const [k, v] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = v;
  }
  const details = document.createElement('details');
  const summary = document.createElement('summary');
  summary.textContent = 'Full config (metadata.config)';
  const pre = document.createElement('pre');
  pre.textContent = JSON.stringify(c, null, 2);
  details.append(summary, pre);
  el.append(table, details);
  const classes = $('classes');
  classes.replaceChildren(document.createTextNode('Classes: '));
  file.classNames.forEach((n, i) => {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = true;
    box.value = String(i);
    label.append(box, ` ${n}`);
    classes.append(label);
  });
  ($('guidance') as HTMLInputElement).value = c.nullClass ? '2' : '1';
}

async function loadBytes(bytes: Uint8Array, name: string): Promise<void> {
  clearError();
  state.status = 'loading';
  loaded?.model.dispose();
  loaded?.autoencoder?.dispose();
  loaded = null;
  state.model = null;
  ($('sample') as HTMLButtonElement).disabled = true;
  $('config').textContent = `Reading ${name}…`;
  try {
    loaded = parseModelFile({ bytes, name });
  } catch (e) {
    $('config').textContent = 'No model loaded.';
    showError(modelErrorKind(e), (e as Error).message);
    return;
  }
  state.model = { name, classNames: loaded.classNames, config: loaded.config };
  describe(loaded, name, bytes.length);
  state.status = 'loaded';
  ($('sample') as HTMLButtonElement).disabled = state.backend === null;
}

async function loadUrl(url: string): Promise<void> {
  let bytes: Uint8Array;
  try {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`HTTP ${r.status} ${r.statusText}`);
    bytes = new Uint8Array(await r.arrayBuffer());
  } catch (e) {
    showError('unusable-file', `cannot fetch ${url}: ${(e as Error).message} (the page only reads URLs on its own site)`);
    return;
  }
  await loadBytes(bytes, url.split('/').pop() || url);
}

function intField(id: string, what: string, min: number, max: number): number {
  const v = Number(($(id) as HTMLInputElement).value);
  if (!(Number.isInteger(v) && v >= min && v <= max)) throw new RangeError(`${what} must be an integer from ${min} to ${max}, got ${($(id) as HTMLInputElement).value}`);
  return v;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : Number.NaN;
}

function drawImage(px: Float32Array, size: number, channels: number): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(size, size);
  // As fad generate's PNGs: round(x * 255), clamped.
  const q = (v: number) => Math.max(0, Math.min(255, Math.round(v * 255)));
  for (let i = 0; i < size * size; i++) {
    const r = q(px[i * channels]);
    img.data[i * 4] = r;
    img.data[i * 4 + 1] = channels >= 3 ? q(px[i * channels + 1]) : r;
    img.data[i * 4 + 2] = channels >= 3 ? q(px[i * channels + 2]) : r;
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

function download(canvas: HTMLCanvasElement, filename: string): void {
  canvas.toBlob((blob) => {
    if (!blob) return;
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = filename;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }, 'image/png');
}

async function sample(): Promise<void> {
  if (!loaded || !state.backend) return;
  clearError();
  const file = loaded;
  let settings;
  try {
    const classLabels = [...document.querySelectorAll<HTMLInputElement>('#classes input:checked')].map((b) => Number(b.value));
    if (classLabels.length === 0) throw new RangeError('choose at least one class');
    const guidanceScale = Number(($('guidance') as HTMLInputElement).value);
    if (!(Number.isFinite(guidanceScale) && guidanceScale >= 0)) throw new RangeError(`the guidance scale must be a number >= 0, got ${($('guidance') as HTMLInputElement).value}`);
    if (guidanceScale !== 1 && !file.config.nullClass) throw new RangeError(`this model has no null class, so classifier-free guidance is not available: set the guidance scale to 1 (got ${guidanceScale})`);
    settings = {
      classLabels,
      imagesPerClass: intField('per-class', 'Images per class', 1, 64),
      steps: intField('steps', 'Steps', 1, 1000),
      seed: intField('seed', 'The seed', 0, 0xffffffff),
      batchSize: intField('batch', 'The batch', 1, 256),
      sampler: ($('sampler') as HTMLSelectElement).value as BuiltinSchedulerName,
      guidanceScale,
    };
  } catch (e) {
    showError('settings', (e as Error).message);
    return;
  }
  const button = $('sample') as HTMLButtonElement;
  button.disabled = true;
  state.status = 'sampling';
  const progress = $('progress') as HTMLProgressElement;
  const total = Math.ceil((settings.classLabels.length * settings.imagesPerClass) / settings.batchSize) * settings.steps;
  progress.max = total;
  progress.value = 0;
  let done = 0;
  $('progress-text').textContent = 'starting (the first step compiles the backend\'s kernels)…';
  // Let the page paint (and the click return) before the first step, which runs synchronously.
  await new Promise((r) => setTimeout(r, 0));
  const t0 = performance.now();
  let set: GeneratedSet;
  try {
    set = await generateImages({
      file,
      ...settings,
      onStep: (p) => {
        done++;
        progress.value = done;
        $('progress-text').textContent = `${p.chunks > 1 ? `batch ${p.chunk + 1}/${p.chunks}, ` : ''}step ${p.step}/${p.totalSteps} (${p.stepMs.toFixed(0)} ms)`;
      },
    });
  } catch (e) {
    button.disabled = false;
    const msg = (e as Error).message || String(e);
    if (e instanceof RangeError || e instanceof TypeError) showError('settings', msg);
    else showError('backend', `the ${state.backend.name} backend failed while sampling: ${msg}. Try another backend: add ?backend=wasm (or cpu) to the page address.`);
    return;
  } finally {
    button.disabled = false;
  }
  const bad = set.images.reduce((n, im) => n + im.reduce((k, v) => k + (Number.isFinite(v) ? 0 : 1), 0), 0);
  if (bad > 0) {
    showError('backend', `the model generated non-finite values (${bad} NaN or infinite) on the ${state.backend.name} backend; the model or the settings (guidance scale, sampler) do not work together, or the backend lacks float32 precision (try ?backend=wasm)`);
    return;
  }
  const later = set.stepMs.length > 1 ? set.stepMs.slice(1) : set.stepMs;
  const msPerStep = median(later);
  $('timing').textContent = `${set.stepMs.length} denoising steps of ${Math.min(settings.batchSize, set.images.length)} image(s) on ${state.backend.name}: ${msPerStep.toFixed(0)} ms per step (median; the first step took ${set.stepMs[0].toFixed(0)} ms, with warm-up), ${((performance.now() - t0) / 1000).toFixed(1)} s in all`;
  state.result = { images: set.images.map((a) => Array.from(a)), labels: set.labels, size: set.size, channels: set.channels, stepMs: set.stepMs, msPerStep };
  lastSet = { set, seed: settings.seed, rows: settings.classLabels.length, columns: settings.imagesPerClass };
  const grid = $('grid');
  grid.replaceChildren();
  for (let r = 0; r < settings.classLabels.length; r++) {
    const label = settings.classLabels[r];
    const row = document.createElement('div');
    row.className = 'row';
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = file.classNames[label];
    row.append(name);
    for (let c = 0; c < settings.imagesPerClass; c++) {
      const k = r * settings.imagesPerClass + c;
      const canvas = drawImage(set.images[k], set.size, set.channels);
      const filename = `${file.classNames[label]}-s${settings.seed}-${String(c).padStart(3, '0')}.png`;
      canvas.title = `${filename} (click to download)`;
      canvas.addEventListener('click', () => download(canvas, filename));
      row.append(canvas);
    }
    grid.append(row);
  }
  $('results').hidden = false;
  state.status = 'done';
}

function downloadAll(): void {
  if (!lastSet) return;
  const { set, rows, columns, seed } = lastSet;
  const data = new Float32Array(set.images.length * set.images[0].length);
  set.images.forEach((im, i) => data.set(im, i * im.length));
  const tiled = tileClassGrid({ data, rows, columns, height: set.size, width: set.size, channels: set.channels });
  const canvas = document.createElement('canvas');
  canvas.width = columns * set.size;
  canvas.height = rows * set.size;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(canvas.width, canvas.height);
  const q = (v: number) => Math.max(0, Math.min(255, Math.round(v * 255)));
  const ch = set.channels;
  for (let i = 0; i < canvas.width * canvas.height; i++) {
    const v = q(tiled[i * ch]);
    img.data.set([v, ch >= 3 ? q(tiled[i * ch + 1]) : v, ch >= 3 ? q(tiled[i * ch + 2]) : v, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  download(canvas, `fad-grid-s${seed}.png`);
}

$('file').addEventListener('change', async () => {
  const f = ($('file') as HTMLInputElement).files?.[0];
  if (f) await loadBytes(new Uint8Array(await f.arrayBuffer()), f.name);
});
$('load-url').addEventListener('click', () => {
  const u = ($('url') as HTMLInputElement).value.trim();
  if (u) void loadUrl(u);
});
$('sample').addEventListener('click', () => void sample());
$('download-all').addEventListener('click', downloadAll);
window.addEventListener('unhandledrejection', (ev) => showError('backend', String((ev.reason as Error)?.message ?? ev.reason)));

await startBackend();
const startModel = params.get('model');
if (startModel) {
  ($('url') as HTMLInputElement).value = startModel;
  await loadUrl(startModel);
}
