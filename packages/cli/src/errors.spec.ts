/**
 * The library's training-run errors as the CLI's: same messages, the CLI's classes and exit codes.
 */
import { ModelFileError } from '@fad/diffusion-core';
import { ResumableStepError, TrainingRunError } from '@fad/diffusion-core/node';
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

  it('returns other errors unchanged; classifyError and withLibraryErrors apply it', () => {
    const bug = new TypeError('a bug');
    expect(fromLibraryError(bug)).toBe(bug);
    expect(classifyError(new TrainingRunError('non-finite', 'diverged'))).toBeInstanceOf(DivergenceError);
    expect(() => withLibraryErrors(() => { throw new TrainingRunError('bad-checkpoint', 'damaged'); })).toThrow(CliError);
    expect(withLibraryErrors(() => 5)).toBe(5);
  });
});
