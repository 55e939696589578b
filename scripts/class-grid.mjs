#!/usr/bin/env node
// A small PNG grid of generated tiles for docs: one row per class, the first N images of each
// class folder of a `fad generate` output (its manifest's class order).
//   node scripts/class-grid.mjs GENERATED_DIR OUT.png [--per-class 8] [--classes a,b,c]
// Generated tiles only: never point it at real data (real tiles are not committed).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const [dir, out] = args;
if (!dir || !out || !existsSync(join(dir, 'manifest.json'))) {
  console.error('usage: node scripts/class-grid.mjs GENERATED_DIR OUT.png [--per-class N] [--classes a,b]  (GENERATED_DIR must hold a fad generate manifest.json)');
  process.exit(2);
}
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
const perClass = Number(opt('per-class', 8));
const classes = opt('classes', null)?.split(',') ?? manifest.generatedClasses ?? manifest.classNames;
const size = manifest.imageSize;
const gap = 2;
const composites = [];
for (const [r, c] of classes.entries()) {
  const files = readdirSync(join(dir, c)).filter((f) => f.endsWith('.png')).sort().slice(0, perClass);
  for (const [k, f] of files.entries()) composites.push({ input: join(dir, c, f), left: k * (size + gap), top: r * (size + gap) });
}
const width = perClass * (size + gap) - gap;
const height = classes.length * (size + gap) - gap;
await sharp({ create: { width, height, channels: 3, background: { r: 255, g: 255, b: 255 } } }).composite(composites).greyscale().png({ compressionLevel: 9 }).toFile(out);
console.log(`${out}: ${classes.length} rows (${classes.join(', ')}) x ${perClass} tiles of ${size}px`);
