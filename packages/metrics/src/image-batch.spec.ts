import { describe, expect, it } from 'vitest';
import { assertSameShape, assertWithinDataRange, extractPlane, readImageBatch } from './image-batch';

describe('image batches', () => {
  it('reads rank 2/3/4 inputs as NHWC for pairs and rank 3/4 for sets', () => {
    const dims = (shape: number[], layout: 'pair' | 'set') => {
      const b = readImageBatch('f', 'x', { data: new Float64Array(shape.reduce((a, v) => a * v, 1)), shape }, layout);
      return [b.batch, b.height, b.width, b.channels];
    };
    expect(dims([4, 5], 'pair')).toEqual([1, 4, 5, 1]);
    expect(dims([4, 5, 3], 'pair')).toEqual([1, 4, 5, 3]);
    expect(dims([4, 5, 3], 'set')).toEqual([4, 5, 3, 1]);
    expect(dims([2, 4, 5, 3], 'pair')).toEqual([2, 4, 5, 3]);
    expect(() => dims([4, 5], 'set')).toThrow(/argument "x" has shape \[4,5\], expected \[N,H,W\] or \[N,H,W,C\]/);
    expect(() => dims([2, 0, 5, 1], 'pair')).toThrow(/every dimension >= 1/);
  });

  it('extracts channel planes from interleaved NHWC data', () => {
    // 2 images of 1x2 pixels with 3 channels: value = 100 b + 10 pixel + c
    const data: number[] = [];
    for (let b = 0; b < 2; b++) for (let p = 0; p < 2; p++) for (let c = 0; c < 3; c++) data.push(100 * b + 10 * p + c);
    const batch = readImageBatch('f', 'x', { data, shape: [2, 1, 2, 3] }, 'pair');
    expect(Array.from(extractPlane(batch, 1, 2))).toEqual([102, 112]);
    expect(Array.from(extractPlane(batch, 0, 1))).toEqual([1, 11]);
  });

  it('checks equal shapes and that values span at most dataRange', () => {
    const a = readImageBatch('f', 'x', { data: [0, 0.5, 1, 0.25], shape: [2, 2] }, 'pair');
    const b = readImageBatch('f', 'y', { data: [0, 0, 0, 0, 0, 0], shape: [2, 3] }, 'pair');
    expect(() => assertSameShape('f', 'x', a, 'y', b)).toThrow(/argument "y" has shape \[2,3\], expected \[2,2\] \(the shape of "x"\)/);
    expect(() => assertWithinDataRange('f', 'x', a, 1)).not.toThrow();
    expect(() => assertWithinDataRange('f', 'x', a, 0.9)).toThrow(/argument "x" has values from 0 to 1 \(span 1\), more than dataRange = 0.9/);
    // [-1, 1] images with dataRange 2 are fine.
    expect(() => assertWithinDataRange('f', 'x', readImageBatch('f', 'x', { data: [-1, 1], shape: [1, 2] }, 'pair'), 2)).not.toThrow();
  });
});
