import { describe, expect, it } from 'vitest';
import { mixSynthetic, planProtocols, stratifiedFraction } from './utility-protocols';

// 10 tumor (label 0), 4 stroma (1), 7 complex (2), interleaved.
const labels = [0, 1, 2, 0, 0, 2, 1, 0, 2, 0, 0, 2, 1, 0, 2, 0, 1, 2, 0, 2, 0];
const names = ['tumor', 'stroma', 'complex'];
const countPerClass = (idx: number[], y: number[] = labels) => [0, 1, 2].map((c) => idx.filter((i) => y[i] === c).length);

describe('stratifiedFraction', () => {
  it('keeps round(n_c * fraction) images of every class (hand-computed counts)', () => {
    // 0.5: round(5) = 5, round(2) = 2, round(3.5) = 4; 0.25: round(2.5) = 3, round(1) = 1, round(1.75) = 2.
    expect(countPerClass(stratifiedFraction({ labels, fraction: 0.5, seed: 0 }))).toEqual([5, 2, 4]);
    expect(countPerClass(stratifiedFraction({ labels, fraction: 0.25, seed: 0 }))).toEqual([3, 1, 2]);
    expect(stratifiedFraction({ labels, fraction: 1, seed: 9 })).toEqual(labels.map((_, i) => i));
    const idx = stratifiedFraction({ labels, fraction: 0.5, seed: 0 });
    expect(idx).toEqual([...idx].sort((a, b) => a - b));
    expect(new Set(idx).size).toBe(idx.length);
  });

  it('nests the fractions of one seed; another seed draws another subset of the same sizes', () => {
    const small = stratifiedFraction({ labels, fraction: 0.25, seed: 4 });
    const large = stratifiedFraction({ labels, fraction: 0.5, seed: 4 });
    expect(small.every((i) => large.includes(i))).toBe(true);
    const other = stratifiedFraction({ labels, fraction: 0.5, seed: 5 });
    expect(other).not.toEqual(large);
    expect(countPerClass(other)).toEqual(countPerClass(large));
    expect(stratifiedFraction({ labels, fraction: 0.5, seed: 4 })).toEqual(large);
  });

  it('refuses a fraction that leaves a class empty, naming the class', () => {
    // stroma: round(4 * 0.1) = 0.
    expect(() => stratifiedFraction({ labels, fraction: 0.1, seed: 0, classNames: names })).toThrow(
      /fraction 0.1 leaves class "stroma" with no images \(it has 4; round\(4 \* 0.1\) = 0\)/,
    );
    expect(() => stratifiedFraction({ labels, fraction: 0, seed: 0 })).toThrow(/fraction must be/);
    expect(() => stratifiedFraction({ labels: [0, -1], fraction: 0.5, seed: 0 })).toThrow(/labels\[1\] must be a non-negative integer/);
  });
});

describe('mixSynthetic', () => {
  // Real: 2 tumor, 1 stroma. Synthetic: tumor 0,1,2; stroma 3,5; unused 4; complex 6.
  const real = [0, 1, 0];
  const synthetic = [0, 0, 0, 1, -1, 1, 2];

  it('1:1 draws round(ratio * n_c) per class without replacement, of the right class only', () => {
    const r = mixSynthetic({ real, synthetic, ratio: 1, seed: 0, classNames: names });
    expect(countPerClass(r.indices, synthetic)).toEqual([2, 1, 0]);
    expect(new Set(r.indices).size).toBe(3);
    expect(r.indices).not.toContain(4);
    expect(r.repeated).toEqual([]);
    expect(r.perClass).toEqual([
      { label: 0, name: 'tumor', real: 2, wanted: 2, available: 3, repeats: false },
      { label: 1, name: 'stroma', real: 1, wanted: 1, available: 2, repeats: false },
    ]);
  });

  it('4:1 repeats when a class has too few images, and says so', () => {
    const r = mixSynthetic({ real, synthetic, ratio: 4, seed: 0, classNames: names });
    // tumor: 8 wanted of 3 -> each twice plus 2 more; stroma: 4 wanted of 2 -> each exactly twice.
    expect(countPerClass(r.indices, synthetic)).toEqual([8, 4, 0]);
    const times = (i: number) => r.indices.filter((x) => x === i).length;
    expect([0, 1, 2].map(times).sort()).toEqual([2, 3, 3]);
    expect([3, 5].map(times)).toEqual([2, 2]);
    expect(r.repeated).toEqual(['tumor', 'stroma']);
    // 0.5:1 of 2 tumor and 1 stroma: round(1) = 1, round(0.5) = 1 (round half up).
    expect(countPerClass(mixSynthetic({ real, synthetic, ratio: 0.5, seed: 0 }).indices, synthetic)).toEqual([1, 1, 0]);
  });

  it('changes with the seed only which synthetic images are drawn', () => {
    const many = Array.from({ length: 40 }, (_, i) => i % 2);
    const a = mixSynthetic({ real, synthetic: many, ratio: 3, seed: 1 });
    const b = mixSynthetic({ real, synthetic: many, ratio: 3, seed: 2 });
    expect(a.indices).not.toEqual(b.indices);
    expect(countPerClass(a.indices, many)).toEqual(countPerClass(b.indices, many));
    expect(mixSynthetic({ real, synthetic: many, ratio: 3, seed: 1 })).toEqual(a);
  });

  it('refuses a synthetic set without a class of the real images, naming it', () => {
    expect(() => mixSynthetic({ real, synthetic: [0, 0, 2], ratio: 1, seed: 0, classNames: names })).toThrow(/the synthetic set has no image of class "stroma"/);
    expect(() => mixSynthetic({ real, synthetic, ratio: 0, seed: 0 })).toThrow(/ratio must be/);
  });
});

describe('planProtocols', () => {
  it('lists real-only, mixed and synthetic-only protocols with stable ids and references', () => {
    const plan = planProtocols({ fractions: [1, 0.1], ratios: [1, 4], syntheticSets: ['baseline', 'aligned-noisy'], seeds: [0, 1, 2] });
    expect(plan.protocols.map((p) => [p.id, p.reference])).toEqual([
      ['real-f0.1', null],
      ['real-f1', null],
      ['mix-baseline-r1-f0.1', 'real-f0.1'],
      ['mix-baseline-r4-f0.1', 'real-f0.1'],
      ['mix-baseline-r1-f1', 'real-f1'],
      ['mix-baseline-r4-f1', 'real-f1'],
      ['mix-aligned-noisy-r1-f0.1', 'real-f0.1'],
      ['mix-aligned-noisy-r4-f0.1', 'real-f0.1'],
      ['mix-aligned-noisy-r1-f1', 'real-f1'],
      ['mix-aligned-noisy-r4-f1', 'real-f1'],
      ['syn-baseline', 'real-f1'],
      ['syn-aligned-noisy', 'real-f1'],
    ]);
    expect(plan.protocols[3]).toEqual({ id: 'mix-baseline-r4-f0.1', kind: 'mixed', fraction: 0.1, ratio: 4, synthetic: 'baseline', reference: 'real-f0.1' });
    expect(plan.runs).toHaveLength(36);
    expect(plan.runs.slice(0, 4)).toEqual([{ protocolId: 'real-f0.1', seed: 0 }, { protocolId: 'real-f0.1', seed: 1 }, { protocolId: 'real-f0.1', seed: 2 }, { protocolId: 'real-f1', seed: 0 }]);
    // Ids depend on each protocol's own settings only.
    const fewer = planProtocols({ fractions: [0.1], ratios: [4], syntheticSets: ['baseline'], seeds: [0], includeSyntheticOnly: false });
    expect(fewer.protocols.map((p) => p.id)).toEqual(['real-f0.1', 'mix-baseline-r4-f0.1']);
  });

  it('rejects bad settings naming the field', () => {
    const ok = { fractions: [0.5], ratios: [1], syntheticSets: ['a'], seeds: [0] };
    expect(() => planProtocols({ ...ok, fractions: [] })).toThrow(/fractions must be an array of at least 1 item/);
    expect(() => planProtocols({ ...ok, fractions: [0.5, 1.5] })).toThrow(/fractions\[1\] must be/);
    expect(() => planProtocols({ ...ok, ratios: [1, 1] })).toThrow(/ratios must not repeat a value/);
    expect(() => planProtocols({ ...ok, syntheticSets: ['real'] })).toThrow(/syntheticSets\[0\] must be a name/);
    expect(() => planProtocols({ ...ok, syntheticSets: ['a/b'] })).toThrow(/syntheticSets\[0\]/);
    expect(() => planProtocols({ ...ok, seeds: [-1] })).toThrow(/seeds\[0\] must be/);
  });
});
