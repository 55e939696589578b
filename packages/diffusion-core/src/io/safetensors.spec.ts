import { describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors, readSafetensorsMetadata } from './safetensors';

/** Builds a file by hand, byte by byte, as the spec describes it. */
function handMade(): Uint8Array {
  const header = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}';
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + 8);
  out[0] = h.length; // little-endian u64, small value
  out.set(h, 8);
  new DataView(out.buffer).setFloat32(8 + h.length, 1.5, true);
  new DataView(out.buffer).setFloat32(8 + h.length + 4, -2, true);
  return out;
}

describe('safetensors', () => {
  it('decodes a file built by hand from the spec', () => {
    const f = decodeSafetensors(handMade());
    expect(f.metadata).toEqual({ k: 'v' });
    expect(f.tensors.a.shape).toEqual([2]);
    expect(Array.from(f.tensors.a.data)).toEqual([1.5, -2]);
    expect(readSafetensorsMetadata(handMade())).toEqual({ k: 'v' });
  });

  it('writes the documented layout: u64 LE header size, JSON header, 8-byte aligned data', () => {
    const bytes = encodeSafetensors({
      tensors: { w: { dtype: 'F32', shape: [1, 2], data: new Float32Array([3, 4]) }, b: { dtype: 'I32', shape: [1], data: new Int32Array([7]) } },
      metadata: { format: 'x' },
    });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    // Sorted by name: b first at [0,4), then w at [4,12).
    expect(header.b).toEqual({ dtype: 'I32', shape: [1], data_offsets: [0, 4] });
    expect(header.w).toEqual({ dtype: 'F32', shape: [1, 2], data_offsets: [4, 12] });
    expect(header.__metadata__).toEqual({ format: 'x' });
    const dv = new DataView(bytes.buffer, 8 + n);
    expect(dv.getInt32(0, true)).toBe(7);
    expect(dv.getFloat32(4, true)).toBe(3);
    expect(dv.getFloat32(8, true)).toBe(4);
    const back = decodeSafetensors(bytes);
    expect(Array.from(back.tensors.w.data)).toEqual([3, 4]);
  });

  it('rejects malformed files with a reason', () => {
    expect(() => decodeSafetensors(new Uint8Array(4))).toThrow(/too short/);
    const bad = handMade();
    bad[0] = 250;
    expect(() => decodeSafetensors(bad)).toThrow(/not valid JSON|exceeds/);
    const trunc = handMade().subarray(0, handMade().length - 4);
    expect(() => decodeSafetensors(trunc)).toThrow(/bad data_offsets/);
    expect(() => encodeSafetensors({ tensors: { a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }, metadata: {} })).toThrow(/"a" has 2 values for shape \[3\]/);
  });
});
