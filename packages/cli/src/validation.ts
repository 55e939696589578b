/**
 * Validation samples while training (`diffusion.validation`): wiring of expert-models'
 * `TrainingValidation` (see its file for the grid, the metrics record and the TensorBoard scalars).
 * Here the config becomes its settings and sampler, and the judge checkpoint is loaded (and
 * disposed) for it.
 */
import type { AutoencoderKL, DiffusionTrainer, UNet2DConditional, UNetConfig } from '@fad/diffusion-core';
import { TrainingValidation as LibraryTrainingValidation, type ValidationRecord } from '@fad/expert-models/node';
import type { DiffusionSection } from './config';
import { CliError } from './errors';
import { type LoadedExpertModel, loadExpertModel } from './expert';
import { makeScheduler, schedulerConfig } from './diffusion';
import type { TensorBoardWriter } from './tensorboard';

export type { ValidationRecord };
export type ValidationSettings = NonNullable<DiffusionSection['validation']>;

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

/** The library's validation with the config's settings and the loaded judge; `dispose()` frees both. */
export class TrainingValidation {
  private readonly judge: LoadedExpertModel | null;
  private readonly inner: LibraryTrainingValidation;

  constructor(p: ValidationParams) {
    const s = p.settings;
    if (!(Number.isInteger(s.every) && s.every > 0)) throw new CliError(`diffusion.validation.every must be a positive integer to validate, got ${s.every}`);
    this.judge = s.judge ? loadExpertModel(s.judge) : null;
    if (this.judge && !p.classNames.some((c) => this.judge!.expert.classNames.includes(c))) {
      this.judge.expert.dispose();
      throw new CliError(`diffusion.validation.judge ${s.judge} knows none of the classes (${p.classNames.join(', ')}); its classes: ${this.judge.expert.classNames.join(', ')}`);
    }
    try {
      this.inner = new LibraryTrainingValidation({
        settings: { every: s.every, seed: s.seed, imagesPerClass: s.imagesPerClass, steps: s.steps, guidanceScale: s.guidanceScale, eta: s.eta },
        // In latent space x_0 is never clipped (latents are not in [-1, 1]).
        scheduler: makeScheduler(s.sampler, { ...schedulerConfig(p.diffusion), ...(p.autoencoder ? { clipSample: false } : {}) }),
        unetConfig: p.unetConfig,
        classNames: p.classNames,
        dir: p.dir,
        metricsPath: p.metricsPath,
        judge: this.judge && s.judge ? { expert: this.judge.expert, name: s.judge } : null,
        ...(p.autoencoder ? { autoencoder: p.autoencoder } : {}),
        sink: p.tensorboard ?? null,
        log: p.log,
      });
    } catch (e) {
      this.judge?.expert.dispose();
      throw e;
    }
  }

  /** True when a validation is due after training step `step`. */
  due(step: number): boolean {
    return this.inner.due(step);
  }

  /** Samples, scores and writes the grid of the weights after `step` (see the library). */
  run(step: number, trainer: DiffusionTrainer, model: UNet2DConditional): Promise<ValidationRecord> {
    return this.inner.run(step, trainer, model);
  }

  dispose(): void {
    this.inner.dispose();
    this.judge?.expert.dispose();
  }
}
