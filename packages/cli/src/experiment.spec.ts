import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors } from '@fad/diffusion-core';
import { afterAll, describe, expect, it } from 'vitest';
import { checkpointKeyMatches } from './experiment';

const root = mkdtempSync(join(tmpdir(), 'fad-experiment-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('fad experiment: is a variant\'s checkpoint its own?', () => {
  it('reads the key of the checkpoint\'s state; another key, no state or a damaged file is not a match', () => {
    const file = (name: string, metadata: Record<string, string>) => {
      const path = join(root, name);
      writeFileSync(path, encodeSafetensors({ metadata, tensors: { w: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } } } as never));
      return path;
    };
    const ckpt = file('c.safetensors', { state: JSON.stringify({ format: 'fad-train-checkpoint/1', key: 'k1', step: 3 }) });
    expect(checkpointKeyMatches(ckpt, 'k1')).toBe(true);
    expect(checkpointKeyMatches(ckpt, 'k2')).toBe(false);
    expect(checkpointKeyMatches(file('n.safetensors', {}), 'k1')).toBe(false);
    writeFileSync(join(root, 'bad.safetensors'), 'garbage');
    expect(checkpointKeyMatches(join(root, 'bad.safetensors'), 'k1')).toBe(false);
    expect(checkpointKeyMatches(join(root, 'missing.safetensors'), 'k1')).toBe(false);
  });
});
