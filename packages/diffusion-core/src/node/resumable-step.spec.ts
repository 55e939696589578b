import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { assertStateKey, COMPLETE_FILE, prepareResumableStep, readCompleteMarker, ResumableStepError, stepKey, writeCompleteMarker } from './resumable-step';
import { truncateMetricsLog } from './training-checkpoint';
import { writeFileAtomic, writeFileAtomicSync } from './write-file-atomic';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'fad-step-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function errorOf(fn: () => unknown): ResumableStepError {
  try {
    fn();
  } catch (e) {
    return e as ResumableStepError;
  }
  throw new Error('did not throw');
}

describe('stepKey', () => {
  it('hashes the canonical JSON (sorted keys, undefined left out), so run folders made before keep their keys', () => {
    const canonical = '{"config":{"a":[1,{"c":2}],"b":1},"inputs":{"data":"abc"},"step":"train"}';
    const want = createHash('sha256').update(canonical).digest('hex').slice(0, 16);
    expect(stepKey('train', { b: 1, a: [1, { d: undefined, c: 2 }] }, { data: 'abc' })).toBe(want);
    expect(stepKey('train', { a: [1, { c: 2 }], b: 1 }, { data: 'abc' })).toBe(want);
    expect(stepKey('train', { a: [1, { c: 3 }], b: 1 }, { data: 'abc' })).not.toBe(want);
  });
});

describe('prepareResumableStep', () => {
  const base = { key: 'k1', resume: false, stateFile: 'checkpoint.safetensors', outputs: ['model.safetensors', 'metrics.jsonl'] };

  it('starts in an empty (or missing) folder, reuses a finished step with the same key', () => {
    const dir = join(tmp(), 'run');
    expect(prepareResumableStep({ ...base, dir })).toEqual({ action: 'start' });
    writeCompleteMarker(dir, { step: 'train', key: 'k1', finalLoss: 0.5 });
    const r = prepareResumableStep({ ...base, dir });
    expect(r.action).toBe('reuse');
    expect(r.action === 'reuse' && r.marker.finalLoss).toBe(0.5);
    expect(readCompleteMarker(dir)?.finishedAt).toMatch(/^\d{4}-/);
  });

  it('refuses a finished step with another key, naming both keys and the way out; force clears it', () => {
    const dir = tmp();
    writeCompleteMarker(dir, { step: 'train', key: 'old' });
    writeFileSync(join(dir, 'model.safetensors'), 'x');
    writeFileSync(join(dir, 'notes.txt'), 'kept');
    const e = errorOf(() => prepareResumableStep({ ...base, dir, describe: { finished: 'a finished training run' }, flags: { force: '--force' } }));
    expect(e).toBeInstanceOf(ResumableStepError);
    expect(e.problem).toBe('finished-with-other-key');
    expect(e.message).toBe(`${dir} holds a finished training run with a different config or data (key old, now k1); use another folder or --force to overwrite it`);
    expect(prepareResumableStep({ ...base, dir, force: true })).toEqual({ action: 'start' });
    expect(readdirSync(dir)).toEqual(['notes.txt']);
  });

  it('resumes from the state file only when asked', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'checkpoint.safetensors'), 'state');
    const e = errorOf(() => prepareResumableStep({ ...base, dir }));
    expect(e.problem).toBe('unfinished-needs-resume');
    expect(e.message).toBe(`${dir} has the state of an unfinished run; pass resume to continue it, or force to start over`);
    expect(prepareResumableStep({ ...base, dir, resume: true })).toEqual({ action: 'resume', statePath: join(dir, 'checkpoint.safetensors') });
    expect(prepareResumableStep({ ...base, dir, resume: true, force: true })).toEqual({ action: 'start' });
    expect(existsSync(join(dir, 'checkpoint.safetensors'))).toBe(false);
  });

  it('validates its params', () => {
    expect(() => prepareResumableStep({ ...base, dir: '' })).toThrow('prepareResumableStep: dir must be a non-empty string');
    expect(() => prepareResumableStep({ ...base, dir: tmp(), key: '' })).toThrow('prepareResumableStep: key must be a non-empty string');
    expect(() => prepareResumableStep({ ...base, dir: tmp(), resume: 'yes' as never })).toThrow('prepareResumableStep: resume must be a boolean');
  });

  it('assertStateKey names the state and both keys', () => {
    expect(() => assertStateKey({ where: 'the checkpoint c', stored: 'a', key: 'a' })).not.toThrow();
    const e = errorOf(() => assertStateKey({ where: 'the checkpoint c', stored: 'a', key: 'b', storedName: 'state.key', flags: { resume: '--resume', force: '--force' } }));
    expect(e.problem).toBe('state-with-other-key');
    expect(e.message).toBe('the checkpoint c was written with a different config or data (state.key a, now b); --resume needs the same settings (or --force to start over)');
  });
});

describe('atomic writes and the metrics log', () => {
  it('writes through a temp file that does not stay behind (the sync form creating the folder)', async () => {
    const dir = tmp();
    writeFileAtomicSync(join(dir, 'a', 'f.txt'), 'one');
    await expect(writeFileAtomic(join(dir, 'b', 'g.bin'), new Uint8Array([1, 2, 3]))).rejects.toThrow(expect.objectContaining({ code: 'ENOENT' }));
    writeFileAtomicSync(join(dir, 'b', 'keep'), '');
    await writeFileAtomic(join(dir, 'b', 'g.bin'), new Uint8Array([1, 2, 3]));
    expect(readFileSync(join(dir, 'a', 'f.txt'), 'utf8')).toBe('one');
    expect([...readFileSync(join(dir, 'b', 'g.bin'))]).toEqual([1, 2, 3]);
    expect(readdirSync(join(dir, 'a'))).toEqual(['f.txt']);
    // A failed write (the target is a folder) leaves no temp file and keeps the error's code.
    expect(() => writeFileAtomicSync(join(dir, 'a'), 'x')).toThrow(expect.objectContaining({ code: expect.stringMatching(/EISDIR|ENOTEMPTY|EEXIST|EPERM/) }));
    expect(readdirSync(dir).sort()).toEqual(['a', 'b']);
    expect(readdirSync(join(dir, 'a'))).toEqual(['f.txt']);
  });

  it('truncateMetricsLog keeps the lines up to the step', () => {
    const p = join(tmp(), 'metrics.jsonl');
    truncateMetricsLog(p, 3); // no file: nothing
    expect(existsSync(p)).toBe(false);
    writeFileSync(p, ['{"step":1}', '{"step":3}', 'garbage', '{"step":4}', ''].join('\n'));
    truncateMetricsLog(p, 3);
    expect(readFileSync(p, 'utf8')).toBe('{"step":1}\n{"step":3}\n');
    // By another field: an expert's log keeps its first epochs.
    writeFileSync(p, ['{"epoch":1,"step":9}', '{"epoch":2,"step":18}', '{"epoch":3,"step":27}', ''].join('\n'));
    truncateMetricsLog(p, 2, 'epoch');
    expect(readFileSync(p, 'utf8')).toBe('{"epoch":1,"step":9}\n{"epoch":2,"step":18}\n');
    expect(COMPLETE_FILE).toBe('complete.json');
  });
});
