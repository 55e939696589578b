import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { adjustBrightness, adjustContrast } from './intensity-jitter';
import { useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

describe('adjustContrast', () => {
  it('scales around each image mean: (x - m) c + m', () => {
    // Image 0: [0, 1, 2, 5] mean 2, c = 2 -> [-2, 0, 2, 8]. Image 1: [1, 1, 3, 3] mean 2, c = 0.5 -> [1.5, 1.5, 2.5, 2.5].
    const x = tf.tensor4d([0, 1, 2, 5, 1, 1, 3, 3], [2, 2, 2, 1]);
    expect(Array.from(adjustContrast({ images: x, factor: [2, 0.5] }).dataSync())).toEqual([-2, 0, 2, 8, 1.5, 1.5, 2.5, 2.5]);
    expect(Array.from(adjustContrast({ images: x, factor: 0 }).dataSync())).toEqual([2, 2, 2, 2, 2, 2, 2, 2]);
    expect(() => adjustContrast({ images: x, factor: [1] })).toThrow(/factor must be a number or an array of 2 numbers \(one per image\), got \[1\]/);
    expect(() => adjustContrast({ images: x, factor: -1 })).toThrow(/factor must be a finite number >= 0, got -1/);
  });
});

describe('adjustBrightness', () => {
  it('adds a shift per image', () => {
    const x = tf.tensor4d([0, 1, 2, 3], [2, 1, 2, 1]);
    expect(Array.from(adjustBrightness({ images: x, delta: [0.5, -1] }).dataSync())).toEqual([0.5, 1.5, 1, 2]);
    expect(() => adjustBrightness({ images: x, delta: [NaN, 0] })).toThrow(/delta\[0\] must be a finite number, got NaN/);
  });
});
