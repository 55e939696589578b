import * as tf from '@tensorflow/tfjs-core';
import { decodeSafetensors, encodeSafetensors, ModelFileError } from '@fad/diffusion-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { serializeExpert } from './expert-checkpoint';
import { parseExpertFile } from './expert-file';
import { createExpert } from './create-expert';
import { useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

let good: Uint8Array;
beforeAll(() => {
  const expert = createExpert({ config: { arch: 'resnet', block: 'basic', layers: [1], baseWidth: 4, numClasses: 2, input: { size: 8 } }, classNames: ['a', 'b'], seed: 1 });
  good = serializeExpert({ expert });
  expert.dispose();
});

/** The file with its metadata changed. */
function edited(change: (m: Record<string, string>) => void): Uint8Array {
  const f = decodeSafetensors(good);
  change(f.metadata);
  return encodeSafetensors(f);
}

const problem = (bytes: Uint8Array): { reason: string; message: string } => {
  try {
    parseExpertFile({ bytes, name: '/x/e.safetensors' }).expert.dispose();
  } catch (e) {
    if (e instanceof ModelFileError) return { reason: e.reason, message: e.message };
    throw e;
  }
  throw new Error('no error');
};

describe('parseExpertFile', () => {
  it('returns the frozen expert, its config and class names, and leaks nothing', () => {
    const before = tf.memory().numTensors;
    const r = parseExpertFile({ bytes: good, name: '/x/e.safetensors' });
    expect(r.classNames).toEqual(['a', 'b']);
    expect(r.config).toMatchObject({ arch: 'resnet', numClasses: 2, baseWidth: 4 });
    expect(r.expert.frozen).toBe(true);
    r.expert.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('names the file and the field of every problem', () => {
    expect(problem(edited((m) => (m.format = 'other')))).toEqual({ reason: 'not-a-model', message: '/x/e.safetensors is not a usable expert checkpoint: metadata.format is "other", expected "fad-expert/1"' });
    expect(problem(edited((m) => (m.classNames = JSON.stringify(['a', '../b']))))).toMatchObject({ reason: 'metadata', message: expect.stringMatching(/^the expert \/x\/e\.safetensors: metadata\.classNames\[1\] "\.\.\/b" is not a usable class name/) });
    expect(problem(edited((m) => (m.classNames = JSON.stringify(['a']))))).toMatchObject({ message: expect.stringMatching(/metadata\.classNames lists 1 name\(s\), but the model has 2 classes/) });
    expect(problem(edited((m) => (m.classNames = '["a",')))).toMatchObject({ reason: 'metadata', message: expect.stringMatching(/metadata\.classNames is not valid JSON/) });
    expect(problem(edited((m) => delete m.classNames))).toMatchObject({ message: 'the expert /x/e.safetensors: metadata.classNames is missing' });
    expect(problem(edited((m) => (m.config = JSON.stringify({ ...JSON.parse(m.config), baseWidth: 100000 }))))).toEqual({ reason: 'limits', message: 'the expert /x/e.safetensors: metadata.config.baseWidth is 100000, above the limit 8192; the file is damaged or hand-made' });
    expect(problem(edited((m) => (m.config = JSON.stringify({ ...JSON.parse(m.config), arch: 'mlp' }))))).toMatchObject({ reason: 'unsupported-config', message: expect.stringMatching(/^the expert \/x\/e\.safetensors: metadata\.config: /) });
    expect(problem(edited((m) => (m['fad.status'] = 'partial')))).toMatchObject({ reason: 'unfinished', message: expect.stringMatching(/is unfinished \(metadata fad\.status is "partial".*Finish its training/) });
    expect(problem(new Uint8Array(3))).toMatchObject({ reason: 'not-safetensors' });
  });

  it('refuses non-finite weights naming the tensor, and a custom resume hint reaches the message', () => {
    const f = decodeSafetensors(good);
    const name = Object.keys(f.tensors).find((k) => k.includes('weight'))!;
    const t = f.tensors[name];
    f.tensors[name] = { ...t, data: new Float32Array(t.data.length).fill(Number.NaN) };
    const p = problem(encodeSafetensors(f));
    expect(p.reason).toBe('non-finite');
    expect(p.message).toMatch(/the expert \/x\/e\.safetensors cannot be used: its weights are not finite \(training diverged\): .*has/);
    expect(() => parseExpertFile({ bytes: edited((m) => (m['fad.status'] = 'partial')), name: 'e', resumeHint: 'Run X.' })).toThrow(/Run X\.$/);
    expect(() => parseExpertFile({ bytes: 'x' as never, name: 'e' })).toThrow(TypeError);
  });
});
