import { describe, expect, it } from 'vitest';
import { TFEVENTS_FILE_VERSION, crc32c, encodeEvent, encodeEventRecord, encodeTfRecord, maskedCrc32c } from './tfevents';
import { crc32cBitwise, maskCrc, readTfEvents, readTfRecords } from '@fad/test-utils/tfevents-reader';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const ascii = (s: string) => new TextEncoder().encode(s);

describe('crc32c', () => {
  it('matches the published check value and the RFC 3720 (iSCSI) test vectors', () => {
    expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  it('agrees with an independent bit-by-bit CRC on varied data', () => {
    let s = 12345;
    for (const n of [1, 7, 8, 9, 255, 1000]) {
      const data = Uint8Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
      expect(crc32c(data)).toBe(crc32cBitwise(data));
    }
  });

  it('masks like TensorFlow: rotate right 15, add 0xa282ead8 (values from tensorboard.compat masked_crc32c)', () => {
    expect(maskedCrc32c(ascii('123456789'))).toBe(0xc78ab0e5);
    expect(maskedCrc32c(new Uint8Array(0))).toBe(0xa282ead8);
    expect(maskedCrc32c(new Uint8Array(8))).toBe(0x07980329);
    expect(maskedCrc32c(ascii('abc'))).toBe(maskCrc(crc32cBitwise(ascii('abc'))));
  });

  it('rejects what is not bytes', () => {
    expect(() => crc32c('abc' as unknown as Uint8Array)).toThrow(/crc32c: data must be a Uint8Array, got string/);
  });
});

describe('encodeTfRecord', () => {
  it('frames data as length, masked length CRC, data, masked data CRC (bytes from tensorboard RecordWriter)', () => {
    expect(hex(encodeTfRecord(ascii('abc')))).toBe('0300000000000000b099490e6162636e57f121');
  });

  it('reads back, CRC-checked, for empty and large records', () => {
    const big = Uint8Array.from({ length: 70000 }, (_, i) => (i * 31) & 0xff);
    const file = new Uint8Array([...encodeTfRecord(new Uint8Array(0)), ...encodeTfRecord(big)]);
    const records = readTfRecords(file);
    expect(records.map((r) => r.length)).toEqual([0, 70000]);
    expect(hex(records[1])).toBe(hex(big));
  });

  it('a flipped bit fails the read-back CRC check', () => {
    const rec = encodeTfRecord(ascii('hello'));
    const badData = rec.slice();
    badData[13] ^= 1;
    expect(() => readTfRecords(badData)).toThrow(/record 0: bad data CRC/);
    const badLen = rec.slice();
    badLen[9] ^= 1;
    expect(() => readTfRecords(badLen)).toThrow(/record 0: bad length CRC/);
  });
});

// Expected bytes: the same events serialized by the tensorflow.Event protobuf of the tensorboard
// Python package (tensorboard.compat.proto.event_pb2), copied here.
describe('encodeEvent (protobuf wire format)', () => {
  it('encodes wall_time, step and file_version', () => {
    expect(hex(encodeEvent({ wallTime: 1.5, step: 300, fileVersion: TFEVENTS_FILE_VERSION }))).toBe('09000000000000f83f10ac021a0d627261696e2e4576656e743a32');
  });

  it('encodes scalars as Summary.Value simple_value (float)', () => {
    const e = encodeEvent({ wallTime: 1700000000.25, step: 1, summary: [{ tag: 'loss', scalar: 0.5 }, { tag: 'train/lr', scalar: 1e-4 }] });
    expect(hex(e)).toBe('0900001040fc54d94110012a1e0a0b0a046c6f7373150000003f0a0f0a08747261696e2f6c721517b7d138');
  });

  it('encodes images as Summary.Image (height, width, colorspace, encoded_image_string)', () => {
    const e = encodeEvent({ wallTime: 2, step: 7, summary: [{ tag: 'validation/grid', image: { height: 2, width: 3, channels: 1, encoded: Uint8Array.from([1, 2, 3]) } }] });
    expect(hex(e)).toBe('09000000000000004010072a200a1e0a0f76616c69646174696f6e2f67726964220b0802100318012203010203');
  });

  it('encodes a session start as SessionLog{status: START} (Event field 7)', () => {
    expect(hex(encodeEvent({ wallTime: 3, step: 11, sessionStart: true }))).toBe('090000000000000840100b3a020801');
  });

  it('encodes large steps as multi-byte varints', () => {
    // Python omits wall_time 0 (proto3 default); fad writes it: 09 + eight zero bytes.
    expect(hex(encodeEvent({ wallTime: 0, step: 2 ** 40 + 5 }))).toBe(`09${'00'.repeat(8)}10858080808020`);
  });

  it('round-trips through the independent reader', () => {
    const png = Uint8Array.from([137, 80, 78, 71, 9, 9]);
    const file = new Uint8Array([
      ...encodeEventRecord({ wallTime: 10.5, step: 0, fileVersion: TFEVENTS_FILE_VERSION }),
      ...encodeEventRecord({ wallTime: 11, step: 42, summary: [{ tag: 'a', scalar: -2.25 }, { tag: 'b/c', scalar: Number.NaN }] }),
      ...encodeEventRecord({ wallTime: 12, step: 43, summary: [{ tag: 'img', image: { height: 4, width: 5, channels: 3, encoded: png } }] }),
      ...encodeEventRecord({ wallTime: 13, step: 44, sessionStart: true }),
    ]);
    const events = readTfEvents(file);
    expect(events[0]).toEqual({ wallTime: 10.5, step: 0, fileVersion: 'brain.Event:2', values: [] });
    expect(events[1].step).toBe(42);
    expect(events[1].values[0]).toEqual({ tag: 'a', simpleValue: -2.25 });
    expect(events[1].values[1].tag).toBe('b/c');
    expect(events[1].values[1].simpleValue).toBeNaN();
    expect(events[2].values[0].image).toEqual({ height: 4, width: 5, colorspace: 3, encoded: png });
    expect(events[3]).toEqual({ wallTime: 13, step: 44, sessionLogStatus: 1, values: [] });
  });

  it('validates its arguments, naming the field', () => {
    expect(() => encodeEvent({ wallTime: Number.NaN, step: 0 })).toThrow(/event\.wallTime must be a finite number/);
    expect(() => encodeEvent({ wallTime: 0, step: -1 })).toThrow(/event\.step must be a non-negative safe integer, got -1/);
    expect(() => encodeEvent({ wallTime: 0, step: 1.5 })).toThrow(/event\.step/);
    expect(() => encodeEvent({ wallTime: 0, step: 0, summary: [{ tag: '', scalar: 1 }] })).toThrow(/event\.summary\[0\]\.tag must be a non-empty string/);
    expect(() => encodeEvent({ wallTime: 0, step: 0, summary: [{ tag: 'x', scalar: '1' as unknown as number }] })).toThrow(/summary\[0\]\.scalar must be a number/);
    expect(() => encodeEvent({ wallTime: 0, step: 0, summary: [{ tag: 'x', image: { height: 0, width: 1, channels: 1, encoded: new Uint8Array() } }] })).toThrow(/summary\[0\]\.image\.height must be a positive integer/);
    expect(() => encodeEvent({ wallTime: 0, step: 0, summary: [{ tag: 'x', image: { height: 1, width: 1, channels: 5 as 1, encoded: new Uint8Array() } }] })).toThrow(/image\.channels must be 1, 2, 3 or 4/);
    expect(() => encodeEvent({ wallTime: 0, step: 0, summary: [{ tag: 'x' } as never] })).toThrow(/needs a scalar/);
    expect(() => encodeEvent({ wallTime: 0, step: 0, fileVersion: 'v', sessionStart: true })).toThrow(/one of fileVersion, summary or sessionStart/);
  });
});
