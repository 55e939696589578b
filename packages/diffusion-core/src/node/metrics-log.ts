/**
 * The metrics log of a resumable training run (Node only: part of `@fad/diffusion-core/node`): the
 * step results are summed in a window (which a checkpoint stores), and every `logEvery` steps and
 * at the last step the window's means become one JSON line of `metrics.jsonl` (step, loss, terms,
 * lr, gradNorm, steps, time) and, with a sink, scalars `train/loss`, `train/lr`, `train/gradNorm`,
 * `train/terms/<name>`.
 */
import { appendFileSync } from 'node:fs';
import { withRunFs } from './training-run-error';

/** Running sums of the training steps since the last metrics line (a checkpoint holds it). */
export interface MetricsWindow {
  n: number;
  loss: number;
  terms: Record<string, number>;
  gradNorm: number;
}

/** What a training step reports (`DiffusionTrainer`, `AutoencoderTrainer` and `DreamBoothTrainer` results fit). */
export interface TrainingStepLog {
  step: number;
  loss: number;
  terms: Record<string, number>;
  learningRate: number;
  gradNorm: number;
}

/**
 * Where scalars go besides the JSON lines: anything with `addScalars` (the TensorBoard event writer
 * of `@fad/metrics/node` fits).
 */
export interface ScalarSink {
  addScalars(p: { step: number; scalars: Record<string, number | null> }): void;
}

/** One line of `metrics.jsonl`. */
export interface MetricsLine {
  step: number;
  loss: number;
  terms: Record<string, number>;
  lr: number;
  gradNorm: number;
  /** Steps averaged in this line. */
  steps: number;
  /** ISO time of writing. */
  time: string;
}

export function emptyMetricsWindow(): MetricsWindow {
  return { n: 0, loss: 0, terms: {}, gradNorm: 0 };
}

/** The scalars of a metrics line: `train/loss`, `train/lr`, `train/gradNorm`, `train/terms/<name>`. */
export function trainingScalars(line: { loss: number; lr: number; gradNorm: number; terms: Record<string, number> }): Record<string, number> {
  const out: Record<string, number> = { 'train/loss': line.loss, 'train/lr': line.lr, 'train/gradNorm': line.gradNorm };
  for (const [k, v] of Object.entries(line.terms)) out[`train/terms/${k}`] = v;
  return out;
}

/** Parameters of {@link logTrainingStep}. */
export interface LogTrainingStepParams {
  /** The JSON-lines file to append to. */
  metricsPath: string;
  /** The window so far (changed in place). */
  window: MetricsWindow;
  /** The step just taken (1-based). */
  step: number;
  result: TrainingStepLog;
  /** Write a line every this many steps. */
  logEvery: number;
  /** The run's last step (always gets a line). */
  lastStep: number;
  /** Also gets each line's scalars. */
  sink?: ScalarSink | null;
}

/**
 * Adds a training step's result to `window`; every `logEvery` steps and at `lastStep`, appends the
 * window's means to `metricsPath` and the sink. Returns the window to go on with: the same one, or
 * an empty one after a line.
 * @throws TrainingRunError `fs` when the log cannot be appended to.
 */
export function logTrainingStep(p: LogTrainingStepParams): MetricsWindow {
  if (p === null || typeof p !== 'object') throw new TypeError(`logTrainingStep: expected one params object, got ${String(p)}`);
  if (typeof p.metricsPath !== 'string' || p.metricsPath.length === 0) throw new TypeError('logTrainingStep: metricsPath must be a non-empty string');
  if (!Number.isInteger(p.logEvery) || p.logEvery < 1) throw new RangeError(`logTrainingStep: logEvery must be an integer >= 1, got ${String(p.logEvery)}`);
  const { window: w, step, result: r } = p;
  w.n++;
  w.loss += r.loss;
  w.gradNorm += r.gradNorm;
  for (const [k, v] of Object.entries(r.terms)) w.terms[k] = (w.terms[k] ?? 0) + v;
  if (step % p.logEvery !== 0 && step !== p.lastStep) return w;
  const terms: Record<string, number> = {};
  for (const [k, v] of Object.entries(w.terms)) terms[k] = v / w.n;
  const line: MetricsLine = { step, loss: w.loss / w.n, terms, lr: r.learningRate, gradNorm: w.gradNorm / w.n, steps: w.n, time: new Date().toISOString() };
  withRunFs(p.metricsPath, 'append to the metrics log', () => appendFileSync(p.metricsPath, `${JSON.stringify(line)}\n`));
  p.sink?.addScalars({ step, scalars: trainingScalars(line) });
  return emptyMetricsWindow();
}
