/**
 * Sharded `fad utility` end to end with the built executable: the (protocol, seed) classifiers cut
 * into N shards run in a random order (index from --shard, a Kubernetes Indexed Job's and a SLURM
 * array's variables), one killed with SIGKILL after its first classifier and run again (it reuses
 * that classifier), then `fad merge`: utility.json and runs/ must be the unsharded run's byte for
 * byte once the timing fields (wall times) are blanked. A missing shard and foreign shards (another
 * synthetic set, other settings) are refused by name.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeDemoData } from './demo';
import { type FadRun, runFad } from './testing/run-fad';
import { copyShards, runShardsInRandomOrder, shardLaunch } from './testing/shard-runs';
import { writeToyGeneratedSet } from './testing/toy-generated-set';

const root = mkdtempSync(join(tmpdir(), 'fad-utility-shards-'));
const data = join(root, 'data');
const config = join(root, 'config.yaml');
const N = 3;
// 1 fraction, 1 ratio, 1 synthetic set: real-f1, mix-synA-r1-f1, syn-synA, 2 seeds each = 6 classifiers, 2 per shard.
const utility = (out: string, extra: string[] = [], syn = join(root, 'synA')) => ['--config', config, '--backend', 'cpu', 'utility', '--data', data, '--out', out, '--synthetic', `synA=${syn}`, ...extra];
const ok = (r: FadRun, what: string) => expect(r.code, `${what}:\n${r.stderr}\n${r.stdout}`).toBe(0);

/** A utility.json or run file with its documented timing fields blanked (wall times differ between any two runs). */
function withoutTiming(text: string): string {
  return text
    .replace(/"createdAt": "[^"]*"/g, '"createdAt": ""')
    .replace(/"(trainSeconds|evalSeconds|perClassifierMean|classifiersTotal|thisInvocation)": [-0-9.e+]+/g, '"$1": 0')
    .replace(/"seconds": \{[^}]*\}/g, '"seconds": {}');
}

beforeAll(async () => {
  await writeDemoData(data, 8, 10);
  await writeToyGeneratedSet({ dir: join(root, 'synA'), size: 8, perClass: 6, seed: 1 });
  await writeToyGeneratedSet({ dir: join(root, 'synB'), size: 8, perClass: 6, seed: 2 });
  writeFileSync(config, [
    'data: { imageSize: 8, validationFraction: 0.25 }',
    'utility: { fractions: [1], ratios: [1], seeds: 2, architecture: { layers: [1, 1], baseWidth: 4 }, epochs: 1, batchSize: 8, bootstrapSamples: 100 }',
    '',
  ].join('\n'));
});

describe('fad utility --shard and fad merge', () => {
  const shards = join(root, 'shards');
  const unsharded = join(root, 'unsharded');
  const merged = join(root, 'merged');

  it('N shards in a random order, one killed and retried, merge to the unsharded result (timing fields aside)', async () => {
    ok(await runFad(utility(unsharded)), 'unsharded');
    const how = (i: number) => shardLaunch(i, N, 0);
    const firstRun = ['real-f1-s0.json', 'mix-synA-r1-f1-s0.json', 'syn-synA-s0.json'];
    const { order, victim, results } = await runShardsInRandomOrder({
      n: N, slurmMin: 0, label: 'utility shard (killed after its first classifier)', args: () => utility(shards),
      killVictim: (child, i) => {
        const t = setInterval(() => {
          if (existsSync(join(shards, 'runs', firstRun[i]))) {
            clearInterval(t);
            child.kill('SIGKILL');
          }
        }, 5);
        child.on('exit', () => clearInterval(t));
      },
    });
    order.forEach((i, k) => (i === victim ? expect(results[k].signal).toBe('SIGKILL') : ok(results[k], `shard ${i}`)));
    expect(existsSync(join(shards, `${victim}-of-${N}`))).toBe(false);
    const early = await runFad(['merge', shards, '--out', merged]);
    expect(early.code).toBe(1);
    expect(early.stderr).toContain(`${victim}-of-${N} is missing`);
    expect(existsSync(merged)).toBe(false);
    const retry = await runFad([...utility(shards), ...how(victim).args], { env: how(victim).env });
    ok(retry, 'retry');
    expect(retry.stdout).toMatch(/classifiers \d\.\.\d of 6 \(1 trained, 1 reused\)/);
    expect(retry.stderr).toMatch(/finished before .*; reused/);
    const again = await runFad([...utility(shards), '--shard', `${victim}/${N}`]);
    ok(again, 'again');
    expect(again.stderr).toMatch(/already complete/);

    const m = await runFad(['merge', shards, '--out', merged]);
    ok(m, 'merge');
    expect(m.stdout).toMatch(/merged 3 shards: 6 classifiers/);
    const list = (d: string) => readdirSync(d, { recursive: true }).map(String).sort();
    expect(list(merged)).toEqual(list(unsharded));
    expect(list(merged)).toHaveLength(8); // utility.json, runs/ and 6 run files
    for (const f of list(merged).filter((x) => x.endsWith('.json'))) {
      const a = readFileSync(join(unsharded, f), 'utf8');
      const b = readFileSync(join(merged, f), 'utf8');
      expect(withoutTiming(b), f).toBe(withoutTiming(a));
    }
    // The blanking leaves the results: accuracies, CIs and predictions are compared as they are.
    expect(withoutTiming(readFileSync(join(merged, 'utility.json'), 'utf8'))).toMatch(/"accuracy": \{\n\s+"mean": [0-9.]+/);
    const counts = [0, 1, 2].map((i) => readdirSync(join(shards, `${i}-of-${N}`, 'runs')).length);
    expect(counts).toEqual([2, 2, 2]);
  }, 170_000);

  it('refuses a missing shard and foreign shards by name', async () => {
    const copy = (name: string) => copyShards(shards, root, name);
    const missing = copy('missing');
    rmSync(join(missing, '1-of-3'), { recursive: true });
    let r = await runFad(['merge', missing, '--out', join(root, 'm1')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/1-of-3 is missing/);
    expect(existsSync(join(root, 'm1'))).toBe(false);

    // Shard 1 tested another synthetic set, shard 2 trained 2 epochs.
    const foreign = copy('foreign');
    for (const [i, extra, syn] of [[1, [], join(root, 'synB')], [2, ['--epochs', '2'], join(root, 'synA')]] as const) {
      const d = join(root, `foreign-src-${i}`);
      ok(await runFad([...utility(d, [...extra], syn), '--shard', `${i}/${N}`]), `foreign ${i}`);
      rmSync(join(foreign, `${i}-of-3`), { recursive: true });
      cpSync(join(d, `${i}-of-3`), join(foreign, `${i}-of-3`), { recursive: true });
    }
    r = await runFad(['merge', foreign, '--out', join(root, 'm2')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/1-of-3 \(.*\) is from another model/);
    expect(r.stderr).toMatch(/2-of-3 \(.*\) was run with another config .*differs in epochs \(2 vs 1\)/);
    expect(existsSync(join(root, 'm2'))).toBe(false);
    // A finished shard of the run is not replaced by another run's without --force.
    r = await runFad([...utility(shards, ['--epochs', '2']), '--shard', `0/${N}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/holds shard 0-of-3 of another run/);
  }, 170_000);
});
