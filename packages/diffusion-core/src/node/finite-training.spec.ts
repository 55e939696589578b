import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCpuBackend } from '../testing/setup-cpu';
import { assertFiniteTraining } from './finite-training';
import { TrainingRunError } from './training-run-error';

beforeAll(useCpuBackend);

const module = (values: number[][]) => {
  const vars = values.map((v) => tf.variable(tf.tensor1d(v)));
  return { vars, namedParameters: (): Array<[string, tf.Variable]> => vars.map((v, i) => [`layer.${i}.weight`, v]) };
};

describe('assertFiniteTraining', () => {
  it('passes finite weights (null modules are skipped) and leaves no tensors behind', () => {
    const m = module([[1, 2], [3]]);
    const before = tf.memory().numTensors;
    assertFiniteTraining({ modules: [m, null], step: 1, what: 'the checkpoint c' });
    expect(tf.memory().numTensors).toBe(before);
    m.vars.forEach((v) => v.dispose());
  });

  it('names the step, what was not written and the first bad tensor over all modules', () => {
    const a = module([[1, 2]]);
    const b = module([[0, Infinity, NaN], [1]]);
    let err: unknown;
    try {
      assertFiniteTraining({ modules: [a, b], step: 7, what: 'the final model /r/model.safetensors' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TrainingRunError);
    expect((err as TrainingRunError).code).toBe('non-finite');
    expect((err as Error).message).toBe('training diverged at step 7: the final model /r/model.safetensors was not written, the weights are not finite: tensor "layer.0.weight" has 2 of 3 values NaN or infinite (2 of 6 values in 1 tensor(s) overall)');
    [...a.vars, ...b.vars].forEach((v) => v.dispose());
  });
});
