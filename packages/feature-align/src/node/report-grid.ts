/**
 * The report's image grids: per class, a labelled block of images per source (real, then each
 * variant), composed as SVG with embedded, nearest-neighbour-upscaled PNG tiles and rasterised by
 * sharp.
 */
import { esc } from './report-format';
import { loadSharp } from './report-renderer';

/** One block of a grid: a label and its images (HWC pixels in [0, 1]). */
export interface GridColumn {
  label: string;
  tiles: Array<{ pixels: Float32Array; size: number; channels: number }>;
}

/** Upscales a [S,S,C] image in [0,1] by nearest neighbour to `px` pixels and returns PNG bytes. */
async function tilePng(pixels: Float32Array, size: number, channels: number, px: number): Promise<Buffer> {
  const sharp = await loadSharp();
  const buf = Buffer.alloc(size * size * channels);
  for (let i = 0; i < buf.length; i++) buf[i] = Math.max(0, Math.min(255, Math.round(pixels[i] * 255)));
  return sharp(buf, { raw: { width: size, height: size, channels: channels as 1 | 3 } }).resize(px, px, { kernel: 'nearest' }).png().toBuffer();
}

/** One class: a block of up to `perRow` images a row per source, labelled, under `title`; PNG bytes. */
export async function gridPng(title: string, columns: GridColumn[], perRow: number): Promise<Buffer> {
  const sharp = await loadSharp();
  const tile = 48;
  const gap = 4;
  const blockGap = 18;
  const labelH = 18;
  const titleH = 24;
  const rows = Math.max(1, ...columns.map((c) => Math.ceil(c.tiles.length / perRow)));
  const blockW = perRow * (tile + gap) - gap;
  const width = columns.length * (blockW + blockGap) - blockGap + 20;
  const height = titleH + labelH + rows * (tile + gap) + 10;
  const parts: string[] = [];
  for (let b = 0; b < columns.length; b++) {
    const x0 = 10 + b * (blockW + blockGap);
    parts.push(`<text x="${x0}" y="${titleH + 13}" font-family="DejaVu Sans, sans-serif" font-size="12">${esc(columns[b].label)}</text>`);
    for (let i = 0; i < columns[b].tiles.length; i++) {
      const t = columns[b].tiles[i];
      const png = await tilePng(t.pixels, t.size, t.channels, tile);
      const x = x0 + (i % perRow) * (tile + gap);
      const y = titleH + labelH + Math.floor(i / perRow) * (tile + gap);
      parts.push(`<image x="${x}" y="${y}" width="${tile}" height="${tile}" href="data:image/png;base64,${png.toString('base64')}"/>`);
    }
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/><text x="10" y="17" font-family="DejaVu Sans, sans-serif" font-size="14" font-weight="bold">${esc(title)}</text>${parts.join('')}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}
