// Helpers shared by the kernel modules.
import { Buffer } from 'node:buffer';

import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/**
 * A float32 output array. Uninitialised memory (Buffer.allocUnsafeSlow) is safe because
 * every native kernel overwrites its whole output, and it saves a memset of the output
 * (up to ~10% of a fast conv).
 */
export function allocOutput(n: number): Float32Array {
  return new Float32Array(Buffer.allocUnsafeSlow(n * 4).buffer, 0, n);
}

/** The Float32Array behind a float32 tensor, or null (other dtypes, complex...). */
export function f32Values(backend: MathBackendCPU, t: TensorInfo): Float32Array | null {
  if (t.dtype !== 'float32') return null;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : null;
}
