/**
 * Writing an image as PNG with sharp (an optional peer dependency, loaded on first use; Node only:
 * part of `@fad/diffusion-core/node`). Pixels in [0, 1] are rounded to 8 bits; one channel is
 * written as grayscale.
 */
import { loadSharp } from './decode-image-file';

/** Parameters of {@link writePngFile}. */
export interface WritePngFileParams {
  path: string;
  /** HWC pixels in [0, 1] (clamped), `size * size * channels` of them. */
  pixels: ArrayLike<number>;
  size: number;
  /** 1 (grayscale) or 3 (RGB). */
  channels: 1 | 3;
}

/** Writes the PNG; errors of sharp (a full disk, no permission) are rethrown as they are. */
export async function writePngFile(p: WritePngFileParams): Promise<void> {
  if (p === null || typeof p !== 'object') throw new TypeError(`writePngFile: params must be an object, got ${String(p)}`);
  if (typeof p.path !== 'string' || p.path.length === 0) throw new TypeError(`writePngFile: path must be a non-empty string, got ${JSON.stringify(p.path)}`);
  if (!Number.isInteger(p.size) || p.size < 1) throw new RangeError(`writePngFile: size must be an integer >= 1, got ${String(p.size)}`);
  if (p.channels !== 1 && p.channels !== 3) throw new RangeError(`writePngFile: channels must be 1 or 3, got ${String(p.channels)}`);
  if (!p.pixels || typeof p.pixels.length !== 'number' || p.pixels.length < p.size * p.size * p.channels) {
    throw new RangeError(`writePngFile: pixels must hold size * size * channels = ${p.size * p.size * p.channels} values, got ${String(p.pixels?.length)}`);
  }
  const sharp = await loadSharp();
  const buf = Buffer.alloc(p.size * p.size * p.channels);
  for (let i = 0; i < buf.length; i++) buf[i] = Math.max(0, Math.min(255, Math.round(p.pixels[i] * 255)));
  const img = sharp(buf, { raw: { width: p.size, height: p.size, channels: p.channels } });
  // sharp would write a 1-channel input as RGB unless told the colour space.
  await (p.channels === 1 ? img.toColourspace('b-w') : img).png().toFile(p.path);
}
