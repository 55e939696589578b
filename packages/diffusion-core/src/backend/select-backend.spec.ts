import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { selectBackend } from './select-backend';

describe('selectBackend', () => {
  it('always finds cpu, and says what it chose', async () => {
    const lines: string[] = [];
    const r = await selectBackend({ preferred: 'cpu', log: (m) => lines.push(m) });
    expect(r.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^fad: using the "cpu" backend: pure JavaScript/);
  });

  it('in auto mode skips tfjs-node (not installable here) with a reason, and picks the best available', async () => {
    const lines: string[] = [];
    const r = await selectBackend({ log: (m) => lines.push(m) });
    expect(r.attempts[0]).toMatchObject({ name: 'tensorflow', ok: false });
    expect(r.attempts[0].detail).toMatch(/is installed|failed to load/);
    expect(['native', 'wasm']).toContain(r.name);
    expect(tf.getBackend()).toBe(r.name);
    expect(lines[0]).toContain(`"${r.name}"`);
    expect(lines[0]).toContain('not available: tensorflow');
  });

  it('errors for an unknown or unavailable forced backend', async () => {
    await expect(selectBackend({ preferred: 'webgl' as never })).rejects.toThrow(/preferred must be one of auto, tensorflow, native, wasm, cpu/);
    await expect(selectBackend({ preferred: 'tensorflow', log: () => {} })).rejects.toThrow(/no usable backend \(tensorflow: neither/);
    await expect(selectBackend({ threads: 0 })).rejects.toThrow(/threads must be a positive integer/);
  });
});
