// A tiny, deterministic labelled image set for tests (not exported).
import { Generator } from '@fad/diffusion-core';

/**
 * `perClass` images per class of size x size x channels in [0, 1]: noise in [0, 0.3) plus a bright
 * block in the quadrant of the class (class k in quadrant k mod 4; classes >= 4 also brighten the
 * centre), so a small network can separate the classes quickly.
 */
export function toyImages(args: { numClasses: number; perClass: number; size: number; channels: number; seed?: number }): {
  data: Float32Array;
  shape: [number, number, number, number];
  labels: number[];
} {
  const { numClasses, perClass, size, channels, seed = 7 } = args;
  const g = new Generator(seed);
  const n = numClasses * perClass;
  const data = new Float32Array(n * size * size * channels);
  const labels: number[] = [];
  const half = size / 2;
  for (let i = 0; i < n; i++) {
    const k = i % numClasses;
    labels.push(k);
    const qy = Math.floor((k % 4) / 2) * half;
    const qx = (k % 2) * half;
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        for (let c = 0; c < channels; c++) {
          let v = 0.3 * g.nextFloat();
          if (y >= qy && y < qy + half && x >= qx && x < qx + half) v += 0.6;
          if (k >= 4 && Math.abs(y - half) < size / 8 && Math.abs(x - half) < size / 8) v = 1;
          data[((i * size + y) * size + x) * channels + c] = Math.min(1, v);
        }
  }
  return { data, shape: [n, size, size, channels], labels };
}
