/**
 * Sharded `fad generate` end to end with the built executable: N shard processes in a random order
 * (given their index by --shard, by a Kubernetes Indexed Job's variables and by a SLURM array's),
 * one killed with SIGKILL mid-run and run again, then `fad merge`: the merged folder must be byte
 * for byte the folder the unsharded command writes (every file but timing.json, which holds wall
 * times). A missing shard and foreign shards (another model, other settings) are refused by name.
 * DDPM sampling (a noise draw at every step) with several batches per seed, so shards that start
 * mid-seed must replay the generator exactly.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { UNET_PRESETS, UNet2DConditional, serializeUNet } from '@fad/diffusion-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type FadRun, runFad } from './testing/run-fad';
import { copyShards, runShardsInRandomOrder, shardLaunch } from './testing/shard-runs';

const root = mkdtempSync(join(tmpdir(), 'fad-shards-'));
const modelPath = join(root, 'model.safetensors');
const otherModelPath = join(root, 'other.safetensors');
const N = 3;
// 3 classes x 3 images x 2 seeds in batches of 2: 5 batches per seed, 10 units, shards of 4, 3, 3.
const common = ['--backend', 'cpu', 'generate', '--model', modelPath, '-n', '3', '--seeds', '4,7', '--steps', '3', '--sampler', 'ddpm', '--batch-size', '2'];

/** Every file under `dir` (relative paths), sorted. */
function files(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)))
    .sort();
}

const ok = (r: FadRun, what: string) => expect(r.code, `${what}:\n${r.stderr}\n${r.stdout}`).toBe(0);

beforeAll(async () => {
  await tf.setBackend('cpu');
  for (const [path, seed] of [[modelPath, 1], [otherModelPath, 2]] as const) {
    const unet = new UNet2DConditional({ ...UNET_PRESETS.tiny, sampleSize: 8, numClasses: 3, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' }, { seed });
    writeFileSync(path, serializeUNet(unet, { classes: JSON.stringify(['stripes', 'rings', 'checker']) }));
    unet.dispose();
  }
});

describe('fad generate --shard and fad merge', () => {
  const shards = join(root, 'shards');
  const unsharded = join(root, 'unsharded');
  const merged = join(root, 'merged');

  it('N shards in a random order, one killed and retried, merge to the byte-identical unsharded result', async () => {
    ok(await runFad([...common, '--out', unsharded]), 'unsharded');
    // How each shard learns its index: the flag, a Kubernetes Indexed Job, a SLURM array (--array=1-3).
    const how = (i: number) => shardLaunch(i, N, 1);
    let killedAt = '';
    const { order, victim, results } = await runShardsInRandomOrder({
      n: N, slurmMin: 1, label: 'shard', args: () => [...common, '--out', shards],
      // The victim is killed as soon as its temp folder exists (sampling under way, nothing finished).
      killVictim: (child, i) => {
        const tmp = join(shards, `${i}-of-${N}.tmp-${child.pid}`);
        const t = setInterval(() => {
          if (existsSync(tmp)) {
            killedAt = tmp;
            clearInterval(t);
            child.kill('SIGKILL');
          }
        }, 5);
        child.on('exit', () => clearInterval(t));
      },
    });
    order.forEach((i, k) => (i === victim ? expect(results[k].signal).toBe('SIGKILL') : ok(results[k], `shard ${i}`)));
    expect(killedAt).not.toBe('');
    // The killed shard left only its temp folder, which does not count as a shard.
    expect(existsSync(join(shards, `${victim}-of-${N}`))).toBe(false);
    const early = await runFad(['merge', shards, '--out', merged]);
    expect(early.code).toBe(1);
    expect(early.stderr).toContain(`${victim}-of-${N} is missing`);
    expect(early.stderr).toMatch(/was left by a run of it that was killed; run that shard again/);
    expect(existsSync(merged)).toBe(false);
    // Retry just that shard: it clears its stale temp folder.
    const retry = await runFad([...common, ...how(victim).args, '--out', shards], { env: how(victim).env });
    ok(retry, 'retry');
    expect(readdirSync(shards).sort()).toEqual([0, 1, 2].map((i) => `${i}-of-${N}`));
    // Running a finished shard again is a no-op.
    const again = await runFad([...common, '--shard', `${victim}/${N}`, '--out', shards]);
    ok(again, 'again');
    expect(again.stderr).toMatch(/already complete/);

    const m = await runFad(['merge', shards, '--out', merged]);
    ok(m, 'merge');
    expect(m.stdout).toMatch(/merged 3 shards: 18 images/);
    const a = files(unsharded).filter((f) => f !== 'timing.json');
    const b = files(merged).filter((f) => f !== 'timing.json');
    expect(b).toEqual(a);
    expect(a.filter((f) => f.endsWith('.png'))).toHaveLength(18);
    for (const f of a) expect(readFileSync(join(merged, f)).equals(readFileSync(join(unsharded, f))), f).toBe(true);
    // The shards really split the work: units (batches of 2, 2, 2, 2, 1 per seed) 0-3, 4-6, 7-9; shard 1 starts at seed 4's last batch and
    // shards 1 and 2 start mid-seed 7, so they replayed the generator.
    const counts = [0, 1, 2].map((i) => JSON.parse(readFileSync(join(shards, `${i}-of-${N}`, 'manifest.json'), 'utf8')).images.length);
    expect(counts).toEqual([8, 1 + 4, 5]);
    const t = JSON.parse(readFileSync(join(merged, 'timing.json'), 'utf8'));
    expect(t.shards.map((s: { shard: string }) => s.shard)).toEqual(['0-of-3', '1-of-3', '2-of-3']);
    expect(t.timing.steps).toBe(10 * 3);
  }, 170_000);

  it('refuses a missing shard and foreign shards by name', async () => {
    const copy = (name: string) => copyShards(shards, root, name);
    const missing = copy('missing');
    rmSync(join(missing, '2-of-3'), { recursive: true });
    let r = await runFad(['merge', missing, '--out', join(root, 'm1')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/2-of-3 is missing/);

    // Shard 1 from another model, shard 2 with other settings (--steps 2).
    const foreign = copy('foreign');
    for (const [i, extra] of [[1, ['--model', otherModelPath]], [2, ['--steps', '2']]] as const) {
      const d = join(root, `foreign-src-${i}`);
      ok(await runFad([...common, ...extra, '--shard', `${i}/${N}`, '--out', d]), `foreign ${i}`);
      rmSync(join(foreign, `${i}-of-3`), { recursive: true });
      cpSync(join(d, `${i}-of-3`), join(foreign, `${i}-of-3`), { recursive: true });
    }
    r = await runFad(['merge', foreign, '--out', join(root, 'm2')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/1-of-3 \(.*\) is from another model/);
    expect(r.stderr).toMatch(/2-of-3 \(.*\) was run with another config .*differs in steps \(2 vs 3\)/);
    expect(existsSync(join(root, 'm2'))).toBe(false);

    // A shard of the run cannot be overwritten by another run's shard without --force.
    r = await runFad([...common, '--steps', '2', '--shard', `0/${N}`, '--out', shards]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/holds shard 0-of-3 of another run/);
    // Malformed shard settings are named.
    r = await runFad([...common, '--out', join(root, 'bad')], { env: { JOB_COMPLETION_INDEX: '3', FAD_SHARD_COUNT: '3' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/JOB_COMPLETION_INDEX=3 gives shard index 3, which is not below the number of shards 3/);
    r = await runFad([...common, '--shard', '1:3', '--out', join(root, 'bad')]);
    expect(r.stderr).toMatch(/--shard must be I\/N/);
  }, 170_000);
});
