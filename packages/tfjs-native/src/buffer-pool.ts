// Recycling of kernel output buffers.
//
// The cpu backend (and so `native`) gives every kernel output a fresh typed array; freed
// tensors' arrays go back to the OS only when V8's garbage collector runs, so a train step
// writes most outputs into memory that is not in any cache and often not even mapped yet
// (page faults: 25-56k per U-Net train step at batch 16). Measured here: copies into fresh
// 8 MB arrays run at 8-13 GB/s, into recently used ones at 90-100 GB/s; native kernels ran
// 2-3x slower inside the model than in isolation.
//
// The pool hands out an exact-size buffer released most recently (LIFO: likely still in the
// L2/L3 cache) when one exists. A buffer is released when the last backend data entry that
// references it (the tensor's own, and any zero-copy views such as contiguous slices) is
// disposed. Because a recycled buffer gets overwritten, arrays that leave the backend
// (readSync, i.e. dataSync()/data()/arraySync()) are copies when they come from the pool.
// Only kernel outputs of >= MIN_BYTES are pooled; the free list is capped (default 1 GiB,
// FAD_TFJS_NATIVE_POOL_MB; 0 disables pooling).
import { Buffer } from 'node:buffer';

const MIN_BYTES = 64 * 1024;

/** ArrayBuffers the pool handed out, with the number of backend data entries using each. */
const refs = new Map<ArrayBuffer, number>();
/** Free buffers by byte length, most recently released last. */
const free = new Map<number, ArrayBuffer[]>();
let freeBytes = 0;
let hits = 0;
let misses = 0;

function capBytes(): number {
  const mb = Number(process.env.FAD_TFJS_NATIVE_POOL_MB ?? 1024);
  return Number.isFinite(mb) && mb > 0 ? mb * 2 ** 20 : 0;
}

/** A Float32Array of n elements, uninitialised (callers overwrite all of it). */
export function allocPooled(n: number): Float32Array {
  const bytes = n * 4;
  if (bytes >= MIN_BYTES) {
    const list = free.get(bytes);
    if (list && list.length > 0) {
      const buf = list.pop() as ArrayBuffer;
      freeBytes -= bytes;
      hits++;
      refs.set(buf, 0);
      return new Float32Array(buf, 0, n);
    }
    if (capBytes() > 0) {
      misses++;
      const buf = Buffer.allocUnsafeSlow(bytes).buffer as ArrayBuffer;
      refs.set(buf, 0);
      return new Float32Array(buf, 0, n);
    }
  }
  return new Float32Array(Buffer.allocUnsafeSlow(bytes).buffer, 0, n);
}

function bufferOf(values: unknown): ArrayBuffer | null {
  const b = (values as { buffer?: unknown } | null)?.buffer;
  return b instanceof ArrayBuffer && refs.has(b) ? b : null;
}

/** A backend data entry now references `values`. */
export function retain(values: unknown): void {
  const b = bufferOf(values);
  if (b) refs.set(b, (refs.get(b) as number) + 1);
}

/** A backend data entry that referenced `values` was deleted. */
export function release(values: unknown): void {
  const b = bufferOf(values);
  if (!b) return;
  const n = (refs.get(b) as number) - 1;
  if (n > 0) {
    refs.set(b, n);
    return;
  }
  refs.delete(b);
  if (freeBytes + b.byteLength > capBytes()) return; // dropped: V8 frees it
  let list = free.get(b.byteLength);
  if (!list) free.set(b.byteLength, (list = []));
  list.push(b);
  freeBytes += b.byteLength;
}

/** Whether `values` lives in a pooled buffer (so it may be overwritten after release). */
export function isPooled(values: unknown): boolean {
  return bufferOf(values) !== null;
}

/** Drops every free buffer (they are collected by V8). */
export function drainPool(): void {
  free.clear();
  freeBytes = 0;
}

/** Pool statistics. */
export function poolStats(): { inUse: number; freeBytes: number; freeBuffers: number; hits: number; misses: number } {
  let freeBuffers = 0;
  for (const l of free.values()) freeBuffers += l.length;
  return { inUse: refs.size, freeBytes, freeBuffers, hits, misses };
}
