/**
 * Defaults that fit the backend. The wasm backend (picked by `auto` when the native addon is
 * absent) has a 32-bit address space (at most 4 GiB), and tfjs-backend-wasm keeps every activation
 * of a training step in it: the default config (histology64 U-Net, 64x64 images, batch 16) ran out
 * of it ("memory access out of bounds") while batch 4 trains. So on wasm, when
 * `diffusion.microBatchSize` is not set, training splits each batch into micro-batches that fit
 * and accumulates their gradients: the effective batch (and the trainer's result, up to float
 * summation order) stays that of `batchSize`.
 *
 * The budget is calibrated on the default U-Net: 4 images of 64x64 per micro-batch. The activation
 * memory of a step grows with the pixels per image times the U-Net's channel widths, so other sizes
 * scale from there. The messages name the setting and the way out as the caller words them
 * (`names`; the `fad` CLI: `diffusion.microBatchSize`, `--backend native`).
 */
import type { UNetConfig } from '../unet/unet-config';

/** Images of 64x64 with the default U-Net's widths (32, 64, 128) that fit one wasm micro-batch. */
export const WASM_MICRO_BATCH_64 = 4;

const REFERENCE_COST = 64 * 64 * (32 + 64 + 128) * 3;

/** The relative activation cost of one image for a U-Net config. */
function imageCost(c: Pick<UNetConfig, 'sampleSize' | 'blockChannels' | 'layersPerBlock'>): number {
  // layersPerBlock may be one number or one per level (diffusers configs): weigh each level's width.
  const layers = (i: number) => (Array.isArray(c.layersPerBlock) ? c.layersPerBlock[i] : c.layersPerBlock);
  return c.sampleSize * c.sampleSize * c.blockChannels.reduce((a, b, i) => a + b * (layers(i) + 1), 0);
}

export interface MicroBatchChoice {
  /** Micro-batch size for the trainer (null: whole batches). */
  microBatchSize: number | null;
  /** Whether fad chose it (to say so in a log line). */
  automatic: boolean;
  /** The log line, when automatic. */
  message: string | null;
}

/** Parameters of {@link chooseMicroBatch}. */
export interface ChooseMicroBatchParams {
  /** The tfjs backend the run trains on. */
  backend: string;
  /** The effective batch. */
  batchSize: number;
  /** The micro-batch the user set, or null. */
  configured: number | null;
  unet: Pick<UNetConfig, 'sampleSize' | 'blockChannels' | 'layersPerBlock'>;
  /** What the batch holds, in the message (e.g. `of instance and prior images`). */
  what?: string;
  /** How the messages name the setting and the way out (default `microBatchSize`, `use the native backend`). */
  names?: { setting?: string; alternative?: string };
}

/**
 * The micro-batch to train with: `configured` when set; on wasm
 * otherwise the largest that fits the budget (at least 1), if smaller than `batchSize`; else null.
 */
export function chooseMicroBatch(p: ChooseMicroBatchParams): MicroBatchChoice {
  if (p === null || typeof p !== 'object') throw new TypeError(`chooseMicroBatch: expected one params object, got ${String(p)}`);
  if (!Number.isInteger(p.batchSize) || p.batchSize < 1) throw new RangeError(`chooseMicroBatch: batchSize must be an integer >= 1, got ${String(p.batchSize)}`);
  if (p.configured !== null && !(Number.isInteger(p.configured) && p.configured >= 1)) throw new RangeError(`chooseMicroBatch: configured must be null or an integer >= 1, got ${String(p.configured)}`);
  const setting = p.names?.setting ?? 'microBatchSize';
  const alternative = p.names?.alternative ?? 'use the native backend';
  if (p.backend !== 'wasm') return { microBatchSize: p.configured, automatic: false, message: null };
  const fit = Math.max(1, Math.floor((WASM_MICRO_BATCH_64 * REFERENCE_COST) / imageCost(p.unet)));
  if (p.configured != null) {
    const chunk = Math.min(p.configured, p.batchSize);
    return {
      microBatchSize: p.configured,
      automatic: false,
      message: chunk > fit ? `fad: warning: wasm backend: micro-batches of ${chunk} images are likely not to fit wasm's 4 GiB memory (about ${fit} fit); if training aborts, set ${setting} to ${fit} or leave it unset, or ${alternative}` : null,
    };
  }
  if (fit >= p.batchSize) return { microBatchSize: null, automatic: false, message: null };
  return {
    microBatchSize: fit,
    automatic: true,
    message: `fad: wasm backend: training in micro-batches of ${fit} with gradient accumulation over ${Math.ceil(p.batchSize / fit)} (the batch stays ${p.batchSize}${p.what ? ` ${p.what}` : ''}) so a step fits wasm's 4 GiB memory; set ${setting} to choose, or ${alternative}`,
  };
}
