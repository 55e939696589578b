import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { adaptExpertInput, RAW_INPUT_ADAPTATION, resolveInputAdaptation } from './input-adaptation';
import { useCpuBackend } from '../testing/setup-cpu';

beforeAll(useCpuBackend);

describe('resolveInputAdaptation', () => {
  const spec = { size: 224, channels: 3, range: [0, 1] as [number, number], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

  it("follows the expert's inputSpec for range, size and channels by default, and nothing without one", () => {
    // mean/std stay with the expert, which normalises internally: applying them here would do it twice.
    expect(resolveInputAdaptation({ spec })).toEqual({
      dataRange: [-1, 1], range: [0, 1], size: [224, 224], channels: 3, mean: null, std: null,
    });
    expect(resolveInputAdaptation({})).toEqual(RAW_INPUT_ADAPTATION);
  });

  it("'raw' ignores the spec (what the reference did); overrides replace or switch off single steps", () => {
    expect(resolveInputAdaptation({ spec, adaptation: 'raw' })).toBe(RAW_INPUT_ADAPTATION);
    const a = resolveInputAdaptation({ spec, adaptation: { size: [64, 32], mean: spec.mean, std: spec.std, dataRange: [0, 255] } });
    expect(a).toEqual({ dataRange: [0, 255], range: [0, 1], size: [64, 32], channels: 3, mean: spec.mean, std: spec.std });
    expect(resolveInputAdaptation({ spec, adaptation: { size: null, channels: null, range: null } })).toEqual(RAW_INPUT_ADAPTATION);
    expect(resolveInputAdaptation({ adaptation: { std: [2] } })).toMatchObject({ mean: [0], std: [2] });
  });

  it('rejects bad values, naming the field', () => {
    expect(() => resolveInputAdaptation({ adaptation: { range: [1, 0] } })).toThrow('resolveInputAdaptation: range must be [low, high] with finite low < high, got [1, 0]');
    expect(() => resolveInputAdaptation({ adaptation: { size: 0 } })).toThrow(/size must be a positive integer or \[height, width\], got 0/);
    expect(() => resolveInputAdaptation({ adaptation: { std: [0] } })).toThrow(/std must be a non-empty array of finite numbers > 0, got \[0\]/);
    expect(() => resolveInputAdaptation({ spec: { channels: 3 }, adaptation: { mean: [0.5, 0.5] } })).toThrow(/mean has 2 values but channels is 3/);
    expect(() => resolveInputAdaptation({ adaptation: { resize: 3 } as never })).toThrow(/unknown parameter "resize"/);
    expect(() => resolveInputAdaptation({ adaptation: 'imagenet' as never })).toThrow(/adaptation must be 'spec', 'raw' or an object/);
  });
});

describe('adaptExpertInput', () => {
  it('maps [-1,1] to [0,1], repeats 1 channel to 3 and normalises per channel', () => {
    const x = tf.tensor4d([-1, 0, 0.5, 1], [1, 2, 2, 1]);
    const a = resolveInputAdaptation({ spec: { channels: 3, range: [0, 1] }, adaptation: { mean: [0, 0.5, 1], std: [1, 0.5, 2] } });
    const y = adaptExpertInput({ images: x, adaptation: a });
    expect(y.shape).toEqual([1, 2, 2, 3]);
    const v = y.arraySync()[0];
    const mapped = [[0, 0.5], [0.75, 1]];
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 2; j++) {
        const m = mapped[i][j];
        expect(v[i][j][0]).toBeCloseTo(m, 6);
        expect(v[i][j][1]).toBeCloseTo((m - 0.5) / 0.5, 6);
        expect(v[i][j][2]).toBeCloseTo((m - 1) / 2, 6);
      }
    tf.dispose([x, y]);
  });

  it('resizes bilinearly with half-pixel centres (2x2 -> 4x4 by hand)', () => {
    const x = tf.tensor4d([0, 1, 2, 3], [1, 2, 2, 1]);
    const y = adaptExpertInput({ images: x, adaptation: resolveInputAdaptation({ adaptation: { size: 4 } }) });
    const v = y.arraySync()[0].map((r) => r.map((c) => c[0]));
    // Output pixel i samples source coordinate (i + 0.5) / 2 - 0.5, clamped: -0.25->0, 0.25, 0.75, 1.25->1.
    const s = [0, 0.25, 0.75, 1];
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) expect(v[i][j]).toBeCloseTo(2 * s[i] + s[j], 5);
    tf.dispose([x, y]);
  });

  it('returns an unchanged copy with raw adaptation, and rejects channel counts it cannot adapt', () => {
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6], [1, 1, 2, 3]);
    const y = adaptExpertInput({ images: x, adaptation: RAW_INPUT_ADAPTATION });
    expect(y).not.toBe(x);
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => adaptExpertInput({ images: x, adaptation: resolveInputAdaptation({ spec: { channels: 1 } }) })).toThrow(
      'adaptExpertInput: images have 3 channels (shape [1,1,2,3]); the expert expects 1, and only 1 channel can be repeated',
    );
    expect(() => adaptExpertInput({ images: x, adaptation: { size: 3 } as never })).toThrow(/adaptation must be a resolved InputAdaptation/);
    tf.dispose([x, y]);
  });
});

describe('adaptExpertInput numerics of its former copies', () => {
  // Bit-for-bit, on float32 values spread over the range: the op sequences the copies used before
  // they became calls of adaptExpertInput, written out here with plain tf ops.
  const values = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.fround(-1 + (2 * ((i * 7919) % n)) / n + 1e-7 * (i % 13)));

  it("equals expert guidance's toExpertInput ops (x * 0.5 + 0.5) for [-1, 1] -> [0, 1]", () => {
    const x = tf.tensor4d(values(4096), [4, 32, 32, 1]);
    const y = adaptExpertInput({ images: x, adaptation: resolveInputAdaptation({ spec: { range: [0, 1] } }) });
    const ref = tf.add(tf.mul(x, 0.5), 0.5);
    expect(Array.from(y.dataSync())).toEqual(Array.from(ref.dataSync()));
    tf.dispose([x, y, ref]);
  });

  it("equals the CLI expert evaluation's ops (resize, then repeat) for [0, 1] data and a [0, 1] expert", () => {
    const x = tf.tensor4d(values(2 * 9 * 9).map((v) => (v + 1) / 2), [2, 9, 9, 1]);
    const a = resolveInputAdaptation({ spec: { size: 16, channels: 3, range: [0, 1] }, adaptation: { dataRange: [0, 1] } });
    const y = adaptExpertInput({ images: x, adaptation: a });
    const ref = tf.tile(tf.image.resizeBilinear(x, [16, 16], false, true), [1, 1, 1, 3]);
    expect(y.shape).toEqual([2, 16, 16, 3]);
    expect(Array.from(y.dataSync())).toEqual(Array.from(ref.dataSync()));
    tf.dispose([x, y, ref]);
  });
});
