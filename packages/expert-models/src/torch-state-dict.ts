/**
 * Reading a PyTorch state dict saved as safetensors (`safetensors.torch.save_file(model.state_dict(),
 * ...)`, or a hub `model.safetensors`), as float32 arrays in PyTorch's layouts.
 *
 * Unlike `@fad/diffusion-core`'s `decodeSafetensors` (fad's own files: F32/F16/F64/I32), this accepts
 * what PyTorch writes: floating tensors in F32, F16, BF16 or F64 are widened to float32 (exactly:
 * every F16/BF16 value is a float32); integer and boolean tensors (`num_batches_tracked` is I64) are
 * listed with their dtype and shape but no data, since no weight is an integer.
 */
import { show } from './validate';

/** One tensor of a state dict: float32 values in the file's (PyTorch) layout, or null for integer tensors. */
export interface TorchStateTensor {
  /** The safetensors dtype as stored (`F32`, `F16`, `BF16`, `F64`, `I64`, ...). */
  dtype: string;
  shape: number[];
  /** Row-major float32 values; null for integer/boolean dtypes. */
  data: Float32Array | null;
}

/** A decoded state dict and the file's string metadata. */
export interface TorchStateDict {
  tensors: Record<string, TorchStateTensor>;
  metadata: Record<string, string>;
}

const FLOAT_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };
const OTHER_BYTES: Record<string, number> = { I64: 8, U64: 8, I32: 4, U32: 4, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1 };

/** IEEE half -> number (exact). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}

function toFloat32(dtype: string, bytes: Uint8Array, count: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  if (dtype === 'F32') for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  else if (dtype === 'F64') for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
  else if (dtype === 'F16') for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
  else {
    // BF16 is the upper half of a float32.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  }
  return out;
}

/** Parameters of {@link decodeTorchStateDict}. */
export interface DecodeTorchStateDictParams {
  /** The bytes of a safetensors file. */
  bytes: Uint8Array;
  /** Names the source in error messages (e.g. the file path). */
  source?: string;
}

/** Decodes a PyTorch safetensors file (see the file comment for the dtypes). */
export function decodeTorchStateDict(params: DecodeTorchStateDictParams): TorchStateDict {
  const fn = 'decodeTorchStateDict';
  const { bytes } = params ?? ({} as DecodeTorchStateDictParams);
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${fn}: bytes must be a Uint8Array, got ${show(bytes)}`);
  const src = params.source ? `${params.source}: ` : '';
  if (bytes.length < 8) throw new Error(`${fn}: ${src}${bytes.length} bytes is too short for a safetensors file`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > bytes.length - 8 || n > 100_000_000) throw new Error(`${fn}: ${src}header length ${n} exceeds the file (${bytes.length} bytes); not a safetensors file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`${fn}: ${src}the header is not valid JSON (${(e as Error).message}); not a safetensors file`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error(`${fn}: ${src}the header is not a JSON object; not a safetensors file`);
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const tensors: Record<string, TorchStateTensor> = {};
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: off } = (info ?? {}) as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    const size = FLOAT_BYTES[dtype as string] ?? OTHER_BYTES[dtype as string];
    if (size === undefined) {
      throw new Error(`${fn}: ${src}tensor "${name}" has dtype ${show(dtype)}; supported: ${[...Object.keys(FLOAT_BYTES), ...Object.keys(OTHER_BYTES)].join(', ')}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`${fn}: ${src}tensor "${name}" has a bad shape ${show(shape)}`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (!Array.isArray(off) || off.length !== 2 || off[0] < 0 || off[1] > dataLen || off[1] - off[0] !== count * size) {
      throw new Error(`${fn}: ${src}tensor "${name}" has bad data_offsets ${show(off)} for ${dtype} [${shape}] (${dataLen} data bytes)`);
    }
    const data = dtype! in FLOAT_BYTES ? toFloat32(dtype!, bytes.subarray(dataStart + off[0], dataStart + off[1]), count) : null;
    tensors[name] = { dtype: dtype!, shape: shape.slice(), data };
  }
  return { tensors, metadata };
}
