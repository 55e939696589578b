import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { leakedTensors, useCpuBackend } from '../testing/setup-cpu';
import { EmaWeights } from './ema';

beforeAll(useCpuBackend);

describe('EmaWeights', () => {
  it('tracks shadow = d*shadow + (1-d)*w', () => {
    const w = tf.variable(tf.scalar(0));
    const ema = new EmaWeights([w], 0.9);
    w.assign(tf.scalar(10));
    ema.update(); // 0.9*0 + 0.1*10 = 1
    ema.update(); // 0.9*1 + 1 = 1.9
    const out = tf.variable(tf.scalar(0));
    ema.copyTo([out]);
    expect(out.dataSync()[0]).toBeCloseTo(1.9, 6);
    expect(leakedTensors(() => ema.update())).toBe(0);
    expect(() => new EmaWeights([w], 1)).toThrow(/emaDecay must be in \(0, 1\)/);
    expect(leakedTensors(() => new EmaWeights([w, out], 0.5).dispose())).toBe(0);
    ema.dispose();
    tf.dispose([w, out]);
  });
});
