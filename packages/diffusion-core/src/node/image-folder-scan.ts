/**
 * Listing an image folder: one subfolder per class holding PNG, TIFF or JPEG files.
 *
 * - Class names: the folder name without a leading number and separator, lower-cased, so Kather's
 *   `01_TUMOR` is `tumor` (`mapClassName`).
 * - Symbolic links to class folders and images are followed; a link loop (to itself, to the data
 *   folder or above it, or a second link to a class folder already listed) and broken links are
 *   skipped and listed in `skippedLinks`.
 * - Hidden entries are passed over; files that are not images, or not inside a class folder, are
 *   listed in `oddFiles` (except a few usual ones such as `README.md` and `manifest.tsv`).
 */
import { type Dirent, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { extname, isAbsolute, join, relative, resolve } from 'node:path';
import { ImageFolderError, withFolderFs } from './image-folder-error';

/** File endings read as images (lower-case). */
export const IMAGE_EXTENSIONS = ['.png', '.tif', '.tiff', '.jpg', '.jpeg'] as const;
/** Files that may sit next to the class folders or images without being reported. */
const IGNORED = new Set(['manifest.tsv', 'readme.md', 'readme.txt', 'license', 'license.txt', '.ds_store', 'thumbs.db']);

/** `01_TUMOR` -> `tumor`, `2-stroma` -> `stroma`, `Adipose` -> `adipose`. */
export function mapClassName(folder: string): string {
  if (typeof folder !== 'string') throw new TypeError(`mapClassName: folder must be a string, got ${typeof folder}`);
  const stripped = folder.replace(/^\d+[\s._-]*/, '').trim().toLowerCase().replace(/\s+/g, '_');
  return stripped.length > 0 ? stripped : folder.toLowerCase();
}

/** One class folder of a scan. */
export interface ScannedClass {
  /** Mapped name (`tumor`). */
  name: string;
  /** Folder name (`01_TUMOR`). */
  folder: string;
  /** Image files, sorted, relative to the data folder (`01_TUMOR/1.tif`). */
  files: string[];
}

/** What {@link scanImageFolder} found. */
export interface ImageFolderScan {
  /** The folder, absolute. */
  dir: string;
  /** Class folders in sorted order. */
  classes: ScannedClass[];
  /** Files that are not images, or not inside a class folder (relative paths). */
  oddFiles: string[];
  /**
   * Symbolic links that were not followed: loops (a link to itself, to the data folder or a folder
   * above it, or to a class folder already scanned) and broken links, with the reason.
   */
  skippedLinks: Array<{ path: string; reason: string }>;
}

/** Parameters of {@link scanImageFolder}. */
export interface ScanImageFolderParams {
  /** The data folder (relative to the working directory or absolute). */
  dir: string;
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
 * Lists the class folders and their image files (nothing is decoded). Throws an
 * {@link ImageFolderError} for a missing folder, a folder without class subfolders, or two folders
 * that map to the same class name.
 */
export function scanImageFolder(params: ScanImageFolderParams): ImageFolderScan {
  if (typeof params !== 'object' || params === null) throw new TypeError(`scanImageFolder: expected one params object, got ${String(params)}`);
  const dirIn = params.dir;
  if (typeof dirIn !== 'string' || dirIn === '') throw new TypeError(`scanImageFolder: dir must be a non-empty string, got ${JSON.stringify(dirIn)}`);
  const dir = resolve(dirIn);
  if (!existsSync(dir)) throw new ImageFolderError('missing-folder', `data folder ${dirIn} does not exist`, { dir: dirIn });
  if (!statSync(dir).isDirectory()) throw new ImageFolderError('missing-folder', `data folder ${dirIn} is not a folder`, { dir: dirIn });
  const entries = withFolderFs(dir, 'list the data folder', () => readdirSync(dir, { withFileTypes: true })).sort((a, b) => sortNames(a.name, b.name));
  const classes: ScannedClass[] = [];
  const oddFiles: string[] = [];
  const skippedLinks: ImageFolderScan['skippedLinks'] = [];
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
      throw new ImageFolderError('class-name-clash', `data folder ${dirIn}: folders "${seen.get(name)}" and "${e.name}" both map to the class name "${name}"`, { name, folders: [seen.get(name), e.name] });
    }
    seen.set(name, e.name);
    const files: string[] = [];
    const classDir = join(dir, e.name);
    for (const f of withFolderFs(classDir, 'list the class folder', () => readdirSync(classDir, { withFileTypes: true })).sort((a, b) => sortNames(a.name, b.name))) {
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
    const links = skippedLinks.length ? `; ${skippedLinks.length} symbolic link(s) skipped: ${skippedLinks.map((l) => `${l.path} (${l.reason})`).join(', ')}` : '';
    throw new ImageFolderError('no-classes', `data folder ${dirIn} has no class subfolders (expected ${dirIn}/<class>/<image>.png|tif|jpg)${links}`, { dir: dirIn, skippedLinks });
  }
  return { dir, classes, oddFiles, skippedLinks };
}

/** One warning line for the skipped symbolic links of a scan, or null when there are none. */
export function skippedLinksWarning(scan: Pick<ImageFolderScan, 'dir' | 'skippedLinks'>): string | null {
  const l = scan.skippedLinks;
  if (l.length === 0) return null;
  const loops = l.filter((x) => /loop/.test(x.reason)).length;
  const shown = l.slice(0, 5).map((x) => `${x.path}: ${x.reason}`).join('; ');
  return `${l.length} symbolic link(s) in ${scan.dir} skipped (${loops} loop(s)): ${shown}${l.length > 5 ? '; ...' : ''}`;
}
