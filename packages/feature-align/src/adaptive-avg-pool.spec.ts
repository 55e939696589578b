import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { adaptiveAvgPool2d, poolFeatures } from './adaptive-avg-pool';
import { useCpuBackend } from './test-support/setup';

beforeAll(useCpuBackend);

/** x[b,i,j,c] = 100b + 10i + j + 0.5c on a 5x5 grid, 2 channels. */
function grid(B = 2, H = 5, W = 5, C = 2): { t: tf.Tensor4D; at: (b: number, i: number, j: number, c: number) => number } {
  const at = (b: number, i: number, j: number, c: number) => 100 * b + 10 * i + j + 0.5 * c;
  const d: number[] = [];
  for (let b = 0; b < B; b++) for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) for (let c = 0; c < C; c++) d.push(at(b, i, j, c));
  return { t: tf.tensor4d(d, [B, H, W, C]), at };
}

function handPool(at: (b: number, i: number, j: number, c: number) => number, b: number, c: number, rows: number[], cols: number[]): number {
  let s = 0;
  for (const i of rows) for (const j of cols) s += at(b, i, j, c);
  return s / (rows.length * cols.length);
}

describe('adaptiveAvgPool2d', () => {
  it("matches hand computation with PyTorch's overlapping bins (5x5 -> 2x2)", () => {
    const { t, at } = grid();
    const y = adaptiveAvgPool2d({ x: t, outputSize: 2 });
    expect(y.shape).toEqual([2, 2, 2, 2]);
    const v = y.arraySync();
    // Bins: floor(i*5/2) .. ceil((i+1)*5/2)-1 = rows {0,1,2} and {2,3,4}.
    const bins = [[0, 1, 2], [2, 3, 4]];
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < 2; i++)
        for (let j = 0; j < 2; j++)
          for (let c = 0; c < 2; c++) expect(v[b][i][j][c]).toBeCloseTo(handPool(at, b, c, bins[i], bins[j]), 4);
    tf.dispose([t, y]);
  });

  it('matches hand computation for divisible sizes (4x6 -> 2x3) and global pooling', () => {
    const { t, at } = grid(1, 4, 6, 2);
    const y = adaptiveAvgPool2d({ x: t, outputSize: [2, 3] }).arraySync();
    expect(y[0][1][2][1]).toBeCloseTo(handPool(at, 0, 1, [2, 3], [4, 5]), 4);
    expect(y[0][0][1][0]).toBeCloseTo(handPool(at, 0, 0, [0, 1], [2, 3]), 4);
    const g = adaptiveAvgPool2d({ x: t, outputSize: 1 });
    expect(g.shape).toEqual([1, 1, 1, 2]);
    expect(g.dataSync()[1]).toBeCloseTo(handPool(at, 0, 1, [0, 1, 2, 3], [0, 1, 2, 3, 4, 5]), 4);
    tf.dispose([t, g]);
  });

  it('rejects bad sizes, naming the argument', () => {
    const x = tf.zeros([1, 3, 3, 1]) as tf.Tensor4D;
    expect(() => adaptiveAvgPool2d({ x, outputSize: 4 })).toThrow(/outputSize \[4,4\] is larger than the input's 3x3/);
    expect(() => adaptiveAvgPool2d({ x, outputSize: 0 })).toThrow(/outputSize \(height\) must be a positive integer, got 0/);
    expect(() => adaptiveAvgPool2d({ x: tf.zeros([3, 3]) as unknown as tf.Tensor4D, outputSize: 1 })).toThrow(/x must be \[B,H,W,C\], got shape \[3,3\]/);
    x.dispose();
  });
});

describe('poolFeatures', () => {
  it('averages [B,H,W,C] over H and W, and passes [B,C] through', () => {
    const { t, at } = grid(2, 3, 4, 2);
    const p = poolFeatures({ x: t });
    expect(p.shape).toEqual([2, 2]);
    expect(p.arraySync()[1][1]).toBeCloseTo(handPool(at, 1, 1, [0, 1, 2], [0, 1, 2, 3]), 4);
    expect(poolFeatures({ x: p })).toBe(p);
    expect(() => poolFeatures({ x: tf.zeros([2, 2, 2]) as unknown as tf.Tensor2D })).toThrow(/\[B,H,W,C\] or \[B,C\], got shape \[2,2,2\]/);
    tf.dispose([t, p]);
  });
});
