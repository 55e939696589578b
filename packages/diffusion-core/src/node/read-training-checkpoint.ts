/**
 * Reading a resumable training checkpoint (Node only: part of `@fad/diffusion-core/node`): one
 * safetensors file whose metadata holds `format` and the JSON `state`, checked before anything is
 * loaded: the header against the model-file limits, valid JSON, the format, the step key, a step
 * within `0..totalSteps` (a step past the total must never end as a finished run), the data order
 * and the metrics window, then whatever the caller's `check` adds; all tensors F32. Every error names
 * the file and the field. Used by the diffusion run and by the `fad` CLI's autoencoder run.
 */
import { decodeSafetensors, readCheckedHeader } from '@fad/diffusion-core';
import type { StoredTensor } from './training-checkpoint';
import { TrainingRunError } from './training-run-error';

/** Parameters of {@link parseTrainingCheckpoint}. */
export interface ParseTrainingCheckpointParams<S> {
  /** The whole file. */
  bytes: Uint8Array;
  /** The file's path (for messages). */
  path: string;
  /** The expected `metadata.format` and `state.format`, e.g. "fad-train-checkpoint/1". */
  format: string;
  /** What the file is, e.g. "the training checkpoint". */
  what: string;
  /** The run's total steps, and the setting that sets them (for the message, e.g. "steps"). */
  totalSteps: number;
  totalKey: string;
  /** Extra checks of the state: return `[field, expected]` for the first bad field, or null. */
  check?: (state: S) => [string, string] | null;
  /** How the messages name the way out (default "force"; the CLI says "--force"). */
  flags?: { force?: string };
}

/** A checkpoint's checked JSON state and its tensors. */
export interface ParsedTrainingCheckpoint<S> {
  state: S;
  tensors: Record<string, StoredTensor>;
}

/**
 * Parses and checks a checkpoint (see the file comment).
 * @throws ModelFileError for a header that is not a usable safetensors header; TrainingRunError
 *   `bad-checkpoint` for anything else wrong with the file.
 */
export function parseTrainingCheckpoint<S extends { format: string; key: string; step: number }>(p: ParseTrainingCheckpointParams<S>): ParsedTrainingCheckpoint<S> {
  if (p === null || typeof p !== 'object') throw new TypeError(`parseTrainingCheckpoint: expected one params object, got ${String(p)}`);
  if (!(p.bytes instanceof Uint8Array)) throw new TypeError('parseTrainingCheckpoint: bytes must be a Uint8Array (the file)');
  for (const k of ['path', 'format', 'what', 'totalKey'] as const) {
    if (typeof p[k] !== 'string' || p[k].length === 0) throw new TypeError(`parseTrainingCheckpoint: ${k} must be a non-empty string, got ${String(p[k])}`);
  }
  if (!Number.isInteger(p.totalSteps) || p.totalSteps < 0) throw new RangeError(`parseTrainingCheckpoint: totalSteps must be an integer >= 0, got ${String(p.totalSteps)}`);
  const force = p.flags?.force ?? 'force';
  const where = `${p.what} ${p.path}`;
  const fail = (message: string, cause?: unknown): never => {
    throw new TrainingRunError('bad-checkpoint', message, { path: p.path }, cause);
  };
  const { metadata } = readCheckedHeader({ bytes: p.bytes, where });
  if (metadata.format !== p.format) fail(`${p.path} is not a ${p.format} checkpoint (metadata.format ${JSON.stringify(metadata.format)}); use ${force} to start over`);
  if (typeof metadata.state !== 'string') fail(`${where}: metadata.state is missing; use ${force} to start over`);
  let state: S;
  try {
    state = JSON.parse(metadata.state) as S;
  } catch (e) {
    return fail(`${where}: metadata.state is not valid JSON (${(e as Error).message})`, e);
  }
  const bad = (field: string, expected: string): never => {
    let got: unknown = state;
    for (const k of field.split('.')) got = got && typeof got === 'object' ? (got as Record<string, unknown>)[k] : undefined;
    return fail(`${where}: state.${field} is ${JSON.stringify(got)?.slice(0, 80) ?? 'missing'}, expected ${expected}; the checkpoint is damaged or was edited (use ${force} to start over)`);
  };
  if (state === null || typeof state !== 'object' || Array.isArray(state)) bad('', 'a JSON object');
  if (state.format !== p.format) bad('format', JSON.stringify(p.format));
  if (typeof state.key !== 'string' || state.key.length === 0) bad('key', 'the run\'s step key (a string)');
  if (!Number.isInteger(state.step) || state.step < 0) bad('step', 'an integer >= 0');
  if (state.step > p.totalSteps) bad('step', `at most ${p.totalKey} (${p.totalSteps}): the checkpoint is past the end of this run`);
  const s = state as unknown as Record<string, unknown>;
  const data = s.data as { gen?: { s?: unknown }; perm?: unknown; cursor?: unknown } | undefined;
  if (!data || typeof data !== 'object') bad('data', 'the data order state');
  if (!Array.isArray(data!.gen?.s) || (data!.gen!.s as unknown[]).length !== 4 || !(data!.gen!.s as unknown[]).every((x) => Number.isInteger(x))) bad('data.gen', 'a generator state { s: [4 integers], spare }');
  if (!Array.isArray(data!.perm) || !(data!.perm as unknown[]).every((x) => Number.isInteger(x) && (x as number) >= 0)) bad('data.perm', 'a list of data indices');
  if (!Number.isInteger(data!.cursor) || (data!.cursor as number) < 0 || (data!.cursor as number) > (data!.perm as unknown[]).length) bad('data.cursor', `an integer in 0..${(data!.perm as unknown[]).length}`);
  const w = s.window as Record<string, unknown> | undefined;
  if (!w || typeof w !== 'object' || !Number.isInteger(w.n) || typeof w.loss !== 'number' || typeof w.gradNorm !== 'number' || !w.terms || typeof w.terms !== 'object') bad('window', 'the metrics window { n, loss, terms, gradNorm }');
  const extra = p.check?.(state);
  if (extra) bad(extra[0], extra[1]);
  let tensors: Record<string, StoredTensor>;
  try {
    tensors = decodeSafetensors(p.bytes).tensors as Record<string, StoredTensor>;
  } catch (e) {
    return fail(`cannot read ${where}: ${(e as Error).message}; use ${force} to start over`, e);
  }
  for (const [n, t] of Object.entries(tensors)) if (!(t.data instanceof Float32Array)) fail(`${where}: tensor "${n}" is not F32`);
  return { state, tensors };
}

/**
 * Runs `load` (weights and state into modules); an error becomes a TrainingRunError
 * `bad-checkpoint`: "<where>: its tensors do not fit the model of this config (...); use force to
 * start over".
 */
export function loadCheckpointInto(p: { load: () => void; where: string; flags?: { force?: string } }): void {
  try {
    p.load();
  } catch (e) {
    throw new TrainingRunError('bad-checkpoint', `${p.where}: its tensors do not fit the model of this config (${(e as Error).message}); use ${p.flags?.force ?? 'force'} to start over`, {}, e);
  }
}
