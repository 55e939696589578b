import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { gatherImages, gatherLabels, readImageSet, readLabelSet } from './image-batch';
import { useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

describe('image and label inputs', () => {
  it('read tensors and shaped arrays alike, and gather rows', () => {
    const a = readImageSet('f', 'images', tf.tensor4d([1, 2, 3, 4, 5, 6], [3, 1, 2, 1]));
    const b = readImageSet('f', 'images', { data: [1, 2, 3, 4, 5, 6], shape: [3, 1, 2, 1] });
    expect(b).toEqual(a);
    expect(Array.from(gatherImages(a, [2, 0]).dataSync())).toEqual([5, 6, 1, 2]);
    const labels = readLabelSet('f', 'labels', tf.tensor1d([2, 0, 1], 'int32'), 3, 3);
    expect(Array.from(gatherLabels(labels, [2, 0]))).toEqual([1, 2]);
  });

  it('reject wrong shapes, counts, non-finite values and out-of-range labels', () => {
    expect(() => readImageSet('f', 'images', { data: [1, 2], shape: [1, 1, 1, 1] })).toThrow(/f: images.data has 2 values, shape \[1,1,1,1\] needs 1/);
    expect(() => readImageSet('f', 'images', tf.zeros([2, 2]) as never)).toThrow(/images must have shape \[N,H,W,C\], got \[2,2\]/);
    expect(() => readImageSet('f', 'images', { data: [NaN], shape: [1, 1, 1, 1] })).toThrow(/non-finite value \(NaN\) at flat index 0/);
    expect(() => readLabelSet('f', 'labels', [0, 1], 3, 2)).toThrow(/labels has 2 labels, expected 3 \(one per image\)/);
    expect(() => readLabelSet('f', 'labels', [0, 5], 2, 4)).toThrow(/labels\[1\] must be an integer class index in \[0, 3\], got 5/);
  });
});
