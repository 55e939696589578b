// Test helpers (not part of the package API): the pure-JS cpu backend and small utilities.
import { Generator } from '@fad/diffusion-core';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

export async function useCpuBackend(): Promise<void> {
  tf.env().set('IS_TEST', true); // quiet, and tfjs checks custom ops for leaked tensors
  await tf.setBackend('cpu');
  await tf.ready();
}

/** Deterministic values in [-1, 1) as a plain array. */
export function randomValues(n: number, seed: number): number[] {
  const r = new Generator(seed);
  return Array.from({ length: n }, () => 2 * r.nextFloat() - 1);
}

/** A float32 tensor of deterministic values in [-1, 1). */
export function randomTensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(randomValues(shape.reduce((a, b) => a * b, 1), seed), shape, 'float32');
}

/** Cosine of two vectors in float64 plain JS. */
export function cosine64(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / (Math.sqrt(na) * Math.sqrt(nb));
}

/** Runs `fn` and returns how many tensors it left behind. */
export function leakedTensors(fn: () => void): number {
  const before = tf.memory().numTensors;
  fn();
  return tf.memory().numTensors - before;
}
