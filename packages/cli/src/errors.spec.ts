/**
 * The libraries' run errors as the CLI's: same messages, the CLI's classes and exit codes.
 */
import { ModelFileError } from '@fad/diffusion-core';
import { GenerationRunError, ResumableStepError, TrainingRunError } from '@fad/diffusion-core/node';
import { EvaluationRunError, UtilityRunError } from '@fad/expert-models/node';
import { ExperimentRunError, ReportError } from '@fad/feature-align/node';
import { describe, expect, it } from 'vitest';
import { CliError, classifyError, DivergenceError, EnvironmentError, fromLibraryError, InterruptedError, withLibraryErrors } from './errors';

const errno = (code: string, message = `${code}: something`) => Object.assign(new Error(message), { code });
const fsRun = (code: string, doing: string) => new TrainingRunError('fs', `cannot ${doing} /r/x: ...`, { path: '/r/x', doing }, errno(code));

/** A library error, and the CLI error class, exit code and message fromLibraryError must give for it. */
type MappedCase = [unknown, new (...a: never[]) => Error, number, string];

function expectMapped(cases: MappedCase[]): void {
  for (const [input, Class, exitCode, message] of cases) {
    const out = fromLibraryError(input) as CliError;
    expect(out).toBeInstanceOf(Class);
    expect(out.exitCode).toBe(exitCode);
    expect(out.message).toBe(message);
  }
}

describe('fromLibraryError', () => {
  it('maps each library error to the CLI error with the same message', () => {
    const cases: MappedCase[] = [
      [new ResumableStepError('unfinished-needs-resume', '/r has a checkpoint; pass --resume'), CliError, 1, '/r has a checkpoint; pass --resume'],
      [new TrainingRunError('bad-checkpoint', 'the training checkpoint /r/c: state.step is 9'), CliError, 1, 'the training checkpoint /r/c: state.step is 9'],
      [new TrainingRunError('non-finite', 'training diverged at step 3: ...'), DivergenceError, 4, 'training diverged at step 3: ...'],
      [new ModelFileError('not-safetensors', '/r/c is not a safetensors file (3 bytes)'), CliError, 1, '/r/c is not a safetensors file (3 bytes)'],
      [fsRun('ENOSPC', 'write the training checkpoint'), EnvironmentError, 3, 'cannot write the training checkpoint /r/x: no space left on the device (disk full) [ENOSPC]'],
      [fsRun('ENOENT', 'read the training checkpoint'), CliError, 1, 'cannot read the training checkpoint /r/x: no such file'],
      [fsRun('EISDIR', 'read the training checkpoint'), CliError, 1, 'cannot read the training checkpoint /r/x: it is a folder, not a file'],
      [fsRun('ENOENT', 'append to the metrics log'), CliError, 1, 'cannot append to the metrics log /r/x: no such file or folder [ENOENT]'],
    ];
    expectMapped(cases);
  });

  it('words each generation-run error as fad generate / fad merge did before the move (flags, exit codes)', () => {
    const G = (code: ConstructorParameters<typeof GenerationRunError>[0], details: Record<string, unknown>, cause?: unknown) => new GenerationRunError(code, `library wording of ${code}`, details, cause);
    const cases: MappedCase[] = [
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
    expectMapped(cases);
  });

  it('words each utility-run error as fad utility / fad merge / fad experiment did before the move (config keys, flags, exit codes)', () => {
    const U = (code: ConstructorParameters<typeof UtilityRunError>[0], details: Record<string, unknown>, cause?: unknown) => new UtilityRunError(code, `library wording of ${code}`, details, cause);
    const cases: MappedCase[] = [
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
    expectMapped(cases);
  });

  it('words each evaluation-run error as fad evaluate / fad merge did before the move (config keys, flags)', () => {
    const E = (code: ConstructorParameters<typeof EvaluationRunError>[0], details: Record<string, unknown>, cause?: unknown, message = `library wording of ${code}`) => new EvaluationRunError(code, message, details, cause);
    const cases: MappedCase[] = [
      [E('unknown-class', { class: 'x', classNames: ['a', 'b'] }), CliError, 1, 'evaluate.classes names "x", which is not one of the classes (a, b)'],
      [E('no-classes', {}), CliError, 1, 'no class left to evaluate (check evaluate.classes and evaluate.excludeClasses)'],
      [E('size-mismatch', {}, undefined, 'generated images are 8x8x1 but the real ones are 16x16x1'), CliError, 1, 'generated images are 8x8x1 but the real ones are 16x16x1; set data.imageSize/channels to match the model'],
      [E('too-few-real', {}, undefined, 'only 1 real image(s) of the evaluated classes; need at least 2'), CliError, 1, 'only 1 real image(s) of the evaluated classes; need at least 2'],
      [E('foreign-shard', { path: '/o/1-of-2', shard: '1-of-2' }), CliError, 1, '/o/1-of-2 holds shard 1-of-2 of another run (another expert, settings or inputs); remove it, choose another --out, or pass --force to replace it'],
      [E('out-is-file', { out: 'sh' }), CliError, 1, '--out sh is a file; with --shard, --out is the folder of the shards'],
      [E('not-shards', { dir: 'sh' }), CliError, 1, 'sh is not a folder of shards (fad evaluate --shard I/N --out sh)'],
      [E('no-shards', { dir: 'sh', killed: ['0-of-2.tmp-7'] }), CliError, 1, 'sh holds no finished shard folders (I-of-N, written by fad evaluate --shard I/N --out sh) (only temp folders of killed shards: 0-of-2.tmp-7)'],
      [E('exists', { path: '/abs/e.json', out: 'e.json' }), CliError, 1, 'e.json already exists; choose another --out or pass --force to replace it'],
      [E('out-is-folder', { out: 'e.json' }), CliError, 1, '--out e.json is a folder; the merged evaluation is a file (eval.json)'],
      [E('out-inside-shards', { out: 'sh/e.json', dir: 'sh' }), CliError, 1, '--out sh/e.json must not be inside the shards folder sh'],
      [E('real-changed', { config: { data: { dir: '/data' } } }), CliError, 1, 'the real images read from /data differ from those the shards compared with; run the shards again'],
      [E('bad-shards', {}, undefined, 'evaluate shards in sh: 0-of-2 is missing'), CliError, 1, 'evaluate shards in sh: 0-of-2 is missing'],
      [E('fs', { path: '/o/0-of-2.tmp-1/outputs.f32', doing: 'write the expert outputs' }, errno('ENOSPC')), EnvironmentError, 3, 'cannot write the expert outputs /o/0-of-2.tmp-1/outputs.f32: no space left on the device (disk full) [ENOSPC]'],
    ];
    expectMapped(cases);
  });

  it('words each report error as fad report did before the report moved to @fad/feature-align/node', () => {
    const R = (code: ConstructorParameters<typeof ReportError>[0], message: string, details: Record<string, unknown>, cause?: unknown) => new ReportError(code, message, details, cause);
    expectMapped([
      [R('missing', 'run directory /r does not exist', { runDir: '/r' }), CliError, 1, 'run directory /r does not exist'],
      [R('not-run-dir', '/r is not an experiment run directory (library wording)', { runDir: '/r' }), CliError, 1, '/r is not an experiment run directory (no variants/ or expert/ folder); run fad experiment or fad demo first'],
      [R('no-renderer', 'the report needs ... npm i vega vega-lite sharp', { module: 'vega' }), CliError, 1, 'the report needs ... npm i vega vega-lite sharp'],
      [R('fs', 'cannot write /r/report.tmp-1/report.html: ...', { path: '/r/report.tmp-1/report.html', doing: 'write' }, errno('ENOSPC')), EnvironmentError, 3,
        'cannot write /r/report.tmp-1/report.html: no space left on the device (disk full) [ENOSPC]'],
    ]);
    // An image the decoder refuses: its reason as before (not a CliError: reported as unexpected), the channels named as the config's.
    const bad = fromLibraryError(R('bad-image', 'cannot read the generated image /g/a.png: ...', { path: '/g/a.png', reason: 'has 1 channel(s) (grayscale), but channels is 3 (RGB)' })) as Error;
    expect(bad).not.toBeInstanceOf(CliError);
    expect(bad.message).toBe('has 1 channel(s) (grayscale), but data.channels is 3 (RGB)');
  });

  it('words the experiment run\'s errors as fad experiment did before the run moved to @fad/feature-align/node', () => {
    const X = (code: ConstructorParameters<typeof ExperimentRunError>[0], message: string, details: Record<string, unknown>, cause?: unknown) => new ExperimentRunError(code, message, details, cause);
    expectMapped([
      [X('fs', 'cannot write /r/steps.json: ...', { path: '/r/steps.json', doing: 'write' }, errno('ENOSPC')), EnvironmentError, 3, 'cannot write /r/steps.json: no space left on the device (disk full) [ENOSPC]'],
      [X('fs', 'cannot write the completion marker /r/complete.json: ...', { path: '/r/complete.json', doing: 'write the completion marker' }, errno('EACCES')), EnvironmentError, 3,
        'cannot write the completion marker /r/complete.json: permission denied [EACCES]'],
      [X('fs', 'cannot write /r/config.yaml: ...', { path: '/r/config.yaml', doing: 'write' }, errno('EISDIR')), CliError, 1, 'cannot write /r/config.yaml: is a folder, not a file [EISDIR]'],
    ]);
  });

  it('returns other errors unchanged; classifyError and withLibraryErrors apply it', () => {
    const bug = new TypeError('a bug');
    expect(fromLibraryError(bug)).toBe(bug);
    expect(classifyError(new TrainingRunError('non-finite', 'diverged'))).toBeInstanceOf(DivergenceError);
    expect(() => withLibraryErrors(() => { throw new TrainingRunError('bad-checkpoint', 'damaged'); })).toThrow(CliError);
    expect(withLibraryErrors(() => 5)).toBe(5);
  });
});
