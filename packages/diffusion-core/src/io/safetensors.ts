/**
 * The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, ...,
 * "__metadata__": {string: string}}`, then the raw little-endian tensor bytes. Readable by the
 * Python `safetensors` package, PyTorch, JAX and the HF hub tools.
 */

export type SafetensorsDtype = 'F32' | 'F64' | 'I32' | 'F16';

export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | Uint16Array;
}

export interface SafetensorsFile {
  tensors: Record<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F64: 8, I32: 4, F16: 2 };

/**
 * Encodes tensors and string metadata. Tensors are written in sorted-name order (or, with
 * `keepOrder`, in the order of `file.tensors`' keys, e.g. a PyTorch state dict's), 8-byte aligned.
 */
export function encodeSafetensors(file: SafetensorsFile, options: { keepOrder?: boolean } = {}): Uint8Array {
  const names = options.keepOrder ? Object.keys(file.tensors) : Object.keys(file.tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(file.metadata).length > 0) {
    for (const [k, v] of Object.entries(file.metadata)) {
      if (typeof v !== 'string') throw new TypeError(`encodeSafetensors: metadata "${k}" must be a string`);
    }
    header.__metadata__ = file.metadata;
  }
  let offset = 0;
  for (const n of names) {
    const t = file.tensors[n];
    if (!(t.dtype in BYTES)) throw new TypeError(`encodeSafetensors: "${n}" has unsupported dtype ${t.dtype}`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new RangeError(`encodeSafetensors: "${n}" has ${t.data.length} values for shape [${t.shape}]`);
    }
    const len = count * BYTES[t.dtype];
    header[n] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (allowed by the spec).
  const enc = new TextEncoder();
  let hbytes = enc.encode(json);
  const pad = (8 - ((8 + hbytes.length) % 8)) % 8;
  if (pad > 0) {
    json += ' '.repeat(pad);
    hbytes = enc.encode(json);
  }
  const out = new Uint8Array(8 + hbytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(hbytes.length), true);
  out.set(hbytes, 8);
  let pos = 8 + hbytes.length;
  for (const n of names) {
    const t = file.tensors[n];
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (!littleEndian()) throw new Error('encodeSafetensors: big-endian hosts are not supported');
    out.set(bytes, pos);
    pos += bytes.length;
  }
  return out;
}

/** Decodes a safetensors buffer. Throws on a malformed header or out-of-range offsets. */
export function decodeSafetensors(buf: Uint8Array): SafetensorsFile {
  if (buf.length < 8) throw new Error(`decodeSafetensors: ${buf.length} bytes is too short for a safetensors file`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > buf.length - 8 || n > 100_000_000) throw new Error(`decodeSafetensors: header length ${n} exceeds the file (${buf.length} bytes)`);
  let header: Record<string, any>;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`decodeSafetensors: the header is not valid JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + n;
  const dataLen = buf.length - dataStart;
  const tensors: Record<string, SafetensorsTensor> = {};
  const metadata: Record<string, string> = header.__metadata__ ?? {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: off } = info as { dtype: SafetensorsDtype; shape: number[]; data_offsets: [number, number] };
    if (!(dtype in BYTES)) throw new Error(`decodeSafetensors: "${name}" has unsupported dtype ${dtype} (supported: ${Object.keys(BYTES).join(', ')})`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (!Array.isArray(off) || off[0] < 0 || off[1] > dataLen || off[1] - off[0] !== count * BYTES[dtype]) {
      throw new Error(`decodeSafetensors: "${name}" has bad data_offsets [${off}] for ${dtype} [${shape}]`);
    }
    const bytes = buf.slice(dataStart + off[0], dataStart + off[1]); // copy: aligned, owned
    const ab = bytes.buffer;
    const data =
      dtype === 'F32' ? new Float32Array(ab) : dtype === 'F64' ? new Float64Array(ab) : dtype === 'I32' ? new Int32Array(ab) : new Uint16Array(ab);
    tensors[name] = { dtype, shape, data };
  }
  return { tensors, metadata };
}

function littleEndian(): boolean {
  return new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
}

/** Reads only the `__metadata__` of a safetensors buffer (cheap: parses the header alone). */
export function readSafetensorsMetadata(buf: Uint8Array): Record<string, string> {
  if (buf.length < 8) throw new Error(`readSafetensorsMetadata: ${buf.length} bytes is too short for a safetensors file`);
  const n = Number(new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getBigUint64(0, true));
  if (n > buf.length - 8) throw new Error(`readSafetensorsMetadata: header length ${n} exceeds the file (${buf.length} bytes)`);
  try {
    return JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + n))).__metadata__ ?? {};
  } catch (e) {
    throw new Error(`readSafetensorsMetadata: the header is not valid JSON (${(e as Error).message})`);
  }
}
