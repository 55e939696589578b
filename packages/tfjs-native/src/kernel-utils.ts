// Helpers shared by the kernel modules.
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

import { allocPooled } from './buffer-pool';

/**
 * A float32 output array from the buffer pool (./buffer-pool.ts). Uninitialised memory is
 * safe because every native kernel overwrites its whole output, and it saves a memset of the
 * output (up to ~10% of a fast conv).
 */
export function allocOutput(n: number): Float32Array {
  return allocPooled(n);
}

/** The Float32Array behind a float32 tensor, or null (other dtypes, complex...). */
export function f32Values(backend: MathBackendCPU, t: TensorInfo): Float32Array | null {
  if (t.dtype !== 'float32') return null;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : null;
}
