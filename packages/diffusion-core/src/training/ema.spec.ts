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

  it('warm-up follows diffusers EMAModel: decay min(d, (1+s)/(10+s)), s = step-1, 0 at the first update', () => {
    const w = tf.variable(tf.scalar(4));
    const ema = new EmaWeights([w], 0.999, { warmup: true });
    // Hand-derived: step 1 -> 0 (shadow = w), step 2 -> 2/11, step 3 -> 3/12, capped by 0.999 once (1+s)/(10+s) > 0.999 (s > 8990).
    expect(ema.decayAt(1)).toBe(0);
    expect(ema.decayAt(2)).toBeCloseTo(2 / 11, 12);
    expect(ema.decayAt(3)).toBeCloseTo(3 / 12, 12);
    expect(ema.decayAt(500)).toBeCloseTo(500 / 509, 12);
    expect(ema.decayAt(20000)).toBe(0.999);
    expect(new EmaWeights([w], 0.9).decayAt(1)).toBe(0.9);
    w.assign(tf.scalar(10));
    ema.update({ step: 1 }); // shadow = 10
    w.assign(tf.scalar(21));
    ema.update({ step: 2 }); // 2/11*10 + 9/11*21 = 19
    w.assign(tf.scalar(3));
    ema.update({ step: 3 }); // 0.25*19 + 0.75*3 = 7
    const out = tf.variable(tf.scalar(0));
    ema.copyTo([out]);
    expect(out.dataSync()[0]).toBeCloseTo(7, 5);
    expect(leakedTensors(() => ema.update({ step: 4 }))).toBe(0);
    expect(() => ema.update()).toThrow(/with warmup the step \(1-based\) is required/);
    expect(() => ema.decayAt(0)).toThrow(/step must be an integer >= 1/);
    expect(() => new EmaWeights([w], 0.9, { warmup: 1 as unknown as boolean })).toThrow(/options.warmup must be a boolean/);
    ema.dispose();
    tf.dispose([w, out]);
  });
});
