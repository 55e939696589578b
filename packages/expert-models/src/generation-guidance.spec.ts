import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Expert } from './expert-model';
import { generationGuidance } from './generation-guidance';
import { useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

function stub(classNames: string[]): Expert {
  const logits = (x: tf.Tensor4D) => tf.tidy(() => tf.tile(tf.mean(x, [1, 2]), [1, classNames.length]) as tf.Tensor2D);
  return {
    config: {} as never, featureDim: 1, numClasses: classNames.length, classNames, frozen: true,
    inputSpec: { size: 4, channels: 1, mean: [0], std: [1], range: [0, 1] },
    features: (x) => tf.mean(x, [1, 2]) as tf.Tensor2D, logits, forward: (x) => ({ features: tf.mean(x, [1, 2]) as tf.Tensor2D, logits: logits(x) }),
    predict: (x) => tf.argMax(logits(x), 1), freeze: () => {}, unfreeze: () => {}, dispose: () => {},
  };
}

const file = (training?: unknown): { name: string; sha256: string; metadata: Record<string, string> } => ({ name: 'e.safetensors', sha256: 'abc', metadata: training === undefined ? {} : { training: JSON.stringify(training) } });
const base = { scale: 2, minTimestep: 100, twoStage: false };

describe('generationGuidance', () => {
  it('maps the model classes to the expert\'s by name for classifier guidance, and records the setup', () => {
    const g = generationGuidance({ ...base, expert: stub(['c', 'a', 'b']), expertFile: file({ noiseAware: true }), modelClassNames: ['a', 'b', 'c'], kind: 'classifier' });
    expect(g.record).toEqual({ kind: 'classifier', scale: 2, expert: 'e.safetensors', expertSha256: 'abc', expertNoiseAware: true, twoStage: false, minTimestep: 100, labelMap: [1, 2, 0] });
    expect(g.note).toBeNull();
    expect(typeof g.fn).toBe('function');
  });

  it('accepts generic class_i names by position, and needs no map for uncertainty guidance', () => {
    const g = generationGuidance({ ...base, expert: stub(['x', 'y']), expertFile: file(), modelClassNames: ['class_0', 'class_1'], kind: 'classifier' });
    expect(g.record.labelMap).toEqual([0, 1]);
    expect(g.note).toMatch(/not trained noise-aware/);
    const u = generationGuidance({ ...base, expert: stub(['x', 'y']), expertFile: file({ noiseAware: false }), modelClassNames: ['a', 'b'], kind: 'entropy' });
    expect(u.record).toMatchObject({ kind: 'entropy', labelMap: null, expertNoiseAware: false });
  });

  it('names the classes the expert lacks', () => {
    expect(() => generationGuidance({ ...base, expert: stub(['a', 'x']), expertFile: file(), modelClassNames: ['a', 'b', 'c'], kind: 'classifier' })).toThrow('the expert e.safetensors has no class named "b", "c" (its classes: a, x)');
    expect(() => generationGuidance({ ...base, expert: stub(['a']), expertFile: file(), modelClassNames: [], kind: 'entropy' })).toThrow(TypeError);
  });
});
