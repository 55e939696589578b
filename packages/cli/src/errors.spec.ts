/**
 * The libraries' run errors as the CLI's: same messages, the CLI's classes and exit codes.
 */
import { ModelFileError } from '@fad/diffusion-core';
import { GenerationRunError, ResumableStepError, TrainingRunError } from '@fad/diffusion-core/node';
import { UtilityRunError } from '@fad/expert-models/node';
import { describe, expect, it } from 'vitest';
import { CliError, classifyError, DivergenceError, EnvironmentError, fromLibraryError, InterruptedError, withLibraryErrors } from './errors';

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

  it('words each utility-run error as fad utility / fad merge / fad experiment did before the move (config keys, flags, exit codes)', () => {
    const U = (code: ConstructorParameters<typeof UtilityRunError>[0], details: Record<string, unknown>, cause?: unknown) => new UtilityRunError(code, `library wording of ${code}`, details, cause);
    const cases: Array<[unknown, new (...a: never[]) => Error, number, string]> = [
      [U('no-synthetic', {}), CliError, 1, 'give at least one synthetic set: --synthetic NAME=DIR (a folder written by fad generate)'],
      [U('bad-settings', { problem: 'fractions must not repeat a value, got [0.5,0.5]' }), CliError, 1, 'utility: fractions must not repeat a value, got [0.5,0.5]'],
      [U('bad-settings', { problem: 'syntheticSets[0] must be a name of letters' }), CliError, 1, 'utility: --synthetic names[0] must be a name of letters'],
      [U('size-mismatch', { name: 'big', dir: '/s/big', setSize: 16, setChannels: 1, imageSize: 8, channels: 1 }), CliError, 1,
        'synthetic set big (/s/big) has 16x16x1 images, the real data is read at 8x8x1 (data.imageSize, data.channels): generate at the real size or set data.imageSize/data.channels to match'],
      [U('same-architecture', { what: 'the generator\'s expert', path: '/e/expert.safetensors' }), CliError, 1,
        'the downstream classifier (utility.arch/preset/architecture) is the same architecture as the generator\'s expert /e/expert.safetensors: the utility test would measure how well the generator learned to please that expert. Choose another utility.preset (e.g. resnet18-kather or vit-small-kather) or other utility.architecture'],
      [U('no-test-images', {}), CliError, 1, 'no held-out real test images: data.validationFraction is 0; the utility test needs the validation split (e.g. --set data.validationFraction=0.2)'],
      [U('fraction-empties-class', { fraction: 0.05, className: 'stripes_h', count: 7 }), CliError, 1,
        'utility.fractions: 0.05 leaves class "stripes_h" with no training images (it has 7 in the training split; round(7 * 0.05) = 0); use a larger fraction'],
      [U('foreign-shard', { path: '/o/0-of-3', shard: '0-of-3' }), CliError, 1, '/o/0-of-3 holds shard 0-of-3 of another run (other settings or inputs); remove it, choose another --out, or pass --force to replace it'],
      [new UtilityRunError('interrupted', 'interrupted: 3 of 16 classifiers are finished and kept in /o/runs', { finished: 3, total: 16, runsDir: '/o/runs' }), InterruptedError, 130,
        'interrupted: 3 of 16 classifiers are finished and kept in /o/runs; run the same command again to continue'],
      [U('not-shards', { dir: 'sh' }), CliError, 1, 'sh is not a folder of shards (fad utility --shard I/N --out sh)'],
      [U('no-shards', { dir: 'sh', killed: ['1-of-2.tmp-9'] }), CliError, 1, 'sh holds no finished shard folders (I-of-N, written by fad utility --shard I/N --out sh) (only temp folders of killed shards: 1-of-2.tmp-9)'],
      [U('no-shards', { dir: 'sh', killed: [] }), CliError, 1, 'sh holds no finished shard folders (I-of-N, written by fad utility --shard I/N --out sh)'],
      [U('bad-run-file', { path: '/sh/0-of-2/runs/real-f1-s0.json', shard: '0-of-2', protocolId: 'real-f1', seed: 0 }), CliError, 1,
        '/sh/0-of-2/runs/real-f1-s0.json is not the run file of real-f1 seed 0 that shard 0-of-2 should hold; run that shard again (--force)'],
      [U('bad-run-file', { path: '/sh/0-of-2/runs/x.json', shard: '0-of-2', protocolId: null, seed: null }), CliError, 1,
        '/sh/0-of-2/runs/x.json is not the run file of a classifier of the plan that shard 0-of-2 should hold; run that shard again (--force)'],
      [U('exists', { path: '/abs/m', out: 'm' }), CliError, 1, 'm already exists; choose another --out or pass --force to replace it'],
      [U('not-replaceable', { path: '/abs/m' }), CliError, 1, 'refusing to --force replace /abs/m: it is not a folder written by fad utility (no utility.json); choose another --out'],
      [U('out-inside-shards', { out: 'sh/m', dir: 'sh' }), CliError, 1, '--out sh/m must not be inside the shards folder sh'],
      [new UtilityRunError('missing-class', 'synthetic set p (/s/p) has no image of class "b" (its classes: a); generate every class of the real data'), CliError, 1,
        'synthetic set p (/s/p) has no image of class "b" (its classes: a); generate every class of the real data'],
      [new UtilityRunError('bad-shards', 'the shards hold classifiers 0..4 of 6; run the last shard again'), CliError, 1, 'the shards hold classifiers 0..4 of 6; run the last shard again'],
      [U('fs', { path: '/o/runs/real-f1-s0.json', doing: 'write' }, errno('ENOSPC')), EnvironmentError, 3, 'cannot write /o/runs/real-f1-s0.json: no space left on the device (disk full) [ENOSPC]'],
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
