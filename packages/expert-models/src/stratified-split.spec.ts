import { describe, expect, it } from 'vitest';
import { stratifiedSplit } from './stratified-split';

describe('stratifiedSplit', () => {
  it('holds out the same share of every class, reproducibly, covering every index once', () => {
    const labels = [...new Array(50).fill(0), ...new Array(30).fill(1), ...new Array(20).fill(2)];
    const s = stratifiedSplit({ labels, validationFraction: 0.2, seed: 4 });
    const count = (idx: number[], c: number) => idx.filter((i) => labels[i] === c).length;
    expect([count(s.validation, 0), count(s.validation, 1), count(s.validation, 2)]).toEqual([10, 6, 4]);
    expect([...s.train, ...s.validation].sort((a, b) => a - b)).toEqual(labels.map((_, i) => i));
    expect(s.train).toEqual([...s.train].sort((a, b) => a - b));
    expect(stratifiedSplit({ labels, validationFraction: 0.2, seed: 4 })).toEqual(s);
    expect(stratifiedSplit({ labels, validationFraction: 0.2, seed: 5 }).validation).not.toEqual(s.validation);
  });

  it('keeps at least one sample of a class on each side, and none held out at fraction 0', () => {
    const s = stratifiedSplit({ labels: [0, 0, 1, 1, 1, 2], validationFraction: 0.1, seed: 0 });
    expect(s.validation.map((i) => [0, 0, 1, 1, 1, 2][i]).sort()).toEqual([0, 1]);
    expect(stratifiedSplit({ labels: [0, 1, 1], validationFraction: 0, seed: 0 })).toEqual({ train: [0, 1, 2], validation: [] });
  });

  it('rejects bad arguments', () => {
    expect(() => stratifiedSplit({ labels: [0], validationFraction: 1, seed: 0 })).toThrow(/validationFraction must be a finite number >= 0 and < 1, got 1/);
    expect(() => stratifiedSplit({ labels: [0, -1], validationFraction: 0.5, seed: 0 })).toThrow(/labels\[1\] must be a non-negative integer, got -1/);
    expect(() => stratifiedSplit({ labels: [0], validationFraction: 0.5, seed: 1.5 })).toThrow(/seed must be an integer in \[0, 4294967295\], got 1.5/);
  });
});
