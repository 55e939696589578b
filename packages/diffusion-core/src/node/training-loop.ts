/**
 * The loop of a resumable training run (Node only: part of `@fad/diffusion-core/node`), shared by
 * the diffusion run and the `fad` CLI's autoencoder run: one optimizer step, its metrics line
 * (every `logEvery` steps), the caller's per-step work (validation grids), a checkpoint every
 * `checkpointEvery` steps and at the last step, progress; between steps the event loop runs (signal
 * handlers), and an abort (or `stopAfterStep`) writes a checkpoint and ends the loop early.
 */
import { logTrainingStep, type MetricsWindow, type ScalarSink, type TrainingStepLog } from './metrics-log';

/** Anything with `aborted` (an `AbortSignal` fits). */
export interface AbortFlag {
  readonly aborted: boolean;
}

/** Parameters of {@link runTrainingLoop}. */
export interface RunTrainingLoopParams<R extends TrainingStepLog> {
  /** Steps already taken (0, or the resumed checkpoint's step). */
  startStep: number;
  /** The run's total steps. */
  steps: number;
  /** Takes one optimizer step (drawing its own batch) and returns its result; `result.step` is the new step. */
  trainStep: () => R;
  /** The metrics log (JSON lines) and its window so far (empty, or the checkpoint's). */
  metricsPath: string;
  window: MetricsWindow;
  logEvery: number;
  /** Also gets the metrics lines' scalars (a TensorBoard writer). */
  sink?: ScalarSink | null;
  checkpointEvery: number;
  /** Writes the resumable state after `step` (the caller adds its own state). */
  writeCheckpoint: (p: { step: number; window: MetricsWindow; lastLoss: number }) => void;
  /** The loss of the step before `startStep` (NaN at the start). */
  lastLoss?: number;
  /** After a step's metrics, before its checkpoint (e.g. validation grids); awaited. */
  onStep?: (p: { step: number; result: R }) => void | Promise<void>;
  /** After a step's checkpoint. */
  onProgress?: (p: { step: number; steps: number; result: R }) => void;
  /** Checked between steps: when aborted, a checkpoint is written and the loop ends. */
  signal?: AbortFlag | null;
  /** End like an abort after this step (for tests of resuming). */
  stopAfterStep?: number;
}

/** How {@link runTrainingLoop} ended. */
export interface TrainingLoopOutcome {
  /** `finished`: step reached `steps`; `interrupted`: ended early after a checkpoint. */
  status: 'finished' | 'interrupted';
  /** Why it ended early: the signal, or `stopAfterStep`; null when finished. */
  reason: 'signal' | 'stop-after-step' | null;
  step: number;
  window: MetricsWindow;
  lastLoss: number;
}

/** Runs steps from `startStep` to `steps` (see the file comment). */
export async function runTrainingLoop<R extends TrainingStepLog>(p: RunTrainingLoopParams<R>): Promise<TrainingLoopOutcome> {
  if (p === null || typeof p !== 'object') throw new TypeError(`runTrainingLoop: expected one params object, got ${String(p)}`);
  if (!Number.isInteger(p.steps) || p.steps < 1) throw new RangeError(`runTrainingLoop: steps must be an integer >= 1, got ${String(p.steps)}`);
  if (!Number.isInteger(p.startStep) || p.startStep < 0 || p.startStep > p.steps) throw new RangeError(`runTrainingLoop: startStep must be an integer in 0..steps (${p.steps}), got ${String(p.startStep)}`);
  if (!Number.isInteger(p.checkpointEvery) || p.checkpointEvery < 1) throw new RangeError(`runTrainingLoop: checkpointEvery must be an integer >= 1, got ${String(p.checkpointEvery)}`);
  if (!Number.isInteger(p.logEvery) || p.logEvery < 1) throw new RangeError(`runTrainingLoop: logEvery must be an integer >= 1, got ${String(p.logEvery)}`);
  for (const k of ['trainStep', 'writeCheckpoint'] as const) if (typeof p[k] !== 'function') throw new TypeError(`runTrainingLoop: ${k} must be a function`);
  if (p.stopAfterStep !== undefined && !(Number.isInteger(p.stopAfterStep) && p.stopAfterStep >= 0)) throw new RangeError(`runTrainingLoop: stopAfterStep must be an integer >= 0, got ${String(p.stopAfterStep)}`);
  let step = p.startStep;
  let window = p.window;
  let lastLoss = p.lastLoss ?? NaN;
  const checkpoint = () => p.writeCheckpoint({ step, window, lastLoss });
  const stop = (reason: 'signal' | 'stop-after-step'): TrainingLoopOutcome => {
    checkpoint();
    return { status: 'interrupted', reason, step, window, lastLoss };
  };
  while (step < p.steps) {
    const r = p.trainStep();
    step = r.step;
    lastLoss = r.loss;
    window = logTrainingStep({ metricsPath: p.metricsPath, window, step, result: r, logEvery: p.logEvery, lastStep: p.steps, sink: p.sink });
    await p.onStep?.({ step, result: r });
    if (step % p.checkpointEvery === 0 || step === p.steps) checkpoint();
    p.onProgress?.({ step, steps: p.steps, result: r });
    // Let signal handlers run between steps.
    await new Promise<void>((res) => setImmediate(res));
    if (p.stopAfterStep !== undefined && step >= p.stopAfterStep && step < p.steps) return stop('stop-after-step');
    if (p.signal?.aborted && step < p.steps) return stop('signal');
  }
  return { status: 'finished', reason: null, step, window, lastLoss };
}
