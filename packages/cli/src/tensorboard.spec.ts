/**
 * TensorBoard logs of the training commands: `fad train` (in a child process) writes an events
 * file beside metrics.jsonl with the loss at the logged steps, and none with `--report-to none`;
 * in process, the validation grids go in as images (the PNG files' bytes), a resumed run opens a
 * new file starting with a session start after its checkpoint, a fresh run removes the old files,
 * and `fad autoencoder train`, `fad expert train` and DreamBooth (`fad train --dreambooth`) log
 * their scalars. Every file is read back
 * with a reader written apart from the writer, which checks every record's CRCs.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { UNET_PRESETS, UNet2DConditional, serializeUNet } from '@fad/diffusion-core';
import { trainAutoencoder } from './autoencoder';
import { parseConfig } from './config';
import { effectiveConfig, loadDataAndSplit, makeLogger, parseReportTo } from './context';
import { writeDemoData } from './demo';
import { InterruptedError } from './errors';
import { type TrainingData, trainDiffusion } from './diffusion';
import { trainDreamBooth } from './dreambooth';
import { trainExpertJob } from './expert';
import { type ReadEvent, readTfEvents } from '@fad/test-utils/tfevents-reader';
import { runFad } from './testing/run-fad';

const root = mkdtempSync(join(tmpdir(), 'fad-tensorboard-'));
const eventFiles = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('events.out.tfevents.')).sort();
const eventsIn = (dir: string, name: string): ReadEvent[] => readTfEvents(new Uint8Array(readFileSync(join(dir, name))));
const metrics = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
/** tag -> [[step, value]] over the events. */
function scalars(events: ReadEvent[]): Record<string, Array<[number, number]>> {
  const out: Record<string, Array<[number, number]>> = {};
  for (const e of events) for (const v of e.values) if (v.simpleValue !== undefined) (out[v.tag] ??= []).push([e.step, v.simpleValue]);
  return out;
}

beforeAll(async () => {
  tf.env().set('IS_TEST', true);
  await tf.setBackend('cpu');
});

describe('run.reportTo / --report-to', () => {
  it('defaults to tensorboard; none turns it off; other values are rejected', () => {
    expect(effectiveConfig({}).run.reportTo).toEqual(['tensorboard']);
    expect(effectiveConfig({ reportTo: 'none' }).run.reportTo).toEqual([]);
    expect(effectiveConfig({ reportTo: 'tensorboard' }).run.reportTo).toEqual(['tensorboard']);
    expect(parseReportTo(' tensorboard , ')).toEqual(['tensorboard']);
    expect(() => parseReportTo('none,tensorboard')).toThrow(/--report-to expects none or a comma-separated list of: tensorboard/);
    expect(() => effectiveConfig({ reportTo: 'wandb' })).toThrow(/run\.reportTo/);
  });
});

describe('fad train (child process)', () => {
  const data = join(root, 'data');
  const config = join(root, 'config.yaml');
  const train = (out: string, extra: string[] = []) => ['--config', config, '--backend', 'cpu', ...extra, 'train', '--data', data, '--out', out];

  beforeAll(async () => {
    await writeDemoData(data, 8, 6);
    writeFileSync(config, [
      'data: { imageSize: 8, validationFraction: 0.25 }',
      'diffusion:',
      '  unet: { preset: tiny, overrides: { blockChannels: [8, 16], normGroups: 4 } }',
      '  steps: 6',
      '  batchSize: 4',
      '  warmupSteps: 1',
      '  checkpointEvery: 100',
      '  logEvery: 2',
      '',
    ].join('\n'));
  }, 60_000);

  it('writes an events file beside metrics.jsonl with the loss, lr and grad norm at the logged steps', async () => {
    const out = join(root, 'train');
    const r = await runFad(train(out));
    expect(r.code, r.stderr).toBe(0);
    const files = eventFiles(out);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^events\.out\.tfevents\.\d{10}\.[^.]+.*\.\d+$/);
    const events = eventsIn(out, files[0]);
    expect(events[0]).toMatchObject({ step: 0, fileVersion: 'brain.Event:2' });
    const s = scalars(events);
    const lines = metrics(out);
    expect(lines.map((l) => l.step)).toEqual([2, 4, 6]);
    expect(s['train/loss']).toEqual(lines.map((l) => [l.step, Math.fround(l.loss)]));
    expect(s['train/lr']).toEqual(lines.map((l) => [l.step, Math.fround(l.lr)]));
    expect(s['train/gradNorm']).toEqual(lines.map((l) => [l.step, Math.fround(l.gradNorm)]));
    expect(Object.keys(s).filter((t) => t.startsWith('train/terms/'))).toEqual(Object.keys(lines[0].terms).map((k) => `train/terms/${k}`));
  }, 120_000);

  it('--report-to none writes no events file (and metrics.jsonl as before)', async () => {
    const out = join(root, 'train-none');
    const r = await runFad(train(out, ['--report-to', 'none']));
    expect(r.code, r.stderr).toBe(0);
    expect(eventFiles(out)).toEqual([]);
    expect(metrics(out).map((l) => l.step)).toEqual([2, 4, 6]);
  }, 120_000);
});

describe('fad train in process: validation grids, resume, fresh runs', () => {
  const S = 8;
  const classNames = ['dark', 'mid', 'bright'];
  function tinyData(): TrainingData {
    const n = 12;
    const images = new Float32Array(n * S * S);
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i % 3;
      for (let k = 0; k < S * S; k++) images[i * S * S + k] = Math.min(1, 0.1 + 0.4 * labels[i] + 0.05 * Math.sin(k + i));
    }
    return { images, labels, imageSize: S, channels: 1, indices: Array.from({ length: n }, (_, i) => i), classNames, fingerprint: 'tiny' };
  }
  const cfg = parseConfig({
    data: { imageSize: S, channels: 1 },
    diffusion: {
      unet: { preset: 'tiny', overrides: { blockChannels: [8, 16], normGroups: 4, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' } },
      steps: 4, batchSize: 4, learningRate: 0.002, warmupSteps: 1, checkpointEvery: 100, logEvery: 1, emaDecay: 0.9,
      validation: { every: 2, seed: 5, imagesPerClass: 2, steps: 2, sampler: 'ddim', guidanceScale: 1 },
    },
  });
  const job = (dir: string, extra: Record<string, unknown> = {}) => trainDiffusion({ cfg, data: tinyData(), dir, resume: false, backend: 'cpu', log: () => {}, quiet: true, ...extra });

  it('logs the validation numbers and grids; a resume opens a new file with a session start after the checkpoint', async () => {
    const dir = join(root, 'val');
    const before = tf.memory().numTensors;
    await expect(job(dir, { stopAfterStep: 3 })).rejects.toBeInstanceOf(InterruptedError);
    const first = eventFiles(dir);
    expect(first).toHaveLength(1);
    await job(dir, { resume: true });
    expect(tf.memory().numTensors).toBe(before);
    const files = eventFiles(dir);
    expect(files).toHaveLength(2);
    const [a, b] = [eventsIn(dir, first[0]), eventsIn(dir, files.find((f) => f !== first[0])!)];
    expect(scalars(a)['train/loss'].map(([st]) => st)).toEqual([1, 2, 3]);
    // Each file: file version, session start (0 for the first process; 4, after the checkpoint at step 3, for the second).
    expect(a[1]).toMatchObject({ step: 0, sessionLogStatus: 1 });
    expect(b[0].fileVersion).toBe('brain.Event:2');
    expect(b[1]).toMatchObject({ step: 4, sessionLogStatus: 1 });
    expect(scalars(b)['train/loss'].map(([st]) => st)).toEqual([4]);

    // Validation at steps 2 (first process) and 4 (second): scalars as in metrics.jsonl, the grid PNG as written.
    const records = metrics(dir).filter((l) => l.validation);
    expect(records.map((r) => r.step)).toEqual([2, 4]);
    for (const [events, rec] of [[a, records[0]], [b, records[1]]] as const) {
      const s = scalars(events);
      for (const c of rec.validation.perClass) {
        expect(s[`validation/mean/${c.class}`]).toEqual([[rec.step, Math.fround(c.mean)]]);
        expect(s[`validation/contrast/${c.class}`]).toEqual([[rec.step, Math.fround(c.contrast)]]);
      }
      expect(s['validation/overall/mean']).toEqual([[rec.step, Math.fround(rec.validation.overall.mean)]]);
      expect(s['validation/judgeAccuracy']).toBeUndefined(); // no judge
      const images = events.flatMap((e) => e.values.filter((v) => v.image).map((v) => ({ step: e.step, tag: v.tag, image: v.image! })));
      expect(images).toHaveLength(1);
      expect(images[0].step).toBe(rec.step);
      expect(images[0].tag).toBe('validation/grid');
      // 3 classes (rows) x 2 images (columns) of 8x8 grey pixels.
      expect(images[0].image).toMatchObject({ height: 3 * S, width: 2 * S, colorspace: 1 });
      expect(Buffer.from(images[0].image.encoded).equals(readFileSync(join(dir, rec.validation.file)))).toBe(true);
    }

    // A fresh start (--force) removes the old events files with metrics.jsonl.
    await job(dir, { force: true });
    const fresh = eventFiles(dir);
    expect(fresh).toHaveLength(1);
    expect(eventsIn(dir, fresh[0])[1]).toMatchObject({ step: 0, sessionLogStatus: 1 }); // a fresh run's session start (the name may repeat an old one's)
    expect(scalars(eventsIn(dir, fresh[0]))['train/loss'].map(([st]) => st)).toEqual([1, 2, 3, 4]);
  }, 120_000);
});

describe('fad autoencoder train and fad expert train', () => {
  const dataDir = join(root, 'data16');
  beforeAll(async () => {
    await writeDemoData(dataDir, 16, 4);
  }, 60_000);

  it('the autoencoder logs its loss terms at the logged steps', async () => {
    const cfg = parseConfig({
      data: { dir: dataDir, imageSize: 16, validationFraction: 0.25 },
      autoencoder: { preset: 'tiny', overrides: { blockChannels: [8, 8], latentChannels: 2 }, steps: 3, batchSize: 4, warmupSteps: 1, checkpointEvery: 100, logEvery: 1, scalingImages: 4 },
    });
    const log = makeLogger(true);
    const dir = join(root, 'ae');
    const { dataset, split } = await loadDataAndSplit(cfg, log, dir);
    await trainAutoencoder({
      cfg, data: { images: dataset.images, labels: dataset.labels, imageSize: 16, channels: 1, indices: split.train, classNames: dataset.classNames, fingerprint: dataset.fingerprint },
      validation: split.validation, dir, resume: false, backend: 'cpu', log: log.info, quiet: true,
    });
    const files = eventFiles(dir);
    expect(files).toHaveLength(1);
    const s = scalars(eventsIn(dir, files[0]));
    const lines = metrics(dir);
    expect(s['train/loss']).toEqual(lines.map((l) => [l.step, Math.fround(l.loss)]));
    for (const term of ['l1', 'ssim', 'kl']) expect(s[`train/terms/${term}`]).toEqual(lines.map((l) => [l.step, Math.fround(l.terms[term])]));
  }, 120_000);

  it('the expert logs loss, accuracies and lr per epoch at its global step', async () => {
    const cfg = effectiveConfig({}, { 'data.dir': dataDir, 'data.imageSize': 16, 'data.validationFraction': 0.25, 'expert.preset': 'resnet18-kather', 'expert.architecture': { layers: [1, 1], baseWidth: 4 }, 'expert.epochs': 2, 'expert.batchSize': 4, 'expert.augment': false });
    const log = makeLogger(true);
    const dir = join(root, 'expert');
    const { dataset, split } = await loadDataAndSplit(cfg, log, dir);
    await trainExpertJob({
      cfg, images: dataset.images, labels: dataset.labels, imageSize: dataset.imageSize, channels: dataset.channels, classNames: dataset.classNames,
      train: split.train, validation: split.validation, fingerprint: dataset.fingerprint, dir, log: log.info, quiet: true, backend: 'cpu', resume: false,
    });
    const files = eventFiles(dir);
    expect(files).toHaveLength(1);
    const s = scalars(eventsIn(dir, files[0]));
    const lines = metrics(dir);
    expect(lines.map((l) => l.epoch)).toEqual([1, 2]);
    expect(s['train/loss']).toEqual(lines.map((l) => [l.step, Math.fround(l.loss)]));
    expect(s['train/accuracy']).toEqual(lines.map((l) => [l.step, Math.fround(l.trainAccuracy)]));
    expect(s['validation/accuracy']).toEqual(lines.map((l) => [l.step, Math.fround(l.validationAccuracy)]));
    expect(s['validation/loss']).toEqual(lines.map((l) => [l.step, Math.fround(l.validationLoss)]));
    expect(s['train/epoch']).toEqual(lines.map((l) => [l.step, l.epoch]));
    expect(existsSync(join(dir, 'expert.safetensors'))).toBe(true);
  }, 120_000);
});

describe('DreamBooth (fad train --dreambooth)', () => {
  const dataDir = join(root, 'data-db');
  const pretrained = join(root, 'db-pretrained.safetensors');
  beforeAll(async () => {
    await writeDemoData(dataDir, 8, 4);
  }, 60_000);
  /** A DreamBooth job on "rings" without prior preservation, fine-tuning a fresh tiny U-Net. */
  async function dreamBoothJob(p: { dir: string; steps: number; logEvery: number; reportTo?: string[] }) {
    const cfg = parseConfig({
      ...(p.reportTo ? { run: { reportTo: p.reportTo } } : {}),
      data: { dir: dataDir, imageSize: 8, validationFraction: 0.25 },
      dreambooth: { class: 'rings', steps: p.steps, batchSize: 2, instanceImages: 2, withPriorPreservation: false, logEvery: p.logEvery, learningRate: 1e-3 },
    });
    const log = makeLogger(true);
    const { dataset, split } = await loadDataAndSplit(cfg, log, p.dir);
    if (!existsSync(pretrained)) {
      const unet = new UNet2DConditional({ ...UNET_PRESETS.tiny, sampleSize: 8, numClasses: dataset.classNames.length, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' }, { seed: 1 });
      writeFileSync(pretrained, serializeUNet(unet, { classes: JSON.stringify(dataset.classNames) }));
      unet.dispose();
    }
    const data: TrainingData = { images: dataset.images, labels: dataset.labels, imageSize: 8, channels: 1, indices: split.train, classNames: dataset.classNames, fingerprint: dataset.fingerprint };
    return { cfg, data, pretrained, dir: p.dir, backend: 'cpu', log: log.info, quiet: true };
  }

  it('logs its loss terms at the logged steps like fad train; a fresh run replaces the old events file', async () => {
    const dir = join(root, 'db');
    const job = await dreamBoothJob({ dir, steps: 3, logEvery: 2 });
    await trainDreamBooth(job);
    const files = eventFiles(dir);
    expect(files).toHaveLength(1);
    const s = scalars(eventsIn(dir, files[0]));
    const lines = metrics(dir);
    expect(lines.map((l) => l.step)).toEqual([2, 3]);
    expect(s['train/loss']).toEqual(lines.map((l) => [l.step, Math.fround(l.loss)]));
    expect(s['train/lr']).toEqual(lines.map((l) => [l.step, Math.fround(l.lr)]));
    expect(s['train/gradNorm']).toEqual(lines.map((l) => [l.step, Math.fround(l.gradNorm)]));
    const terms = Object.keys(lines[0].terms);
    expect(terms).toContain('diffusion');
    for (const term of terms) expect(s[`train/terms/${term}`]).toEqual(lines.map((l) => [l.step, Math.fround(l.terms[term])]));
    // Started over (--force): one events file again, not two.
    await new Promise((r) => setTimeout(r, 1100)); // another second in the events file name
    await trainDreamBooth({ ...job, force: true });
    expect(eventFiles(dir)).toHaveLength(1);
    expect(eventFiles(dir)[0]).not.toBe(files[0]);
  }, 120_000);

  it('--report-to none: metrics.jsonl only', async () => {
    const dir = join(root, 'db-none');
    await trainDreamBooth(await dreamBoothJob({ dir, steps: 2, logEvery: 1, reportTo: [] }));
    expect(eventFiles(dir)).toEqual([]);
    expect(metrics(dir).map((l) => l.step)).toEqual([1, 2]);
  }, 120_000);
});
