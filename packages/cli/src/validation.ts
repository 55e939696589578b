/**
 * Validation samples while training (`diffusion.validation`): every `every` steps, a fixed-seed
 * class grid (`sampleClassGrid` of @fad/diffusion-core; one row per class) from a copy of the
 * U-Net holding the EMA weights (the raw weights without EMA), written as
 * `validation/step-NNNNNN.png`, and one metrics.jsonl record
 * `{ step, validation: { file, weights, perClass: [{ class, mean, meanSd, contrast }], overall,
 * judge, judgeAccuracy, judgePerClass, seconds }, time }` (intensity from `intensityStatistics` of
 * @fad/metrics; judge accuracy from `generationAccuracy`). The training model, optimizer, EMA and
 * RNG streams are only read, so the trained weights are the same with and without validation.
 * With a TensorBoard writer, the record's numbers and the grid also go to the run's events file.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AutoencoderKL, type DiffusionTrainer, UNet2DConditional, type UNetConfig, sampleClassGrid, tileClassGrid } from '@fad/diffusion-core';
import { argMax } from '@fad/expert-models';
import { generationAccuracy, intensityStatistics } from '@fad/metrics';
import sharp from 'sharp';
import type { DiffusionSection } from './config';
import { CliError } from './errors';
import { type LoadedExpertModel, expertOutputs, loadExpertModel } from './expert';
import { makeScheduler, schedulerConfig } from './diffusion';
import { type TensorBoardWriter, validationScalars } from './tensorboard';

export type ValidationSettings = NonNullable<DiffusionSection['validation']>;

export interface ValidationRecord {
  step: number;
  validation: {
    /** The grid PNG, relative to the run folder. */
    file: string;
    weights: 'ema' | 'raw';
    seed: number;
    imagesPerClass: number;
    /** Per row: mean over the row's images of their mean pixel value, its sample sd, and mean contrast (sd of pixel values within an image). */
    perClass: Array<{ class: string; mean: number; meanSd: number | null; contrast: number }>;
    overall: { mean: number; contrast: number };
    /** The judge checkpoint, or null. */
    judge: string | null;
    /** Share of the grid's images (of classes the judge knows) that the judge assigns to their row's class; null without a judge. */
    judgeAccuracy: number | null;
    judgePerClass: Array<{ class: string; accuracy: number | null }> | null;
    /** Wall time of this validation (sampling, statistics, judge, PNG). */
    seconds: number;
  };
  time: string;
}

export interface ValidationParams {
  settings: ValidationSettings;
  diffusion: DiffusionSection;
  unetConfig: UNetConfig;
  classNames: string[];
  /** The run folder (grids go to `dir/validation/`). */
  dir: string;
  metricsPath: string;
  log: (m: string) => void;
  /** Latent diffusion: the frozen autoencoder; grids are decoded to pixels (not owned: the caller disposes it). */
  autoencoder?: AutoencoderKL;
  /** The run's TensorBoard writer (scalars and the grid image), or none. */
  tensorboard?: TensorBoardWriter | null;
}

/** True when `diffusion.validation` is present and on. */
export function validationEnabled(d: DiffusionSection): boolean {
  return d.validation !== undefined && d.validation.every > 0;
}

/** Writes a [H,W,C] image in [0,1] of any aspect ratio as PNG; returns the PNG bytes. */
async function writeImagePng(path: string, pixels: ArrayLike<number>, width: number, height: number, channels: number): Promise<Buffer> {
  const buf = Buffer.alloc(width * height * channels);
  for (let i = 0; i < buf.length; i++) buf[i] = Math.max(0, Math.min(255, Math.round(pixels[i] * 255)));
  const img = sharp(buf, { raw: { width, height, channels: channels as 1 | 3 } });
  const png = await (channels === 1 ? img.toColourspace('b-w') : img).png().toBuffer();
  writeFileSync(path, png);
  return png;
}

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** Samples and scores validation grids for one training run; `dispose()` frees its model copy and judge. */
export class TrainingValidation {
  private readonly copy: UNet2DConditional;
  private readonly judge: LoadedExpertModel | null;

  constructor(private readonly p: ValidationParams) {
    const s = p.settings;
    if (!(Number.isInteger(s.every) && s.every > 0)) throw new CliError(`diffusion.validation.every must be a positive integer to validate, got ${s.every}`);
    this.judge = s.judge ? loadExpertModel(s.judge) : null;
    if (this.judge) {
      const known = p.classNames.filter((c) => this.judge!.expert.classNames.includes(c));
      if (known.length === 0) {
        this.judge.expert.dispose();
        throw new CliError(`diffusion.validation.judge ${s.judge} knows none of the classes (${p.classNames.join(', ')}); its classes: ${this.judge.expert.classNames.join(', ')}`);
      }
    }
    // A separate copy: sampling never touches the training model's variables.
    this.copy = new UNet2DConditional(p.unetConfig, { seed: 0 });
  }

  /** True when a validation is due after training step `step` (every `every` steps). */
  due(step: number): boolean {
    return step % this.p.settings.every === 0;
  }

  /** Samples, scores and writes the grid of the weights after `step`, appends its record to metrics.jsonl and returns it. */

  async run(step: number, trainer: DiffusionTrainer, model: UNet2DConditional): Promise<ValidationRecord> {
    const t0 = performance.now();
    const { settings: s, classNames } = this.p;
    const targets = this.copy.trainableVariables();
    if (trainer.ema) trainer.copyEmaTo(targets);
    else {
      const source = model.trainableVariables();
      targets.forEach((t, i) => t.assign(source[i]));
    }
    const grid = await sampleClassGrid({
      model: this.copy,
      // In latent space x_0 is never clipped (latents are not in [-1, 1]).
      scheduler: makeScheduler(s.sampler, { ...schedulerConfig(this.p.diffusion), ...(this.p.autoencoder ? { clipSample: false } : {}) }),
      classLabels: classNames.map((_, i) => i),
      imagesPerClass: s.imagesPerClass,
      numInferenceSteps: s.steps,
      seed: s.seed,
      guidanceScale: s.guidanceScale,
      eta: s.eta,
      ...(this.p.autoencoder ? { autoencoder: this.p.autoencoder } : {}),
    });
    const pixels = grid.images.dataSync() as Float32Array;
    // The grid's pixel size (the decoded size in latent space).
    const [, size, , ch] = grid.images.shape;
    grid.images.dispose();
    const per = size * size * ch;
    const n = s.imagesPerClass;
    const perClass = classNames.map((c, r) => {
      const st = intensityStatistics({ images: { data: pixels.subarray(r * n * per, (r + 1) * n * per), shape: [n, size, size, ch] } });
      return { class: c, mean: st.mean.mean, meanSd: finiteOrNull(st.mean.sd), contrast: st.contrast.mean };
    });
    const all = intensityStatistics({ images: { data: pixels, shape: [grid.labels.length, size, size, ch] } });
    let judgeAccuracy: number | null = null;
    let judgePerClass: Array<{ class: string; accuracy: number | null }> | null = null;
    if (this.judge) {
      const names = this.judge.expert.classNames;
      const idx = grid.labels.map((l, i) => (names.includes(classNames[l]) ? i : -1)).filter((i) => i >= 0);
      const sub = new Float32Array(idx.length * per);
      idx.forEach((k, i) => sub.set(pixels.subarray(k * per, (k + 1) * per), i * per));
      const out = expertOutputs(this.judge.expert, sub, idx.length, size, ch);
      const intended = idx.map((k) => names.indexOf(classNames[grid.labels[k]]));
      const ga = generationAccuracy({ intended, predicted: out.logits.map(argMax), numClasses: names.length });
      judgeAccuracy = ga.overall;
      judgePerClass = classNames.map((c) => {
        const e = ga.perClass.find((x) => names[x.label] === c);
        return { class: c, accuracy: e ? finiteOrNull(e.accuracy) : null };
      });
    }
    const rel = join('validation', `step-${String(step).padStart(6, '0')}.png`);
    mkdirSync(join(this.p.dir, 'validation'), { recursive: true });
    const tiled = tileClassGrid({ data: pixels, rows: grid.rows, columns: grid.columns, height: size, width: size, channels: ch });
    const png = await writeImagePng(join(this.p.dir, rel), tiled, grid.columns * size, grid.rows * size, ch);
    const seconds = (performance.now() - t0) / 1000;
    const record: ValidationRecord = {
      step,
      validation: {
        file: rel,
        weights: trainer.ema ? 'ema' : 'raw',
        seed: s.seed,
        imagesPerClass: n,
        perClass,
        overall: { mean: all.mean.mean, contrast: all.contrast.mean },
        judge: s.judge,
        judgeAccuracy,
        judgePerClass,
        seconds,
      },
      time: new Date().toISOString(),
    };
    appendFileSync(this.p.metricsPath, `${JSON.stringify(record)}\n`);
    this.p.tensorboard?.addScalars({ step, scalars: validationScalars(record.validation) });
    this.p.tensorboard?.addImage({ tag: 'validation/grid', step, png, height: grid.rows * size, width: grid.columns * size, channels: ch as 1 | 3 });
    this.p.log(
      `fad: validation at step ${step} (${trainer.ema ? 'EMA' : 'raw'} weights, ${seconds.toFixed(1)} s): mean intensity ${perClass.map((c) => `${c.class} ${c.mean.toFixed(2)}`).join(', ')}` +
        (judgeAccuracy !== null ? `; judge accuracy ${(judgeAccuracy * 100).toFixed(1)}%` : '') +
        ` -> ${rel}`,
    );
    return record;
  }

  dispose(): void {
    this.copy.dispose();
    this.judge?.expert.dispose();
  }
}
