/**
 * Training never marks non-finite or partial work as finished (issue L), in process on the cpu
 * backend with tiny configs: an update that overflows on the final step (train, expert train) exits
 * 4 without a model or complete.json; a partial expert is refused by train --expert with the resume
 * hint; a stale temp file is removed at start; an inconsistent resume checkpoint is refused naming
 * the file and the field; --force onto an input's folder is refused; a full disk (ENOSPC) names the
 * path and exits 3 (a small tmpfs when it can be mounted, and a stand-in always).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { decodeSafetensors, encodeSafetensors } from '@fad/diffusion-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from './cli';
import { writeDemoData } from './demo';
import { classifyError, DivergenceError, EnvironmentError, fsError } from './errors';
import { writeFileAtomicSync } from './fsutil';

const root = mkdtempSync(join(tmpdir(), 'fad-reliability-train-'));
const data = join(root, 'data');
const config = join(root, 'config.yaml');
const expertDir = join(root, 'expert');
const expert = join(expertDir, 'expert.safetensors');

async function fad(args: string[], quiet = true): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    err += String(s);
    return true;
  });
  try {
    const code = await main(['node', 'fad', '--backend', 'cpu', '--config', config, ...(quiet ? ['-q'] : []), ...args], { out: (s) => (out += s), err: (s) => (err += s) });
    return { code, out, err };
  } finally {
    spy.mockRestore();
  }
}
const train = (out: string, extra: string[] = []) => fad(['train', '--data', data, '--out', out, ...extra]);

beforeAll(async () => {
  await tf.setBackend('cpu');
  await writeDemoData(data, 8, 6);
  writeFileSync(config, [
    'data: { imageSize: 8, validationFraction: 0.25 }',
    'expert: { preset: resnet18-kather, architecture: { layers: [1], baseWidth: 4 }, epochs: 1, batchSize: 32, augment: false }',
    'diffusion:',
    '  unet: { preset: tiny, overrides: { blockChannels: [8, 16], normGroups: 4 } }',
    '  steps: 3',
    '  batchSize: 4',
    '  warmupSteps: 0',
    '  checkpointEvery: 2',
    '  logEvery: 1',
    '',
  ].join('\n'));
  const e = await fad(['expert', 'train', '--data', data, '--out', expertDir]);
  if (e.code !== 0) throw new Error(`fad expert train failed:\n${e.err}`);
}, 120_000);

const mounted: string[] = [];
afterAll(() => {
  for (const m of mounted) {
    try {
      execFileSync('umount', [m]);
    } catch {
      /* left mounted */
    }
  }
});

describe('the finished expert', () => {
  it('carries fad.status complete', () => {
    expect(decodeSafetensors(new Uint8Array(readFileSync(expert))).metadata['fad.status']).toBe('complete');
  });

  it('a partial expert is refused by train --feature-alignment --expert, with how to resume it', async () => {
    const f = decodeSafetensors(new Uint8Array(readFileSync(expert)));
    const partialDir = join(root, 'partial-expert');
    mkdirSync(partialDir);
    const partial = join(partialDir, 'expert.safetensors');
    writeFileSync(partial, encodeSafetensors({ tensors: f.tensors, metadata: { ...f.metadata, 'fad.status': 'partial' } }));
    const out = join(root, 'aligned');
    const r = await train(out, ['--feature-alignment', '--expert', partial]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/fad: error: the expert .*partial-expert\/expert\.safetensors is unfinished \(metadata fad\.status is "partial"[^\n]*fad expert train --out EXPERT_DIR --resume/);
    expect(existsSync(join(out, 'complete.json'))).toBe(false);
  });
});

describe('overflow on the final step', () => {
  it('fad train: exit 4 naming the step and the tensor; no model, no complete.json', async () => {
    const out = join(root, 'overflow');
    // An fp32 learning rate of infinity: the loss of step 1 is finite, the update is not.
    const r = await train(out, ['--steps', '1', '--lr', '1e39']);
    expect(r.code, r.err).toBe(4);
    expect(r.err).toMatch(/fad: error: training diverged at step 1: the (checkpoint|final model) .* was not written, the weights are not finite: tensor "[^"]+" has \d+ of \d+ values NaN or infinite/);
    expect(r.err).not.toMatch(/unexpected error/);
    expect(existsSync(join(out, 'complete.json'))).toBe(false);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
    expect(readdirSync(out).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('fad expert train: exit 4, no complete.json, no expert file', async () => {
    const out = join(root, 'expert-overflow');
    const r = await fad(['expert', 'train', '--data', data, '--out', out, '--lr', '1e39']);
    expect(r.code, r.err).toBe(4);
    expect(r.err).toMatch(/expert training in .* diverged: non-finite weights after step 1 \(tensor "[^"]+" has \d+ of \d+ values NaN or infinite/);
    expect(existsSync(join(out, 'complete.json'))).toBe(false);
    expect(existsSync(join(out, 'expert.safetensors'))).toBe(false);
  });
});

describe('resume and temp files', () => {
  it('a stale temp file is removed at start (and said so); the run then trains normally', async () => {
    const out = join(root, 'stale');
    mkdirSync(out);
    writeFileSync(join(out, 'checkpoint.safetensors.tmp-4194399-1700000000000'), 'half a checkpoint');
    const r = await fad(['train', '--data', data, '--out', out], false);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/fad: removed 1 temp file\(s\) left by an interrupted write in .*stale \(checkpoint\.safetensors\.tmp-4194399-1700000000000\)/);
    expect(readdirSync(out).filter((f) => f.includes('.tmp'))).toEqual([]);
    expect(existsSync(join(out, 'complete.json'))).toBe(true);
    expect(decodeSafetensors(new Uint8Array(readFileSync(join(out, 'model.safetensors')))).metadata['fad.status']).toBe('complete');
  });

  it('a checkpoint whose step is past the total, or whose state is not JSON, is refused naming the file and the field; never marked complete', async () => {
    const out = join(root, 'past');
    const r = await train(out, ['--stop-after', '2']);
    expect(r.code).toBe(130);
    const ckpt = join(out, 'checkpoint.safetensors');
    const f = decodeSafetensors(new Uint8Array(readFileSync(ckpt)));
    const edit = (meta: Record<string, string>) => writeFileSync(ckpt, encodeSafetensors({ tensors: f.tensors, metadata: meta }));
    edit({ ...f.metadata, state: JSON.stringify({ ...JSON.parse(f.metadata.state), step: 9 }) });
    const past = await train(out, ['--resume']);
    expect(past.code).toBe(1);
    expect(past.err).toMatch(/the training checkpoint .*checkpoint\.safetensors: state\.step is 9, expected at most diffusion\.steps \(3\): the checkpoint is past the end of this run/);
    expect(existsSync(join(out, 'complete.json'))).toBe(false);
    edit({ ...f.metadata, state: '{"step": 1,' });
    const bad = await train(out, ['--resume']);
    expect(bad.err).toMatch(/the training checkpoint .*checkpoint\.safetensors: metadata\.state is not valid JSON/);
    edit({ ...f.metadata, state: JSON.stringify({ ...JSON.parse(f.metadata.state), data: { ...JSON.parse(f.metadata.state).data, cursor: -1 } }) });
    expect((await train(out, ['--resume'])).err).toMatch(/state\.data\.cursor is -1, expected an integer in 0\.\.\d+/);
    edit({ ...f.metadata, state: JSON.stringify({ ...JSON.parse(f.metadata.state), key: 'other' }) });
    expect((await train(out, ['--resume'])).err).toMatch(/the checkpoint .*checkpoint\.safetensors was written with a different config or data \(state\.key other/);
    edit(f.metadata);
    const ok = await train(out, ['--resume']);
    expect(ok.code, ok.err).toBe(0);
    expect(existsSync(join(out, 'complete.json'))).toBe(true);
  });

  it('train --force into the expert\'s own folder is refused (its complete.json would go)', async () => {
    const before = readdirSync(expertDir).sort();
    const r = await train(expertDir, ['--feature-alignment', '--expert', expert, '--force']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/refusing to --force replace .*expert: it holds the expert .*expert\.safetensors, which this run reads/);
    expect(readdirSync(expertDir).sort()).toEqual(before);
  });
});

describe('a full disk names the path and is the environment (exit 3)', () => {
  it('stand-in: an ENOSPC/EACCES/EROFS error of a write names the path and what fad was doing', () => {
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const e = fsError(enospc, '/runs/a/model.safetensors', 'write the final model');
    expect(e).toBeInstanceOf(EnvironmentError);
    expect((e as EnvironmentError).exitCode).toBe(3);
    expect(e.message).toBe('cannot write the final model /runs/a/model.safetensors: no space left on the device (disk full) [ENOSPC]');
    expect(fsError(Object.assign(new Error('x'), { code: 'EROFS' }), '/ro/x', 'write').message).toMatch(/read-only file system \[EROFS\]/);
    // Raw errors that reach the top level: classified, never "an unexpected error".
    const raw = classifyError(Object.assign(new Error('EACCES: permission denied, open \'/x/y\''), { code: 'EACCES', syscall: 'open', path: '/x/y' })) as Error;
    expect(raw).toBeInstanceOf(EnvironmentError);
    expect(raw.message).toBe('cannot open /x/y: permission denied [EACCES]');
    expect(classifyError(new RangeError('Array buffer allocation failed'))).toBeInstanceOf(EnvironmentError);
    // What the wasm backend throws when a step does not fit its memory.
    expect((classifyError(new Error('Aborted(). Build with -sASSERTIONS for more info.')) as Error).message).toMatch(/the wasm backend aborted \(Aborted\(\)\. .*\): almost always out of its 4 GiB memory/);
    expect(classifyError(new Error('RuntimeError: memory access out of bounds'))).toBeInstanceOf(EnvironmentError);
    expect(classifyError(new Error('DiffusionTrainer.step: non-finite loss (NaN) or gradient norm (NaN) at step 3'))).toBeInstanceOf(DivergenceError);
    const bug = new TypeError('x is undefined');
    expect(classifyError(bug)).toBe(bug);
  });

  it('on a small tmpfs: fad train exits 3 naming the file it could not write, and leaves no temp file', async (ctx) => {
    const mnt = mkdtempSync(join(root, 'tmpfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt], { stdio: 'ignore' });
      mounted.push(mnt);
    } catch {
      ctx.skip('cannot mount a tmpfs here (needs root); the stand-in test above covers the message');
      return;
    }
    // Fill the disk so the first checkpoint cannot be written (the small files before it can).
    writeFileSync(join(mnt, 'filler'), Buffer.alloc(40 * 1024));
    const out = join(mnt, 'run');
    const r = await train(out);
    expect(r.code, r.err).toBe(3);
    expect(r.err).toMatch(new RegExp(`fad: error: cannot (write|append to|create) [^\\n]*${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^\\n]*: no space left on the device \\(disk full\\) \\[ENOSPC\\]`));
    expect(r.err).not.toMatch(/unexpected error/);
    console.log(r.err.trim().split('\n').slice(-1)[0]);
    expect(readdirSync(out).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(() => writeFileAtomicSync(join(mnt, 'big.bin'), new Uint8Array(1 << 20), 'a test file')).toThrow(/cannot write a test file .*big\.bin: no space left on the device/);
    expect(existsSync(join(mnt, 'big.bin'))).toBe(false);
  });
});
