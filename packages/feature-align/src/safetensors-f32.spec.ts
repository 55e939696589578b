import { decodeSafetensors, encodeSafetensors } from '@fad/diffusion-core';
import { describe, expect, it } from 'vitest';
import { decodeSafetensorsF32, encodeSafetensorsF32 } from './safetensors-f32';

const tensors = {
  'projection.weight': { shape: [3, 2], data: Float32Array.from([1, -2, 3.5, 4, 5, 6e-8]) },
  'projection.bias': { shape: [2], data: Float32Array.from([0.25, -0.5]) },
};

describe('safetensors (F32)', () => {
  it('round-trips tensors and metadata', () => {
    const bytes = encodeSafetensorsF32(tensors, { format: 'x', config: '{"a":1}' });
    const back = decodeSafetensorsF32(bytes);
    expect(back.metadata).toEqual({ format: 'x', config: '{"a":1}' });
    expect(back.tensors['projection.weight'].shape).toEqual([3, 2]);
    expect(Array.from(back.tensors['projection.weight'].data)).toEqual(Array.from(tensors['projection.weight'].data));
    expect(Array.from(back.tensors['projection.bias'].data)).toEqual([0.25, -0.5]);
    // Data 8-byte aligned, as diffusion-core writes it.
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLen) % 8).toBe(0);
  });

  it("writes exactly the bytes diffusion-core's encoder writes, and reads its files", () => {
    const ours = encodeSafetensorsF32(tensors, { format: 'x' });
    const theirs = encodeSafetensors({
      tensors: Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, { dtype: 'F32' as const, ...t }])),
      metadata: { format: 'x' },
    });
    expect(Buffer.from(ours).equals(Buffer.from(theirs))).toBe(true);
    const decoded = decodeSafetensors(ours);
    expect(Array.from(decoded.tensors['projection.weight'].data)).toEqual(Array.from(tensors['projection.weight'].data));
    expect(decodeSafetensorsF32(theirs).metadata).toEqual({ format: 'x' });
  });

  it('rejects malformed input with a message', () => {
    expect(() => decodeSafetensorsF32(new Uint8Array(3))).toThrow(/too short/);
    const bad = encodeSafetensors({ tensors: { x: { dtype: 'I32', shape: [1], data: Int32Array.from([1]) } }, metadata: {} });
    expect(() => decodeSafetensorsF32(bad)).toThrow(/"x" is I32; only F32/);
    expect(() => encodeSafetensorsF32({ x: { shape: [2], data: new Float32Array(3) } }, {})).toThrow(/3 values for shape \[2\]/);
  });
});
