/**
 * Image folders: one subfolder per class holding PNG, TIFF or JPEG files, decoded with sharp.
 *
 * - Class names: the folder name without a leading number and separator, lower-cased, so Kather's
 *   `01_TUMOR` is `tumor` (`mapClassName`). Labels follow `data.classes` when given, else the sorted
 *   folder names.
 * - Pixels: decoded to 8-bit, alpha dropped, converted to grayscale with the ITU-R BT.601 luma
 *   weights (0.299 R + 0.587 G + 0.114 B, as PIL's `convert('L')`) when `channels` is 1, then
 *   resized to `imageSize` in JavaScript, exactly:
 *   - `area` (default): box filter over the exact source footprint of each output pixel, with
 *     fractional edge weights (PIL `Image.BOX`, OpenCV `INTER_AREA` when shrinking). Every source
 *     pixel counts, so downscaling does not alias. Used by the project's reference data.
 *   - `bilinear`: half-pixel centres, no antialiasing (tf.image.resizeBilinear with
 *     halfPixelCenters, PyTorch `interpolate(align_corners=False)`). Aliases when shrinking by > 2x.
 *   Values are floats in [0, 1].
 * - Bad files (unreadable or corrupt, a size other than the data set's usual one, non-square, a
 *   channel count that cannot be converted): `onBadFile: error` stops with the file and the reason;
 *   `skip` warns, leaves the file out and counts it in the summary.
 *
 * The reusable part (decoding, resizing, scanning) belongs in a data package; it lives here until
 * there is one.
 */
import { type Dirent, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { extname, isAbsolute, join, relative, resolve } from 'node:path';
import { resizeImageData } from '@fad/diffusion-core';
import sharp from 'sharp';
import type { DataConfig } from './config';
import { CliError, withFs } from './errors';
import { LIMITS } from './limits';

export const IMAGE_EXTENSIONS = ['.png', '.tif', '.tiff', '.jpg', '.jpeg'] as const;
/** Files that may sit next to the class folders or images without being reported. */
const IGNORED = new Set(['manifest.tsv', 'readme.md', 'readme.txt', 'license', 'license.txt', '.ds_store', 'thumbs.db']);

/** `01_TUMOR` -> `tumor`, `2-stroma` -> `stroma`, `Adipose` -> `adipose`. */
export function mapClassName(folder: string): string {
  const stripped = folder.replace(/^\d+[\s._-]*/, '').trim().toLowerCase().replace(/\s+/g, '_');
  return stripped.length > 0 ? stripped : folder.toLowerCase();
}

export interface ScannedClass {
  /** Mapped name (`tumor`). */
  name: string;
  /** Folder name (`01_TUMOR`). */
  folder: string;
  /** Image files, sorted, relative to the data folder. */
  files: string[];
}

export interface ScanResult {
  dir: string;
  classes: ScannedClass[];
  /** Files that are not images, or not inside a class folder (relative paths). */
  oddFiles: string[];
  /**
   * Symbolic links that were not followed: loops (a link to itself, to the data folder or a folder
   * above it, or to a class folder already scanned) and broken links, with the reason.
   */
  skippedLinks: Array<{ path: string; reason: string }>;
}

function sortNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `inner` is `outer` or inside it. */
function within(outer: string, inner: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * What a directory entry is, following symbolic links safely: a link is resolved (realpath) and
 * stat'ed; a loop (ELOOP) or broken link is reported instead.
 */
function entryKind(full: string, e: Dirent): { kind: 'dir' | 'file' | 'other'; real: string | null } | { skip: string } {
  if (!e.isSymbolicLink()) return { kind: e.isDirectory() ? 'dir' : e.isFile() ? 'file' : 'other', real: null };
  try {
    const real = realpathSync(full);
    const st = statSync(real);
    return { kind: st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other', real };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { skip: code === 'ELOOP' ? 'a symbolic link loop' : code === 'ENOENT' ? 'a broken symbolic link (its target does not exist)' : `a symbolic link that cannot be followed (${code ?? (err as Error).message})` };
  }
}

/**
 * Lists class folders and their image files. Throws a CliError for a missing or empty folder.
 * Symbolic links to class folders and images are followed; a link loop (to itself, to the data
 * folder or above it, or a second link to a class folder already listed) and broken links are
 * skipped and listed in `skippedLinks` (loadDataset and inspectDataset warn, counting them).
 */
export function scanDataset(dirIn: string): ScanResult {
  const dir = resolve(dirIn);
  if (!existsSync(dir)) throw new CliError(`data folder ${dirIn} does not exist`);
  if (!statSync(dir).isDirectory()) throw new CliError(`data folder ${dirIn} is not a folder`);
  const entries = withFs(dir, 'list the data folder', () => readdirSync(dir, { withFileTypes: true })).sort((a, b) => sortNames(a.name, b.name));
  const classes: ScannedClass[] = [];
  const oddFiles: string[] = [];
  const skippedLinks: ScanResult['skippedLinks'] = [];
  const seen = new Map<string, string>();
  const rootReal = realpathSync(dir);
  // Real paths of the class folders listed so far (loop and duplicate detection).
  const visited = new Map<string, string>();
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const k = entryKind(join(dir, e.name), e);
    if ('skip' in k) {
      skippedLinks.push({ path: e.name, reason: k.skip });
      continue;
    }
    if (k.kind !== 'dir') {
      if (!IGNORED.has(e.name.toLowerCase())) oddFiles.push(e.name);
      continue;
    }
    const real = k.real ?? realpathSync(join(dir, e.name));
    if (within(real, rootReal)) {
      skippedLinks.push({ path: e.name, reason: `a symbolic link loop (it points to ${real}, which holds the data folder)` });
      continue;
    }
    if (visited.has(real)) {
      skippedLinks.push({ path: e.name, reason: `a symbolic link to the class folder "${visited.get(real)}" (already listed; its images would get two labels)` });
      continue;
    }
    visited.set(real, e.name);
    const name = mapClassName(e.name);
    if (seen.has(name)) {
      throw new CliError(`data folder ${dirIn}: folders "${seen.get(name)}" and "${e.name}" both map to the class name "${name}"`);
    }
    seen.set(name, e.name);
    const files: string[] = [];
    const classDir = join(dir, e.name);
    for (const f of withFs(classDir, 'list the class folder', () => readdirSync(classDir, { withFileTypes: true })).sort((a, b) => sortNames(a.name, b.name))) {
      if (f.name.startsWith('.')) continue;
      const rel = `${e.name}/${f.name}`;
      const fk = entryKind(join(classDir, f.name), f);
      if ('skip' in fk) {
        skippedLinks.push({ path: rel, reason: fk.skip });
        continue;
      }
      if (fk.kind === 'file' && (IMAGE_EXTENSIONS as readonly string[]).includes(extname(f.name).toLowerCase())) files.push(rel);
      else if (!IGNORED.has(f.name.toLowerCase())) oddFiles.push(fk.kind === 'dir' ? `${rel}/` : rel);
    }
    classes.push({ name, folder: e.name, files });
  }
  if (classes.length === 0) {
    throw new CliError(`data folder ${dirIn} has no class subfolders (expected ${dirIn}/<class>/<image>.png|tif|jpg)${skippedLinks.length ? `; ${skippedLinks.length} symbolic link(s) skipped: ${skippedLinks.map((l) => `${l.path} (${l.reason})`).join(', ')}` : ''}`);
  }
  return { dir, classes, oddFiles, skippedLinks };
}

/** One warning line for the skipped symbolic links of a scan, or null. */
export function skippedLinksWarning(scan: Pick<ScanResult, 'dir' | 'skippedLinks'>): string | null {
  const l = scan.skippedLinks;
  if (l.length === 0) return null;
  const loops = l.filter((x) => /loop/.test(x.reason)).length;
  const shown = l.slice(0, 5).map((x) => `${x.path}: ${x.reason}`).join('; ');
  return `${l.length} symbolic link(s) in ${scan.dir} skipped (${loops} loop(s)): ${shown}${l.length > 5 ? '; ...' : ''}`;
}

/** Resizes one image (Float32, HWC, values in any range) with the chosen method (`resizeImageData`). */
export function resizeImage(
  src: Float32Array, h: number, w: number, c: number, outH: number, outW: number, method: 'area' | 'bilinear',
): Float32Array {
  return resizeImageData({ pixels: src, height: h, width: w, channels: c, outHeight: outH, outWidth: outW, method });
}

export interface DecodedImage {
  width: number;
  height: number;
  /** Channels of the file (before conversion), alpha included. */
  fileChannels: number;
  space: string;
  format: string;
  /** Pixels in [0, 1], HWC with `channels` channels, at the file's size. */
  pixels: Float32Array;
}

/** Decodes a file to floats with 1 (BT.601 luma) or 3 channels. Throws an Error with the reason. */
export async function decodeImage(path: string, channels: 1 | 3): Promise<DecodedImage> {
  const img = sharp(path, { failOn: 'error' });
  const meta = await img.metadata();
  const fileChannels = meta.channels ?? 0;
  const space = meta.space ?? 'unknown';
  if (space === 'cmyk') throw new Error(`is a CMYK image (${fileChannels} channels); only grayscale and RGB are supported`);
  if (![1, 2, 3, 4].includes(fileChannels)) throw new Error(`has ${fileChannels} channels; expected 1 (grayscale), 3 (RGB) or with alpha 2/4`);
  const hasColour = fileChannels >= 3;
  if (channels === 3 && !hasColour) throw new Error(`has ${fileChannels} channel(s) (grayscale), but data.channels is 3 (RGB)`);
  const { data, info } = await img.removeAlpha().toColourspace(hasColour ? 'srgb' : 'b-w').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  const pixels = new Float32Array(n * channels);
  if (info.channels === channels) {
    for (let i = 0; i < n * channels; i++) pixels[i] = data[i] / 255;
  } else if (channels === 1 && info.channels >= 3) {
    // ITU-R BT.601 luma (PIL's convert('L') uses these weights, rounding to 8 bits).
    for (let i = 0; i < n; i++) {
      const r = data[i * info.channels];
      const g = data[i * info.channels + 1];
      const b = data[i * info.channels + 2];
      pixels[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * b) / 255;
    }
  } else {
    throw new Error(`decoded to ${info.channels} channels, cannot make ${channels}`);
  }
  return { width: info.width, height: info.height, fileChannels, space, format: meta.format ?? 'unknown', pixels };
}

export interface BadFile {
  file: string;
  reason: string;
}

export interface LoadedDataset {
  dir: string;
  /** Class names in label order. */
  classNames: string[];
  /** Folder of each class. */
  folders: string[];
  imageSize: number;
  channels: 1 | 3;
  /** [N, S, S, C] in [0, 1], row-major. */
  images: Float32Array;
  labels: Int32Array;
  /** Relative path of each image. */
  files: string[];
  /** Source size of the used images (`150x150`). */
  sourceSize: string;
  skipped: BadFile[];
  oddFiles: string[];
  /** sha256 over the used files' paths, labels and the decoding settings (not the pixels). */
  fingerprint: string;
}

/** Runs `fn` over items with at most `limit` in flight, preserving order. */
export async function mapLimit<T, U>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<U>): Promise<U[]> {
  const out = new Array<U>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Chooses the classes to use, in label order, checking names against the folders. */
export function selectClasses(scan: ScanResult, wanted: readonly string[] | null): ScannedClass[] {
  if (!wanted) return scan.classes;
  const byName = new Map(scan.classes.map((c) => [c.name, c]));
  return wanted.map((w) => {
    const c = byName.get(w) ?? byName.get(mapClassName(w));
    if (!c) throw new CliError(`data.classes names "${w}", which is not a class of ${scan.dir} (classes: ${scan.classes.map((x) => x.name).join(', ')})`);
    return c;
  });
}

export interface LoadDatasetOptions {
  /** Warnings (skipped files). Default: stderr. */
  warn?: (message: string) => void;
  /** Progress callback (files decoded so far). */
  onProgress?: (done: number, total: number) => void;
}

/** Loads a class-folder data set as configured. */
export async function loadDataset(cfg: DataConfig, opts: LoadDatasetOptions = {}): Promise<LoadedDataset> {
  if (!cfg.dir) throw new CliError('no data folder: set data.dir in the config or pass --data DIR');
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`fad: warning: ${m}\n`));
  const scan = scanDataset(cfg.dir);
  const linkWarning = skippedLinksWarning(scan);
  if (linkWarning) warn(linkWarning);
  const classes = selectClasses(scan, cfg.classes);
  for (const c of classes) {
    if (c.files.length === 0) throw new CliError(`class folder ${join(cfg.dir, c.folder)} ("${c.name}") has no PNG, TIFF or JPEG files`);
  }
  const jobs: Array<{ file: string; label: number }> = [];
  classes.forEach((c, label) => {
    const files = cfg.maxPerClass ? c.files.slice(0, cfg.maxPerClass) : c.files;
    for (const file of files) jobs.push({ file, label });
  });
  // The images are held as float32 [N, S, S, C]: say up front when that cannot be allocated.
  const values = jobs.length * cfg.imageSize * cfg.imageSize * cfg.channels;
  if (values > LIMITS.maxDatasetValues) {
    throw new CliError(`data: ${jobs.length} images of ${cfg.imageSize}x${cfg.imageSize}x${cfg.channels} need ${(values * 4 / 2 ** 30).toFixed(1)} GiB as float32, above the limit of ${LIMITS.maxDatasetValues * 4 / 2 ** 30} GiB; lower data.imageSize or set data.maxPerClass`);
  }
  let done = 0;
  const decoded = await mapLimit(jobs, 4, async (job) => {
    let r: DecodedImage | BadFile;
    try {
      r = await decodeImage(join(scan.dir, job.file), cfg.channels);
    } catch (e) {
      const msg = (e as Error).message.replace(/^Input file /, '').split('\n')[0];
      r = { file: job.file, reason: /^(is |has |decoded )/.test(msg) ? msg : `cannot be decoded (${msg})` };
    }
    done++;
    opts.onProgress?.(done, jobs.length);
    return r;
  });
  // The usual size: the most common one among decodable files.
  const sizes = new Map<string, number>();
  for (const d of decoded) if ('pixels' in d) sizes.set(`${d.width}x${d.height}`, (sizes.get(`${d.width}x${d.height}`) ?? 0) + 1);
  const usual = [...sizes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
  const skipped: BadFile[] = [];
  const keep: Array<{ file: string; label: number; img: DecodedImage }> = [];
  decoded.forEach((d, i) => {
    const file = jobs[i].file;
    let reason: string | null = null;
    if (!('pixels' in d)) reason = d.reason;
    else if (d.width !== d.height) reason = `is ${d.width}x${d.height}, not square`;
    else if (`${d.width}x${d.height}` !== usual) reason = `is ${d.width}x${d.height}, but the other images are ${usual} (mixed sizes)`;
    if (reason) {
      if (cfg.onBadFile === 'error') {
        throw new CliError(`${join(cfg.dir as string, file)} ${reason}. Fix or remove the file, or set data.onBadFile: skip to leave bad files out.`);
      }
      warn(`skipping ${join(cfg.dir as string, file)}: ${reason}`);
      skipped.push({ file, reason });
    } else keep.push({ file, label: jobs[i].label, img: d as DecodedImage });
  });
  for (let label = 0; label < classes.length; label++) {
    if (!keep.some((k) => k.label === label)) {
      throw new CliError(`class "${classes[label].name}" (${join(cfg.dir, classes[label].folder)}) has no usable image after skipping ${skipped.filter((s) => s.file.startsWith(`${classes[label].folder}/`)).length} bad file(s)`);
    }
  }
  const s = cfg.imageSize;
  const c = cfg.channels;
  const images = new Float32Array(keep.length * s * s * c);
  keep.forEach((k, i) => images.set(resizeImage(k.img.pixels, k.img.height, k.img.width, c, s, s, cfg.resize), i * s * s * c));
  const { createHash } = await import('node:crypto');
  const h = createHash('sha256');
  h.update(JSON.stringify({ size: s, channels: c, resize: cfg.resize }));
  for (const k of keep) h.update(`${k.label}\t${k.file}\n`);
  return {
    dir: scan.dir,
    classNames: classes.map((x) => x.name),
    folders: classes.map((x) => x.folder),
    imageSize: s,
    channels: c,
    images,
    labels: Int32Array.from(keep.map((k) => k.label)),
    files: keep.map((k) => k.file),
    sourceSize: usual,
    skipped,
    oddFiles: scan.oddFiles,
    fingerprint: h.digest('hex'),
  };
}

export interface InspectReport {
  dir: string;
  classes: Array<{ name: string; folder: string; count: number }>;
  total: number;
  /** `150x150` -> count. */
  sizes: Record<string, number>;
  /** `tiff rgb 3ch` -> count. */
  modes: Record<string, number>;
  unreadable: BadFile[];
  oddFiles: string[];
  emptyClasses: string[];
  warnings: string[];
}

/** Reads only the headers of every image: classes, counts, sizes, modes, unreadable and odd files. */
export async function inspectDataset(dir: string): Promise<InspectReport> {
  const scan = scanDataset(dir);
  const all = scan.classes.flatMap((c) => c.files);
  const metas = await mapLimit(all, 8, async (file) => {
    try {
      const m = await sharp(join(scan.dir, file), { failOn: 'error' }).metadata();
      // Decode too: a truncated file often has a valid header.
      await sharp(join(scan.dir, file), { failOn: 'error' }).raw().toBuffer();
      return { file, size: `${m.width}x${m.height}`, mode: `${m.format} ${m.space ?? '?'} ${m.channels}ch${m.hasAlpha ? ' alpha' : ''}` };
    } catch (e) {
      return { file, error: (e as Error).message.replace(/^Input file /, '').split('\n')[0] };
    }
  });
  const sizes: Record<string, number> = {};
  const modes: Record<string, number> = {};
  const unreadable: BadFile[] = [];
  for (const m of metas) {
    if ('error' in m) unreadable.push({ file: m.file, reason: m.error as string });
    else {
      sizes[m.size] = (sizes[m.size] ?? 0) + 1;
      modes[m.mode] = (modes[m.mode] ?? 0) + 1;
    }
  }
  const warnings: string[] = [];
  const emptyClasses = scan.classes.filter((c) => c.files.length === 0).map((c) => c.folder);
  if (emptyClasses.length) warnings.push(`class folder(s) with no images: ${emptyClasses.join(', ')}`);
  if (Object.keys(sizes).length > 1) {
    const usual = Object.entries(sizes).sort((a, b) => b[1] - a[1])[0][0];
    const odd = metas.filter((m) => !('error' in m) && m.size !== usual).slice(0, 5);
    warnings.push(`mixed image sizes (${Object.keys(sizes).join(', ')}); e.g. ${odd.map((m) => `${m.file} is ${(m as { size: string }).size}`).join(', ')}`);
  }
  if (Object.keys(modes).length > 1) warnings.push(`mixed image modes: ${Object.keys(modes).join('; ')}`);
  if (unreadable.length) warnings.push(`${unreadable.length} unreadable file(s)`);
  if (scan.oddFiles.length) warnings.push(`${scan.oddFiles.length} file(s) that are not images in class folders, or not in a class folder`);
  const linkWarning = skippedLinksWarning(scan);
  if (linkWarning) warnings.push(linkWarning);
  const counts = scan.classes.map((c) => c.files.length);
  if (counts.length > 1 && Math.max(...counts) > 2 * Math.max(1, Math.min(...counts))) warnings.push('classes are unbalanced (largest more than twice the smallest)');
  return {
    dir: relative(process.cwd(), scan.dir) || '.',
    classes: scan.classes.map((c) => ({ name: c.name, folder: c.folder, count: c.files.length })),
    total: all.length,
    sizes,
    modes,
    unreadable,
    oddFiles: scan.oddFiles,
    emptyClasses,
    warnings,
  };
}

export interface DataSplit {
  seed: number;
  validationFraction: number;
  /** Indices into the data set, ascending. */
  train: number[];
  validation: number[];
}
