// Without a usable addon the package must still load, never throw, explain why in one line,
// and leave tfjs alone. Runs whether or not the addon is built (the addon is hidden through
// the loader's environment variables; each scenario re-imports the module fresh).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterEach, describe, expect, it, vi } from 'vitest';

async function freshModule(env: Record<string, string>) {
  vi.resetModules();
  for (const [k, v] of Object.entries(env)) process.env[k] = v;
  return import('./index');
}

afterEach(() => {
  delete process.env.FAD_TFJS_NATIVE_DISABLE;
  delete process.env.FAD_TFJS_NATIVE_PATH;
  vi.restoreAllMocks();
});

describe('@fad/tfjs-native without the addon', () => {
  it('disabled: registerNativeBackend returns false, warns once, registers nothing', async () => {
    const mod = await freshModule({ FAD_TFJS_NATIVE_DISABLE: '1' });
    const res = mod.loadNativeAddon();
    expect(res.ok).toBe(false);
    expect(!res.ok && res.reason).toMatch(/disabled by FAD_TFJS_NATIVE_DISABLE/);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect(mod.registerNativeBackend({ threads: 2 })).toBe(false);
    expect(mod.registerNativeBackend()).toBe(false);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0][0])).toMatch(/backend 'native' not registered/);
    expect(tf.findBackendFactory(mod.NATIVE_BACKEND_NAME)).toBeNull();
    expect(tf.getKernelsForBackend(mod.NATIVE_BACKEND_NAME)).toHaveLength(0);
    const info = mod.nativeInfo();
    expect(info).toMatchObject({ available: false, registered: false, tfjsCore: tf.version_core });
    expect(mod.setNativeThreads(2)).toBe(0);
  });

  it('not built: the reason names the build command and what it needs', async () => {
    const mod = await freshModule({ FAD_TFJS_NATIVE_PATH: join(tmpdir(), 'no-such-dir', 'tfjs_native.node') });
    const res = mod.loadNativeAddon();
    expect(res.ok).toBe(false);
    const reason = res.ok ? '' : res.reason;
    expect(reason).toBe('native addon not built: run `npm run build:native -w @fad/tfjs-native` (needs g++ and libdnnl-dev)');
  });

  it('a kernel whose addon call throws falls back to the cpu kernel (warned once)', async () => {
    const { makeNativeKernels } = await import('./kernels');
    const throwing = new Proxy({} as Record<string, unknown>, {
      get: () => () => {
        throw new Error('oneDNN error: could not create a primitive descriptor');
      },
    });
    const kernels = makeNativeKernels(throwing as never, (name) => tf.getKernel(name, 'cpu')!.kernelFunc);
    await tf.setBackend('cpu');
    const x = tf.tensor4d(Float32Array.from({ length: 2 * 5 * 5 * 3 }, (_, i) => Math.sin(i)), [2, 5, 5, 3]);
    const f = tf.tensor4d(Float32Array.from({ length: 3 * 3 * 3 * 4 }, (_, i) => Math.cos(i)), [3, 3, 3, 4]);
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1, dimRoundingMode: undefined };
    const expected = tf.conv2d(x, f, 1, 'same');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    for (let i = 0; i < 2; i++) {
      const out = kernels[tf.Conv2D]({ inputs: { x, filter: f }, backend: tf.backend(), attrs } as never) as tf.TensorInfo;
      expect(out.shape).toEqual(expected.shape);
      expect(Array.from(tf.backend().readSync(out.dataId) as Float32Array)).toEqual(Array.from(expected.dataSync()));
      tf.backend().disposeData(out.dataId);
    }
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0][0])).toMatch(/Conv2D: native kernel failed \(oneDNN error/);
    tf.dispose([x, f, expected]);
  });

  it('unloadable binary: a one-line reason instead of an exception', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tfjs-native-'));
    const bogus = join(dir, 'tfjs_native.node');
    writeFileSync(bogus, 'not an ELF file');
    const mod = await freshModule({ FAD_TFJS_NATIVE_PATH: bogus });
    const res = mod.loadNativeAddon();
    expect(res.ok).toBe(false);
    const reason = res.ok ? '' : res.reason;
    expect(reason).toMatch(/^native addon failed to load \(/);
    expect(reason).not.toContain('\n');
  });

  it('the build hint names a command that works where the package sits', async () => {
    const mod = await freshModule({});
    const here = join(import.meta.dirname, '..');
    expect(mod.nativeBuildHint(here)).toBe('run `npm run build:native -w @fad/tfjs-native` (needs g++ and libdnnl-dev)');
    const installed = join(tmpdir(), 'app', 'node_modules', '@fad', 'tfjs-native');
    expect(mod.nativeBuildHint(installed)).toBe(`run \`node ${join(installed, 'scripts', 'install.mjs')}\` (needs g++ and libdnnl-dev)`);
  });
});
