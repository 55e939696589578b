import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { flipImages, rotate90 } from './flip-images';
import { leakedTensors, useCpuBackend } from '../testing/setup-cpu';

beforeAll(useCpuBackend);

// One 2x3 single-channel image:  1 2 3 / 4 5 6
const img = () => tf.tensor4d([1, 2, 3, 4, 5, 6], [1, 2, 3, 1]);

describe('flipImages', () => {
  it('mirrors exactly', () => {
    expect(Array.from(flipImages({ images: img(), direction: 'horizontal' }).dataSync())).toEqual([3, 2, 1, 6, 5, 4]);
    expect(Array.from(flipImages({ images: img(), direction: 'vertical' }).dataSync())).toEqual([4, 5, 6, 1, 2, 3]);
  });

  it('keeps channels together', () => {
    const x = tf.tensor4d([1, 10, 2, 20], [1, 1, 2, 2]);
    expect(Array.from(flipImages({ images: x, direction: 'horizontal' }).dataSync())).toEqual([2, 20, 1, 10]);
  });

  it('flips only the images `which` names, copying the others, without leaking tensors', () => {
    // Two 1x2 images: [1 2] and [3 4].
    const x = tf.tensor4d([1, 2, 3, 4], [2, 1, 2, 1]);
    expect(Array.from(flipImages({ images: x, direction: 'horizontal', which: [false, true] }).dataSync())).toEqual([1, 2, 4, 3]);
    expect(Array.from(flipImages({ images: x, direction: 'horizontal', which: [true, false] }).dataSync())).toEqual([2, 1, 3, 4]);
    const none = flipImages({ images: x, direction: 'vertical', which: [false, false] });
    expect(none).not.toBe(x);
    expect(Array.from(none.dataSync())).toEqual([1, 2, 3, 4]);
    expect(leakedTensors(() => flipImages({ images: x, direction: 'horizontal', which: [true, false] }).dispose())).toBe(0);
    expect(() => flipImages({ images: x, direction: 'horizontal', which: [true] })).toThrow('flipImages: which must be an array of 2 booleans (one per image), got [boolean]');
  });

  it('rejects bad arguments', () => {
    expect(() => flipImages({ images: img(), direction: 'diagonal' as never })).toThrow(/direction must be one of "horizontal", "vertical", got "diagonal"/);
    expect(() => flipImages({ images: tf.zeros([2, 2]) as never, direction: 'vertical' })).toThrow(/images must be a \[B,H,W,C\] tensor, got \[2,2\]/);
  });
});

describe('rotate90', () => {
  it('turns clockwise', () => {
    // 1 2 / 3 4  -> clockwise ->  3 1 / 4 2
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    expect(Array.from(rotate90({ images: x, turns: 1 }).dataSync())).toEqual([3, 1, 4, 2]);
    expect(Array.from(rotate90({ images: x, turns: 2 }).dataSync())).toEqual([4, 3, 2, 1]);
    expect(Array.from(rotate90({ images: x, turns: 0 }).dataSync())).toEqual([1, 2, 3, 4]);
    expect(rotate90({ images: img(), turns: 1 }).shape).toEqual([1, 3, 2, 1]);
    expect(() => rotate90({ images: x, turns: 4 })).toThrow(/turns must be an integer in \[0, 3\], got 4/);
  });
});
