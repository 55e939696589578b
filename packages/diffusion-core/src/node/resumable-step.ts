/**
 * Resumable steps (Node only: part of `@fad/diffusion-core/node`): the bookkeeping every long job
 * of a run folder shares — diffusion training, autoencoder training, DreamBooth, expert training.
 *
 * - A step's *key* is a hash of its name, the config that determines its result and the hashes of
 *   its inputs (`stepKey`). A finished step writes `complete.json` (`writeCompleteMarker`) last,
 *   holding its key; the step is complete only when that file exists.
 * - `prepareResumableStep` decides what to do with a folder before the step starts:
 *   - `reuse`: it holds a finished step with the same key (nothing to do);
 *   - `resume`: it holds the resumable state of an unfinished step and `resume` was asked for (the
 *     caller reads the state and checks its key with `assertStateKey`);
 *   - `start`: anything else; with `force`, the finished outputs and the state are removed first.
 *   A finished step with another key, or unfinished state without `resume`, is a `ResumableStepError`
 *   whose message says what to do (another folder, `resume`, or `force`).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from './write-file-atomic';

/** sha256 of bytes or a UTF-8 string, lower-case hex. */
export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** JSON with object keys sorted at every level and `undefined` members left out (a canonical form for hashing). */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const keys = Object.keys(value as Record<string, unknown>).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** A step key: the first 16 hex digits of sha256 over the step's name, its config and its inputs' hashes. */
export function stepKey(name: string, config: unknown, inputs: Record<string, string> = {}): string {
  return sha256(stableStringify({ step: name, config, inputs })).slice(0, 16);
}

/** The completion marker's file name in a step's folder. */
export const COMPLETE_FILE = 'complete.json';

/** What `complete.json` holds: the step's name and key, when it finished, and whatever the step adds. */
export interface CompleteMarker {
  step: string;
  key: string;
  finishedAt: string;
  [extra: string]: unknown;
}

/** The folder's completion marker, or null when there is none (or it cannot be parsed: an unfinished write). */
export function readCompleteMarker(dir: string): CompleteMarker | null {
  const path = join(dir, COMPLETE_FILE);
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as CompleteMarker;
  } catch {
    return null;
  }
}

/** Writes the completion marker (atomically, with `finishedAt`): the last write of a finished step. */
export function writeCompleteMarker(dir: string, marker: Omit<CompleteMarker, 'finishedAt'>): void {
  writeFileAtomicSync(join(dir, COMPLETE_FILE), `${JSON.stringify({ ...marker, finishedAt: new Date().toISOString() }, null, 2)}\n`);
}

/** Why {@link prepareResumableStep} or {@link assertStateKey} refused a folder. */
export type ResumableStepProblem = 'finished-with-other-key' | 'unfinished-needs-resume' | 'state-with-other-key';

/** A folder that cannot be used as asked; `problem` says why, the message what to do. */
export class ResumableStepError extends Error {
  readonly problem: ResumableStepProblem;
  constructor(problem: ResumableStepProblem, message: string) {
    super(message);
    this.name = 'ResumableStepError';
    this.problem = problem;
  }
}

/** Parameters of {@link prepareResumableStep}. */
export interface PrepareResumableStepParams {
  /** The step's folder (created if missing). */
  dir: string;
  /** The step key the run would have now (`stepKey`). */
  key: string;
  /** Continue from `stateFile` when it exists. Without it, existing state is an error (unless `force`). */
  resume: boolean;
  /** Start over: remove `outputs`, `stateFile` and the completion marker first. */
  force?: boolean;
  /** The resumable state's file name in `dir` (a checkpoint); absent for steps that cannot resume. */
  stateFile?: string;
  /** The files a finished step leaves (removed with `force`). */
  outputs?: readonly string[];
  /**
   * Phrases for the messages, e.g. `{ finished: 'a finished training run', unfinished: 'a checkpoint
   * of an unfinished run' }`. Defaults: "a finished run", "the state of an unfinished run".
   */
  describe?: { finished?: string; unfinished?: string; inputs?: string };
  /** How the messages name the two ways out (default `force` and `resume`; the CLI says `--force`, `--resume`). */
  flags?: { force?: string; resume?: string };
}

/** What {@link prepareResumableStep} decided. */
export type PreparedStep =
  | { action: 'reuse'; marker: CompleteMarker }
  | { action: 'resume'; statePath: string }
  | { action: 'start' };

/**
 * Decides whether a step reuses, resumes or starts in `dir` (see the file comment).
 * @throws ResumableStepError for a finished step with another key (without `force`), or unfinished
 *   state without `resume` (and without `force`); TypeError for bad params.
 */
export function prepareResumableStep(params: PrepareResumableStepParams): PreparedStep {
  if (params === null || typeof params !== 'object') throw new TypeError(`prepareResumableStep: params must be an object, got ${String(params)}`);
  const { dir, key, resume, force = false, stateFile, outputs = [] } = params;
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError(`prepareResumableStep: dir must be a non-empty string, got ${String(dir)}`);
  if (typeof key !== 'string' || key.length === 0) throw new TypeError(`prepareResumableStep: key must be a non-empty string, got ${String(key)}`);
  if (typeof resume !== 'boolean') throw new TypeError(`prepareResumableStep: resume must be a boolean, got ${String(resume)}`);
  const forceFlag = params.flags?.force ?? 'force';
  const resumeFlag = params.flags?.resume ?? 'resume';
  const finished = params.describe?.finished ?? 'a finished run';
  const unfinished = params.describe?.unfinished ?? 'the state of an unfinished run';
  const inputs = params.describe?.inputs ?? 'data';
  mkdirSync(dir, { recursive: true });
  const done = readCompleteMarker(dir);
  if (done && !force) {
    if (done.key === key) return { action: 'reuse', marker: done };
    throw new ResumableStepError('finished-with-other-key', `${dir} holds ${finished} with a different config or ${inputs} (key ${done.key}, now ${key}); use another folder or ${forceFlag} to overwrite it`);
  }
  if (force) for (const f of [COMPLETE_FILE, ...(stateFile ? [stateFile] : []), ...outputs]) rmSync(join(dir, f), { force: true });
  if (stateFile && existsSync(join(dir, stateFile))) {
    if (!resume) throw new ResumableStepError('unfinished-needs-resume', `${dir} has ${unfinished}; pass ${resumeFlag} to continue it, or ${forceFlag} to start over`);
    return { action: 'resume', statePath: join(dir, stateFile) };
  }
  return { action: 'start' };
}

/**
 * Checks the key stored in a resumable state against the key the run has now.
 * @throws ResumableStepError naming `where` (e.g. "the checkpoint /runs/a/checkpoint.safetensors") and both
 *   keys (the stored one as `storedName`, default "key").
 */
export function assertStateKey(p: { where: string; stored: string; key: string; inputs?: string; storedName?: string; flags?: { force?: string; resume?: string } }): void {
  if (p.stored === p.key) return;
  throw new ResumableStepError(
    'state-with-other-key',
    `${p.where} was written with a different config or ${p.inputs ?? 'data'} (${p.storedName ?? 'key'} ${p.stored}, now ${p.key}); ${p.flags?.resume ?? 'resume'} needs the same settings (or ${p.flags?.force ?? 'force'} to start over)`,
  );
}
