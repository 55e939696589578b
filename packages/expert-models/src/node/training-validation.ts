/**
 * Validation samples while a diffusion model trains (Node only: `@fad/expert-models/node`): every
 * `every` steps, a fixed-seed class grid (`sampleClassGrid` of @fad/diffusion-core; one row per
 * class) from a copy of the U-Net holding the EMA weights (the raw weights without EMA), written as
 * `validation/step-NNNNNN.png`, and one metrics.jsonl record
 * `{ step, validation: { file, weights, seed, imagesPerClass, perClass: [{ class, mean, meanSd,
 * contrast }], overall, judge, judgeAccuracy, judgePerClass, seconds }, time }` (intensity from
 * `intensityStatistics` of @fad/metrics; the judge's accuracy from `generationAccuracy`). The
 * training model, optimizer, EMA and RNG streams are only read, so the trained weights are the same
 * with and without validation. With a sink (a TensorBoard writer), the record's numbers and the grid
 * go there too. It lives here because the judge is an expert.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AutoencoderKL, type DiffusionTrainer, type NoiseScheduler, sampleClassGrid, tileClassGrid, UNet2DConditional, type UNetConfig } from '@fad/diffusion-core';
import { encodePng } from '@fad/diffusion-core/node';
import { generationAccuracy, intensityStatistics } from '@fad/metrics';
// The package's own main entry (see expert-files.ts).
import { argMax, type Expert, expertOutputs } from '@fad/expert-models';
import { assertObject, show } from '../validate';

/** What is sampled at each validation. */
export interface TrainingValidationSettings {
  /** Validate after every `every` training steps (>= 1). */
  every: number;
  /** Seed of the grid's own generator (the same noise at every validation). */
  seed: number;
  /** Columns of the grid. */
  imagesPerClass: number;
  /** Denoising steps per grid. */
  steps: number;
  /** Classifier-free guidance scale (1: conditional prediction only). */
  guidanceScale: number;
  /** DDIM eta. */
  eta: number;
}

/** One validation's record, as appended to metrics.jsonl. */
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
    /** The judge as the caller names it (its checkpoint path), or null. */
    judge: string | null;
    /** Share of the grid's images (of classes the judge knows) that the judge assigns to their row's class; null without a judge. */
    judgeAccuracy: number | null;
    judgePerClass: Array<{ class: string; accuracy: number | null }> | null;
    /** Wall time of this validation (sampling, statistics, judge, PNG). */
    seconds: number;
  };
  time: string;
}

/** Where the record's scalars and the grid image go (a `TensorBoardWriter` of @fad/metrics/node). */
export interface ValidationSink {
  addScalars(p: { step: number; scalars: Record<string, number | null> }): void;
  addImage?(p: { tag: string; step: number; png: Uint8Array; height: number; width: number; channels: 1 | 3 }): void;
}

/** Parameters of {@link TrainingValidation}. */
export interface TrainingValidationParams {
  settings: TrainingValidationSettings;
  /** The sampler of the grids (a fresh scheduler; in latent space one that does not clip x_0). */
  scheduler: NoiseScheduler;
  unetConfig: UNetConfig;
  classNames: string[];
  /** The run folder (grids go to `dir/validation/`). */
  dir: string;
  metricsPath: string;
  /** The judge (not owned: the caller disposes it) and its name in the record; it must know at least one of the classes. */
  judge?: { expert: Expert; name: string } | null;
  /** Latent diffusion: the frozen autoencoder; grids are decoded to pixels (not owned). */
  autoencoder?: AutoencoderKL;
  sink?: ValidationSink | null;
  log?: (message: string) => void;
}

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** The scalars of a validation record (`validation/overall/mean`, `validation/mean/<class>`, `validation/judgeAccuracy`, ...). */
export function validationScalars(v: Pick<ValidationRecord['validation'], 'perClass' | 'overall' | 'judgeAccuracy' | 'judgePerClass'>): Record<string, number | null> {
  const out: Record<string, number | null> = { 'validation/overall/mean': v.overall.mean, 'validation/overall/contrast': v.overall.contrast };
  for (const c of v.perClass) {
    out[`validation/mean/${c.class}`] = c.mean;
    out[`validation/contrast/${c.class}`] = c.contrast;
  }
  if (v.judgeAccuracy !== null) out['validation/judgeAccuracy'] = v.judgeAccuracy;
  for (const c of v.judgePerClass ?? []) out[`validation/judgeAccuracy/${c.class}`] = c.accuracy;
  return out;
}

/** Samples and scores validation grids for one training run; `dispose()` frees its model copy. */
export class TrainingValidation {
  private readonly copy: UNet2DConditional;

  constructor(private readonly p: TrainingValidationParams) {
    const fn = 'TrainingValidation';
    assertObject(fn, 'params', p);
    assertObject(fn, 'settings', p.settings);
    const s = p.settings;
    for (const k of ['every', 'imagesPerClass', 'steps'] as const) if (!(Number.isInteger(s[k]) && s[k] >= 1)) throw new RangeError(`${fn}: settings.${k} must be an integer >= 1, got ${show(s[k])}`);
    if (!Array.isArray(p.classNames) || p.classNames.length === 0) throw new TypeError(`${fn}: classNames must be a non-empty list, got ${show(p.classNames)}`);
    if (!p.scheduler || typeof (p.scheduler as { step?: unknown }).step !== 'function') throw new TypeError(`${fn}: scheduler must be a noise scheduler, got ${show(p.scheduler)}`);
    if (p.judge && !p.classNames.some((c) => p.judge!.expert.classNames.includes(c))) {
      throw new RangeError(`${fn}: the judge ${p.judge.name} knows none of the classes (${p.classNames.join(', ')}); its classes: ${p.judge.expert.classNames.join(', ')}`);
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
      scheduler: this.p.scheduler,
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
    const judge = this.p.judge;
    if (judge) {
      const names = judge.expert.classNames;
      const idx = grid.labels.map((l, i) => (names.includes(classNames[l]) ? i : -1)).filter((i) => i >= 0);
      const sub = new Float32Array(idx.length * per);
      idx.forEach((k, i) => sub.set(pixels.subarray(k * per, (k + 1) * per), i * per));
      const out = expertOutputs({ expert: judge.expert, images: sub, n: idx.length, size, channels: ch });
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
    const png = await encodePng({ pixels: tiled, width: grid.columns * size, height: grid.rows * size, channels: ch as 1 | 3 });
    writeFileSync(join(this.p.dir, rel), png);
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
        judge: judge?.name ?? null,
        judgeAccuracy,
        judgePerClass,
        seconds,
      },
      time: new Date().toISOString(),
    };
    appendFileSync(this.p.metricsPath, `${JSON.stringify(record)}\n`);
    this.p.sink?.addScalars({ step, scalars: validationScalars(record.validation) });
    this.p.sink?.addImage?.({ tag: 'validation/grid', step, png, height: grid.rows * size, width: grid.columns * size, channels: ch as 1 | 3 });
    this.p.log?.(
      `fad: validation at step ${step} (${trainer.ema ? 'EMA' : 'raw'} weights, ${seconds.toFixed(1)} s): mean intensity ${perClass.map((c) => `${c.class} ${c.mean.toFixed(2)}`).join(', ')}` +
        (judgeAccuracy !== null ? `; judge accuracy ${(judgeAccuracy * 100).toFixed(1)}%` : '') +
        ` -> ${rel}`,
    );
    return record;
  }

  dispose(): void {
    this.copy.dispose();
  }
}
