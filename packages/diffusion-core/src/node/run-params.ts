/**
 * The up-front checks that the training runs of this entry point share (internal to
 * `@fad/diffusion-core/node`): their images and the options every run takes, with one message
 * shape (see param-check.ts), so the diffusion, autoencoder and DreamBooth runs name a bad field
 * the same way.
 */
import { failParam as fail, isIntAtLeast as isInt } from './param-check';
import { sha256 } from './resumable-step';

/** What a run's `data` holds (labels only for runs that use them). */
interface RunImages {
  images: Float32Array;
  labels?: Int32Array | readonly number[];
  imageSize: number;
  channels: number;
  indices?: readonly number[];
}

/**
 * Checks a run's `data` and returns its rows (`indices`, default all). With `classes`, `labels`
 * must hold one label in `0..classes-1` per image.
 */
export function checkRunImages(fn: string, d: RunImages | undefined, classes?: number): number[] {
  if (!d || typeof d !== 'object') fail(fn, 'data', classes === undefined ? 'an object { images, imageSize, channels }' : 'an object { images, labels, imageSize, channels } (what loadImageFolder returns)', typeof d, TypeError);
  if (!(d.images instanceof Float32Array)) fail(fn, 'data.images', 'a Float32Array [N, S, S, C] in [0, 1]', typeof d.images, TypeError);
  if (!isInt(d.imageSize, 1)) fail(fn, 'data.imageSize', 'an integer >= 1', d.imageSize);
  if (!isInt(d.channels, 1)) fail(fn, 'data.channels', 'an integer >= 1', d.channels);
  const per = d.imageSize * d.imageSize * d.channels;
  const n = d.images.length / per;
  if (!Number.isInteger(n) || n < 1) fail(fn, 'data.images.length', `a positive multiple of imageSize*imageSize*channels (${per})`, d.images.length);
  if (classes !== undefined) {
    const labels = d.labels;
    if (!(labels instanceof Int32Array || Array.isArray(labels)) || labels.length !== n) fail(fn, 'data.labels', `one integer label per image (${n})`, labels?.length, TypeError);
    for (let i = 0; i < n; i++) if (!Number.isInteger(labels![i]) || labels![i] < 0 || labels![i] >= classes) fail(fn, `data.labels[${i}]`, `an integer in 0..${classes - 1} (model.config.numClasses ${classes})`, labels![i]);
  }
  const indices = d.indices === undefined ? Array.from({ length: n }, (_, i) => i) : d.indices;
  if (!Array.isArray(indices) || indices.length === 0 || !indices.every((k) => Number.isInteger(k) && k >= 0 && k < n)) fail(fn, 'data.indices', `a non-empty list of image rows in 0..${n - 1}`, indices);
  return indices.slice();
}

/** The options the runs share. */
interface RunOptions {
  steps: number;
  batchSize: number;
  checkpointEvery?: number;
  logEvery?: number;
  stopAfterStep?: number;
  dataSeed?: number;
  dir: string;
  key?: string;
  trainer?: object;
  sink?: { addScalars?: unknown } | null;
  signal?: { aborted?: unknown } | null;
}

/**
 * Checks the options the runs share; `callbacks` names the run's function params, `trainer` the
 * class its `trainer` settings are for.
 */
export function checkRunOptions<P extends RunOptions>(fn: string, p: P, callbacks: ReadonlyArray<keyof P & string>, trainer: string): void {
  if (!isInt(p.steps, 1)) fail(fn, 'steps', 'an integer >= 1', p.steps);
  if (!isInt(p.batchSize, 1)) fail(fn, 'batchSize', 'an integer >= 1', p.batchSize);
  for (const k of ['checkpointEvery', 'logEvery'] as const) if (p[k] !== undefined && !isInt(p[k], 1)) fail(fn, k, 'an integer >= 1', p[k]);
  if (p.stopAfterStep !== undefined && !isInt(p.stopAfterStep, 0)) fail(fn, 'stopAfterStep', 'an integer >= 0', p.stopAfterStep);
  if (p.dataSeed !== undefined && !(isInt(p.dataSeed, 0) && p.dataSeed <= 0xffffffff)) fail(fn, 'dataSeed', 'an integer in [0, 2^32-1]', p.dataSeed);
  if (typeof p.dir !== 'string' || p.dir.length === 0) fail(fn, 'dir', 'a non-empty string (the run folder)', p.dir, TypeError);
  if (p.key !== undefined && (typeof p.key !== 'string' || p.key.length === 0)) fail(fn, 'key', 'a non-empty string', p.key, TypeError);
  if (p.trainer !== undefined && (p.trainer === null || typeof p.trainer !== 'object')) fail(fn, 'trainer', `an object of ${trainer} settings`, p.trainer, TypeError);
  for (const k of callbacks) if (p[k] !== undefined && typeof p[k] !== 'function') fail(fn, k, 'a function', typeof p[k], TypeError);
  if (p.sink != null && typeof p.sink.addScalars !== 'function') fail(fn, 'sink', 'an object with addScalars (a TensorBoardWriter)', typeof p.sink, TypeError);
  if (p.signal != null && typeof p.signal.aborted !== 'boolean') fail(fn, 'signal', 'an object with a boolean aborted (an AbortSignal)', typeof p.signal, TypeError);
}

/** A hash of a run's images (and labels), for its default step key. */
export function runImagesHash(d: RunImages): string {
  const images = sha256(new Uint8Array(d.images.buffer, d.images.byteOffset, d.images.byteLength));
  if (!d.labels) return images;
  const labels = Int32Array.from(d.labels);
  return sha256(images + sha256(new Uint8Array(labels.buffer)));
}
