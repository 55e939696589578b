/**
 * The library's training-run errors as the CLI's: same messages, the CLI's classes and exit codes.
 */
import { ModelFileError } from '@fad/diffusion-core';
import { GenerationRunError, ResumableStepError, TrainingRunError } from '@fad/diffusion-core/node';
import { describe, expect, it } from 'vitest';
import { CliError, classifyError, DivergenceError, EnvironmentError, fromLibraryError, withLibraryErrors } from './errors';

const errno = (code: string, message = `${code}: something`) => Object.assign(new Error(message), { code });
const fsRun = (code: string, doing: string) => new TrainingRunError('fs', `cannot ${doing} /r/x: ...`, { path: '/r/x', doing }, errno(code));

describe('fromLibraryError', () => {
  it('maps each library error to the CLI error with the same message', () => {
    const cases: Array<[unknown, new (...a: never[]) => Error, number, string]> = [
      [new ResumableStepError('unfinished-needs-resume', '/r has a checkpoint; pass --resume'), CliError, 1, '/r has a checkpoint; pass --resume'],
      [new TrainingRunError('bad-checkpoint', 'the training checkpoint /r/c: state.step is 9'), CliError, 1, 'the training checkpoint /r/c: state.step is 9'],
      [new TrainingRunError('non-finite', 'training diverged at step 3: ...'), DivergenceError, 4, 'training diverged at step 3: ...'],
      [new ModelFileError('not-safetensors', '/r/c is not a safetensors file (3 bytes)'), CliError, 1, '/r/c is not a safetensors file (3 bytes)'],
      [fsRun('ENOSPC', 'write the training checkpoint'), EnvironmentError, 3, 'cannot write the training checkpoint /r/x: no space left on the device (disk full) [ENOSPC]'],
      [fsRun('ENOENT', 'read the training checkpoint'), CliError, 1, 'cannot read the training checkpoint /r/x: no such file'],
      [fsRun('EISDIR', 'read the training checkpoint'), CliError, 1, 'cannot read the training checkpoint /r/x: it is a folder, not a file'],
      [fsRun('ENOENT', 'append to the metrics log'), CliError, 1, 'cannot append to the metrics log /r/x: no such file or folder [ENOENT]'],
    ];
    for (const [input, Class, exitCode, message] of cases) {
      const out = fromLibraryError(input) as CliError;
      expect(out).toBeInstanceOf(Class);
      expect(out.exitCode).toBe(exitCode);
      expect(out.message).toBe(message);
    }
  });

  it('words each generation-run error as fad generate / fad merge did before the move (flags, exit codes)', () => {
    const G = (code: ConstructorParameters<typeof GenerationRunError>[0], details: Record<string, unknown>, cause?: unknown) => new GenerationRunError(code, `library wording of ${code}`, details, cause);
    const cases: Array<[unknown, new (...a: never[]) => Error, number, string]> = [
      [G('exists', { path: '/abs/out', out: 'out' }), CliError, 1, 'out already exists; choose another --out or pass --force to replace it'],
      [G('foreign-shard', { path: '/o/1-of-2', shard: '1-of-2' }), CliError, 1, '/o/1-of-2 holds shard 1-of-2 of another run (another model or settings); remove it, choose another --out, or pass --force to replace it'],
      [G('not-replaceable', { path: '/o', isFile: true, entries: 0 }), CliError, 1, 'refusing to --force replace /o: it is a file, not a folder written by fad generate'],
      [G('not-replaceable', { path: '/o', isFile: false, entries: 1 }), CliError, 1, 'refusing to --force replace /o: it is not a folder written by fad generate (no manifest.json) and holds 1 entry; choose another --out'],
      [G('not-replaceable', { path: '/o', isFile: false, entries: 2 }), CliError, 1, 'refusing to --force replace /o: it is not a folder written by fad generate (no manifest.json) and holds 2 entries; choose another --out'],
      [G('holds-input', { target: 'run', how: 'holds', what: 'the model', path: 'run/m.safetensors' }), CliError, 1, 'refusing to --force replace run: it holds the model run/m.safetensors, which this run reads; choose another output folder'],
      [new GenerationRunError('non-finite', 'the model m generated non-finite samples (1 of 4 values NaN or infinite, seed 3); nothing was written', {}), DivergenceError, 4,
        'the model m generated non-finite samples (1 of 4 values NaN or infinite, seed 3); nothing was written. The model or the sampler settings (--guidance-scale, --sampler) do not work together'],
      [G('not-shards', { dir: 'sh' }), CliError, 1, 'sh is not a folder of shards (fad generate --shard I/N --out sh)'],
      [G('no-shards', { dir: 'sh', killed: ['0-of-2.tmp-7'] }), CliError, 1, 'sh holds no finished shard folders (I-of-N, written by fad generate --shard I/N --out sh) (only temp folders of killed shards: 0-of-2.tmp-7)'],
      [G('no-shards', { dir: 'sh', killed: [] }), CliError, 1, 'sh holds no finished shard folders (I-of-N, written by fad generate --shard I/N --out sh)'],
      [G('out-inside-shards', { out: 'sh/m', dir: 'sh' }), CliError, 1, '--out sh/m must not be inside the shards folder sh'],
      [new GenerationRunError('unknown-class', 'class "x" is not one of the model\'s classes (a, b)'), CliError, 1, 'class "x" is not one of the model\'s classes (a, b)'],
      [G('fs', { path: '/o/a/s1-000.png', doing: 'write the image' }, errno('ENOSPC')), EnvironmentError, 3, 'cannot write the image /o/a/s1-000.png: no space left on the device (disk full) [ENOSPC]'],
    ];
    for (const [input, Class, exitCode, message] of cases) {
      const out = fromLibraryError(input) as CliError;
      expect(out).toBeInstanceOf(Class);
      expect(out.exitCode).toBe(exitCode);
      expect(out.message).toBe(message);
    }
  });

  it('returns other errors unchanged; classifyError and withLibraryErrors apply it', () => {
    const bug = new TypeError('a bug');
    expect(fromLibraryError(bug)).toBe(bug);
    expect(classifyError(new TrainingRunError('non-finite', 'diverged'))).toBeInstanceOf(DivergenceError);
    expect(() => withLibraryErrors(() => { throw new TrainingRunError('bad-checkpoint', 'damaged'); })).toThrow(CliError);
    expect(withLibraryErrors(() => 5)).toBe(5);
  });
});
