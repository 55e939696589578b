/**
 * An events-file reader for the tests, written apart from the encoder (tfevents.ts): its own
 * bit-by-bit CRC-32C, its own protobuf decoding. Every record's length CRC and data CRC is
 * checked; a bad one throws, naming the record.
 */

/** Bit-by-bit CRC-32C (no table, unlike the encoder). */
export function crc32cBitwise(bytes: Uint8Array): number {
  let crc = ~0 >>> 0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  return ~crc >>> 0;
}

export function maskCrc(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** The data of every TFRecord in `file`, CRC-checked. */
export function readTfRecords(file: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let o = 0;
  while (o < file.length) {
    if (o + 12 > file.length) throw new Error(`record ${out.length}: truncated header at byte ${o}`);
    const len = Number(view.getBigUint64(o, true));
    const lenCrc = view.getUint32(o + 8, true);
    if (lenCrc !== maskCrc(crc32cBitwise(file.subarray(o, o + 8)))) throw new Error(`record ${out.length}: bad length CRC`);
    const start = o + 12;
    if (start + len + 4 > file.length) throw new Error(`record ${out.length}: truncated data`);
    const data = file.subarray(start, start + len);
    if (view.getUint32(start + len, true) !== maskCrc(crc32cBitwise(data))) throw new Error(`record ${out.length}: bad data CRC`);
    out.push(data);
    o = start + len + 4;
  }
  return out;
}

/** A decoded protobuf field: varint (as bigint), 64-bit and 32-bit (raw bytes), length-delimited bytes. */
export interface ProtoField {
  field: number;
  wire: 0 | 1 | 2 | 5;
  varint?: bigint;
  bytes?: Uint8Array;
}

export function decodeProto(buf: Uint8Array): ProtoField[] {
  const fields: ProtoField[] = [];
  let o = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (o >= buf.length) throw new Error('truncated varint');
      const b = buf[o++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (o < buf.length) {
    const key = Number(varint());
    const field = key >> 3;
    const wire = key & 7;
    if (wire === 0) fields.push({ field, wire, varint: varint() });
    else if (wire === 1) fields.push({ field, wire, bytes: buf.slice(o, (o += 8)) });
    else if (wire === 5) fields.push({ field, wire, bytes: buf.slice(o, (o += 4)) });
    else if (wire === 2) {
      const n = Number(varint());
      fields.push({ field, wire, bytes: buf.slice(o, (o += n)) });
    } else throw new Error(`unsupported wire type ${wire}`);
    if (o > buf.length) throw new Error('field runs past the end of the message');
  }
  return fields;
}

export interface ReadImage {
  height: number;
  width: number;
  colorspace: number;
  encoded: Uint8Array;
}

export interface ReadEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  sessionLogStatus?: number;
  values: Array<{ tag: string; simpleValue?: number; image?: ReadImage }>;
}

const f64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
const f32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

export function decodeEvent(data: Uint8Array): ReadEvent {
  const e: ReadEvent = { wallTime: 0, step: 0, values: [] };
  for (const f of decodeProto(data)) {
    if (f.field === 1 && f.wire === 1) e.wallTime = f64(f.bytes!);
    else if (f.field === 2 && f.wire === 0) e.step = Number(f.varint!);
    else if (f.field === 3 && f.wire === 2) e.fileVersion = text(f.bytes!);
    else if (f.field === 5 && f.wire === 2) {
      for (const v of decodeProto(f.bytes!)) {
        if (v.field !== 1) throw new Error(`unexpected Summary field ${v.field}`);
        const value: ReadEvent['values'][number] = { tag: '' };
        for (const g of decodeProto(v.bytes!)) {
          if (g.field === 1) value.tag = text(g.bytes!);
          else if (g.field === 2 && g.wire === 5) value.simpleValue = f32(g.bytes!);
          else if (g.field === 4 && g.wire === 2) {
            const im: ReadImage = { height: 0, width: 0, colorspace: 0, encoded: new Uint8Array() };
            for (const h of decodeProto(g.bytes!)) {
              if (h.field === 1) im.height = Number(h.varint!);
              else if (h.field === 2) im.width = Number(h.varint!);
              else if (h.field === 3) im.colorspace = Number(h.varint!);
              else if (h.field === 4) im.encoded = h.bytes!;
            }
            value.image = im;
          } else throw new Error(`unexpected Summary.Value field ${g.field} (wire ${g.wire})`);
        }
        e.values.push(value);
      }
    } else if (f.field === 7 && f.wire === 2) {
      for (const g of decodeProto(f.bytes!)) if (g.field === 1) e.sessionLogStatus = Number(g.varint!);
    } else throw new Error(`unexpected Event field ${f.field} (wire ${f.wire})`);
  }
  return e;
}

/** Every event of an events file, CRC-checked and decoded. */
export function readTfEvents(file: Uint8Array): ReadEvent[] {
  return readTfRecords(file).map(decodeEvent);
}
