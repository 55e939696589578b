import { describe, expect, it } from 'vitest';
import { failParam, isIntAtLeast } from './param-check';

describe('param-check', () => {
  it('names the function, the field, the expectation and the value, with the chosen error type', () => {
    expect(() => failParam('run', 'params.steps', 'a positive integer', 1.5)).toThrow(new RangeError('run: params.steps must be a positive integer, got 1.5'));
    expect(() => failParam('run', 'params.dir', 'a string', { a: 1 }, TypeError)).toThrow(new TypeError('run: params.dir must be a string, got {"a":1}'));
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => failParam('run', 'params.x', 'a number', cyclic)).toThrow('run: params.x must be a number, got [object Object]');
    expect(() => failParam('run', 'params.x', 'short', 'y'.repeat(200))).toThrow(new RangeError(`run: params.x must be short, got "${'y'.repeat(79)}`));
  });

  it('isIntAtLeast accepts integers from min on only', () => {
    expect([isIntAtLeast(3, 1), isIntAtLeast(1, 1), isIntAtLeast(0, 1), isIntAtLeast(2.5, 1), isIntAtLeast('3', 1), isIntAtLeast(Number.NaN, 0)]).toEqual([true, true, false, false, false, false]);
  });
});
