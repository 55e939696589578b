/**
 * Finished means finished: the checkpoint trainExpert writes while training runs is marked
 * `fad.status: partial` and only becomes `complete` when training has finished; non-finite weights
 * are never written; a resume state whose position does not fit the run is refused, naming the field.
 */
import * as tf from '@tensorflow/tfjs-core';
import { decodeSafetensors, encodeSafetensors } from '@fad/diffusion-core';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExpert } from './create-expert';
import { CHECKPOINT_STATUS_KEY } from './expert-checkpoint';
import type { ExpertConfigInput } from './expert-config';
import type { ExpertModel } from './expert-model';
import { useCpuBackend } from './testing/setup-cpu';
import { toyImages } from './testing/toy-data';
import type { TrainExpertParams } from './train-expert';
import { trainExpert } from './node/expert-files';

let dir = '';
beforeAll(async () => {
  await useCpuBackend();
  dir = await mkdtemp(join(tmpdir(), 'expert-status-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const config: ExpertConfigInput = { arch: 'resnet', block: 'basic', layers: [1, 1], baseWidth: 8, numClasses: 4, input: { size: 16 } };
const toy = toyImages({ numClasses: 4, perClass: 6, size: 16, channels: 1 });
const base = (expert: ExpertModel): TrainExpertParams => ({
  expert, images: toy, labels: toy.labels, epochs: 2, batchSize: 4, learningRate: 3e-3, validationFraction: 0.25, seed: 3,
});
const status = async (path: string) => decodeSafetensors(new Uint8Array(await readFile(path))).metadata[CHECKPOINT_STATUS_KEY];

describe('trainExpert: completion marker', () => {
  it('marks the checkpoint partial while training runs (and when stopped), complete only at the end, weights unchanged', async () => {
    const checkpointPath = join(dir, 'a.safetensors');
    const statePath = join(dir, 'a-state.safetensors');
    const seen: string[] = [];
    const e = createExpert({ config, seed: 1 });
    let epochs = 0;
    const stopped = await trainExpert({
      ...base(e), checkpointPath, statePath,
      onProgress: async (p) => { if (p.kind === 'epoch') epochs++; },
      shouldStop: () => epochs >= 1,
    });
    expect(stopped.interrupted).toBe(true);
    seen.push(await status(checkpointPath));
    const resumed = await trainExpert({ ...base(e), checkpointPath, statePath, resume: true });
    expect(resumed.interrupted).toBe(false);
    seen.push(await status(checkpointPath));
    expect(seen).toEqual(['partial', 'complete']);
    // An uninterrupted run writes the same file, byte for byte.
    const f = createExpert({ config, seed: 1 });
    const other = join(dir, 'b.safetensors');
    await trainExpert({ ...base(f), checkpointPath: other });
    expect(Buffer.from(await readFile(other)).equals(Buffer.from(await readFile(checkpointPath)))).toBe(true);
    e.dispose();
    f.dispose();
  });
});

describe('trainExpert: non-finite weights', () => {
  it('stops before writing when an update overflows, naming the step and the tensor (nothing written)', async () => {
    const e = createExpert({ config, seed: 1 });
    const checkpointPath = join(dir, 'nan.safetensors');
    const statePath = join(dir, 'nan-state.safetensors');
    // A learning rate that overflows the weights on the first steps.
    const err = await trainExpert({ ...base(e), learningRate: 1e38, checkpointPath, statePath, checkpointEverySteps: 1 }).then(() => new Error('expected an error') as Error & { code?: string; step?: number }, (x) => x as Error & { code?: string; step?: number });
    expect(err).toBeInstanceOf(Error);
    // Either the loss turns non-finite (the trainer's own check) or the weights do before a write.
    expect(err.message).toMatch(/non-finite/);
    if ((err as { code?: string }).code === 'FAD_NON_FINITE') {
      expect(err.message).toMatch(/non-finite weights after step \d+ \(tensor "[^"]+" has \d+ of \d+ values NaN or infinite/);
      expect(existsSync(checkpointPath) ? await status(checkpointPath) : 'absent').not.toBe('complete');
    }
    expect(existsSync(checkpointPath)).toBe(false);
    e.dispose();
  });

  it('refuses to write a state when the weights are not finite (injected)', async () => {
    const e = createExpert({ config, seed: 1 });
    const statePath = join(dir, 'inj-state.safetensors');
    const v = e.namedParameters()[0][1];
    let steps = 0;
    const err = await trainExpert({
      ...base(e), statePath, checkpointEverySteps: 2,
      onProgress: (p) => {
        if (p.kind === 'step' && ++steps === 2) v.assign(tf.fill(v.shape, NaN));
      },
    }).then(() => new Error('expected an error') as Error & { code?: string; step?: number; tensor?: string }, (x) => x as Error & { code?: string; step?: number; tensor?: string });
    expect(err.code).toBe('FAD_NON_FINITE');
    expect(err.step).toBe(2);
    expect(err.tensor).toBe(e.namedParameters()[0][0]);
    expect(err.message).toContain(`tensor "${e.namedParameters()[0][0]}"`);
    expect(existsSync(statePath)).toBe(false);
    e.dispose();
  });
});

describe('trainExpert: inconsistent resume state', () => {
  it('refuses a state whose position is past the run or inconsistent, naming the file and the field', async () => {
    const e = createExpert({ config, seed: 1 });
    const statePath = join(dir, 'edit-state.safetensors');
    let steps = 0;
    await trainExpert({ ...base(e), statePath, onProgress: (p) => { if (p.kind === 'step') steps++; }, shouldStop: () => steps >= 2 });
    const bytes = new Uint8Array(await readFile(statePath));
    const edit = async (change: (s: Record<string, unknown>) => void) => {
      const f = decodeSafetensors(bytes);
      const st = JSON.parse(f.metadata.state);
      change(st);
      await writeFile(statePath, encodeSafetensors({ tensors: f.tensors, metadata: { ...f.metadata, state: JSON.stringify(st) } }));
      return trainExpert({ ...base(e), statePath, resume: true }).then(() => null, (x) => (x as Error).message);
    };
    expect(await edit((s) => (s.epoch = 5))).toMatch(new RegExp(`cannot resume from ${statePath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: state\\.epoch is 5, expected an integer in 0\\.\\.2`));
    expect(await edit((s) => (s.globalStep = 99))).toMatch(/state\.globalStep is 99, expected 2 \(epoch 0 x 4 steps \+ 2\)/);
    expect(await edit((s) => (s.stepInEpoch = 4))).toMatch(/state\.stepInEpoch is 4, expected an integer in 0\.\.3/);
    expect(await edit((s) => (s.totalSteps = 100))).toMatch(/state\.totalSteps is 100, expected 8/);
    expect(await edit(() => {})).toBeNull(); // unchanged: resumes
    e.dispose();
  });
});
