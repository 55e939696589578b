/**
 * A float32-only safetensors codec (internal): enough to store the projection's weights.
 *
 * Same layout as `@fad/diffusion-core`'s codec (8-byte little-endian header length, JSON header
 * with `dtype`, `shape`, `data_offsets` and `__metadata__`, tensors in sorted-name order, data
 * 8-byte aligned), so files written here load with diffusion-core's `loadModuleWeights` and the
 * Python `safetensors` package, and the other way round. Kept local so that this package has no
 * runtime dependency on diffusion-core.
 */

export interface F32Tensor {
  shape: number[];
  data: Float32Array;
}

function assertLittleEndian(where: string): void {
  if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error(`${where}: big-endian hosts are not supported`);
}

/** Encodes float32 tensors and string metadata. */
export function encodeSafetensorsF32(tensors: Record<string, F32Tensor>, metadata: Record<string, string>): Uint8Array {
  assertLittleEndian('encodeSafetensorsF32');
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new TypeError(`encodeSafetensorsF32: metadata "${k}" must be a string, got ${typeof v}`);
  }
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const n of names) {
    const t = tensors[n];
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new RangeError(`encodeSafetensorsF32: "${n}" has ${t.data.length} values for shape [${t.shape}]`);
    header[n] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * count] };
    offset += 4 * count;
  }
  const enc = new TextEncoder();
  let json = JSON.stringify(header);
  const pad = (8 - ((8 + enc.encode(json).length) % 8)) % 8;
  json += ' '.repeat(pad);
  const hbytes = enc.encode(json);
  const out = new Uint8Array(8 + hbytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hbytes.length), true);
  out.set(hbytes, 8);
  let pos = 8 + hbytes.length;
  for (const n of names) {
    const d = tensors[n].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    pos += d.byteLength;
  }
  return out;
}

/** Decodes a safetensors buffer whose tensors are all F32. */
export function decodeSafetensorsF32(bytes: Uint8Array): { tensors: Record<string, F32Tensor>; metadata: Record<string, string> } {
  assertLittleEndian('decodeSafetensorsF32');
  if (!(bytes instanceof Uint8Array)) throw new TypeError('decodeSafetensorsF32: bytes must be a Uint8Array');
  if (bytes.length < 8) throw new Error(`decodeSafetensorsF32: ${bytes.length} bytes is too short for a safetensors file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > bytes.length - 8) throw new Error(`decodeSafetensorsF32: header length ${n} exceeds the file (${bytes.length} bytes)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`decodeSafetensorsF32: the header is not valid JSON (${(e as Error).message})`);
  }
  const start = 8 + n;
  const dataLen = bytes.length - start;
  const tensors: Record<string, F32Tensor> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: off } = info as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (dtype !== 'F32') throw new Error(`decodeSafetensorsF32: "${name}" is ${dtype}; only F32 weights are supported`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (!Array.isArray(off) || off[0] < 0 || off[1] > dataLen || off[1] - off[0] !== 4 * count) {
      throw new Error(`decodeSafetensorsF32: "${name}" has bad data_offsets [${off}] for F32 [${shape}]`);
    }
    tensors[name] = { shape, data: new Float32Array(bytes.slice(start + off[0], start + off[1]).buffer) };
  }
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  return { tensors, metadata };
}
