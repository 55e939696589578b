// run.precision / --precision: bf16 sets the native backend's mixed precision, and is an error
// on any other backend.
import * as tf from '@tensorflow/tfjs-core';
import { getNativePrecision, nativeInfo, setNativePrecision } from '@fad/tfjs-native';
import { afterAll, describe, expect, it } from 'vitest';

import { effectiveConfig, initBackend } from './context';

const log = { info: () => {}, warn: () => {}, quiet: true } as never;
const native = nativeInfo();
const bf16Here = native.available && native.addon?.bf16Supported === true;

describe('run.precision', () => {
  afterAll(() => setNativePrecision('fp32'));

  it('defaults to fp32; --precision overrides; other values are rejected', () => {
    expect(effectiveConfig({}).run.precision).toBe('fp32');
    expect(effectiveConfig({ precision: 'bf16' }).run.precision).toBe('bf16');
    expect(() => effectiveConfig({ set: ['run.precision=fp16'] })).toThrow(/run\.precision/);
  });

  it('bf16 on the cpu backend is an error that names the fix', async () => {
    await expect(initBackend(effectiveConfig({ backend: 'cpu', precision: 'bf16' }), log)).rejects.toThrow(
      /run.precision bf16 needs the native backend.*backend is "cpu"/,
    );
  });

  it.skipIf(!bf16Here)('bf16 on the native backend sets its precision; fp32 leaves it alone', async () => {
    expect(await initBackend(effectiveConfig({ backend: 'native', precision: 'bf16' }), log)).toBe('native');
    expect(getNativePrecision()).toBe('bf16');
    setNativePrecision('fp32');
    expect(await initBackend(effectiveConfig({ backend: 'native' }), log)).toBe('native');
    expect(getNativePrecision()).toBe('fp32');
    expect(tf.getBackend()).toBe('native');
  });
});
