/**
 * examples/cluster: the Kubernetes Jobs validate against the Job schema (kubernetes-models, generated
 * from the Kubernetes OpenAPI schema) and are wired as the README says; the SLURM scripts run with
 * the SLURM_* variables a job array sets (by hand here, so no SLURM is needed) and their merge
 * equals the unsharded run; on a machine with a running SLURM (sinfo answers), the array is also
 * submitted for real, otherwise that test is skipped.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { UNET_PRESETS, UNet2DConditional, serializeUNet } from '@fad/diffusion-core';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BIN, repoRoot } from './testing/paths';
import { assertBuilt, runFad } from './testing/run-fad';

const dir = join(repoRoot(), 'examples', 'cluster');
const root = mkdtempSync(join(tmpdir(), 'fad-cluster-'));
const modelPath = join(root, 'model.safetensors');
const ARGS = '-n 2 --seeds 3,5 --steps 2 --sampler ddpm --batch-size 2';

function files(d: string): string[] {
  return (readdirSync(d, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((x) => x.isFile() && x.name !== 'timing.json')
    .map((x) => relative(d, join(x.parentPath, x.name)))
    .sort();
}

function sameFiles(a: string, b: string): void {
  expect(files(b)).toEqual(files(a));
  for (const f of files(a)) expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f))), f).toBe(true);
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  const unet = new UNet2DConditional({ ...UNET_PRESETS.tiny, sampleSize: 8, numClasses: 2, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' }, { seed: 3 });
  writeFileSync(modelPath, serializeUNet(unet, { classes: JSON.stringify(['a', 'b']) }));
  unet.dispose();
});

describe('examples/cluster Kubernetes manifests', () => {
  const load = (f: string) => parse(readFileSync(join(dir, f), 'utf8'));

  it('validate against the batch/v1 Job schema, and a broken copy does not', () => {
    for (const f of ['generate-job.yaml', 'merge-job.yaml']) {
      const doc = load(f);
      expect(() => new Job(doc).validate(), f).not.toThrow();
    }
    const broken = load('generate-job.yaml');
    broken.spec.completions = 'eight';
    expect(() => new Job(broken).validate()).toThrow(/completions must be integer/);
    const noImage = load('generate-job.yaml');
    delete noImage.spec.template.spec.containers;
    expect(() => new Job(noImage).validate()).toThrow(/containers/);
  });

  it('run fad generate as an Indexed Job whose FAD_SHARD_COUNT is spec.completions, then fad merge on the same volume', () => {
    const gen = load('generate-job.yaml');
    expect(gen).toMatchObject({ apiVersion: 'batch/v1', kind: 'Job', spec: { completionMode: 'Indexed', template: { spec: { restartPolicy: 'Never' } } } });
    const c = gen.spec.template.spec.containers[0];
    expect(c.command.slice(0, 1)).toEqual(['fad']);
    expect(c.command).toContain('generate');
    expect(c.env.find((e: { name: string }) => e.name === 'FAD_SHARD_COUNT').value).toBe(String(gen.spec.completions));
    expect(gen.spec.parallelism).toBeLessThanOrEqual(gen.spec.completions);
    const shards = c.command[c.command.indexOf('--out') + 1];
    const merge = load('merge-job.yaml');
    const mc = merge.spec.template.spec.containers[0];
    expect(mc.command.slice(0, 3)).toEqual(['fad', 'merge', shards]);
    for (const job of [gen, merge]) {
      const vols = job.spec.template.spec.volumes.map((v: { name: string }) => v.name);
      for (const m of job.spec.template.spec.containers[0].volumeMounts) expect(vols).toContain(m.name);
      expect(job.spec.template.spec.volumes[0].persistentVolumeClaim.claimName).toBe('fad-shared');
    }
  });
});

describe('examples/cluster SLURM scripts', () => {
  const env = (extra: Record<string, string>) => ({
    ...process.env, CI: '1', FAD: `${process.execPath} ${BIN}`, FAD_MODEL: modelPath, FAD_GENERATE_ARGS: ARGS, FAD_BACKEND: 'cpu', ...extra,
  });

  it('with the variables of --array=1-3 set by hand, three tasks and the merge give the unsharded set', async () => {
    assertBuilt();
    const shards = join(root, 'hand-shards');
    const out = join(root, 'hand-merged');
    for (const id of [3, 1, 2]) {
      const r = spawnSync('bash', [join(dir, 'slurm-generate.sh')], {
        env: env({ FAD_SHARDS: shards, SLURM_ARRAY_TASK_ID: String(id), SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '3', SLURM_ARRAY_TASK_COUNT: '3' }), encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`shard ${id - 1}/3: `));
    }
    const m = spawnSync('bash', [join(dir, 'slurm-merge.sh')], { env: env({ FAD_SHARDS: shards, FAD_OUT: out }), encoding: 'utf8' });
    expect(m.status, m.stderr).toBe(0);
    const plain = join(root, 'hand-plain');
    const r = await runFad(['--backend', 'cpu', 'generate', '--model', modelPath, ...ARGS.split(' '), '--out', plain]);
    expect(r.code, r.stderr).toBe(0);
    sameFiles(plain, out);
    // Outside an array task the script refuses to run; a bad index is named.
    const none = spawnSync('bash', [join(dir, 'slurm-generate.sh')], { env: env({ FAD_SHARDS: shards, SLURM_ARRAY_TASK_ID: '' }), encoding: 'utf8' });
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/not a SLURM array task/);
    const bad = spawnSync('bash', [join(dir, 'slurm-generate.sh')], { env: env({ FAD_SHARDS: shards, SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '3' }), encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/SLURM_ARRAY_TASK_ID=4 \(SLURM_ARRAY_TASK_MIN=1\) gives shard index 3, which is not below the number of shards 3/);
  }, 120_000);

  const slurmUp = (() => {
    try {
      execFileSync('sinfo', ['-h'], { stdio: 'pipe', timeout: 5000 });
      return true;
    } catch {
      return false;
    }
  })();
  it.skipIf(!slurmUp)('on a running SLURM (sinfo answers): submit-slurm.sh runs the array and the merge after it', async () => {
    const shards = join(root, 'slurm-shards');
    const out = join(root, 'slurm-merged');
    const r = spawnSync('bash', [join(dir, 'submit-slurm.sh'), `--chdir=${root}`, '--cpus-per-task=1', '--mem=0'], { env: env({ FAD_SHARDS: shards, FAD_OUT: out, FAD_ARRAY: '0-2' }), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const t0 = Date.now();
    while (!existsSync(join(out, 'manifest.json')) && Date.now() - t0 < 90_000) await new Promise((res) => setTimeout(res, 500));
    expect(existsSync(join(out, 'manifest.json')), `no merged set after 90 s; logs in ${root}`).toBe(true);
    sameFiles(join(root, 'hand-plain'), out);
  }, 120_000);
});
