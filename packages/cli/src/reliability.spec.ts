/**
 * Model files are untrusted input (issue L), in process: every metadata field that becomes a path
 * (class names, a DreamBooth record, a manifest's image files), size limits, the scheduler, the
 * completion marker and finite weights are checked before use, naming the file and the field; writes
 * stay inside --out; --force never deletes the run's own inputs; stale temp files are removed; data
 * folders follow symbolic links with loop detection; config limits and duplicate classes; the wasm
 * micro-batch choice.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { decodeSafetensors, encodeSafetensors, UNET_PRESETS, UNet2DConditional, serializeUNet } from '@fad/diffusion-core';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from './cli';
import { parseConfig } from './config';
import { loadDataset, scanDataset } from './data';
import { writeDemoData } from './demo';
import { CliError, DivergenceError } from './errors';
import { readManifest } from './evaluate';
import { countNonFinite, generateImages } from './generate';
import { chooseMicroBatch } from './memory-fit';
import { loadModelFile } from './model-files';
import { assertNotDeletingInputs, pathInside, unsafeNameReason } from './safety';

const root = mkdtempSync(join(tmpdir(), 'fad-reliability-'));
const classes = ['stripes', 'rings', 'checker'];
const tinyConfig = { ...UNET_PRESETS.tiny, sampleSize: 8, numClasses: 3, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };

/** A U-Net file with the given metadata (classes by default). */
function modelFile(name: string, meta: Record<string, string> = {}, edit?: (m: UNet2DConditional) => void, config = tinyConfig): string {
  const path = join(root, name);
  const unet = new UNet2DConditional(config, { seed: 1 });
  edit?.(unet);
  writeFileSync(path, serializeUNet(unet, { classes: JSON.stringify(classes), ...meta }));
  unet.dispose();
  return path;
}

/** Rewrites a safetensors file's metadata. */
function withMetadata(src: string, name: string, change: (m: Record<string, string>) => void): string {
  const f = decodeSafetensors(new Uint8Array(readFileSync(src)));
  change(f.metadata);
  const path = join(root, name);
  writeFileSync(path, encodeSafetensors(f));
  return path;
}

const errorOf = (fn: () => unknown): Error => {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
};

/** Runs the CLI in process; returns the exit code and what it printed (stderr includes log lines). */
async function fad(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    err += String(s);
    return true;
  });
  try {
    const code = await main(['node', 'fad', '--backend', 'cpu', ...args], { out: (s) => (out += s), err: (s) => (err += s) });
    return { code, out, err };
  } finally {
    spy.mockRestore();
  }
}

let good = '';
beforeAll(async () => {
  await tf.setBackend('cpu');
  good = modelFile('good.safetensors');
});
afterEach(() => vi.restoreAllMocks());

describe('class names from a model file never become paths outside --out', () => {
  const bad: Array<[unknown[], RegExp]> = [
    [['../../x', 'rings', 'checker'], /metadata\.classes\[0\] "\.\.\/\.\.\/x" is not a usable class name: it must not contain "\/" or "\\" \(a path separator\)/],
    [['stripes', 'a/b', 'checker'], /metadata\.classes\[1\] "a\/b" .*path separator/],
    [['stripes', 'a\\b', 'checker'], /metadata\.classes\[1\] .*path separator/],
    [['stripes', '..', 'checker'], /metadata\.classes\[1\] "\.\." .*must not be "\.\." \(a path\)/],
    [['.', 'rings', 'checker'], /metadata\.classes\[0\] "\." .*must not be "\."/],
    [['stripes', 'nul\u0000x', 'checker'], /metadata\.classes\[1\] .*control characters/],
    [['stripes', '', 'checker'], /metadata\.classes\[1\] "" .*must not be empty/],
    [['stripes', 'x'.repeat(101), 'checker'], /must be at most 100 characters/],
    [['stripes', 'rings', 'stripes'], /metadata\.classes\[2\] "stripes" repeats .*metadata\.classes\[0\]; class names must be unique/],
    [['stripes', 'Stripes', 'rings'], /repeats/],
    [['stripes', 'rings'], /metadata\.classes lists 2 name\(s\), but the model has 3 classes/],
    [['stripes', 'rings', 'checker', 'extra'], /lists 4 name\(s\), but the model has 3 classes/],
    [['stripes', 7, 'checker'], /metadata\.classes\[1\] 7 .*must be a string/],
  ];
  it.each(bad.map(([names, re], i) => [i, names, re] as const))('case %i: %j is refused naming the file and the field', (i, names, re) => {
    const path = modelFile(`classes-${i}.safetensors`, { classes: JSON.stringify(names) });
    const e = errorOf(() => loadModelFile(path));
    expect(e).toBeInstanceOf(CliError);
    expect(e.message).toContain(path);
    expect(e.message).toMatch(re);
  });

  it('fad generate with a class named ../../x exits 1 and writes nothing outside --out (nor anything at all)', async () => {
    const dir = mkdtempSync(join(root, 'trav-'));
    const path = modelFile('trav.safetensors', { classes: JSON.stringify(['../../x', 'rings', 'checker']) });
    const r = await fad(['generate', '-m', path, '-o', join(dir, 'a', 'b', 'out'), '--steps', '1', '-n', '1', '--seeds', '0']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/fad: error: the model .*trav\.safetensors: metadata\.classes\[0\] "\.\.\/\.\.\/x" is not a usable class name/);
    expect(r.err).not.toMatch(/unexpected error/);
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync(join(dir, 'a', 'x'))).toBe(false);
  });

  it('a DreamBooth record must name a class and a token of the model', () => {
    const withToken = modelFile('db.safetensors', {}, undefined, { ...tinyConfig, conditioningTokens: [{ name: 'sks', fromClass: 0 }] } as never);
    const ok = withMetadata(withToken, 'db-ok.safetensors', (m) => (m.dreambooth = JSON.stringify({ class: 'stripes', classLabel: 0, token: 'sks', tokenLabel: 4 })));
    const loaded = loadModelFile(ok);
    expect(loaded.dreambooth).toEqual({ class: 'stripes', classLabel: 0, token: 'sks', tokenLabel: 4 });
    loaded.model.dispose();
    const bad = withMetadata(withToken, 'db-bad.safetensors', (m) => (m.dreambooth = JSON.stringify({ class: '../../x', classLabel: 0, token: 'sks', tokenLabel: 4 })));
    expect(errorOf(() => loadModelFile(bad)).message).toMatch(/db-bad\.safetensors: metadata\.dreambooth\.class must be one of the model's classes \(stripes, rings, checker\), got "\.\.\/\.\.\/x"/);
    const badLabel = withMetadata(withToken, 'db-label.safetensors', (m) => (m.dreambooth = JSON.stringify({ class: 'stripes', classLabel: 0, token: 'sks', tokenLabel: 1 })));
    expect(errorOf(() => loadModelFile(badLabel)).message).toMatch(/metadata\.dreambooth\.tokenLabel must be 4, got 1/);
  });

  it('a manifest\'s image files and class names stay inside the generated folder', () => {
    const dir = mkdtempSync(join(root, 'manifest-'));
    const m = { format: 'fad-generated/1', classNames: ['a', 'b'], imageSize: 8, channels: 1, images: [{ file: '../../etc/passwd', class: 'a' }] };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    expect(errorOf(() => readManifest(dir)).message).toMatch(/refusing to read .*passwd: .*manifest\.json: images\[0\]\.file would put it outside the input folder/);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...m, classNames: ['a', '../b'], images: [] }));
    expect(errorOf(() => readManifest(dir)).message).toMatch(/manifest\.json: classNames\[1\] "\.\.\/b" is not a usable class name/);
  });

  it('pathInside: lexical escapes and escapes through a symbolic link are refused', () => {
    const out = mkdtempSync(join(root, 'inside-'));
    const elsewhere = mkdtempSync(join(root, 'elsewhere-'));
    symlinkSync(elsewhere, join(out, 'link'));
    expect(pathInside(out, 'a/b.png')).toBe(join(out, 'a', 'b.png'));
    expect(() => pathInside(out, '../x.png', 'class "..x"')).toThrow(/refusing to write .*x\.png: class "\.\.x" would put it outside the output folder/);
    expect(() => pathInside(out, '/etc/x')).toThrow(/outside the output folder/);
    expect(() => pathInside(out, 'link/x.png')).toThrow(/outside the output folder/);
    expect(unsafeNameReason('tumor')).toBeNull();
    expect(unsafeNameReason('class_0')).toBeNull();
  });
});

describe('model metadata is validated by the library\'s own validators, within limits, naming file and field', () => {
  it('a huge sampleSize, an unknown beta schedule, a bad config and a huge tensor shape are refused before allocation', () => {
    const huge = withMetadata(good, 'huge.safetensors', (m) => (m.config = JSON.stringify({ ...JSON.parse(m.config), sampleSize: 1 << 20 })));
    expect(errorOf(() => loadModelFile(huge)).message).toMatch(/huge\.safetensors: metadata\.config\.sampleSize is 1048576, above the limit 2048/);
    const sched = withMetadata(good, 'sched.safetensors', (m) => (m.scheduler = JSON.stringify({ betaSchedule: 'nonsense', numTrainTimesteps: 1000 })));
    expect(errorOf(() => loadModelFile(sched)).message).toMatch(/sched\.safetensors: metadata\.scheduler: .*betaSchedule.*nonsense/);
    const steps = withMetadata(good, 'steps.safetensors', (m) => (m.scheduler = JSON.stringify({ numTrainTimesteps: 1e9 })));
    expect(errorOf(() => loadModelFile(steps)).message).toMatch(/metadata\.config\.scheduler\.numTrainTimesteps is 1000000000, above the limit 100000/);
    const cfg = withMetadata(good, 'cfg.safetensors', (m) => (m.config = JSON.stringify({ ...JSON.parse(m.config), normGroups: 3 })));
    expect(errorOf(() => loadModelFile(cfg)).message).toMatch(/cfg\.safetensors: metadata\.config: .*divisible by normGroups/);
    const json = withMetadata(good, 'json.safetensors', (m) => (m.classes = '["a",'));
    expect(errorOf(() => loadModelFile(json)).message).toMatch(/json\.safetensors: metadata\.classes is not valid JSON/);
    // A header claiming a tensor of 2^60 values.
    const header = JSON.stringify({ __metadata__: { format: 'fad-unet/1' }, w: { dtype: 'F32', shape: [1 << 30, 1 << 30], data_offsets: [0, 4] } });
    const bytes = Buffer.concat([Buffer.alloc(8), Buffer.from(header), Buffer.alloc(4)]);
    bytes.writeBigUInt64LE(BigInt(header.length), 0);
    writeFileSync(join(root, 'shape.safetensors'), bytes);
    expect(errorOf(() => loadModelFile(join(root, 'shape.safetensors'))).message).toMatch(/shape\.safetensors: the tensors hold more than 1000000000 values \(at "w"\)/);
  });
});

describe('completion marker and finite weights of model files', () => {
  it('a partial model or expert is refused with how to resume; a file without the key (older versions) is complete', async () => {
    const partial = withMetadata(good, 'partial.safetensors', (m) => (m['fad.status'] = 'partial'));
    expect(errorOf(() => loadModelFile(partial)).message).toMatch(/partial\.safetensors is unfinished \(metadata fad\.status is "partial".*fad train --out RUN_DIR --resume/);
    const odd = withMetadata(good, 'odd.safetensors', (m) => (m['fad.status'] = 'done?'));
    expect(errorOf(() => loadModelFile(odd)).message).toMatch(/odd\.safetensors: metadata\.fad\.status must be "complete" or "partial"/);
    const complete = withMetadata(good, 'complete.safetensors', (m) => (m['fad.status'] = 'complete'));
    for (const p of [good, complete]) loadModelFile(p).model.dispose();
  });

  it('non-finite weights: loading names the tensor (DivergenceError, exit 4 from fad generate)', async () => {
    let name = '';
    const nan = modelFile('nan.safetensors', {}, (m) => {
      const [n, v] = m.namedParameters()[3];
      name = n;
      v.assign(tf.fill(v.shape, Infinity));
    });
    const e = errorOf(() => loadModelFile(nan));
    expect(e).toBeInstanceOf(DivergenceError);
    expect(e.message).toContain(`tensor "${name}" has`);
    const dir = mkdtempSync(join(root, 'nan-'));
    const r = await fad(['generate', '-m', nan, '-o', join(dir, 'out'), '--steps', '1', '-n', '1', '--seeds', '0']);
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/fad: error: the model .*nan\.safetensors cannot be used: its weights are not finite/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
    expect(countNonFinite([1, NaN, Infinity, -Infinity, 0])).toBe(3);
  });
});

describe('--force never deletes the run\'s own inputs', () => {
  it('fad generate -m RUN -o RUN --force is refused and deletes nothing', async () => {
    const run = mkdtempSync(join(root, 'run-'));
    const model = join(run, 'model.safetensors');
    writeFileSync(model, readFileSync(good));
    writeFileSync(join(run, 'checkpoint.safetensors'), 'x');
    const r = await fad(['generate', '-m', run, '-o', run, '--force', '--steps', '1', '-n', '1', '--seeds', '0']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/refusing to --force replace .*: it holds the model .*model\.safetensors, which this run reads/);
    expect(readdirSync(run).sort()).toEqual(['checkpoint.safetensors', 'model.safetensors']);
  });

  it('also when the output is inside an input folder, or is not a folder fad generate wrote', async () => {
    const data = mkdtempSync(join(root, 'data-'));
    mkdirSync(join(data, 'tumor'));
    writeFileSync(join(data, 'tumor', 'a.png'), 'x');
    const r = await fad(['generate', '-m', good, '-d', data, '-o', join(data, 'tumor'), '--force', '--steps', '1', '-n', '1', '--seeds', '0']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/refusing to --force replace .*tumor: it is inside the data folder/);
    expect(existsSync(join(data, 'tumor', 'a.png'))).toBe(true);
    const other = mkdtempSync(join(root, 'other-'));
    writeFileSync(join(other, 'notes.txt'), 'keep');
    const o = await fad(['generate', '-m', good, '-o', other, '--force', '--steps', '1', '-n', '1', '--seeds', '0']);
    expect(o.code).toBe(1);
    expect(o.err).toMatch(/refusing to --force replace .*: it is not a folder written by fad generate \(no manifest\.json\)/);
    expect(readFileSync(join(other, 'notes.txt'), 'utf8')).toBe('keep');
    // A previous generate output is replaced as before.
    const gen = join(root, 'gen-ok');
    expect((await fad(['generate', '-m', good, '-o', gen, '--steps', '1', '-n', '1', '--seeds', '0'])).code).toBe(0);
    expect((await fad(['generate', '-m', good, '-o', gen, '--force', '--steps', '1', '-n', '1', '--seeds', '0'])).code).toBe(0);
  });

  it('assertNotDeletingInputs: files mode (train --force) refuses the folder of an input file and a folder inside an input', () => {
    const expertDir = mkdtempSync(join(root, 'expertdir-'));
    const input = { what: 'the expert', path: join(expertDir, 'expert.safetensors') };
    expect(() => assertNotDeletingInputs({ target: expertDir, inputs: [input], kind: 'files' })).toThrow(/it holds the expert/);
    expect(() => assertNotDeletingInputs({ target: join(expertDir, 'sub'), inputs: [{ what: 'the data folder', path: expertDir }], kind: 'files' })).toThrow(/it is inside the data folder/);
    // A data folder deeper inside the run folder (fad demo's layout) is not touched by train --force.
    expect(() => assertNotDeletingInputs({ target: root, inputs: [{ what: 'the data folder', path: join(root, 'x', 'data') }], kind: 'files' })).not.toThrow();
  });
});

describe('config values that cannot work are refused up front, naming the key', () => {
  it('duplicate classes, a huge image size, too many seeds', () => {
    expect(() => parseConfig({ data: { classes: ['tumor', 'stroma', 'tumor'] } })).toThrow(/data\.classes\.2: repeats "tumor" \(item 0\); each class may be named once/);
    expect(() => parseConfig({ data: { imageSize: 100000 } })).toThrow(/data\.imageSize: must be <= 2048 \(a limit of fad, see the README's "Limits"\), got 100000/);
    expect(() => parseConfig({ generate: { seeds: Array.from({ length: 10001 }, (_, i) => i) } })).toThrow(/generate\.seeds: must be a list of at most 10000 item\(s\)/);
    expect(() => parseConfig({ diffusion: { batchSize: 100000 } })).toThrow(/diffusion\.batchSize: must be <= 4096/);
    expect(() => parseConfig({ generate: { classes: ['a', 'a'] } })).toThrow(/generate\.classes\.1: repeats "a"/);
  });

  it('fad train --set data.classes=[x, x] exits 1 naming the key, before reading any data', async () => {
    const r = await fad(['--set', 'data.classes=[tumor, tumor]', 'train', '-d', join(root, 'nowhere'), '-o', join(root, 'never')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/data\.classes\.1: repeats "tumor"/);
    expect(existsSync(join(root, 'never'))).toBe(false);
  });
});

describe('symbolic links in data folders', () => {
  it('follows a linked class folder and linked images; skips loops and broken links with a counted warning', async () => {
    const src = mkdtempSync(join(root, 'src-'));
    await writeDemoData(src, 8, 3);
    const data = mkdtempSync(join(root, 'linked-'));
    const [a, b, c, d] = readdirSync(src).filter((f) => f.startsWith('0')).sort();
    symlinkSync(join(src, a), join(data, a)); // a linked class folder
    mkdirSync(join(data, b));
    for (const f of readdirSync(join(src, b))) symlinkSync(join(src, b, f), join(data, b, f)); // linked images
    symlinkSync(join(src, c), join(data, c));
    symlinkSync(join(src, c), join(data, `${d}_again`)); // a second link to the same folder
    symlinkSync(data, join(data, 'zz_loop')); // a loop to the data folder
    symlinkSync(join(data, 'self'), join(data, 'self')); // ELOOP
    symlinkSync(join(src, 'missing'), join(data, 'broken'));
    const scan = scanDataset(data);
    expect(scan.classes.map((x) => [x.folder, x.files.length])).toEqual([[a, 3], [b, 3], [c, 3]]);
    expect(scan.skippedLinks.map((l) => l.path).sort()).toEqual(['04_RINGS_again', 'broken', 'self', 'zz_loop'].sort());
    const warnings: string[] = [];
    const ds = await loadDataset(parseConfig({ data: { dir: data, imageSize: 8 } }).data, { warn: (m) => warnings.push(m) });
    expect(ds.files).toHaveLength(9);
    expect(warnings).toEqual([expect.stringMatching(/^4 symbolic link\(s\) in .* skipped \(2 loop\(s\)\): /)]);
    expect(warnings[0]).toMatch(/zz_loop: a symbolic link loop \(it points to .*, which holds the data folder\)/);
    expect(warnings[0]).toMatch(/self: a symbolic link loop/);
    expect(warnings[0]).toMatch(/broken: a broken symbolic link/);
    expect(warnings[0]).toMatch(/04_RINGS_again: a symbolic link to the class folder "03_CHECKER" \(already listed/);
  });
});

describe('defaults that fit the backend', () => {
  it('the default config on wasm trains in micro-batches of 4 (accumulating to the batch of 16); other backends keep whole batches', () => {
    const cfg = parseConfig({});
    const unet = { ...UNET_PRESETS[cfg.diffusion.unet.preset], sampleSize: cfg.data.imageSize };
    const wasm = chooseMicroBatch({ backend: 'wasm', batchSize: cfg.diffusion.batchSize, configured: cfg.diffusion.microBatchSize, unet });
    expect(wasm).toMatchObject({ microBatchSize: 4, automatic: true });
    expect(wasm.message).toMatch(/wasm backend: training in micro-batches of 4 with gradient accumulation over 4 \(the batch stays 16\)/);
    for (const backend of ['cpu', 'native', 'tensorflow']) expect(chooseMicroBatch({ backend, batchSize: 16, configured: null, unet }).microBatchSize).toBeNull();
    expect(chooseMicroBatch({ backend: 'wasm', batchSize: 16, configured: 4, unet })).toMatchObject({ microBatchSize: 4, automatic: false, message: null });
    // A configured micro-batch that will not fit is kept, with a warning saying what to change.
    expect(chooseMicroBatch({ backend: 'wasm', batchSize: 16, configured: 16, unet }).message).toMatch(/warning: wasm backend: micro-batches of 16 images are likely not to fit .*set diffusion\.microBatchSize to 4/);
    expect(chooseMicroBatch({ backend: 'cpu', batchSize: 16, configured: 8, unet })).toMatchObject({ microBatchSize: 8, message: null });
    // Twice the pixels per side: a quarter of the images; small models fit whole batches.
    expect(chooseMicroBatch({ backend: 'wasm', batchSize: 16, configured: null, unet: { ...unet, sampleSize: 128 } }).microBatchSize).toBe(1);
    expect(chooseMicroBatch({ backend: 'wasm', batchSize: 16, configured: null, unet: { ...UNET_PRESETS.tiny, sampleSize: 8 } }).microBatchSize).toBeNull();
    expect(chooseMicroBatch({ backend: 'wasm', batchSize: 3, configured: null, unet }).microBatchSize).toBeNull();
  });
});

describe('generateImages writes only inside its output', () => {
  it('writes every class folder under --out (valid names unchanged)', async () => {
    const out = join(root, 'gen-valid');
    const m = await generateImages({ checkpoint: good, out, gen: parseConfig({ generate: { steps: 1, imagesPerClass: 1, seeds: [0] } }).generate, backend: 'cpu', quiet: true, log: () => {} });
    expect(readdirSync(out).sort()).toEqual(['checker', 'manifest.json', 'rings', 'stripes', 'timing.json']);
    expect(m.images.map((i) => i.file)).toEqual(['stripes/s0-000.png', 'rings/s0-000.png', 'checker/s0-000.png']);
  });
});
