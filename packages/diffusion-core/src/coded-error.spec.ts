import { describe, expect, it } from 'vitest';
import { CodedError } from './coded-error';
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
