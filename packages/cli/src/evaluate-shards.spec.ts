/**
 * Sharded `fad evaluate` end to end with the built executable: the expert's forward passes (batches
 * of 9 over 24 generated, then the 12 real validation images: 5 units, so one shard ends the generated images with
 * a short batch and starts the real ones) cut into N shards run in a random order (index from
 * --shard, a Kubernetes Indexed Job's and a SLURM array's variables), one killed with SIGKILL and
 * run again, then `fad merge`: the merged eval.json must be the unsharded one byte for byte once its
 * two timing fields (createdAt, elapsedSeconds) are blanked. A missing shard and foreign shards
 * (another expert, other settings) are refused by name.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeDemoData } from './demo';
import { type FadRun, runFad } from './testing/run-fad';
import { copyShards, runShardsInRandomOrder, shardLaunch } from './testing/shard-runs';
import { writeToyGeneratedSet } from './testing/toy-generated-set';

const root = mkdtempSync(join(tmpdir(), 'fad-evaluate-shards-'));
const data = join(root, 'data');
const gen = join(root, 'gen');
const config = join(root, 'config.yaml');
const expert = join(root, 'expert', 'expert.safetensors');
const otherExpert = join(root, 'expert2', 'expert.safetensors');
const N = 3;
const evaluate = (out: string, extra: string[] = [], e = expert) => ['--config', config, '--backend', 'cpu', 'evaluate', '--generated', gen, '--expert', e, '--data', data, '--out', out, ...extra];
const ok = (r: FadRun, what: string) => expect(r.code, `${what}:\n${r.stderr}\n${r.stdout}`).toBe(0);
/** eval.json with its documented timing fields blanked. */
const withoutTiming = (text: string) => text.replace(/"createdAt": "[^"]*"/, '"createdAt": ""').replace(/"elapsedSeconds": [-0-9.e+]+/, '"elapsedSeconds": 0');

beforeAll(async () => {
  await writeDemoData(data, 8, 10);
  await writeToyGeneratedSet({ dir: gen, size: 8, perClass: 6, seed: 1 });
  writeFileSync(config, ['data: { imageSize: 8, validationFraction: 0.25 }', 'evaluate: { batchSize: 9, ssimMaxPairs: 20, ssimWindow: uniform, ssimWinSize: 3, kidSubsetSize: 4, kidSubsets: 5 }', ''].join('\n'));
  for (const [dir, epochs] of [[join(root, 'expert'), '1'], [join(root, 'expert2'), '2']] as const) {
    const t = await runFad(['--config', config, '--backend', 'cpu', 'expert', 'train', '--data', data, '--out', dir, '--preset', 'resnet18-kather', '--set', 'expert.architecture={layers: [1, 1], baseWidth: 4}', '--epochs', epochs]);
    ok(t, `expert ${dir}`);
  }
}, 170_000);

describe('fad evaluate --shard and fad merge', () => {
  const shards = join(root, 'shards');
  const unsharded = join(root, 'unsharded.json');
  const merged = join(root, 'merged.json');

  it('N shards in a random order, one killed and retried, merge to the unsharded eval.json (timing fields aside)', async () => {
    ok(await runFad(evaluate(unsharded)), 'unsharded');
    const how = (i: number) => shardLaunch(i, N, 5);
    const { order, victim, results } = await runShardsInRandomOrder({
      n: N, slurmMin: 5, label: 'evaluate shard', args: () => evaluate(shards),
      // Killed once it has started reading the real data (before any output is written).
      killVictim: (child) => {
        let err = '';
        child.stderr?.on('data', (d) => {
          err += d;
          if (/fad: data /.test(err)) child.kill('SIGKILL');
        });
      },
    });
    order.forEach((i, k) => (i === victim ? expect(results[k].signal).toBe('SIGKILL') : ok(results[k], `shard ${i}`)));
    expect(existsSync(join(shards, `${victim}-of-${N}`))).toBe(false);
    const early = await runFad(['merge', shards, '--out', merged]);
    expect(early.code).toBe(1);
    expect(early.stderr).toContain(`${victim}-of-${N} is missing`);
    expect(existsSync(merged)).toBe(false);
    ok(await runFad([...evaluate(shards), ...how(victim).args], { env: how(victim).env }), 'retry');
    const again = await runFad([...evaluate(shards), '--shard', `${victim}/${N}`]);
    ok(again, 'again');
    expect(again.stderr).toMatch(/already complete/);
    expect(readdirSync(shards).sort()).toEqual(['0-of-3', '1-of-3', '2-of-3']);

    const m = await runFad(['merge', shards, '--out', merged]);
    ok(m, 'merge');
    expect(m.stdout).toMatch(/merged 3 shards: evaluation of 24 generated images/);
    const a = readFileSync(unsharded, 'utf8');
    const b = readFileSync(merged, 'utf8');
    expect(withoutTiming(b)).toBe(withoutTiming(a));
    expect(withoutTiming(a)).not.toBe(a);
    // The shards split the passes: 5 batches (generated 9, 9, 6; real 9, 3) as 2, 2, 1.
    const units = [0, 1, 2].map((i) => JSON.parse(readFileSync(join(shards, `${i}-of-${N}`, 'shard.json'), 'utf8')).units);
    expect(units.map((u) => [u.generated, u.real])).toEqual([[[0, 18], [0, 0]], [[18, 24], [0, 9]], [[24, 24], [9, 12]]]);
    // --force on a merged file only.
    expect((await runFad(['merge', shards, '--out', merged])).stderr).toMatch(/already exists/);
  }, 170_000);

  it('refuses a missing shard and foreign shards by name', async () => {
    const copy = (name: string) => copyShards(shards, root, name);
    const missing = copy('missing');
    rmSync(join(missing, '0-of-3'), { recursive: true });
    let r = await runFad(['merge', missing, '--out', join(root, 'm1.json')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/0-of-3 is missing/);

    const foreign = copy('foreign');
    for (const [i, extra, e] of [[1, [], otherExpert], [2, ['--set', 'evaluate.ssimMaxPairs=30'], expert]] as const) {
      const d = join(root, `foreign-src-${i}`);
      ok(await runFad([...evaluate(d, [...extra], e), '--shard', `${i}/${N}`]), `foreign ${i}`);
      rmSync(join(foreign, `${i}-of-3`), { recursive: true });
      cpSync(join(d, `${i}-of-3`), join(foreign, `${i}-of-3`), { recursive: true });
    }
    r = await runFad(['merge', foreign, '--out', join(root, 'm2.json')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/1-of-3 \(.*\) is from another model/);
    expect(r.stderr).toMatch(/2-of-3 \(.*\) was run with another config .*differs in ssimMaxPairs \(30 vs 20\)/);
    expect(existsSync(join(root, 'm2.json'))).toBe(false);
    r = await runFad([...evaluate(shards, ['--set', 'evaluate.ssimMaxPairs=30']), '--shard', `0/${N}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/holds shard 0-of-3 of another run/);
    r = await runFad(evaluate(join(root, 'x.json')).filter((x) => x !== '--out' && x !== join(root, 'x.json')).concat(['--shard', '0/3']));
    expect(r.stderr).toMatch(/--shard needs --out DIR/);
  }, 170_000);
});
