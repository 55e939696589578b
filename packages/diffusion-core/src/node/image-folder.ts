/**
 * Loading an image folder (one subfolder per class, see `scanImageFolder`) into one float32 array
 * [N, S, S, C] in [0, 1] with integer labels, and inspecting one without loading it.
 *
 * - Labels follow `classes` when given (folder names or mapped class names), else the sorted folders.
 * - Each file is decoded with sharp (`decodeImageFile`: 1 channel is BT.601 luma) and resized to
 *   `imageSize` in JavaScript with `resizeImageData` (`'area'`: box filter over the exact source
 *   footprint, PIL `BOX`; `'bilinear'`: half-pixel centres, no antialiasing), so a folder loads to
 *   the same values on every machine and backend.
 * - Bad files (unreadable or corrupt, a size other than the folder's usual one, non-square, a
 *   channel count that cannot be converted): `onBadFile: 'error'` throws an ImageFolderError
 *   `bad-file` naming the file and the reason; `'skip'` warns, leaves the file out and lists it in
 *   `skipped`.
 * - `fingerprint`: sha256 over the used files' paths, labels and the decoding settings (not the
 *   pixels), for resumable runs to check that they see the same data.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { RESIZE_IMAGE_DATA_METHODS, resizeImageData } from '../image/resize-images';
import { type DecodedImage, decodeImageFile, loadSharp } from './decode-image-file';
import { ImageFolderError } from './image-folder-error';
import { type ImageFolderScan, mapClassName, type ScannedClass, scanImageFolder, skippedLinksWarning } from './image-folder-scan';
import { mapLimit } from './map-limit';

/** A file left out, and why (`is 12x12, but the other images are 8x8 (mixed sizes)`). */
export interface BadImageFile {
  /** Path relative to the folder. */
  file: string;
  reason: string;
}

/** Parameters of {@link loadImageFolder}. */
export interface LoadImageFolderParams {
  /** The data folder. */
  dir: string;
  /** Side of the square images after resizing. */
  imageSize: number;
  /** 1 (grayscale) or 3 (RGB). */
  channels: 1 | 3;
  /** Resize method, default `'area'`. */
  resize?: (typeof RESIZE_IMAGE_DATA_METHODS)[number];
  /** Classes to load, in label order (folder or class names); default all, sorted. */
  classes?: readonly string[] | null;
  /** Keep at most this many files per class (the first in sorted order); default all. */
  maxPerClass?: number | null;
  /** `'error'` (default): throw at the first bad file; `'skip'`: warn and leave it out. */
  onBadFile?: 'error' | 'skip';
  /** Called with each warning (skipped files and symbolic links); they are also in the result. */
  onWarning?: (message: string) => void;
  /** Called after each decoded file. */
  onProgress?: (done: number, total: number) => void;
  /** Refuse folders that need more float32 values than this; default 2^31 (8 GiB). */
  maxValues?: number;
}

/** What {@link loadImageFolder} returns. */
export interface LoadedImageFolder {
  /** The folder, absolute. */
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
  skipped: BadImageFile[];
  oddFiles: string[];
  /** Warnings given (also passed to `onWarning`). */
  warnings: string[];
  /** sha256 over the used files' paths, labels and the decoding settings (not the pixels). */
  fingerprint: string;
}

const BAD_FILE_POLICIES = ['error', 'skip'] as const;

function checkLoadParams(p: LoadImageFolderParams): void {
  const fn = 'loadImageFolder';
  if (typeof p !== 'object' || p === null) throw new TypeError(`${fn}: expected one params object, got ${String(p)}`);
  const bad = (field: string, expected: string, got: unknown): never => {
    throw new RangeError(`${fn}: ${field} must be ${expected}, got ${JSON.stringify(got) ?? String(got)}`);
  };
  if (typeof p.dir !== 'string' || p.dir === '') bad('dir', 'a non-empty string', p.dir);
  if (!Number.isInteger(p.imageSize) || p.imageSize < 1) bad('imageSize', 'an integer >= 1', p.imageSize);
  if (p.channels !== 1 && p.channels !== 3) bad('channels', '1 or 3', p.channels);
  if (p.resize !== undefined && !(RESIZE_IMAGE_DATA_METHODS as readonly unknown[]).includes(p.resize)) bad('resize', `one of ${RESIZE_IMAGE_DATA_METHODS.map((m) => `'${m}'`).join(', ')}`, p.resize);
  if (p.onBadFile !== undefined && !(BAD_FILE_POLICIES as readonly unknown[]).includes(p.onBadFile)) bad('onBadFile', "'error' or 'skip'", p.onBadFile);
  if (p.classes != null && (!Array.isArray(p.classes) || p.classes.length === 0 || !p.classes.every((c) => typeof c === 'string'))) bad('classes', 'a non-empty array of class names', p.classes);
  if (p.maxPerClass != null && (!Number.isInteger(p.maxPerClass) || p.maxPerClass < 1)) bad('maxPerClass', 'an integer >= 1', p.maxPerClass);
  if (p.maxValues !== undefined && !(typeof p.maxValues === 'number' && p.maxValues > 0)) bad('maxValues', 'a number > 0', p.maxValues);
  for (const f of ['onWarning', 'onProgress'] as const) if (p[f] !== undefined && typeof p[f] !== 'function') bad(f, 'a function', typeof p[f]);
}

/** The classes to use, in label order, checking the names against the folders. */
export function selectImageFolderClasses(scan: ImageFolderScan, wanted: readonly string[] | null | undefined): ScannedClass[] {
  if (!wanted) return scan.classes;
  const byName = new Map(scan.classes.map((c) => [c.name, c]));
  return wanted.map((w) => {
    const c = byName.get(w) ?? byName.get(mapClassName(w));
    if (!c) {
      const classes = scan.classes.map((x) => x.name);
      throw new ImageFolderError('unknown-class', `classes names "${w}", which is not a class of ${scan.dir} (classes: ${classes.join(', ')})`, { name: w, dir: scan.dir, classes });
    }
    return c;
  });
}

/** Loads a class-folder data set (see the file comment). */
export async function loadImageFolder(params: LoadImageFolderParams): Promise<LoadedImageFolder> {
  checkLoadParams(params);
  const { dir: dirIn, imageSize: s, channels: c, resize = 'area', onBadFile = 'error', maxValues = 2 ** 31 } = params;
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    params.onWarning?.(m);
  };
  const scan = scanImageFolder({ dir: dirIn });
  const linkWarning = skippedLinksWarning(scan);
  if (linkWarning) warn(linkWarning);
  const classes = selectImageFolderClasses(scan, params.classes);
  for (const k of classes) {
    if (k.files.length === 0) throw new ImageFolderError('empty-class', `class folder ${join(dirIn, k.folder)} ("${k.name}") has no PNG, TIFF or JPEG files`, { folder: k.folder, name: k.name });
  }
  const jobs: Array<{ file: string; label: number }> = [];
  classes.forEach((k, label) => {
    for (const file of params.maxPerClass ? k.files.slice(0, params.maxPerClass) : k.files) jobs.push({ file, label });
  });
  // The images are held as float32 [N, S, S, C]: say up front when that cannot be allocated.
  const values = jobs.length * s * s * c;
  if (values > maxValues) {
    throw new ImageFolderError('too-large', `${jobs.length} images of ${s}x${s}x${c} need ${((values * 4) / 2 ** 30).toFixed(1)} GiB as float32, above the limit of ${(maxValues * 4) / 2 ** 30} GiB; lower imageSize or set maxPerClass`, { count: jobs.length, values, maxValues });
  }
  await loadSharp();
  let done = 0;
  const decoded = await mapLimit(jobs, 4, async (job): Promise<DecodedImage | BadImageFile> => {
    let r: DecodedImage | BadImageFile;
    try {
      r = await decodeImageFile({ path: join(scan.dir, job.file), channels: c });
    } catch (e) {
      const msg = (e as Error).message.replace(/^Input file /, '').split('\n')[0];
      r = { file: job.file, reason: /^(is |has |decoded )/.test(msg) ? msg : `cannot be decoded (${msg})` };
    }
    done++;
    params.onProgress?.(done, jobs.length);
    return r;
  });
  // The usual size: the most common one among decodable files.
  const sizes = new Map<string, number>();
  for (const d of decoded) if ('pixels' in d) sizes.set(`${d.width}x${d.height}`, (sizes.get(`${d.width}x${d.height}`) ?? 0) + 1);
  const usual = [...sizes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
  const skipped: BadImageFile[] = [];
  const keep: Array<{ file: string; label: number; img: DecodedImage }> = [];
  decoded.forEach((d, i) => {
    const file = jobs[i].file;
    let reason: string | null = null;
    if (!('pixels' in d)) reason = d.reason;
    else if (d.width !== d.height) reason = `is ${d.width}x${d.height}, not square`;
    else if (`${d.width}x${d.height}` !== usual) reason = `is ${d.width}x${d.height}, but the other images are ${usual} (mixed sizes)`;
    if (reason) {
      const path = join(dirIn, file);
      if (onBadFile === 'error') {
        throw new ImageFolderError('bad-file', `${path} ${reason}. Fix or remove the file, or pass onBadFile: 'skip' to leave bad files out.`, { path, file, reason });
      }
      warn(`skipping ${path}: ${reason}`);
      skipped.push({ file, reason });
    } else keep.push({ file, label: jobs[i].label, img: d as DecodedImage });
  });
  for (let label = 0; label < classes.length; label++) {
    if (!keep.some((k) => k.label === label)) {
      const k = classes[label];
      const bad = skipped.filter((x) => x.file.startsWith(`${k.folder}/`)).length;
      throw new ImageFolderError('empty-class', `class "${k.name}" (${join(dirIn, k.folder)}) has no usable image after skipping ${bad} bad file(s)`, { folder: k.folder, name: k.name });
    }
  }
  const per = s * s * c;
  const images = new Float32Array(keep.length * per);
  keep.forEach((k, i) => images.set(resizeImageData({ pixels: k.img.pixels, height: k.img.height, width: k.img.width, channels: c, outHeight: s, outWidth: s, method: resize }), i * per));
  const h = createHash('sha256');
  h.update(JSON.stringify({ size: s, channels: c, resize }));
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
    warnings,
    fingerprint: h.digest('hex'),
  };
}

/** Parameters of {@link inspectImageFolder}. */
export interface InspectImageFolderParams {
  /** The data folder. */
  dir: string;
}

/** What {@link inspectImageFolder} found. */
export interface ImageFolderReport {
  /** The folder, absolute. */
  dir: string;
  classes: Array<{ name: string; folder: string; count: number }>;
  total: number;
  /** `150x150` -> count. */
  sizes: Record<string, number>;
  /** `tiff rgb 3ch` -> count. */
  modes: Record<string, number>;
  unreadable: BadImageFile[];
  oddFiles: string[];
  /** Class folders without images. */
  emptyClasses: string[];
  warnings: string[];
}

/** Reads and decodes every image without keeping it: classes, counts, sizes, modes, unreadable and odd files. */
export async function inspectImageFolder(params: InspectImageFolderParams): Promise<ImageFolderReport> {
  if (typeof params !== 'object' || params === null) throw new TypeError(`inspectImageFolder: expected one params object, got ${String(params)}`);
  const scan = scanImageFolder({ dir: params.dir });
  const sharp = await loadSharp();
  const all = scan.classes.flatMap((k) => k.files);
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
  const unreadable: BadImageFile[] = [];
  for (const m of metas) {
    if ('error' in m) unreadable.push({ file: m.file, reason: m.error as string });
    else {
      sizes[m.size] = (sizes[m.size] ?? 0) + 1;
      modes[m.mode] = (modes[m.mode] ?? 0) + 1;
    }
  }
  const warnings: string[] = [];
  const emptyClasses = scan.classes.filter((k) => k.files.length === 0).map((k) => k.folder);
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
  const counts = scan.classes.map((k) => k.files.length);
  if (counts.length > 1 && Math.max(...counts) > 2 * Math.max(1, Math.min(...counts))) warnings.push('classes are unbalanced (largest more than twice the smallest)');
  return {
    dir: scan.dir,
    classes: scan.classes.map((k) => ({ name: k.name, folder: k.folder, count: k.files.length })),
    total: all.length,
    sizes,
    modes,
    unreadable,
    oddFiles: scan.oddFiles,
    emptyClasses,
    warnings,
  };
}

