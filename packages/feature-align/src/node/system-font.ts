/**
 * Whether chart text can render: Vega's SVG is rasterised by librsvg, which takes its fonts from
 * fontconfig; without any TrueType/OpenType font installed, every label renders as boxes.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The folders fontconfig looks in by default (Linux, the user's, macOS, Windows). */
export function systemFontDirs(): string[] {
  return ['/usr/share/fonts', '/usr/local/share/fonts', `${process.env.HOME ?? ''}/.fonts`, '/System/Library/Fonts', 'C:\\Windows\\Fonts'];
}

/** True when some `.ttf`/`.otf`/`.ttc` file lies in one of `dirs` (default {@link systemFontDirs}), at most 4 folders down. */
export function systemFontAvailable(dirs: readonly string[] = systemFontDirs()): boolean {
  const walk = (d: string, depth: number): boolean => {
    if (depth > 4 || !existsSync(d)) return false;
    try {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isFile() && /\.(ttf|otf|ttc)$/i.test(e.name)) return true;
        if (e.isDirectory() && walk(join(d, e.name), depth + 1)) return true;
      }
    } catch {
      return false;
    }
    return false;
  };
  return dirs.some((r) => walk(r, 0));
}
