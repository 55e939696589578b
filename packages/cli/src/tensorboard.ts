/**
 * TensorBoard logs of the training commands (`run.reportTo: [tensorboard]`, the default;
 * `--report-to none` turns them off): an events file (`TensorBoardWriter` of `@fad/metrics/node`)
 * beside metrics.jsonl holding the same numbers, and the validation grids as images.
 *
 * Tags: `train/loss`, `train/lr`, `train/gradNorm`, `train/terms/<term>` (diffusion, DreamBooth
 * and autoencoder); `train/loss`, `train/accuracy`, `train/lr`, `train/epoch`, `validation/loss`,
 * `validation/accuracy` (expert); `validation/mean/<class>`, `validation/contrast/<class>`,
 * `validation/overall/mean`, `validation/overall/contrast`, `validation/judgeAccuracy[/<class>]`
 * and the image `validation/grid` (diffusion.validation).
 *
 * A fresh run removes the folder's old events files (as it removes metrics.jsonl); a resumed run
 * opens a new one whose session start makes TensorBoard drop the old points after the checkpoint.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TensorBoardWriter, isTfEventsFileName } from '@fad/metrics/node';
import type { FadConfig } from './config';

export type { TensorBoardWriter };

/** Removes the events files directly in `dir` (a run started over). */
export function removeTfEvents(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) if (isTfEventsFileName(n)) rmSync(join(dir, n), { force: true });
}

/**
 * Opens the run's TensorBoard writer, or null when `run.reportTo` leaves TensorBoard out.
 * `resumeStep`: the step the run resumes after, or null for a fresh run (old events files removed).
 */
export function openRunTensorBoard(p: { cfg: FadConfig; dir: string; resumeStep: number | null }): TensorBoardWriter | null {
  if (p.resumeStep === null) removeTfEvents(p.dir);
  if (!p.cfg.run.reportTo.includes('tensorboard')) return null;
  return new TensorBoardWriter({ logDir: p.dir, ...(p.resumeStep !== null ? { resumeStep: p.resumeStep } : {}) });
}

/** The scalars of a diffusion or autoencoder metrics.jsonl line (the library's, see @fad/diffusion-core/node metrics-log.ts). */
export { trainingScalars } from '@fad/diffusion-core/node';

/** The scalars of a validation record (expert-models' `validationScalars`). */
export { validationScalars } from '@fad/expert-models/node';
