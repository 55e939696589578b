import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors } from '../io/safetensors';
import { Module } from '../nn/module';
import { DDPMScheduler } from '../schedulers';
import { useCpuBackend } from '../testing/setup-cpu';
import { DiffusionTrainer } from '../training/trainer';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { DataOrder } from './data-order';
import { DIFFUSION_CHECKPOINT_FORMAT, encodeDiffusionCheckpoint, readDiffusionCheckpoint } from './diffusion-checkpoint';
import { TrainingRunError } from './training-run-error';

beforeAll(useCpuBackend);

const small = { ...UNET_PRESETS.tiny, sampleSize: 8, inChannels: 1, outChannels: 1, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };

class Proj extends Module {
  constructor() {
    super();
    this.addParameter('projection.0.weight', tf.tensor2d([[1, 2, 3], [4, 5, 6]]));
  }
}

const disposables: Array<{ dispose(): void }> = [];
afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));

/** A model, an extra module and a trainer after two steps (so Adam moments and EMA are not zero). */
function trained() {
  const model = new UNet2DConditional(small, { seed: 3 });
  const proj = new Proj();
  const trainer = new DiffusionTrainer({ model, scheduler: new DDPMScheduler({}), seed: 5, emaDecay: 0.9, optimizer: { learningRate: 1e-3 } });
  disposables.push(model, proj, trainer);
  for (let i = 0; i < 2; i++) {
    const x0 = tf.randomUniform([2, 8, 8, 1], -1, 1, 'float32', i) as tf.Tensor4D;
    trainer.step({ x0, classLabels: [0, 1] });
    x0.dispose();
  }
  const order = new DataOrder({ indices: [0, 1, 2], seed: 4 });
  order.next(2);
  return { model, proj, trainer, order };
}

/**
 * The checkpoint exactly as the fad CLI wrote it before the run moved to this package
 * (packages/cli/src/diffusion.ts `writeCheckpoint` and `stateNow`, written out by hand here): the
 * format pin. If this test fails, run folders made by earlier versions would no longer resume.
 */
function referenceBytes(p: ReturnType<typeof trained>, st: { key: string; step: number; window: object; backend: string; alignment: unknown; elapsedSeconds: number; lastLoss: number }): Uint8Array {
  const ts = p.trainer.getState();
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [k, v] of Object.entries(p.model.stateDict())) tensors[`model.${k}`] = { dtype: 'F32', shape: v.shape, data: v.data };
  for (const [k, v] of Object.entries(p.proj.stateDict())) tensors[`align.${k}`] = { dtype: 'F32', shape: v.shape, data: v.data };
  ts.optimizer.m.forEach((a, i) => (tensors[`adam.m.${i}`] = { dtype: 'F32', shape: [a.length], data: a }));
  ts.optimizer.v.forEach((a, i) => (tensors[`adam.v.${i}`] = { dtype: 'F32', shape: [a.length], data: a }));
  (ts.ema ?? []).forEach((a, i) => (tensors[`ema.${i}`] = { dtype: 'F32', shape: [a.length], data: a }));
  const state = {
    format: 'fad-train-checkpoint/1', key: st.key, step: st.step,
    trainer: { step: ts.step, generator: ts.generator, optimizerStep: ts.optimizer.step },
    data: p.order.getState(), window: st.window, backend: st.backend, unet: p.model.config, alignment: st.alignment, elapsedSeconds: st.elapsedSeconds, lastLoss: st.lastLoss,
  };
  return encodeSafetensors({ tensors, metadata: { format: 'fad-train-checkpoint/1', state: JSON.stringify(state) } });
}

describe('encodeDiffusionCheckpoint', () => {
  it('writes the fad-train-checkpoint/1 bytes of earlier fad versions (tensor names, metadata, state key order)', () => {
    const p = trained();
    const st = { key: 'abc', step: 2, window: { n: 1, loss: 0.5, terms: { diffusion: 0.5 }, gradNorm: 2 }, backend: 'cpu', alignment: { enabled: true, tap: 'mid' }, elapsedSeconds: 1.25, lastLoss: 0.4 };
    const bytes = encodeDiffusionCheckpoint({
      key: st.key, step: st.step, model: p.model, modules: [{ prefix: 'align.', module: p.proj }], trainer: p.trainer, data: p.order.getState(), window: st.window,
      backend: st.backend, extraState: { alignment: st.alignment }, elapsedSeconds: st.elapsedSeconds, lastLoss: st.lastLoss, what: 'the checkpoint x',
    });
    expect(Buffer.compare(Buffer.from(bytes), Buffer.from(referenceBytes(p, st)))).toBe(0);
    const { metadata, tensors } = decodeSafetensors(bytes);
    expect(Object.keys(metadata).sort()).toEqual(['format', 'state']);
    expect(metadata.format).toBe(DIFFUSION_CHECKPOINT_FORMAT);
    expect(Object.keys(JSON.parse(metadata.state))).toEqual(['format', 'key', 'step', 'trainer', 'data', 'window', 'backend', 'unet', 'alignment', 'elapsedSeconds', 'lastLoss']);
    const n = p.trainer.getState().optimizer.m.length;
    const names = Object.keys(tensors);
    expect(names.filter((k) => k.startsWith('align.'))).toEqual(['align.projection.0.weight']);
    for (const prefix of ['adam.m.', 'adam.v.', 'ema.']) expect(names.filter((k) => k.startsWith(prefix)).sort()).toEqual(Array.from({ length: n }, (_, i) => `${prefix}${i}`).sort());
    expect(names.filter((k) => k.startsWith('model.')).length).toBe(p.model.namedParameters().length);
    expect(names.length).toBe(p.model.namedParameters().length + 1 + 3 * n);
  });

  it('refuses to encode non-finite weights (TrainingRunError non-finite)', () => {
    const p = trained();
    const [, v] = p.proj.namedParameters()[0];
    v.assign(tf.tensor2d([[1, NaN, 3], [4, 5, 6]]));
    const encode = () => encodeDiffusionCheckpoint({ key: 'k', step: 3, model: p.model, modules: [{ prefix: 'align.', module: p.proj }], trainer: p.trainer, data: p.order.getState(), window: { n: 0, loss: 0, terms: {}, gradNorm: 0 }, backend: 'cpu', elapsedSeconds: 0, lastLoss: 0, what: 'the checkpoint /x' });
    expect(encode).toThrow(TrainingRunError);
    expect(encode).toThrow(/^training diverged at step 3: the checkpoint \/x was not written, the weights are not finite: tensor "projection.0.weight" has 1 of 6 values NaN or infinite/);
  });
});

describe('readDiffusionCheckpoint', () => {
  const encode = (state: Record<string, unknown>, format = DIFFUSION_CHECKPOINT_FORMAT) =>
    encodeSafetensors({ tensors: { 'model.w': { dtype: 'F32', shape: [1], data: new Float32Array([1]) } }, metadata: { format, state: JSON.stringify(state) } });
  const good = {
    format: DIFFUSION_CHECKPOINT_FORMAT, key: 'k', step: 2, trainer: { step: 2, generator: { s: [1, 2, 3, 4], spare: null }, optimizerStep: 2 },
    data: { gen: { s: [1, 2, 3, 4], spare: null }, perm: [0, 1], cursor: 1 }, window: { n: 0, loss: 0, terms: {}, gradNorm: 0 }, backend: 'cpu', unet: {}, elapsedSeconds: 0, lastLoss: 1,
  };

  it('returns the state and tensors of a good checkpoint', () => {
    const r = readDiffusionCheckpoint({ bytes: encode(good), path: '/r/checkpoint.safetensors', totalSteps: 4 });
    expect(r.state).toEqual(good);
    expect(Array.from(r.tensors['model.w'].data)).toEqual([1]);
  });

  it('names the file and the field of a damaged state, with the flag that starts over', () => {
    const read = (state: Record<string, unknown>, format?: string) => () => readDiffusionCheckpoint({ bytes: encode(state, format), path: '/r/c', totalSteps: 4, totalKey: 'diffusion.steps', flags: { force: '--force' } });
    expect(read(good, 'other/1')).toThrow('/r/c is not a fad-train-checkpoint/1 checkpoint (metadata.format "other/1"); use --force to start over');
    expect(read({ ...good, step: 5 })).toThrow('the training checkpoint /r/c: state.step is 5, expected at most diffusion.steps (4): the checkpoint is past the end of this run; the checkpoint is damaged or was edited (use --force to start over)');
    expect(read({ ...good, trainer: { ...good.trainer, generator: { s: [1] } } })).toThrow(/state.trainer.generator is .*, expected a generator state/);
    expect(read({ ...good, data: { ...good.data, cursor: 3 } })).toThrow(/state.data.cursor is 3, expected an integer in 0..2/);
    expect(read({ ...good, window: null })).toThrow(/state.window is null, expected the metrics window/);
    let err: unknown;
    try {
      read({ ...good, key: '' })();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TrainingRunError);
    expect((err as TrainingRunError).code).toBe('bad-checkpoint');
  });
});
