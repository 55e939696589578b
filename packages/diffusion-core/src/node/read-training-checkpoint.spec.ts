import { describe, expect, it } from 'vitest';
import { ModelFileError } from '../io/model-file-checks';
import { encodeSafetensors } from '../io/safetensors';
import { loadCheckpointInto, parseTrainingCheckpoint } from './read-training-checkpoint';
import { TrainingRunError } from './training-run-error';

const state = {
  format: 'my-checkpoint/1', key: 'k', step: 3, optimizerStep: 3,
  data: { gen: { s: [1, 2, 3, 4], spare: null }, perm: [2, 0, 1], cursor: 2 }, window: { n: 1, loss: 0.5, terms: {}, gradNorm: 1 },
};
type S = typeof state;
const bytesOf = (st: unknown, tensors: Parameters<typeof encodeSafetensors>[0]['tensors'] = { 'model.w': { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } }) =>
  encodeSafetensors({ tensors, metadata: { format: 'my-checkpoint/1', state: JSON.stringify(st) } });
const parse = (bytes: Uint8Array, check?: (s: S) => [string, string] | null) =>
  parseTrainingCheckpoint<S>({ bytes, path: '/r/ck', format: 'my-checkpoint/1', what: 'the checkpoint', totalSteps: 10, totalKey: 'steps', check, flags: { force: '--force' } });

describe('parseTrainingCheckpoint', () => {
  it('returns the state and the F32 tensors of any format (the autoencoder run uses its own)', () => {
    const r = parse(bytesOf(state));
    expect(r.state).toEqual(state);
    expect(Array.from(r.tensors['model.w'].data)).toEqual([1, 2]);
  });

  it("runs the caller's check and names its field", () => {
    const check = (s: S): [string, string] | null => (s.optimizerStep > 2 ? ['optimizerStep', 'an integer in 0..2'] : null);
    expect(() => parse(bytesOf(state), check)).toThrow('the checkpoint /r/ck: state.optimizerStep is 3, expected an integer in 0..2; the checkpoint is damaged or was edited (use --force to start over)');
  });

  it('refuses a tensor that is not F32, a header that is not safetensors, state that is not JSON', () => {
    const i32 = bytesOf(state, { 'model.w': { dtype: 'I32', shape: [1], data: new Int32Array([1]) } } as never);
    expect(() => parse(i32)).toThrow('the checkpoint /r/ck: tensor "model.w" is not F32');
    expect(() => parse(new Uint8Array([1, 2, 3]))).toThrow(ModelFileError);
    const bad = encodeSafetensors({ tensors: {}, metadata: { format: 'my-checkpoint/1', state: '{oops' } });
    let err: unknown;
    try {
      parse(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TrainingRunError);
    expect((err as TrainingRunError).code).toBe('bad-checkpoint');
    expect((err as Error).message).toMatch(/^the checkpoint \/r\/ck: metadata.state is not valid JSON/);
  });

  it('validates its params', () => {
    expect(() => parseTrainingCheckpoint({ bytes: [] as never, path: 'p', format: 'f', what: 'w', totalSteps: 1, totalKey: 't' })).toThrow(/bytes must be a Uint8Array/);
    expect(() => parseTrainingCheckpoint({ bytes: new Uint8Array(8), path: '', format: 'f', what: 'w', totalSteps: 1, totalKey: 't' })).toThrow(/path must be a non-empty string/);
    expect(() => parseTrainingCheckpoint({ bytes: new Uint8Array(8), path: 'p', format: 'f', what: 'w', totalSteps: -1, totalKey: 't' })).toThrow(/totalSteps must be an integer >= 0/);
  });
});

describe('loadCheckpointInto', () => {
  it('turns a load error into a bad-checkpoint error naming the file, the cause and the way out', () => {
    expect(() => loadCheckpointInto({ where: 'the checkpoint /r/ck', load: () => { throw new Error('missing "w"'); }, flags: { force: '--force' } }))
      .toThrow('the checkpoint /r/ck: its tensors do not fit the model of this config (missing "w"); use --force to start over');
    let ran = false;
    loadCheckpointInto({ where: 'x', load: () => { ran = true; } });
    expect(ran).toBe(true);
  });
});
