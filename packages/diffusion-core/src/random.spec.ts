import { describe, expect, it } from 'vitest';
import { Generator } from './random';

describe('Generator', () => {
  it('gives the same stream for the same seed and different streams for different seeds', () => {
    const a = new Generator(42);
    const b = new Generator(42);
    const c = new Generator(43);
    const sa = Array.from({ length: 16 }, () => a.nextUint32());
    const sb = Array.from({ length: 16 }, () => b.nextUint32());
    const sc = Array.from({ length: 16 }, () => c.nextUint32());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
  });

  it('restores its state exactly', () => {
    const g = new Generator(7);
    g.nextNormal();
    const st = g.getState();
    const x = [g.nextNormal(), g.nextNormal(), g.nextUint32()];
    g.setState(JSON.parse(JSON.stringify(st)));
    expect([g.nextNormal(), g.nextNormal(), g.nextUint32()]).toEqual(x);
  });

  it('has normal moments close to N(0,1) and uniform moments close to U(0,1)', () => {
    const g = new Generator(1);
    const n = 200_000;
    let s = 0;
    let s2 = 0;
    let u = 0;
    for (let i = 0; i < n; i++) {
      const v = g.nextNormal();
      s += v;
      s2 += v * v;
      u += g.nextFloat();
    }
    // Standard errors: mean 1/sqrt(n) ~ 0.0022, variance sqrt(2/n) ~ 0.0032, uniform mean ~ 0.00065.
    expect(Math.abs(s / n)).toBeLessThan(0.01);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.015);
    expect(Math.abs(u / n - 0.5)).toBeLessThan(0.003);
  });

  it('rejects bad seeds', () => {
    expect(() => new Generator(-1)).toThrow(/seed/);
    expect(() => new Generator(1.5)).toThrow(/seed/);
  });
});
