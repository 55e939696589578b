import { describe, expect, it } from 'vitest';
import { assertInt, assertKnownKeys, assertNumber, assertOneOf, show } from './validate';

describe('validation helpers', () => {
  it('name the function, field, value and accepted values', () => {
    expect(() => assertInt('f', 'n', 2.5, 1)).toThrow('f: n must be an integer >= 1, got 2.5');
    expect(() => assertInt('f', 'n', 9, 0, 3)).toThrow('f: n must be an integer in [0, 3], got 9');
    expect(() => assertNumber('f', 'lr', 0, { min: 0, minExclusive: true })).toThrow('f: lr must be a finite number > 0, got 0');
    expect(() => assertNumber('f', 'x', Infinity)).toThrow('f: x must be a finite number, got Infinity');
    expect(() => assertOneOf('f', 'mode', 'x', ['a', 'b'])).toThrow('f: mode must be one of "a", "b", got "x"');
    expect(() => assertKnownKeys('f', 'opts', { a: 1, z: 2 }, ['a', 'b'])).toThrow('f: unknown field opts.z; accepted: a, b');
    expect(show(new Float32Array(3))).toBe('Float32Array(3)');
    expect(show(Array.from({ length: 10 }, (_, i) => i))).toBe('[0,1,2,3,4,5,6,7,...] (10 items)');
  });
});
