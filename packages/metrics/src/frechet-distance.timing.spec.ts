/**
 * Timings at D = 2048 (Inception-sized features) for the README. Slow (about a minute on one
 * core), so it only runs with FAD_METRICS_TIMING=1:
 *   FAD_METRICS_TIMING=1 npx vitest run src/frechet-distance.timing.spec.ts
 */
import { describe, expect, it } from 'vitest';
import { featureStatistics, frechetDistance, frechetDistanceFromStatistics } from './frechet-distance';
import { kernelInceptionDistance } from './kernel-inception-distance';
import { createSeededRandom } from './seeded-random';

const enabled = process.env.FAD_METRICS_TIMING === '1';

/** Low-rank structure plus noise, like real network features. */
function randomFeatures(n: number, d: number, seed: number, shift: number): Float64Array {
  const r = createSeededRandom(seed);
  const x = new Float64Array(n * d);
  const k = 64;
  const basis = Float64Array.from({ length: k * d }, () => r.nextFloat() - 0.5);
  const z = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < k; t++) z[t] = 2 * r.nextFloat() - 1;
    for (let j = 0; j < d; j++) {
      let s = shift + 0.1 * (r.nextFloat() - 0.5);
      for (let t = 0; t < k; t++) s += z[t] * basis[t * d + j];
      x[i * d + j] = s;
    }
  }
  return x;
}

function timed<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const v = f();
  return [v, (performance.now() - t0) / 1000];
}

describe.skipIf(!enabled)('timings at D = 2048 (FAD_METRICS_TIMING=1)', () => {
  it('Fréchet distance by each route, and KID with the standard 100 subsets of 1000', () => {
    const d = 2048;
    const lines: string[] = [];
    const f1000a = { data: randomFeatures(1000, d, 1, 0), shape: [1000, d] };
    const f1000b = { data: randomFeatures(1000, d, 2, 0.05), shape: [1000, d] };
    const [gram, tGram] = timed(() => frechetDistance({ features1: f1000a, features2: f1000b }));
    lines.push(`frechetDistance n1=n2=1000: ${tGram.toFixed(1)} s (${gram.method})`);
    const [stats, tStats] = timed(() => [featureStatistics({ features: f1000a }), featureStatistics({ features: f1000b })]);
    lines.push(`featureStatistics x2 n=1000: ${tStats.toFixed(1)} s`);
    const [piv, tPiv] = timed(() => frechetDistanceFromStatistics({ stats1: stats[0], stats2: stats[1] }));
    lines.push(`frechetDistanceFromStatistics (singular, n=1000): ${tPiv.toFixed(1)} s (${piv.method})`);
    expect(Math.abs(piv.distance - gram.distance) / gram.distance).toBeLessThan(1e-8);

    const f2500a = { data: randomFeatures(2500, d, 3, 0), shape: [2500, d] };
    const f2500b = { data: randomFeatures(2500, d, 4, 0.05), shape: [2500, d] };
    const [chol, tChol] = timed(() => frechetDistance({ features1: f2500a, features2: f2500b }));
    lines.push(`frechetDistance n1=n2=2500: ${tChol.toFixed(1)} s (${chol.method})`);
    const [stats2, tStats2] = timed(() => [featureStatistics({ features: f2500a }), featureStatistics({ features: f2500b })]);
    lines.push(`featureStatistics x2 n=2500: ${tStats2.toFixed(1)} s`);
    const [fromStats, tFromStats] = timed(() => frechetDistanceFromStatistics({ stats1: stats2[0], stats2: stats2[1] }));
    lines.push(`frechetDistanceFromStatistics (full rank): ${tFromStats.toFixed(1)} s (${fromStats.method})`);
    expect(Math.abs(fromStats.distance - chol.distance) / chol.distance).toBeLessThan(1e-8);

    const [kid, tKid] = timed(() => kernelInceptionDistance({ features1: f1000a, features2: f1000b }));
    lines.push(`kernelInceptionDistance n1=n2=1000, 100 subsets of ${kid.subsetSize}: ${tKid.toFixed(1)} s`);
    console.info(lines.join('\n'));
  });
});
