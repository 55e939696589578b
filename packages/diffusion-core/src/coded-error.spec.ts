import { describe, expect, it } from 'vitest';
import { CodedError, withFsError } from './coded-error';
import { GenerationRunError } from './node/generation-run-error';
import { TrainingRunError } from './node/training-run-error';

describe('CodedError', () => {
  it('carries code, details and cause; subclasses keep their own name and instanceof', () => {
    const cause = Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' });
    const e = new TrainingRunError('fs', 'cannot write x', { path: 'x' }, cause);
    expect(e).toBeInstanceOf(TrainingRunError);
    expect(e).toBeInstanceOf(CodedError);
    expect(e).not.toBeInstanceOf(GenerationRunError);
    expect([e.name, e.code, e.message, e.details, e.cause]).toEqual(['TrainingRunError', 'fs', 'cannot write x', { path: 'x' }, cause]);
    expect(String(new GenerationRunError('exists', 'm'))).toBe('GenerationRunError: m');
    expect(new GenerationRunError('exists', 'm').details).toEqual({});
    expect('cause' in new GenerationRunError('exists', 'm')).toBe(false);
  });
});

describe('withFsError', () => {
  const make = (m: string, d: { path: string; doing: string }, c: unknown) => new TrainingRunError('fs', m, d, c);
  it('turns an errno error into the run error naming the path and what was done; passes others and coded errors', () => {
    const enospc = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    let e: unknown;
    try {
      withFsError({ path: '/r/x', doing: 'write the checkpoint', error: make, run: () => { throw enospc; } });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(TrainingRunError);
    expect(e).toMatchObject({ code: 'fs', message: 'cannot write the checkpoint /r/x: no space left on device', details: { path: '/r/x', doing: 'write the checkpoint' }, cause: enospc });
    const bug = new TypeError('bug');
    expect(() => withFsError({ path: 'p', doing: 'd', error: make, run: () => { throw bug; } })).toThrow(bug);
    const coded = new GenerationRunError('exists', 'exists');
    expect(() => withFsError({ path: 'p', doing: 'd', error: make, run: () => { throw Object.assign(coded, {}); } })).toThrow(coded);
    expect(withFsError({ path: 'p', doing: 'd', error: make, run: () => 7 })).toBe(7);
  });
});
