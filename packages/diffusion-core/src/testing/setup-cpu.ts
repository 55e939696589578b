// Test helper: run every spec on the pure-JS cpu backend (the fallback every platform has).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

export async function useCpuBackend(): Promise<void> {
  tf.env().set('IS_TEST', true);
  await tf.setBackend('cpu');
  await tf.ready();
}

/** Runs `fn` and returns how many tensors it left behind. */
export function leakedTensors(fn: () => void): number {
  const before = tf.memory().numTensors;
  fn();
  return tf.memory().numTensors - before;
}

/** max |a-b| / max(1, max|b|). */
export function relMaxError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  let s = 1;
  for (let i = 0; i < b.length; i++) s = Math.max(s, Math.abs(b[i]));
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m / s;
}
