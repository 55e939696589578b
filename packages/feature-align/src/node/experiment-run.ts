/**
 * The paper's experiment as a library run (Node only: part of `@fad/feature-align/node`): what
 * `fad experiment` and `fad demo` do, with the stages given as callbacks. The run owns the run
 * folder, the order of the stages, the bookkeeping that makes a run resumable, and the report; the
 * callbacks own the models (training the expert and the diffusion variants, sampling, evaluating),
 * so any trainer, sampler and evaluation can be plugged in (the `fad` CLI wires
 * @fad/diffusion-core's and @fad/expert-models' runs).
 *
 * Order: `prepare` (load the data), `expert`, `openExpert`; for each variant `trainVariant`,
 * `generate`, `evaluate`; with `stages.dreamBooth`, for each DreamBooth arm (fine-tuned from the
 * baseline variant's model) its `train`, `generate` and `evaluate`; with `stages.utility`, the
 * downstream utility of the variants' generated sets; then the report (`writeExperimentReport`).
 *
 * The run folder (RUN_DIR):
 * - `run.json`: backend, start time, Node version, platform, and the caller's `record` (command,
 *   data folder, image size, channels); `config.yaml`: the caller's text (`configYaml`);
 * - `expert/` (the `expert` stage's folder; its `eval.json` is logged when present);
 * - `variants/<variant>/train/`, `variants/<variant>/generated/` (with `manifest.json`),
 *   `variants/<variant>/eval.json`; `dreambooth/class-images.safetensors`,
 *   `dreambooth/<arm>/{train,generated,eval.json}`; `utility/`; `report/`;
 * - `steps.json`: each step's key, whether it was reused, and its seconds (rewritten after each step);
 * - `complete.json`: removed when the run starts, written last (with the key of `config`).
 *
 * Resuming: every step has a key (a hash of its settings and its inputs' hashes). The training
 * stages keep their own keys in their folders' `complete.json` and checkpoints (a variant whose
 * folder holds a run of another key is trained again: its stage is called with `force`); a
 * generated set is reused while its `manifest.json` holds the generate key, an evaluation while its
 * `eval.json` holds the evaluate key. `force` redoes every step.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readSafetensorsMetadata } from '@fad/diffusion-core';
import { COMPLETE_FILE, DIFFUSION_RUN_FILES, formatDuration, readCompleteMarker, readJsonFileIfExists, sha256, stepKey, writeCompleteMarker, writeFileAtomicSync } from '@fad/diffusion-core/node';
import { assertKnownKeys, assertParamsObject, describe, fail } from '../validate';
import { writeExperimentReport } from './experiment-report';
import { withExperimentFs } from './experiment-run-error';
import { DREAMBOOTH_ARMS, type DreamBoothArm, EXPERIMENT_VARIANTS, type ExperimentVariant, type VariantAlignment, dreamBoothArmAlignment, variantAlignment } from './experiment-variants';

/** The expert the variants align to, as `openExpert` opens it: its content hash (in the evaluate keys) and how to free it. */
export interface ExperimentExpert {
  sha256: string;
  /** Called once when the run ends (finished or failed). */
  dispose(): void;
}

/** `x.toFixed(digits)`, or "n/a" for a value that is not a finite number (an eval.json stores a NaN FD or KID as null). */
function fixedOrNa(x: number | null | undefined, digits: number): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}

/** The fields of an evaluation the run logs (what @fad/expert-models' `evaluateGeneratedSet` returns fits). */
export interface ExperimentEvaluationSummary {
  generationAccuracy: { overall: number };
  diversity: { overall: { generated: number; real: number } };
  frechetDistance: number;
  kid: { mean: number };
}

/** What `run.json` records besides the backend the run's own fields. */
export interface ExperimentRunRecord {
  /** The tfjs backend the run uses (also in complete.json; a folder started on another one is warned about). */
  backend: string;
  /** The command line (null when absent). */
  command?: string | null;
  /** The real data set's folder (stored absolute; null when absent). */
  dataDir?: string | null;
  imageSize: number;
  /** 1 or 3. */
  channels: number;
}

/** What `prepare` resolves to: the hashes of the data that the generate and evaluate keys hold. */
export interface ExperimentInputs {
  /** Identifies the real data set (its files and decoding). */
  fingerprint: string;
  /** The indices of the real images the evaluations compare with. */
  realIndices: readonly number[];
  /** The real per-class statistics the generation matches (hashed into the generate keys); null or absent when generation uses none. */
  realStats?: unknown;
}

/** What a step that keeps its own key (the expert, a training run) resolves to. */
export interface ExperimentStepOutcome {
  /** The step's key (stored in its folder). */
  key: string;
  /** Whether a finished step was reused. */
  reused: boolean;
}

/** A step of `steps.json`. */
export interface ExperimentStepRecord {
  key: string;
  reused: boolean;
  seconds: number;
}

/** The stages of the run (see the file comment for their order). */
export interface AlignmentExperimentStages<X extends ExperimentExpert, V extends ExperimentEvaluationSummary> {
  /** Loads the data (after run.json and config.yaml are written); resolves to the hashes the keys hold. */
  prepare: () => Promise<ExperimentInputs> | ExperimentInputs;
  /** Trains, reuses or evaluates the expert in `dir` (RUN_DIR/expert); resolves with the expert file's path. */
  expert: (p: { dir: string; force: boolean }) => Promise<ExperimentStepOutcome & { path: string }>;
  /** Opens the expert file for the stages that use it; disposed when the run ends. */
  openExpert: (p: { path: string }) => Promise<X> | X;
  /** The step key a variant's training run stores in its complete.json and checkpoint state (to tell a stale run). */
  trainVariantKey: (p: { variant: ExperimentVariant; alignment: VariantAlignment; expert: X }) => string;
  /** Trains (resumes, reuses) a variant in `dir`; `force` when asked or when the folder holds a run of another key. */
  trainVariant: (p: { variant: ExperimentVariant; alignment: VariantAlignment; dir: string; force: boolean; expert: X }) => Promise<ExperimentStepOutcome & { modelPath: string }>;
  /** Samples a variant's model into `dir` (replacing it), writing `key` into its manifest.json. */
  generate: (p: { variant: ExperimentVariant; modelPath: string; dir: string; key: string }) => Promise<unknown>;
  /** Evaluates the generated set in `generatedDir` with `settings` (a variant's or a DreamBooth arm's); the run writes eval.json. */
  evaluate: (p: { name: string; generatedDir: string; settings: object; expert: X }) => Promise<V>;
  /** The DreamBooth arms: the baseline variant's model fine-tuned on one class, without and with alignment. */
  dreamBooth?: {
    /** The class the arms fine-tune on (they are evaluated on it alone). */
    className: string;
    /** The identifier token (in the log). */
    token: string;
    /** Fine-tunes (reuses) an arm in `dir` from `pretrained`; the class images are cached in `priorPath`, shared by the arms. */
    train: (p: { arm: DreamBoothArm; alignment: { enabled: boolean }; dir: string; priorPath: string; pretrained: string; expert: X; force: boolean }) => Promise<ExperimentStepOutcome & { modelPath: string }>;
    /** Samples an arm's model with the token into `dir` (replacing it), writing `key` into its manifest.json. */
    generate: (p: { arm: DreamBoothArm; modelPath: string; dir: string; key: string }) => Promise<unknown>;
  };
  /** The downstream utility of the variants' generated sets, into `dir` (RUN_DIR/utility). */
  utility?: (p: { sets: Array<{ name: ExperimentVariant; dir: string }>; dir: string; expert: X; force: boolean }) => Promise<{ key: string; trained: number; reused: number; path: string }>;
}

/** Parameters of {@link runAlignmentExperiment}. */
export interface RunAlignmentExperimentParams<X extends ExperimentExpert = ExperimentExpert, V extends ExperimentEvaluationSummary = ExperimentEvaluationSummary> {
  /** The run folder (created; resolved to an absolute path). */
  runDir: string;
  /** The variants to train, generate and evaluate, in this order (at least one; `baseline` with `stages.dreamBooth`). */
  variants: readonly ExperimentVariant[];
  /** Redo every step. */
  force?: boolean;
  record: ExperimentRunRecord;
  /** The effective config; its hash is the key of the run's complete.json. */
  config: unknown;
  /** The text of config.yaml (the report shows it). */
  configYaml: string;
  /** The generation settings (in the generate keys). */
  generateSettings: object;
  /** The evaluation settings (in the evaluate keys); the DreamBooth arms use them with `classes: [className], excludeClasses: []`. */
  evaluateSettings: object;
  stages: AlignmentExperimentStages<X, V>;
  /** Progress lines (`fad: <variant>: generation accuracy ...`). */
  log?: (message: string) => void;
  /** Warnings (another backend than the folder's first, the report's warnings). */
  warn?: (message: string) => void;
  /** Formats the expert's confusion matrix for the log (e.g. @fad/expert-models' `formatConfusionMatrix`); without it the matrix is not logged. */
  formatConfusionMatrix?: (p: { matrix: number[][]; classNames: string[] }) => string;
}

/** What {@link runAlignmentExperiment} returns. */
export interface AlignmentExperimentResult<V extends ExperimentEvaluationSummary = ExperimentEvaluationSummary> {
  /** The run folder, absolute. */
  runDir: string;
  /** RUN_DIR/report/report.html. */
  report: string;
  /** The evaluations by variant and DreamBooth arm. */
  evaluations: Record<string, V>;
  /** As steps.json holds them. */
  steps: Record<string, ExperimentStepRecord>;
}

const FN = 'runAlignmentExperiment';
const PARAM_KEYS = ['runDir', 'variants', 'force', 'record', 'config', 'configYaml', 'generateSettings', 'evaluateSettings', 'stages', 'log', 'warn', 'formatConfusionMatrix'];
const STAGE_KEYS = ['prepare', 'expert', 'openExpert', 'trainVariantKey', 'trainVariant', 'generate', 'evaluate', 'dreamBooth', 'utility'];

/**
 * Runs the paper's experiment in `params.runDir` (see the file comment), reusing finished steps.
 * @throws TypeError / RangeError for bad params (naming the field) or a stage that resolves to the
 *   wrong shape; ExperimentRunError `fs` when a file of the run folder cannot be written; the
 *   report's errors (ReportError); whatever a stage throws, unchanged. A run that stops leaves no
 *   RUN_DIR/complete.json.
 */
export async function runAlignmentExperiment<X extends ExperimentExpert, V extends ExperimentEvaluationSummary>(params: RunAlignmentExperimentParams<X, V>): Promise<AlignmentExperimentResult<V>> {
  checkParams(params);
  const { stages, record } = params;
  const force = params.force ?? false;
  const log = params.log ?? (() => {});
  const warn = params.warn ?? (() => {});
  const runDir = resolve(params.runDir);
  mkdirSync(runDir, { recursive: true });
  const t0 = Date.now();
  const steps: Record<string, ExperimentStepRecord> = {};
  const timed = async <T>(name: string, fn: () => Promise<{ key: string; reused: boolean; value: T }>): Promise<T> => {
    const s = Date.now();
    const r = await fn();
    steps[name] = { key: r.key, reused: r.reused, seconds: (Date.now() - s) / 1000 };
    writeJson(join(runDir, 'steps.json'), steps);
    return r.value;
  };
  rmSync(join(runDir, COMPLETE_FILE), { force: true });
  const previous = readJsonFileIfExists<{ backend?: string }>(join(runDir, 'run.json'));
  if (previous?.backend && previous.backend !== record.backend) warn(`this run directory was started on the "${previous.backend}" backend; continuing on "${record.backend}"`);
  writeText(join(runDir, 'config.yaml'), params.configYaml);
  writeJson(join(runDir, 'run.json'), {
    backend: record.backend,
    startedAt: new Date(t0).toISOString(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    command: record.command ?? null,
    dataDir: record.dataDir ? resolve(record.dataDir) : null,
    imageSize: record.imageSize,
    channels: record.channels,
  });

  const inputs = checkInputs(await stages.prepare());
  const realSha256 = sha256(JSON.stringify(inputs.realIndices));
  const realStatsSha256 = inputs.realStats === undefined || inputs.realStats === null ? '' : sha256(JSON.stringify(inputs.realStats));

  // 1. The expert.
  const expertDir = join(runDir, 'expert');
  const expertPath = await timed('expert', async () => {
    const r = checkOutcome('expert', await stages.expert({ dir: expertDir, force }), 'path');
    return { key: r.key, reused: r.reused, value: r.path };
  });
  const expert = await stages.openExpert({ path: expertPath });
  if (!expert || typeof expert !== 'object' || typeof expert.sha256 !== 'string' || typeof expert.dispose !== 'function') fail(FN, `stages.openExpert must return { sha256, dispose }, got ${describe(expert)}`, TypeError);
  try {
    const ev = readJsonFileIfExists<{ accuracy: number | null; confusionMatrix: number[][] | null; classNames: string[]; numSamples: number }>(join(expertDir, 'eval.json'));
    if (ev?.accuracy !== null && ev?.accuracy !== undefined) {
      log(`fad: expert accuracy on ${ev.numSamples} held-out real images: ${(ev.accuracy * 100).toFixed(1)}%`);
      if (ev.confusionMatrix && params.formatConfusionMatrix) log(params.formatConfusionMatrix({ matrix: ev.confusionMatrix, classNames: ev.classNames }));
    }

    /** Samples into `dir` unless its manifest.json holds `key`. */
    const generateStep = async (dir: string, key: string, run: () => Promise<unknown>) => {
      const old = readJsonFileIfExists<{ key?: string }>(join(dir, 'manifest.json'));
      if (old?.key === key && !force) return { key, reused: true, value: old as unknown };
      return { key, reused: false, value: await run() };
    };
    /** Evaluates the set in `generatedDir` into `dir/eval.json` unless it holds the evaluate key. */
    const evaluateStep = async (name: string, dir: string, generatedDir: string, settings: object) => {
      const key = stepKey('evaluate', settings, { generated: sha256(readFileSync(join(generatedDir, 'manifest.json'))), expert: expert.sha256, data: inputs.fingerprint, real: realSha256 });
      const path = join(dir, 'eval.json');
      const old = readJsonFileIfExists<V & { key?: string }>(path);
      if (old?.key === key && !force) return { key, reused: true, value: old as V };
      const e = await stages.evaluate({ name, generatedDir, settings, expert });
      if (!e || typeof e !== 'object') fail(FN, `stages.evaluate must resolve to an evaluation object, got ${describe(e)}`, TypeError);
      writeJson(path, { ...e, key });
      return { key, reused: false, value: e };
    };

    // 2.-4. Each variant: train, generate, evaluate.
    const evaluations: Record<string, V> = {};
    const trainedModels: Record<string, string> = {};
    for (const variant of params.variants) {
      const alignment = variantAlignment(variant);
      const vdir = join(runDir, 'variants', variant);
      const trainDir = join(vdir, 'train');
      const trained = await timed(`train:${variant}`, async () => {
        // A checkpoint or finished run from other settings is stale: start that step over.
        const key = stages.trainVariantKey({ variant, alignment, expert });
        if (typeof key !== 'string' || key === '') fail(FN, `stages.trainVariantKey must return a non-empty string, got ${describe(key)}`, TypeError);
        let stepForce = force;
        if (isStale(trainDir, key)) {
          log(`fad: ${variant}: the config or inputs changed since the last run; training again`);
          stepForce = true;
        }
        const r = checkOutcome('trainVariant', await stages.trainVariant({ variant, alignment, dir: trainDir, force: stepForce, expert }), 'modelPath');
        return { key: r.key, reused: r.reused, value: r };
      });
      const genDir = join(vdir, 'generated');
      await timed(`generate:${variant}`, async () => {
        const key = stepKey('generate', params.generateSettings, { model: sha256(readFileSync(trained.modelPath)), realStats: realStatsSha256 });
        return generateStep(genDir, key, () => stages.generate({ variant, modelPath: trained.modelPath, dir: genDir, key }));
      });
      const e = await timed(`evaluate:${variant}`, () => evaluateStep(variant, vdir, genDir, params.evaluateSettings));
      evaluations[variant] = e;
      trainedModels[variant] = trained.modelPath;
      log(`fad: ${variant}: generation accuracy ${(e.generationAccuracy.overall * 100).toFixed(1)}%, SSIM diversity ${e.diversity.overall.generated.toFixed(3)} (real ${e.diversity.overall.real.toFixed(3)}), FD ${fixedOrNa(e.frechetDistance, 2)}, KID ${fixedOrNa(e.kid.mean, 4)}`);
    }

    // 5. DreamBooth arms (paper Fig. 4, second panel): the baseline model fine-tuned on one class,
    //    without and with feature alignment; generated with the token, evaluated on the class.
    const db = stages.dreamBooth;
    if (db) {
      const dbRoot = join(runDir, 'dreambooth');
      const evalSettings = { ...params.evaluateSettings, classes: [db.className], excludeClasses: [] };
      for (const arm of DREAMBOOTH_ARMS) {
        const adir = join(dbRoot, arm);
        const trained = await timed(`train:${arm}`, async () => {
          const r = checkOutcome('dreamBooth.train', await db.train({ arm, alignment: dreamBoothArmAlignment(arm), dir: join(adir, 'train'), priorPath: join(dbRoot, 'class-images.safetensors'), pretrained: trainedModels.baseline, expert, force }), 'modelPath');
          return { key: r.key, reused: r.reused, value: r };
        });
        const genDir = join(adir, 'generated');
        await timed(`generate:${arm}`, async () => {
          const key = stepKey('generate-dreambooth', params.generateSettings, { model: sha256(readFileSync(trained.modelPath)) });
          return generateStep(genDir, key, () => db.generate({ arm, modelPath: trained.modelPath, dir: genDir, key }));
        });
        const e = await timed(`evaluate:${arm}`, () => evaluateStep(arm, adir, genDir, evalSettings));
        evaluations[arm] = e;
        log(`fad: ${arm}: generation accuracy on "${db.className}" with token "${db.token}" ${(e.generationAccuracy.overall * 100).toFixed(1)}%, SSIM diversity ${e.diversity.overall.generated.toFixed(3)} (real ${e.diversity.overall.real.toFixed(3)})`);
      }
    }

    // 5b. Downstream utility of the variants' generated sets.
    const utility = stages.utility;
    if (utility) {
      await timed('utility', async () => {
        const r = await utility({ sets: params.variants.map((v) => ({ name: v, dir: join(runDir, 'variants', v, 'generated') })), dir: join(runDir, 'utility'), expert, force });
        if (!r || typeof r.key !== 'string' || !Number.isInteger(r.trained) || !Number.isInteger(r.reused) || typeof r.path !== 'string') fail(FN, `stages.utility must resolve to { key, trained, reused, path }, got ${describe(r)}`, TypeError);
        log(`fad: utility: ${r.trained} classifier(s) trained, ${r.reused} reused; ${r.path}`);
        return { key: r.key, reused: r.trained === 0, value: null };
      });
    }

    // 6. Report.
    const report = await timed('report', async () => {
      const r = await writeExperimentReport({ runDir });
      for (const w of r.warnings) warn(w);
      return { key: '', reused: false, value: r.html };
    });
    withExperimentFs(join(runDir, COMPLETE_FILE), 'write the completion marker', () =>
      writeCompleteMarker(runDir, { step: 'experiment', key: stepKey('experiment', params.config, {}), backend: record.backend, report, elapsedSeconds: (Date.now() - t0) / 1000 }),
    );
    log(`fad: experiment done in ${formatDuration((Date.now() - t0) / 1000)}`);
    return { runDir, report, evaluations, steps };
  } finally {
    expert.dispose();
  }
}

/**
 * Whether the training folder `dir` holds a run of another key: a finished run (complete.json) of
 * another key, or, unfinished, a checkpoint whose state does not hold `key`.
 */
function isStale(dir: string, key: string): boolean {
  const done = readCompleteMarker(dir);
  const checkpoint = join(dir, DIFFUSION_RUN_FILES.checkpoint);
  return done ? done.key !== key : existsSync(checkpoint) && !checkpointKeyMatches(checkpoint, key);
}

/** Whether the training checkpoint at `path` was written with `key` (its `state` metadata); a missing or damaged file is not. */
export function checkpointKeyMatches(path: string, key: string): boolean {
  try {
    return JSON.parse(readSafetensorsMetadata(new Uint8Array(readFileSync(path))).state).key === key;
  } catch {
    return false;
  }
}

function writeText(path: string, text: string): void {
  withExperimentFs(path, 'write', () => writeFileAtomicSync(path, text));
}

function writeJson(path: string, value: unknown): void {
  writeText(path, `${JSON.stringify(value, null, 2)}\n`);
}

function checkParams<X extends ExperimentExpert, V extends ExperimentEvaluationSummary>(p: RunAlignmentExperimentParams<X, V>): void {
  assertParamsObject(FN, p);
  assertKnownKeys(FN, p as unknown as Record<string, unknown>, PARAM_KEYS);
  if (typeof p.runDir !== 'string' || p.runDir === '') fail(FN, `runDir must be a non-empty string, got ${describe(p.runDir)}`, TypeError);
  if (!Array.isArray(p.variants) || p.variants.length === 0) fail(FN, `variants must be a non-empty list of ${EXPERIMENT_VARIANTS.join(', ')}, got ${describe(p.variants)}`, TypeError);
  p.variants.forEach((v, i) => {
    if (!(EXPERIMENT_VARIANTS as readonly string[]).includes(v)) fail(FN, `variants[${i}] must be one of ${EXPERIMENT_VARIANTS.join(', ')}, got ${describe(v)}`, RangeError);
  });
  if (p.force !== undefined && typeof p.force !== 'boolean') fail(FN, `force must be a boolean, got ${describe(p.force)}`, TypeError);
  const r = p.record;
  if (!r || typeof r !== 'object') fail(FN, `record must be { backend, command?, dataDir?, imageSize, channels }, got ${describe(r)}`, TypeError);
  if (typeof r.backend !== 'string' || r.backend === '') fail(FN, `record.backend must be a non-empty string, got ${describe(r.backend)}`, TypeError);
  for (const k of ['command', 'dataDir'] as const) if (r[k] !== undefined && r[k] !== null && typeof r[k] !== 'string') fail(FN, `record.${k} must be a string or null, got ${describe(r[k])}`, TypeError);
  for (const k of ['imageSize', 'channels'] as const) if (!Number.isInteger(r[k]) || r[k] < 1) fail(FN, `record.${k} must be a positive integer, got ${describe(r[k])}`, RangeError);
  if (p.config === undefined) fail(FN, 'config must be the effective config (any JSON value), got undefined', TypeError);
  if (typeof p.configYaml !== 'string') fail(FN, `configYaml must be a string (the text of config.yaml), got ${describe(p.configYaml)}`, TypeError);
  for (const k of ['generateSettings', 'evaluateSettings'] as const) if (!p[k] || typeof p[k] !== 'object' || Array.isArray(p[k])) fail(FN, `${k} must be an object, got ${describe(p[k])}`, TypeError);
  for (const k of ['log', 'warn', 'formatConfusionMatrix'] as const) if (p[k] !== undefined && typeof p[k] !== 'function') fail(FN, `${k} must be a function, got ${describe(p[k])}`, TypeError);
  const s = p.stages;
  if (!s || typeof s !== 'object') fail(FN, `stages must be an object of stage callbacks, got ${describe(s)}`, TypeError);
  assertKnownKeys(`${FN}: stages`, s as unknown as Record<string, unknown>, STAGE_KEYS);
  for (const k of ['prepare', 'expert', 'openExpert', 'trainVariantKey', 'trainVariant', 'generate', 'evaluate'] as const) if (typeof s[k] !== 'function') fail(FN, `stages.${k} must be a function, got ${describe(s[k])}`, TypeError);
  if (s.utility !== undefined && typeof s.utility !== 'function') fail(FN, `stages.utility must be a function, got ${describe(s.utility)}`, TypeError);
  const db = s.dreamBooth;
  if (db !== undefined) {
    if (!db || typeof db !== 'object') fail(FN, `stages.dreamBooth must be { className, token, train, generate }, got ${describe(db)}`, TypeError);
    for (const k of ['className', 'token'] as const) if (typeof db[k] !== 'string' || db[k] === '') fail(FN, `stages.dreamBooth.${k} must be a non-empty string, got ${describe(db[k])}`, TypeError);
    for (const k of ['train', 'generate'] as const) if (typeof db[k] !== 'function') fail(FN, `stages.dreamBooth.${k} must be a function, got ${describe(db[k])}`, TypeError);
    if (!p.variants.includes('baseline')) fail(FN, `variants must include "baseline" with stages.dreamBooth (the arms fine-tune its model), got ${describe(p.variants)}`, RangeError);
  }
}

function checkInputs(i: ExperimentInputs): ExperimentInputs {
  if (!i || typeof i !== 'object') fail(FN, `stages.prepare must resolve to { fingerprint, realIndices, realStats? }, got ${describe(i)}`, TypeError);
  if (typeof i.fingerprint !== 'string' || i.fingerprint === '') fail(FN, `stages.prepare must resolve to a non-empty fingerprint string, got ${describe(i.fingerprint)}`, TypeError);
  if (!Array.isArray(i.realIndices) || !i.realIndices.every((k) => Number.isInteger(k) && k >= 0)) fail(FN, `stages.prepare must resolve to realIndices as a list of image indices, got ${describe(i.realIndices)}`, TypeError);
  return i;
}

function checkOutcome<K extends 'path' | 'modelPath', T extends ExperimentStepOutcome & Record<K, string>>(stage: string, r: T, field: K): T {
  if (!r || typeof r !== 'object' || typeof r.key !== 'string' || typeof r.reused !== 'boolean' || typeof r[field] !== 'string') fail(FN, `stages.${stage} must resolve to { key, reused, ${field} }, got ${describe(r)}`, TypeError);
  return r;
}
