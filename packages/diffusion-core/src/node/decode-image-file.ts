/**
 * Decoding one image file to floats with sharp, which is an optional peer dependency of
 * `@fad/diffusion-core`: it is loaded on first use, and when it is not installed the error says
 * `npm i sharp`.
 *
 * Pixels are decoded to 8 bits, alpha dropped, and converted to grayscale with the ITU-R BT.601
 * luma weights (0.299 R + 0.587 G + 0.114 B, rounded to 8 bits as PIL's `convert('L')`) when one
 * channel is asked for. Values are floats in [0, 1].
 */
import { ImageFolderError } from './image-folder-error';

type Sharp = typeof import('sharp');
let sharpModule: Promise<Sharp> | undefined;

/** sharp, imported once; an ImageFolderError `no-sharp` naming `npm i sharp` when it is not installed. */
export function loadSharp(): Promise<Sharp> {
  sharpModule ??= import('sharp').then(
    (m) => ((m as unknown as { default?: Sharp }).default ?? (m as unknown as Sharp)),
    (e: unknown) => {
      sharpModule = undefined;
      const why = String((e as Error)?.message ?? e).split('\n')[0];
      throw new ImageFolderError('no-sharp', `reading image files needs the optional dependency sharp, which could not be loaded (${why}); install it with: npm i sharp`, {}, e);
    },
  );
  return sharpModule;
}

/** A decoded image. */
export interface DecodedImage {
  width: number;
  height: number;
  /** Channels of the file (before conversion), alpha included. */
  fileChannels: number;
  /** Colour space of the file (`srgb`, `b-w`, ...). */
  space: string;
  /** File format (`png`, `tiff`, `jpeg`). */
  format: string;
  /** Pixels in [0, 1], HWC with the asked-for channels, at the file's size. */
  pixels: Float32Array;
}

/** Parameters of {@link decodeImageFile}. */
export interface DecodeImageFileParams {
  /** The image file. */
  path: string;
  /** 1 (grayscale, BT.601 luma from colour files) or 3 (RGB; a grayscale file is refused). */
  channels: 1 | 3;
}

/**
 * Decodes a file to floats with 1 or 3 channels. A file that cannot be used throws an Error whose
 * message is the reason, worded to follow the file name (`has 4 channels; ...`, `is a CMYK image ...`);
 * sharp's own errors come through as they are.
 */
export async function decodeImageFile(params: DecodeImageFileParams): Promise<DecodedImage> {
  if (typeof params !== 'object' || params === null) throw new TypeError(`decodeImageFile: expected one params object, got ${String(params)}`);
  const { path, channels } = params;
  if (typeof path !== 'string' || path === '') throw new TypeError(`decodeImageFile: path must be a non-empty string, got ${JSON.stringify(path)}`);
  if (channels !== 1 && channels !== 3) throw new RangeError(`decodeImageFile: channels must be 1 or 3, got ${JSON.stringify(channels)}`);
  const sharp = await loadSharp();
  const img = sharp(path, { failOn: 'error' });
  const meta = await img.metadata();
  const fileChannels = meta.channels ?? 0;
  const space = meta.space ?? 'unknown';
  if (space === 'cmyk') throw new Error(`is a CMYK image (${fileChannels} channels); only grayscale and RGB are supported`);
  if (![1, 2, 3, 4].includes(fileChannels)) throw new Error(`has ${fileChannels} channels; expected 1 (grayscale), 3 (RGB) or with alpha 2/4`);
  const hasColour = fileChannels >= 3;
  if (channels === 3 && !hasColour) throw new Error(`has ${fileChannels} channel(s) (grayscale), but channels is 3 (RGB)`);
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
