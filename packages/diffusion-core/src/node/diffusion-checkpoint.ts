/**
 * The checkpoint of a resumable diffusion training run (Node only: part of
 * `@fad/diffusion-core/node`), format `fad-train-checkpoint/1`: one safetensors file holding
 *
 * - tensors `model.<name>` (the U-Net's raw weights), `<prefix><name>` for each extra trainable
 *   module in order (the `fad` CLI's alignment projection: `align.<name>`), `adam.m.<i>`,
 *   `adam.v.<i>` (the Adam moments) and `ema.<i>` (the EMA weights, when EMA is on);
 * - metadata `format` and `state`: JSON with, in this order, `format`, `key` (the step key),
 *   `step`, `trainer` ({ step, generator, optimizerStep }), `data` (the {@link DataOrder} state),
 *   `window` (the metrics window), `backend`, `unet` (the U-Net config), the caller's extra fields
 *   (the CLI: `alignment`), `elapsedSeconds`, `lastLoss`.
 *
 * Runs written by earlier versions of the `fad` CLI resume unchanged: the bytes are the same.
 */
import type { DiffusionTrainer, UNet2DConditional, UNetConfig } from '@fad/diffusion-core';
import { encodeSafetensors, type GeneratorState } from '@fad/diffusion-core';
import type { DataOrderState } from './data-order';
import { assertFiniteTraining, type NamedParametersModule } from './finite-training';
import type { MetricsWindow } from './metrics-log';
import { parseTrainingCheckpoint, type ParsedTrainingCheckpoint } from './read-training-checkpoint';
import { numberTensors, prefixTensors, type StoredTensor } from './training-checkpoint';

/** `metadata.format` and `state.format` of a diffusion training checkpoint. */
export const DIFFUSION_CHECKPOINT_FORMAT = 'fad-train-checkpoint/1';

/** A trainable module besides the U-Net that a checkpoint holds under `prefix` (e.g. `align.`). */
export interface CheckpointModule {
  prefix: string;
  module: NamedParametersModule & {
    stateDict(): Record<string, StoredTensor>;
    loadStateDict(state: Record<string, StoredTensor>): void;
  };
}

/** The JSON state of a diffusion checkpoint (see the file comment). */
export interface DiffusionCheckpointState {
  format: typeof DIFFUSION_CHECKPOINT_FORMAT;
  key: string;
  step: number;
  trainer: { step: number; generator: { s: GeneratorState; spare: number | null }; optimizerStep: number };
  data: DataOrderState;
  window: MetricsWindow;
  backend: string;
  unet: UNetConfig;
  elapsedSeconds: number;
  lastLoss: number;
  /** The caller's extra fields (`extraState`). */
  [extra: string]: unknown;
}

/** Parameters of {@link encodeDiffusionCheckpoint}. */
export interface EncodeDiffusionCheckpointParams {
  key: string;
  step: number;
  model: UNet2DConditional;
  modules?: readonly CheckpointModule[];
  trainer: DiffusionTrainer;
  data: DataOrderState;
  window: MetricsWindow;
  backend: string;
  /** Stored after `unet` (the CLI: `{ alignment }`). */
  extraState?: Record<string, unknown>;
  elapsedSeconds: number;
  lastLoss: number;
  /** Names the file in the divergence error, e.g. "the checkpoint /runs/a/checkpoint.safetensors". */
  what: string;
}

/**
 * The checkpoint's bytes (see the file comment).
 * @throws TrainingRunError `non-finite` when a weight is NaN or infinite (nothing is encoded).
 */
export function encodeDiffusionCheckpoint(p: EncodeDiffusionCheckpointParams): Uint8Array {
  const modules = p.modules ?? [];
  assertFiniteTraining({ modules: [p.model, ...modules.map((m) => m.module)], step: p.step, what: p.what });
  const ts = p.trainer.getState();
  const tensors = {
    ...prefixTensors('model.', p.model.stateDict()),
    ...Object.assign({}, ...modules.map((m) => prefixTensors(m.prefix, m.module.stateDict()))),
    ...numberTensors('adam.m.', ts.optimizer.m),
    ...numberTensors('adam.v.', ts.optimizer.v),
    ...numberTensors('ema.', ts.ema ?? []),
  };
  const state: DiffusionCheckpointState = {
    format: DIFFUSION_CHECKPOINT_FORMAT,
    key: p.key,
    step: p.step,
    trainer: { step: ts.step, generator: ts.generator, optimizerStep: ts.optimizer.step },
    data: p.data,
    window: p.window,
    backend: p.backend,
    unet: p.model.config,
    ...(p.extraState ?? {}),
    elapsedSeconds: p.elapsedSeconds,
    lastLoss: p.lastLoss,
  };
  return encodeSafetensors({ tensors, metadata: { format: DIFFUSION_CHECKPOINT_FORMAT, state: JSON.stringify(state) } });
}

/** Parameters of {@link readDiffusionCheckpoint}. */
export interface ReadDiffusionCheckpointParams {
  bytes: Uint8Array;
  path: string;
  /** The run's total steps; a checkpoint past them is refused. */
  totalSteps: number;
  /** How messages name the total (default "steps"; the CLI says "diffusion.steps"). */
  totalKey?: string;
  /** How messages name the way out (default "force"; the CLI says "--force"). */
  flags?: { force?: string };
}

/**
 * Parses and checks a diffusion checkpoint's bytes (`parseTrainingCheckpoint` plus the trainer
 * state). Errors name the file ("the training checkpoint <path>") and the field.
 * @throws ModelFileError (header) or TrainingRunError `bad-checkpoint`.
 */
export function readDiffusionCheckpoint(p: ReadDiffusionCheckpointParams): ParsedTrainingCheckpoint<DiffusionCheckpointState> {
  const totalSteps = p.totalSteps;
  return parseTrainingCheckpoint<DiffusionCheckpointState>({
    bytes: p.bytes, path: p.path, format: DIFFUSION_CHECKPOINT_FORMAT, what: 'the training checkpoint', totalSteps, totalKey: p.totalKey ?? 'steps', flags: p.flags,
    check: (st) => {
      const t = st.trainer as Partial<DiffusionCheckpointState['trainer']> | undefined;
      if (!t || typeof t !== 'object') return ['trainer', 'the trainer state { step, generator, optimizerStep }'];
      if (!Number.isInteger(t.step) || t.step! < 0 || t.step! > totalSteps) return ['trainer.step', `an integer in 0..${totalSteps}`];
      if (!Number.isInteger(t.optimizerStep) || t.optimizerStep! < 0 || t.optimizerStep! > totalSteps) return ['trainer.optimizerStep', `an integer in 0..${totalSteps}`];
      if (!Array.isArray(t.generator?.s) || t.generator!.s.length !== 4) return ['trainer.generator', 'a generator state { s: [4 integers], spare }'];
      return null;
    },
  });
}
