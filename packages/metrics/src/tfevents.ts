/**
 * TensorBoard event records in memory (no file access; `TensorBoardWriter` of `@fad/metrics/node`
 * writes them to `events.out.tfevents.*` files).
 *
 * An events file is a sequence of TFRecords, each holding one serialized `tensorflow.Event`
 * protobuf (tensorflow/core/util/event.proto):
 *
 *     record = uint64 length (little-endian) | uint32 masked_crc32c(length bytes)
 *              | data | uint32 masked_crc32c(data)
 *     masked_crc32c(x) = ((crc >>> 15) | (crc << 17)) + 0xa282ead8   (mod 2^32)
 *
 * Event: `wall_time` (1, double), `step` (2, int64), `file_version` (3, string; the first record of
 * a file is `brain.Event:2`), `summary` (5), `session_log` (7); the last three are a oneof.
 * Summary: repeated `value` (1). Summary.Value: `tag` (1), `simple_value` (2, float) or `image` (4).
 * Summary.Image: `height` (1), `width` (2), `colorspace` (3: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA),
 * `encoded_image_string` (4, PNG bytes). SessionLog: `status` (1; START = 1).
 */

/** The `file_version` of the first record of every events file. */
export const TFEVENTS_FILE_VERSION = 'brain.Event:2';

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function checkBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array, got ${value === null ? 'null' : typeof value}`);
}

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `data`, as an unsigned 32-bit integer. */
export function crc32c(data: Uint8Array): number {
  checkBytes(data, 'crc32c: data');
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC32C_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The masked CRC-32C of TFRecord framing: rotate right by 15 bits, add 0xa282ead8. */
export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** Frames `data` as one TFRecord: length, masked CRC of the length, data, masked CRC of the data. */
export function encodeTfRecord(data: Uint8Array): Uint8Array {
  checkBytes(data, 'encodeTfRecord: data');
  const out = new Uint8Array(12 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** One value of a summary: a scalar (`simple_value`) or an encoded image. */
export type SummaryValue =
  | { tag: string; scalar: number }
  | {
      tag: string;
      image: {
        height: number;
        width: number;
        /** 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA (the image's channels). */
        channels: 1 | 2 | 3 | 4;
        /** The encoded image (PNG). */
        encoded: Uint8Array;
      };
    };

export interface TfEvent {
  /** Seconds since the Unix epoch. */
  wallTime: number;
  /** The global step (a non-negative integer). */
  step: number;
  /** Set on the first record of a file only (`TFEVENTS_FILE_VERSION`). */
  fileVersion?: string;
  summary?: SummaryValue[];
  /**
   * A session start (SessionLog START): TensorBoard takes each one after a run's first as a restart
   * and drops the run's points at steps >= `step` written before it (a resumed run's discarded tail).
   */
  sessionStart?: boolean;
}

/** Protobuf writer for the few wire types an Event needs. */
class ProtoWriter {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  private push(b: Uint8Array): void {
    this.parts.push(b);
    this.size += b.length;
  }

  varint(v: number): void {
    // Non-negative safe integers only (checked by the callers).
    const bytes: number[] = [];
    let x = v;
    while (x >= 0x80) {
      bytes.push((x % 0x80) | 0x80);
      x = Math.floor(x / 0x80);
    }
    bytes.push(x);
    this.push(Uint8Array.from(bytes));
  }

  key(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  double(field: number, v: number): void {
    this.key(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.push(b);
  }

  float(field: number, v: number): void {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
  }

  uint(field: number, v: number): void {
    this.key(field, 0);
    this.varint(v);
  }

  bytes(field: number, b: Uint8Array): void {
    this.key(field, 2);
    this.varint(b.length);
    this.push(b);
  }

  string(field: number, s: string): void {
    this.bytes(field, new TextEncoder().encode(s));
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function encodeSummaryValue(v: SummaryValue, path: string): Uint8Array {
  if (v === null || typeof v !== 'object') throw new TypeError(`${path} must be an object, got ${v === null ? 'null' : typeof v}`);
  if (typeof v.tag !== 'string' || v.tag === '') throw new TypeError(`${path}.tag must be a non-empty string, got ${JSON.stringify(v.tag)}`);
  const w = new ProtoWriter();
  w.string(1, v.tag);
  if ('scalar' in v) {
    if (typeof v.scalar !== 'number') throw new TypeError(`${path}.scalar must be a number, got ${typeof v.scalar}`);
    w.float(2, v.scalar);
  } else if ('image' in v && v.image !== null && typeof v.image === 'object') {
    const im = v.image;
    for (const k of ['height', 'width'] as const) {
      if (!isCount(im[k]) || im[k] === 0) throw new TypeError(`${path}.image.${k} must be a positive integer, got ${im[k]}`);
    }
    if (![1, 2, 3, 4].includes(im.channels)) throw new TypeError(`${path}.image.channels must be 1, 2, 3 or 4, got ${im.channels}`);
    checkBytes(im.encoded, `${path}.image.encoded`);
    const img = new ProtoWriter();
    img.uint(1, im.height);
    img.uint(2, im.width);
    img.uint(3, im.channels);
    img.bytes(4, im.encoded);
    w.bytes(4, img.finish());
  } else {
    throw new TypeError(`${path} needs a scalar (number) or an image ({ height, width, channels, encoded })`);
  }
  return w.finish();
}

/** The serialized `tensorflow.Event` protobuf (not framed; see `encodeTfRecord`, `encodeEventRecord`). */
export function encodeEvent(event: TfEvent): Uint8Array {
  if (event === null || typeof event !== 'object') throw new TypeError(`encodeEvent: event must be an object, got ${event === null ? 'null' : typeof event}`);
  if (typeof event.wallTime !== 'number' || !Number.isFinite(event.wallTime)) throw new TypeError(`encodeEvent: event.wallTime must be a finite number (seconds), got ${event.wallTime}`);
  if (!isCount(event.step)) throw new TypeError(`encodeEvent: event.step must be a non-negative safe integer, got ${event.step}`);
  if (event.fileVersion !== undefined && typeof event.fileVersion !== 'string') throw new TypeError(`encodeEvent: event.fileVersion must be a string, got ${typeof event.fileVersion}`);
  if (event.summary !== undefined && !Array.isArray(event.summary)) throw new TypeError('encodeEvent: event.summary must be an array of values');
  if ([event.fileVersion !== undefined, event.summary !== undefined, Boolean(event.sessionStart)].filter(Boolean).length > 1) {
    throw new TypeError('encodeEvent: an event holds one of fileVersion, summary or sessionStart (a protobuf oneof), got more than one');
  }
  const w = new ProtoWriter();
  w.double(1, event.wallTime);
  w.uint(2, event.step);
  if (event.fileVersion !== undefined) w.string(3, event.fileVersion);
  if (event.summary !== undefined) {
    const s = new ProtoWriter();
    event.summary.forEach((v, i) => s.bytes(1, encodeSummaryValue(v, `encodeEvent: event.summary[${i}]`)));
    w.bytes(5, s.finish());
  }
  if (event.sessionStart) {
    const log = new ProtoWriter();
    log.uint(1, 1); // SessionLog.START
    w.bytes(7, log.finish());
  }
  return w.finish();
}

/** `encodeEvent` framed as a TFRecord: the bytes to append to an events file. */
export function encodeEventRecord(event: TfEvent): Uint8Array {
  return encodeTfRecord(encodeEvent(event));
}
