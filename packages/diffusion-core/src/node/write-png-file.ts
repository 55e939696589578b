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
  await (await pngImage(p.pixels, p.size, p.size, p.channels)).toFile(p.path);
}

/** sharp's image of the pixels, rounded to 8 bits, ready to encode as PNG. */
async function pngImage(pixels: ArrayLike<number>, width: number, height: number, channels: 1 | 3) {
  const sharp = await loadSharp();
  const buf = Buffer.alloc(width * height * channels);
  for (let i = 0; i < buf.length; i++) buf[i] = Math.max(0, Math.min(255, Math.round(pixels[i] * 255)));
  const img = sharp(buf, { raw: { width, height, channels } });
  // sharp would write a 1-channel input as RGB unless told the colour space.
  return (channels === 1 ? img.toColourspace('b-w') : img).png();
}

/** Parameters of {@link encodePng}. */
export interface EncodePngParams {
  /** HWC pixels in [0, 1] (clamped), `width * height * channels` of them. */
  pixels: ArrayLike<number>;
  width: number;
  height: number;
  /** 1 (grayscale) or 3 (RGB). */
  channels: 1 | 3;
}

/** The PNG bytes of an image of any aspect ratio (e.g. a class grid), encoded as {@link writePngFile} writes them. */
export async function encodePng(p: EncodePngParams): Promise<Uint8Array> {
  if (p === null || typeof p !== 'object') throw new TypeError(`encodePng: params must be an object, got ${String(p)}`);
  for (const k of ['width', 'height'] as const) if (!Number.isInteger(p[k]) || p[k] < 1) throw new RangeError(`encodePng: ${k} must be an integer >= 1, got ${String(p[k])}`);
  if (p.channels !== 1 && p.channels !== 3) throw new RangeError(`encodePng: channels must be 1 or 3, got ${String(p.channels)}`);
  const n = p.width * p.height * p.channels;
  if (!p.pixels || typeof p.pixels.length !== 'number' || p.pixels.length < n) throw new RangeError(`encodePng: pixels must hold width * height * channels = ${n} values, got ${String(p.pixels?.length)}`);
  return new Uint8Array(await (await pngImage(p.pixels, p.width, p.height, p.channels)).toBuffer());
}
