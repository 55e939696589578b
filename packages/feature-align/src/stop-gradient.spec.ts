import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { runWithoutGradient, stopGradient } from './stop-gradient';
import { useCpuBackend } from './test-support/setup';
import './register-gradients';

beforeAll(useCpuBackend);

describe('stopGradient / runWithoutGradient', () => {
  it('pass values through but no gradient (absent, not zero)', () => {
    const w = tf.variable(tf.scalar(2));
    const v = tf.variable(tf.scalar(3));
    const { value, grads } = tf.variableGrads(() => {
      const cut = stopGradient(tf.mul(w, 5));
      const inner = runWithoutGradient(() => tf.square(w));
      return tf.add(tf.mul(cut, v), tf.mul(inner, v)) as tf.Scalar;
    }, [w, v]);
    expect(value.dataSync()[0]).toBe(10 * 3 + 4 * 3);
    expect(grads[w.name]).toBeUndefined();
    expect(grads[v.name].dataSync()[0]).toBe(14);
    tf.dispose([w, v, value, ...Object.values(grads)]);
  });

  it('keep only the result of runWithoutGradient, and reject bad arguments', () => {
    const x = tf.ones([4]);
    const before = tf.memory().numTensors;
    const y = runWithoutGradient(() => tf.sum(tf.mul(tf.add(x, 1), 2)));
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(y.dataSync()[0]).toBe(16);
    const c = stopGradient(x);
    expect(Array.from(c.dataSync())).toEqual([1, 1, 1, 1]);
    tf.dispose([x, y, c]);
    expect(() => stopGradient([1, 2] as unknown as tf.Tensor)).toThrow('stopGradient: x must be a tf.Tensor, got [1, 2]');
    expect(() => runWithoutGradient(() => 3 as unknown as tf.Tensor)).toThrow(/fn must return a tf.Tensor/);
  });
});
