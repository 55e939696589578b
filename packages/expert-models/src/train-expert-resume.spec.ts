/**
 * Long runs: the training state (statePath), stopping (shouldStop) and resume. A run stopped in the
 * middle of an epoch and resumed must end bit-identical to an uninterrupted run: weights, BatchNorm
 * running statistics, history, best epoch and final evaluation.
 */
import * as tf from '@tensorflow/tfjs-core';
import { decodeSafetensors } from '@fad/diffusion-core';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExpert } from './create-expert';
import type { ExpertConfigInput } from './expert-config';
import type { ExpertModel } from './expert-model';
import { useCpuBackend } from './testing/setup-cpu';
import { toyImages } from './testing/toy-data';
import { readExpertTrainingState, trainExpert } from './node';
import type { TrainExpertParams, TrainExpertResult, TrainProgress } from './train-expert';
import { TRAIN_STATE_FORMAT } from './train-state';

let dir = '';
beforeAll(async () => {
  await useCpuBackend();
  dir = await mkdtemp(join(tmpdir(), 'expert-resume-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const config: ExpertConfigInput = { arch: 'resnet', block: 'basic', layers: [1, 1], baseWidth: 8, numClasses: 4, input: { size: 16 } };
// 24 images, 8 held out (2 per class) -> 16 training images in batches of 4: 4 steps per epoch, 12 in all.
const toy = toyImages({ numClasses: 4, perClass: 6, size: 16, channels: 1 });
const base = (expert: ExpertModel): TrainExpertParams => ({
  expert, images: toy, labels: toy.labels, epochs: 3, batchSize: 4, learningRate: 3e-3, lrGamma: 0.7, validationFraction: 0.25, seed: 3, weightDecay: 1e-4,
});
// Timings differ between runs; everything else must not.
const noTimes = (r: TrainExpertResult) => ({ ...r, elapsedMs: 0, resumedFromStep: null, history: r.history.map((h) => ({ ...h, elapsedMs: 0 })) });
const weights = (expert: ExpertModel) => expert.stateDict();

function expectSameWeights(a: ReturnType<typeof weights>, b: ReturnType<typeof weights>): void {
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  for (const k of Object.keys(a)) {
    // Bit-identical, not close: compare the raw bytes.
    expect(Buffer.from(b[k].data.buffer, b[k].data.byteOffset, b[k].data.byteLength).equals(Buffer.from(a[k].data.buffer, a[k].data.byteOffset, a[k].data.byteLength)), k).toBe(true);
  }
}

let reference: { result: TrainExpertResult; weights: ReturnType<typeof weights>; events: TrainProgress[] };
beforeAll(async () => {
  const expert = createExpert({ config, seed: 1 });
  const events: TrainProgress[] = [];
  const result = await trainExpert({ ...base(expert), onProgress: (e) => events.push(e) });
  reference = { result, weights: weights(expert), events };
  expert.dispose();
}, 60_000);

describe('trainExpert: stop and resume', () => {
  it('a run stopped mid-epoch and resumed ends bit-identical to an uninterrupted one (weights, BN statistics, history)', async () => {
    const statePath = join(dir, 'mid.safetensors');
    const before = tf.memory().numTensors;
    // Stop after step 6: epoch 2, step 2 of 4.
    const a = createExpert({ config, seed: 1 });
    let steps = 0;
    const eventsA: TrainProgress[] = [];
    const stopped = await trainExpert({
      ...base(a), statePath, onProgress: (e) => { eventsA.push(e); if (e.kind === 'step') steps++; }, shouldStop: () => steps >= 6,
    });
    expect(stopped).toMatchObject({ interrupted: true, steps: 6, bestEpoch: 1, validation: null, resumedFromStep: null });
    expect(stopped.history).toHaveLength(1);
    const info = await readExpertTrainingState({ path: statePath });
    expect(info).toMatchObject({ globalStep: 6, totalSteps: 12, epochsDone: 1, stepInEpoch: 2, finished: false });
    a.dispose();
    // Resume into a differently initialised expert: everything comes from the state.
    const b = createExpert({ config, seed: 99 });
    const eventsB: TrainProgress[] = [];
    const resumed = await trainExpert({ ...base(b), statePath, resume: true, onProgress: (e) => eventsB.push(e) });
    expect(resumed.interrupted).toBe(false);
    expect(resumed.resumedFromStep).toBe(6);
    expect(noTimes(resumed)).toEqual(noTimes(reference.result));
    expectSameWeights(reference.weights, weights(b));
    // BatchNorm running statistics are among them (and moved away from their initial values).
    const running = Object.keys(reference.weights).filter((k) => /running_(mean|var)/.test(k));
    expect(running.length).toBeGreaterThan(0);
    expect(running.some((k) => reference.weights[k].data.some((v) => v !== 0 && v !== 1))).toBe(true);
    // The step events after the stop are the uninterrupted run's, value for value.
    const strip = (e: TrainProgress) => ({ ...e, elapsedMs: 0, etaMs: 0 });
    expect([...eventsA, ...eventsB].map(strip)).toEqual(reference.events.map(strip));
    // The state written at the end says so, and resuming a finished state just returns the result.
    expect((await readExpertTrainingState({ path: statePath })).finished).toBe(true);
    const again = await trainExpert({ ...base(b), statePath, resume: true });
    expect(noTimes(again)).toEqual(noTimes(reference.result));
    expectSameWeights(reference.weights, weights(b));
    b.dispose();
    expect(tf.memory().numTensors).toBe(before);
  }, 60_000);

  it('a crash after a periodic state write loses only the steps since; the resumed run still matches', async () => {
    const statePath = join(dir, 'crash.safetensors');
    const before = tf.memory().numTensors;
    const a = createExpert({ config, seed: 1 });
    const withExpert = tf.memory().numTensors;
    let steps = 0;
    const seenStates: number[] = [];
    // State every 3 steps; "crash" (throw) after step 8, so the last state is from step 6.
    await expect(
      trainExpert({
        ...base(a), statePath, checkpointEverySteps: 3,
        onProgress: (e) => {
          if (e.kind !== 'step') return;
          steps++;
          // Whenever the file exists it is whole (written to a temporary file, then renamed).
          try {
            seenStates.push(decodeState(readFileSync(statePath)));
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          }
          if (steps === 8) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    // Read in the step events of steps 4..8 (a step event comes before that step's state write).
    expect(seenStates).toEqual([3, 3, 3, 6, 6]);
    expect(tf.memory().numTensors).toBe(withExpert);
    a.dispose();
    const b = createExpert({ config, seed: 1 });
    const resumed = await trainExpert({ ...base(b), statePath, checkpointEverySteps: 5, resume: true });
    expect(resumed.resumedFromStep).toBe(6);
    expect(noTimes(resumed)).toEqual(noTimes(reference.result));
    expectSameWeights(reference.weights, weights(b));
    b.dispose();
    expect(tf.memory().numTensors).toBe(before);
    // Only the state file: no temporary file left behind.
    expect((await readdir(dir)).filter((f) => f.includes('.tmp'))).toEqual([]);
  }, 60_000);

  it('stops at an epoch boundary too, and resumes without validation and with restoreBest off', async () => {
    const run = async (extra: Partial<TrainExpertParams>) => {
      const e = createExpert({ config, seed: 4 });
      const r = await trainExpert({ ...base(e), validationFraction: 0, epochs: 2, augment: false, ...extra });
      const w = weights(e);
      e.dispose();
      return { r, w };
    };
    const ref = await run({});
    const statePath = join(dir, 'boundary.safetensors');
    let epochs = 0;
    const stopped = await run({ statePath, onProgress: (e) => { if (e.kind === 'epoch') epochs++; }, shouldStop: () => epochs >= 1, restoreBest: true });
    expect(stopped.r).toMatchObject({ interrupted: true, steps: 6, bestEpoch: 1 });
    expect(await readExpertTrainingState({ path: statePath })).toMatchObject({ globalStep: 6, epochsDone: 1, stepInEpoch: 0 });
    const resumed = await run({ statePath, resume: true });
    expect(noTimes(resumed.r)).toEqual(noTimes(ref.r));
    expectSameWeights(ref.w, resumed.w);
  }, 60_000);
});

/** The global step recorded in a state file's bytes. */
function decodeState(bytes: Uint8Array): number {
  const f = decodeSafetensors(new Uint8Array(bytes));
  expect(f.metadata.format).toBe(TRAIN_STATE_FORMAT);
  return JSON.parse(f.metadata.state).globalStep;
}

describe('trainExpert: the state file', () => {
  it('holds weights, BN statistics, Adam moments, best weights, RNG states and the caller metadata', async () => {
    const statePath = join(dir, 'contents.safetensors');
    const e = createExpert({ config, seed: 1 });
    await trainExpert({ ...base(e), epochs: 1, statePath, stateMetadata: { key: 'abc' } });
    const f = decodeSafetensors(new Uint8Array(await readFile(statePath)));
    const names = Object.keys(f.tensors);
    const vars = e.namedParameters().map(([n]) => n);
    expect(names.filter((n) => n.startsWith('expert.')).sort()).toEqual(vars.map((n) => `expert.${n}`).sort());
    expect(names.filter((n) => n.startsWith('best.')).sort()).toEqual(vars.map((n) => `best.${n}`).sort());
    expect(names.filter((n) => n.startsWith('adam.m.'))).toHaveLength(e.trainableVariables().length);
    expect(names.some((n) => /^expert\..*running_var$/.test(n))).toBe(true);
    const state = JSON.parse(f.metadata.state);
    expect(state).toMatchObject({ epoch: 1, stepInEpoch: 0, globalStep: 4, totalSteps: 4, epochs: 1, sums: { loss: 0, correct: 0, seen: 0 } });
    expect(state.shuffle.s).toHaveLength(4);
    expect(state.augment.s).toHaveLength(4);
    expect(f.metadata.key).toBe('abc');
    expect((await readExpertTrainingState({ path: statePath })).metadata).toEqual({ key: 'abc' });
    e.dispose();
  });

  it('refuses to resume with different inputs, naming what differs', async () => {
    const statePath = join(dir, 'fp.safetensors');
    const e = createExpert({ config, seed: 1 });
    let steps = 0;
    await trainExpert({ ...base(e), statePath, onProgress: (p) => { if (p.kind === 'step') steps++; }, shouldStop: () => steps >= 1 });
    const resume = (extra: Partial<TrainExpertParams>) => trainExpert({ ...base(e), statePath, resume: true, ...extra });
    await expect(resume({ epochs: 4, learningRate: 1e-3 })).rejects.toThrow(
      /trainExpert: cannot resume from .*fp\.safetensors: it was written with different inputs: epochs \(3 in the state, 4 now\); learningRate \(0\.003 in the state, 0\.001 now\)/,
    );
    await expect(resume({ batchSize: 5 })).rejects.toThrow(/batchSize \(4 in the state, 5 now\)/);
    await expect(resume({ seed: 4 })).rejects.toThrow(/seed \(3 in the state, 4 now\)/);
    await expect(resume({ augment: false })).rejects.toThrow(/augment\.horizontalFlip \(true in the state, false now\); augment\.verticalFlip/);
    const shifted = toyImages({ numClasses: 4, perClass: 6, size: 16, channels: 1, seed: 8 });
    await expect(resume({ images: shifted })).rejects.toThrow(/images \(pixel checksum\)/);
    await expect(resume({ labels: toy.labels.map((l) => (l + 1) % 4) })).rejects.toThrow(/labels\.hash/);
    const other = createExpert({ config: { ...config, baseWidth: 4 }, seed: 1 });
    await expect(trainExpert({ ...base(other), statePath, resume: true })).rejects.toThrow(/expert\.baseWidth \(8 in the state, 4 now\)/);
    other.dispose();
    // Nothing was trained by the refused attempts: the state still says step 1.
    expect((await readExpertTrainingState({ path: statePath })).globalStep).toBe(1);
    e.dispose();
  });

  it('rejects a missing or damaged state file with a clear error and leaves no tensors', async () => {
    const e = createExpert({ config, seed: 1 });
    const before = tf.memory().numTensors;
    await expect(trainExpert({ ...base(e), statePath: join(dir, 'nope.safetensors'), resume: true })).rejects.toThrow(
      /trainExpert: cannot resume: cannot read the training state .*nope\.safetensors: no such file/,
    );
    const statePath = join(dir, 'cut.safetensors');
    await trainExpert({ ...base(e), epochs: 1, statePath });
    const bytes = await readFile(statePath);
    await writeFile(statePath, bytes.subarray(0, bytes.length >> 1)); // what a non-atomic write could leave
    await expect(trainExpert({ ...base(e), epochs: 1, statePath, resume: true })).rejects.toThrow(/cut\.safetensors is not a usable expert training state/);
    await writeFile(statePath, 'not a state');
    await expect(trainExpert({ ...base(e), epochs: 1, statePath, resume: true })).rejects.toThrow(/not a usable expert training state/);
    expect(tf.memory().numTensors).toBe(before);
    e.dispose();
  });

  it('validates the new parameters, naming the field', async () => {
    const e = createExpert({ config, seed: 1 });
    const p = base(e);
    await expect(trainExpert({ ...p, statePath: '' })).rejects.toThrow(/trainExpert: statePath must be a non-empty string, got ""/);
    await expect(trainExpert({ ...p, statePath: 'x', checkpointEverySteps: 0 })).rejects.toThrow(/trainExpert: checkpointEverySteps must be an integer >= 1, got 0/);
    await expect(trainExpert({ ...p, checkpointEverySteps: 5 })).rejects.toThrow(/checkpointEverySteps needs statePath/);
    await expect(trainExpert({ ...p, resume: true })).rejects.toThrow(/resume needs statePath/);
    await expect(trainExpert({ ...p, resume: 'yes' as never })).rejects.toThrow(/trainExpert: resume must be true or false, got "yes"/);
    await expect(trainExpert({ ...p, shouldStop: true as never })).rejects.toThrow(/trainExpert: shouldStop must be a function, got true/);
    await expect(trainExpert({ ...p, statePath: 'x', stateMetadata: { format: 'x' } })).rejects.toThrow(/stateMetadata key "format" is reserved/);
    await expect(trainExpert({ ...p, statePath: 'x', stateMetadata: { a: 1 } as never })).rejects.toThrow(/stateMetadata\.a must be a string, got 1/);
    e.dispose();
  });
});

describe('trainExpert: stop and resume with noise-aware training', () => {
  // A short linear schedule: the noise generator's state must be part of the training state.
  const alphasCumprod = Float32Array.from({ length: 50 }, (_, t) => 1 - (t + 1) / 60);
  const noisy = (expert: ExpertModel): TrainExpertParams => ({ ...base(expert), epochs: 2, noiseAware: { alphasCumprod, probability: 0.75 } });

  it('resumes mid-epoch bit-identically, and refuses a state written without noise', async () => {
    const ref = createExpert({ config, seed: 1 });
    const full = await trainExpert(noisy(ref));
    const statePath = join(dir, 'noisy.safetensors');
    const a = createExpert({ config, seed: 1 });
    let steps = 0;
    await trainExpert({ ...noisy(a), statePath, onProgress: (e) => { if (e.kind === 'step') steps++; }, shouldStop: () => steps >= 5 });
    a.dispose();
    const b = createExpert({ config, seed: 7 });
    const resumed = await trainExpert({ ...noisy(b), statePath, resume: true });
    expect(noTimes(resumed)).toEqual(noTimes(full));
    expectSameWeights(weights(ref), weights(b));
    // The same state without the noise-aware option: a different run.
    const c = createExpert({ config, seed: 1 });
    await expect(trainExpert({ ...base(c), epochs: 2, statePath, resume: true })).rejects.toThrow(/noiseAware/);
    ref.dispose();
    b.dispose();
    c.dispose();
  }, 60_000);
});
