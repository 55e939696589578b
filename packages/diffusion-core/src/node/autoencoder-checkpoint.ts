/**
 * The checkpoint of a resumable autoencoder training run (Node only: part of
 * `@fad/diffusion-core/node`), format `fad-autoencoder-checkpoint/1`: one safetensors file holding
 *
 * - tensors `model.<name>` (the autoencoder's weights), `adam.m.<i>` and `adam.v.<i>` (the Adam
 *   moments);
 * - metadata `format` and `state`: JSON with, in this order, `format`, `key` (the step key), `step`,
 *   `generator` (the trainer's posterior-sample generator), `optimizerStep`, `data` (the
 *   {@link DataOrder} state), `window` (the metrics window), `backend`, `config` (the autoencoder
 *   config), `elapsedSeconds`, `lastLoss`.
 *
 * Runs written by earlier versions of the `fad` CLI resume unchanged: the bytes are the same.
 */
import type { AutoencoderKL, AutoencoderKLConfig, AutoencoderTrainer, GeneratorState } from '@fad/diffusion-core';
import { encodeSafetensors } from '@fad/diffusion-core';
import type { DataOrderState } from './data-order';
import { assertFiniteTraining } from './finite-training';
import type { MetricsWindow } from './metrics-log';
import { parseTrainingCheckpoint, type ParsedTrainingCheckpoint } from './read-training-checkpoint';
import { numberTensors, prefixTensors } from './training-checkpoint';

/** `metadata.format` and `state.format` of an autoencoder training checkpoint. */
export const AUTOENCODER_CHECKPOINT_FORMAT = 'fad-autoencoder-checkpoint/1';

/** The JSON state of an autoencoder checkpoint (see the file comment). */
export interface AutoencoderCheckpointState {
  format: typeof AUTOENCODER_CHECKPOINT_FORMAT;
  key: string;
  step: number;
  generator: { s: GeneratorState; spare: number | null };
  optimizerStep: number;
  data: DataOrderState;
  window: MetricsWindow;
  backend: string;
  config: AutoencoderKLConfig;
  elapsedSeconds: number;
  lastLoss: number;
}

/** Parameters of {@link encodeAutoencoderCheckpoint}. */
export interface EncodeAutoencoderCheckpointParams {
  key: string;
  step: number;
  model: AutoencoderKL;
  trainer: AutoencoderTrainer;
  data: DataOrderState;
  window: MetricsWindow;
  backend: string;
  elapsedSeconds: number;
  lastLoss: number;
  /** Names the file in the divergence error, e.g. "the checkpoint /runs/ae/autoencoder-checkpoint.safetensors". */
  what: string;
}

/**
 * The checkpoint's bytes (see the file comment).
 * @throws TrainingRunError `non-finite` when a weight is NaN or infinite (nothing is encoded).
 */
export function encodeAutoencoderCheckpoint(p: EncodeAutoencoderCheckpointParams): Uint8Array {
  assertFiniteTraining({ modules: [p.model], step: p.step, what: p.what });
  const ts = p.trainer.getState();
  const tensors = { ...prefixTensors('model.', p.model.stateDict()), ...numberTensors('adam.m.', ts.optimizer.m), ...numberTensors('adam.v.', ts.optimizer.v) };
  const state: AutoencoderCheckpointState = {
    format: AUTOENCODER_CHECKPOINT_FORMAT,
    key: p.key,
    step: p.step,
    generator: ts.generator,
    optimizerStep: ts.optimizer.step,
    data: p.data,
    window: p.window,
    backend: p.backend,
    config: p.model.config,
    elapsedSeconds: p.elapsedSeconds,
    lastLoss: p.lastLoss,
  };
  return encodeSafetensors({ tensors, metadata: { format: AUTOENCODER_CHECKPOINT_FORMAT, state: JSON.stringify(state) } });
}

/** Parameters of {@link readAutoencoderCheckpoint}. */
export interface ReadAutoencoderCheckpointParams {
  bytes: Uint8Array;
  path: string;
  /** The run's total steps; a checkpoint past them is refused. */
  totalSteps: number;
  /** How messages name the total (default "steps"; the CLI says "autoencoder.steps"). */
  totalKey?: string;
  /** How messages name the way out (default "force"; the CLI says "--force"). */
  flags?: { force?: string };
}

/**
 * Parses and checks an autoencoder checkpoint's bytes (`parseTrainingCheckpoint` plus the trainer
 * state). Errors name the file ("the autoencoder checkpoint <path>") and the field.
 * @throws ModelFileError (header) or TrainingRunError `bad-checkpoint`.
 */
export function readAutoencoderCheckpoint(p: ReadAutoencoderCheckpointParams): ParsedTrainingCheckpoint<AutoencoderCheckpointState> {
  const totalSteps = p.totalSteps;
  return parseTrainingCheckpoint<AutoencoderCheckpointState>({
    bytes: p.bytes, path: p.path, format: AUTOENCODER_CHECKPOINT_FORMAT, what: 'the autoencoder checkpoint', totalSteps, totalKey: p.totalKey ?? 'steps', flags: p.flags,
    check: (st) => {
      if (!Number.isInteger(st.optimizerStep) || st.optimizerStep < 0 || st.optimizerStep > totalSteps) return ['optimizerStep', `an integer in 0..${totalSteps}`];
      if (!Array.isArray(st.generator?.s) || st.generator.s.length !== 4) return ['generator', 'a generator state { s: [4 integers], spare }'];
      return null;
    },
  });
}
