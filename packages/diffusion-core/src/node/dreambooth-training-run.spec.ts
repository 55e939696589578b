import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { deserializeUNet, serializeUNet } from '../io/unet-io';
import { decodeSafetensors } from '../io/safetensors';
import { sampleImages } from '../pipeline/sample';
import { Generator } from '../random';
import { DDIMScheduler, DDPMScheduler } from '../schedulers';
import { Gain, gainObjective } from '../testing/gain-objective';
import { expectDerivedKeys, runFixtures } from '../testing/run-fixtures';
import { useCpuBackend } from '../testing/setup-cpu';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { DREAMBOOTH_CLASS_IMAGES_FORMAT } from './dreambooth-class-images';
import { chooseInstances } from './dreambooth-instances';
import { DREAMBOOTH_RUN_FILES, prepareDreamBoothRun, type TrainDreamBoothRunParams, trainDreamBoothRun } from './dreambooth-training-run';
import { ResumableStepError } from './resumable-step';
import { TrainingRunError } from './training-run-error';

beforeAll(useCpuBackend);

/** A small, attention-free U-Net at 8x8, one channel, 3 classes. */
const small = { ...UNET_PRESETS.tiny, sampleSize: 8, inChannels: 1, outChannels: 1, numClasses: 3, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };
const classNames = ['stripes', 'rings', 'checker'];

/** Nine smooth 8x8 grayscale images in [0, 1], three per class. */
function images(): { images: Float32Array; labels: Int32Array; imageSize: number; channels: number } {
  const s = 8;
  const d = new Float32Array(9 * s * s);
  for (let n = 0; n < 9; n++) for (let i = 0; i < s * s; i++) d[n * s * s + i] = 0.5 + 0.4 * Math.sin((n + 1) * (i % s) * 0.7 + Math.floor(i / s) * 0.3);
  return { images: d, labels: Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1, 2]), imageSize: s, channels: 1 };
}

const { tmp, keep } = runFixtures('fad-db-run-');

const prior = () => ({ count: 3, scheduler: new DDIMScheduler({}), sampler: 'ddim', steps: 2, guidanceScale: 3, eta: 0, batchSize: 2 });

/** Params of a 3-step run on "rings" (2 of its 3 images) with prior preservation, EMA and an extra objective; a fresh model each call. */
function params(dir: string, over: Partial<TrainDreamBoothRunParams> = {}): TrainDreamBoothRunParams {
  const model = new UNet2DConditional(small, { seed: 1 });
  const gain = new Gain();
  keep(model, gain);
  return {
    model, scheduler: new DDPMScheduler({}), data: images(), classLabel: 1, classNames, token: 'sks', instanceImages: 2, seed: 0, steps: 3, batchSize: 2,
    trainer: { optimizer: { learningRate: 1e-3 }, emaDecay: 0.9, priorLossWeight: 0.5 },
    objectives: [gainObjective(gain)], modules: [gain], prior: prior(), modelSha256: 'p', hflip: true,
    dir, key: 'k1', logEvery: 1, backend: 'cpu',
    ...over,
  };
}

const lines = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

describe('chooseInstances', () => {
  it('chooses the same rows as earlier fad versions (pinned), all of the class, sorted', () => {
    const labels = Int32Array.from({ length: 30 }, (_, i) => i % 3);
    expect(chooseInstances({ labels, indices: Array.from({ length: 30 }, (_, i) => i), classLabel: 1, count: 4, seed: 3 })).toEqual([1, 4, 13, 25]);
    expect(chooseInstances({ labels, indices: Array.from({ length: 20 }, (_, i) => i + 5), classLabel: 2, count: 3, seed: 11 })).toEqual([14, 17, 23]);
  });

  it('is a TrainingRunError too-few-images when the class has fewer images', () => {
    let err: unknown;
    try {
      chooseInstances({ labels: [0, 1, 1, 0], indices: [0, 1, 2, 3], classLabel: 1, count: 3, seed: 0, className: 'rings' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TrainingRunError);
    expect(err).toMatchObject({ code: 'too-few-images', details: { className: 'rings', requested: 3, available: 2 } });
    expect(() => chooseInstances({ labels: [0], indices: [1], classLabel: 0, count: 1, seed: 0 })).toThrow(/chooseInstances: indices must be a list of rows in 0..0/);
  });
});

describe('trainDreamBoothRun', () => {
  it('fine-tunes a copy with the token on the chosen instances and sampled class images, then reuses the folder', async () => {
    const dir = tmp();
    const p = params(dir);
    const pretrained = serializeUNet(p.model);
    const starts: unknown[] = [];
    const progress: number[] = [];
    const r = await trainDreamBoothRun({ ...p, onStart: (s) => starts.push(s), onClassImages: ({ done }) => progress.push(done) });
    expect(r).toMatchObject({ status: 'finished', key: 'k1', steps: 3, tokenLabel: 4, instances: [1, 4] });
    // The caller's model is not changed.
    expect(Buffer.compare(Buffer.from(serializeUNet(p.model)), Buffer.from(pretrained))).toBe(0);
    expect(starts).toEqual([{ instances: [1, 4], tokenLabel: 4, priorImages: 3 }]);
    expect(progress).toEqual([0, 2, 3]);
    expect(JSON.parse(readFileSync(join(dir, 'instances.json'), 'utf8'))).toEqual({ class: 'rings', token: 'sks', indices: [1, 4], seed: 0 });
    expect(lines(dir).map((l) => l.step)).toEqual([1, 2, 3]);
    expect(Object.keys(lines(dir)[0].terms).sort()).toEqual(['diffusion', 'diffusion.instance', 'diffusion.prior', 'gain.fit']);

    // The model file: the token from "rings", the EMA weights; with trainEmbeddings "token" the class embeddings stay the pretrained ones.
    const bytes = new Uint8Array(readFileSync(join(dir, 'model.safetensors')));
    const { metadata, tensors } = decodeSafetensors(bytes);
    expect(JSON.parse(metadata.config).conditioningTokens).toEqual([{ name: 'sks', fromClass: 1 }]);
    expect(metadata).toMatchObject({ classes: JSON.stringify(classNames), steps: '3', weights: 'ema', backend: 'cpu', key: 'k1', 'fad.status': 'complete' });
    expect(JSON.parse(metadata.dreambooth)).toEqual({ class: 'rings', classLabel: 1, token: 'sks', tokenLabel: 4 });
    expect(Array.from(tensors['class_emb.weight'].data as Float32Array)).toEqual(Array.from(p.model.conditioningEmbeddings().classes!.dataSync()));
    const loaded = deserializeUNet(bytes).model;
    keep(loaded);
    const done = JSON.parse(readFileSync(join(dir, 'complete.json'), 'utf8'));
    expect(Object.keys(done)).toEqual(['step', 'key', 'steps', 'finalLoss', 'backend', 'modelSha256', 'elapsedSeconds', 'finishedAt']);
    expect(done).toMatchObject({ step: 'train-dreambooth', key: 'k1', steps: 3, finalLoss: r.status === 'finished' ? r.finalLoss : NaN });

    // The class images: sampled from the pretrained model on "rings" with Generator(seed + 7), cached with the key of earlier fad versions.
    const f = decodeSafetensors(new Uint8Array(readFileSync(join(dir, DREAMBOOTH_RUN_FILES.classImages))));
    expect(f.metadata).toEqual({ format: DREAMBOOTH_CLASS_IMAGES_FORMAT, key: 'e21ed6f5d953d5de', class: 'rings', range: '[0, 1]' });
    expect(DREAMBOOTH_CLASS_IMAGES_FORMAT).toBe('fad-dreambooth-class-images/1');
    const g = new Generator(7);
    const want: number[] = [];
    for (const n of [2, 1]) {
      const x = await sampleImages({ model: p.model, scheduler: new DDIMScheduler({}), classLabels: new Array(n).fill(1), numInferenceSteps: 2, guidanceScale: 3, eta: 0, generator: g });
      want.push(...x.dataSync());
      x.dispose();
    }
    expect(f.tensors.images.shape).toEqual([3, 8, 8, 1]);
    expect(Array.from(f.tensors.images.data as Float32Array)).toEqual(want);

    // The same key again: reused without training; another run with the same cache path reuses the class images.
    const logs: string[] = [];
    expect(await trainDreamBoothRun(params(dir, { onLog: (m) => logs.push(m) }))).toMatchObject({ status: 'reused', finalLoss: r.status === 'finished' ? r.finalLoss : NaN });
    const other = tmp();
    const progress2: number[] = [];
    await trainDreamBoothRun(params(other, { steps: 1, prior: { ...prior(), path: join(dir, DREAMBOOTH_RUN_FILES.classImages) }, onLog: (m) => logs.push(m), onClassImages: ({ done }) => progress2.push(done) }));
    expect(logs).toEqual([`${dir} is already fine-tuned with this key (k1); reusing it`, `dreambooth: reusing 3 class images from ${join(dir, DREAMBOOTH_RUN_FILES.classImages)}`]);
    expect(progress2).toEqual([]);
    expect(existsSync(join(other, DREAMBOOTH_RUN_FILES.classImages))).toBe(false);
  }, 120_000);

  it('an aborted signal ends the run (during the class images or after a step) with nothing written; the next run starts over', async () => {
    const dir = tmp();
    const signal = { aborted: false };
    await expectDerivedKeys((other) => trainDreamBoothRun(params(tmp(), { key: undefined, modelSha256: undefined, prior: null, steps: 1, token: other ? 'zz' : 'sks' })));
  }, 60_000);

  it('validates every param up front, naming the field', async () => {
    const dir = tmp();
    const cases: Array<[Partial<TrainDreamBoothRunParams>, RegExp]> = [
      [{ steps: 0 }, /trainDreamBoothRun: steps must be an integer >= 1, got 0/],
      [{ instanceImages: 0 }, /trainDreamBoothRun: instanceImages must be an integer >= 1/],
      [{ classLabel: 3 }, /trainDreamBoothRun: classLabel must be a class of the model, in 0..2, got 3/],
      [{ data: { ...images(), imageSize: 4, images: new Float32Array(9 * 16) } }, /trainDreamBoothRun: data.imageSize must be 8 \(model.config.sampleSize\)/],
      [{ classNames: ['a'] }, /trainDreamBoothRun: classNames must be one name per class of the model \(3\)/],
      [{ token: '' }, /trainDreamBoothRun: token must be a non-empty string/],
      [{ prior: { ...prior(), count: 0 } }, /trainDreamBoothRun: prior.count must be an integer >= 1/],
      [{ prior: { ...prior(), scheduler: {} as never } }, /trainDreamBoothRun: prior.scheduler must be a noise scheduler/],
      [{ dir: '' }, /trainDreamBoothRun: dir must be a non-empty string/],
      [{ sink: {} as never }, /trainDreamBoothRun: sink must be an object with addScalars/],
      [{ model: {} as never }, /trainDreamBoothRun: model must be a UNet2DConditional/],
    ];
    for (const [over, msg] of cases) {
      await expect(trainDreamBoothRun(params(dir, over))).rejects.toThrow(msg);
    }
    expect(existsSync(join(dir, 'instances.json'))).toBe(false);
  }, 60_000);
});
