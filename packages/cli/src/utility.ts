/**
 * `fad utility`: does synthetic data help a downstream classifier? Reads the real data and its
 * saved split (`data.*`: the training split trains, the held-out validation split tests), one or
 * more synthetic sets written by `fad generate` (through their manifests), and runs
 * @fad/expert-models' `runUtility` over the protocols of `utility.*` (real-only at each fraction,
 * real + synthetic at each fraction and ratio, synthetic-only), K seeds each, then
 * `summarizeUtility` (means, 95% bootstrap CIs, paired gains over real-only).
 *
 * Resumable: every finished classifier is written atomically to `OUT/runs/<protocol>-s<seed>.json`
 * with a key (its protocol, seed, classifier, training settings, data, split and synthetic set); a
 * file whose key matches is reused, so Ctrl-C or a kill loses at most the classifier in progress.
 * `OUT/utility.json` is written (atomically) once every classifier is done.
 *
 * Shards (`job.shard`, `fad utility --shard I/N`): the work units are the (protocol, seed) pairs of
 * `planProtocols(...).runs`, in plan order; shard I trains its contiguous slice (`shardSlice`),
 * keeping each finished classifier in the shared `OUT/runs/` as above (a killed shard loses at most
 * the classifier in progress), then writes `OUT/I-of-N/` (through `OUT/I-of-N.tmp-<pid>` and a
 * rename): copies of its run files in `runs/` and `shard.json` (format `fad-utility-shard/1`: the
 * utility key, its units, the header of utility.json and what `summarizeUtility` needs). A finished
 * shard is kept when run again with the same settings. `mergeUtilityShards` (utility-shards.ts,
 * `fad merge`) assembles the utility.json of the unsharded run.
 *
 * Timing fields (they hold wall times, so they differ between any two runs): `createdAt`,
 * `wallTime`, `runs[].trainSeconds`/`evalSeconds`, `summary.protocols[].seconds`.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readSafetensorsMetadata, shardName, shardSlice, type ShardSpec } from '@fad/diffusion-core';
import {
  type ExpertConfig,
  planProtocols,
  runUtility,
  summarizeUtility,
  type UtilityPlan,
  type UtilityProtocolSummary,
  type UtilityRunRecord,
  type UtilitySummary,
} from '@fad/expert-models';
import type { FadConfig } from './config';
import { type DataWithSplit, type Logger, loadDataAndSplit } from './context';
import { CliError, InterruptedError } from './errors';
import { readGenerated, readManifest } from './evaluate';
import { assertNotDeletingInputs, removeStaleTemps } from './safety';
import { expertConfigFor } from './expert';
import { formatDuration, readJsonIfExists, sha256, stableStringify, stepKey, writeJsonAtomic } from './fsutil';
import type { GenerateManifest } from './generate';
import type { Interrupt } from './interrupt';

/** The downstream classifier when utility.preset is not set. */
export const UTILITY_DEFAULT_PRESET = { resnet: 'resnet18-kather', vit: 'vit-small-kather' } as const;

export interface SyntheticSetArg {
  name: string;
  dir: string;
}

export interface UtilityJob {
  cfg: FadConfig;
  synthetic: SyntheticSetArg[];
  out: string;
  backend: string;
  log: Logger;
  interrupt?: Interrupt;
  /** Retrain every classifier (deletes OUT/runs). */
  force?: boolean;
  /** The expert that aligned or guided the generators: the downstream classifier must differ from it. */
  generatorExpert?: { config: ExpertConfig; path: string } | null;
  /** The data and its split, already loaded (fad experiment); otherwise loaded from cfg.data (split by data.validationFraction and data.splitSeed). */
  data?: DataWithSplit;
  /** How to continue after an interruption. */
  resumeHint?: string;
  /** Train only this shard's (protocol, seed) pairs into OUT/I-of-N/ (see the file comment); only with `runUtilityShardJob`. */
  shard?: ShardSpec | null;
}

export interface UtilityShardJobResult {
  /** The shard's folder, OUT/I-of-N. */
  dir: string;
  shard: UtilityShardJson;
  trained: number;
  reused: number;
  /** True when the folder was finished before (same settings) and left as it was. */
  alreadyComplete: boolean;
}

/** The part of utility.json that does not depend on the classifiers' results or the clock. */
export type UtilityHeader = Pick<UtilityJson, 'key' | 'backend' | 'data' | 'classifier' | 'training' | 'synthetic'>;

/** What `summarizeUtility` needs besides the records. */
export interface UtilitySummaryInput {
  protocols: UtilityPlan['protocols'];
  seeds: number[];
  testLabels: number[];
  classNames: string[];
  bootstrap: { samples: number; seed: number; over: FadConfig['utility']['bootstrapOver'] };
}

/** `OUT/I-of-N/shard.json` of `fad utility --shard I/N`. */
export interface UtilityShardJson {
  format: typeof UTILITY_SHARD_FORMAT;
  index: number;
  count: number;
  /** The utility key (settings, classifier, data, split, synthetic sets): the same for every shard of a run. */
  key: string;
  /** The shard's (protocol, seed) units [start, end) of `total` (plan order). */
  units: { start: number; end: number; total: number };
  header: UtilityHeader;
  summaryInput: UtilitySummaryInput;
  /** The shard's run files (`runs/<protocol>-s<seed>.json`, as in OUT/runs of an unsharded run). */
  runs: Array<{ protocolId: string; seed: number; file: string }>;
  /** Timing: when the shard finished and how long its invocation took. */
  createdAt: string;
  elapsedSeconds: number;
}

export const UTILITY_SHARD_FORMAT = 'fad-utility-shard/1';

/** A run file of OUT/runs (and of a shard's runs/). */
export interface UtilityRunFile {
  format: typeof RUN_FORMAT;
  key: string;
  record: UtilityRunRecord;
}

/** The name of a run's file in runs/. */
export const utilityRunFileName = (protocolId: string, seed: number): string => `${protocolId}-s${seed}.json`;

/** utility.json from its parts (the unsharded run and fad merge both build it here, so the bytes agree). */
export function assembleUtilityJson(p: { header: UtilityHeader; summaryInput: UtilitySummaryInput; records: UtilityRunRecord[]; createdAt: string; thisInvocation: number }): UtilityJson {
  const s = p.summaryInput;
  const summary = summarizeUtility({ protocols: s.protocols, seeds: s.seeds, records: p.records, testLabels: Int32Array.from(s.testLabels), classNames: s.classNames, bootstrap: s.bootstrap });
  const classifierSeconds = p.records.map((x) => x.trainSeconds + x.evalSeconds);
  const { key, backend, data, classifier, training, synthetic } = p.header;
  return {
    format: 'fad-utility/1',
    key,
    createdAt: p.createdAt,
    backend,
    data,
    classifier,
    training,
    synthetic,
    summary,
    runs: p.records.map(({ predictions: _p, ...rest }) => rest),
    wallTime: {
      perClassifierMean: classifierSeconds.reduce((a, b) => a + b, 0) / classifierSeconds.length,
      classifiersTotal: classifierSeconds.reduce((a, b) => a + b, 0),
      thisInvocation: p.thisInvocation,
    },
  };
}

export interface UtilityJobResult {
  path: string;
  json: UtilityJson;
  trained: number;
  reused: number;
  key: string;
}

export interface UtilityJson {
  format: 'fad-utility/1';
  key: string;
  createdAt: string;
  backend: string;
  data: { dir: string; fingerprint: string; imageSize: number; channels: number; classNames: string[]; numTrain: number; numTest: number; validationFraction: number; splitSeed: number };
  classifier: { preset: string; config: ExpertConfig };
  training: { epochs: number; batchSize: number; learningRate: number; weightDecay: number; augment: boolean };
  synthetic: Array<{ name: string; dir: string; manifestSha256: string; numImages: number; perClass: Record<string, number>; ignoredClasses: string[]; sampler: string; steps: number; expertGuidance: GenerateManifest['expertGuidance'] | null }>;
  summary: UtilitySummary;
  /** Every classifier without its test predictions (those are in runs/). */
  runs: Array<Omit<UtilityRunRecord, 'predictions'>>;
  wallTime: { perClassifierMean: number; classifiersTotal: number; thisInvocation: number };
}

/** The downstream classifier's architecture for the data (utility.arch/preset/architecture). */
export function utilityClassifierConfig(cfg: FadConfig, numClasses: number): { preset: string; config: ExpertConfig } {
  const u = cfg.utility;
  const preset = u.preset ?? UTILITY_DEFAULT_PRESET[u.arch];
  try {
    return { preset, config: expertConfigFor({ ...cfg, expert: { ...cfg.expert, arch: u.arch, preset, architecture: u.architecture, pretrained: null } }, numClasses) };
  } catch (e) {
    // expertConfigFor names the expert.* keys; here they are utility.* keys.
    throw new CliError((e as Error).message.replace(/\bexpert\.(preset|architecture|arch)\b/g, 'utility.$1'));
  }
}

/** The architecture config stored in an expert checkpoint (its metadata only), or null when unreadable. */
export function checkpointExpertConfig(path: string): ExpertConfig | null {
  try {
    const meta = readSafetensorsMetadata(new Uint8Array(readFileSync(path)));
    return meta.config ? (JSON.parse(meta.config) as ExpertConfig) : null;
  } catch {
    return null;
  }
}

/** Throws when the downstream classifier has the architecture of the generator's expert. */
export function checkDiffersFromExpert(classifier: ExpertConfig, expert: { config: ExpertConfig; path: string } | null | undefined, what: string): void {
  if (!expert) return;
  if (stableStringify(classifier) === stableStringify(expert.config)) {
    throw new CliError(
      `the downstream classifier (utility.arch/preset/architecture) is the same architecture as ${what} ${expert.path}: the utility test would measure how well the generator learned to please that expert. Choose another utility.preset (e.g. resnet18-kather or vit-small-kather) or other utility.architecture`,
    );
  }
}

interface LoadedSynthetic {
  name: string;
  dir: string;
  manifest: GenerateManifest;
  manifestSha256: string;
  images: Float32Array;
  labels: Int32Array;
  perClass: Record<string, number>;
  ignoredClasses: string[];
}

/** Reads a synthetic set and checks it against the real data; labels follow the real class order (-1: a class the real data lacks). */
function checkSize(set: SyntheticSetArg & { manifest: GenerateManifest }, imageSize: number, channels: number): void {
  const m = set.manifest;
  if (m.imageSize !== imageSize || m.channels !== channels) {
    throw new CliError(
      `synthetic set ${set.name} (${set.dir}) has ${m.imageSize}x${m.imageSize}x${m.channels} images, the real data is read at ${imageSize}x${imageSize}x${channels} (data.imageSize, data.channels): generate at the real size or set data.imageSize/data.channels to match`,
    );
  }
}

async function loadSynthetic(set: SyntheticSetArg & { manifest: GenerateManifest }, classNames: string[]): Promise<LoadedSynthetic> {
  const { manifest } = set;
  const perClass: Record<string, number> = {};
  for (const img of manifest.images) perClass[img.class] = (perClass[img.class] ?? 0) + 1;
  const missing = classNames.filter((c) => !perClass[c]);
  if (missing.length) {
    throw new CliError(`synthetic set ${set.name} (${set.dir}) has no image of class${missing.length > 1 ? 'es' : ''} ${missing.map((c) => `"${c}"`).join(', ')} (its classes: ${Object.keys(perClass).join(', ') || 'none'}); generate every class of the real data`);
  }
  const ignoredClasses = Object.keys(perClass).filter((c) => !classNames.includes(c));
  const images = await readGenerated(set.dir, manifest);
  const labels = Int32Array.from(manifest.images.map((img) => classNames.indexOf(img.class)));
  return { ...set, manifest, manifestSha256: sha256(readFileSync(join(set.dir, 'manifest.json'))), images, labels, perClass, ignoredClasses };
}

function gather(images: Float32Array, labels: Int32Array, per: number, idx: number[]): { images: Float32Array; labels: Int32Array } {
  const out = new Float32Array(idx.length * per);
  idx.forEach((k, i) => out.set(images.subarray(k * per, (k + 1) * per), i * per));
  return { images: out, labels: Int32Array.from(idx.map((k) => labels[k])) };
}

const RUN_FORMAT = 'fad-utility-run/1';

/** Runs the utility experiment into `job.out` (see the file comment). */
export async function runUtilityJob(job: UtilityJob): Promise<UtilityJobResult> {
  if (job.shard) throw new CliError('runUtilityJob: a shard runs with runUtilityShardJob');
  const r = await utilityRun(job);
  if (r.kind !== 'all') throw new Error('unreachable');
  return r.result;
}

/** Runs shard `job.shard` of the utility experiment into `job.out`/I-of-N (see the file comment). */
export async function runUtilityShardJob(job: UtilityJob & { shard: ShardSpec }): Promise<UtilityShardJobResult> {
  const r = await utilityRun(job);
  if (r.kind !== 'shard') throw new Error('unreachable');
  return r.result;
}

async function utilityRun(job: UtilityJob): Promise<{ kind: 'all'; result: UtilityJobResult } | { kind: 'shard'; result: UtilityShardJobResult }> {
  const { cfg, log } = job;
  const shard = job.shard ?? null;
  const u = cfg.utility;
  const t0 = Date.now();
  const out = resolve(job.out);
  if (job.synthetic.length === 0) throw new CliError('give at least one synthetic set: --synthetic NAME=DIR (a folder written by fad generate)');
  const names = job.synthetic.map((s) => s.name);
  const seeds = Array.from({ length: u.seeds }, (_, i) => i);
  let plan;
  try {
    plan = planProtocols({ fractions: u.fractions, ratios: u.ratios, syntheticSets: names, seeds, includeSyntheticOnly: u.syntheticOnly });
  } catch (e) {
    throw new CliError(`utility: ${(e as Error).message.replace(/^planProtocols: /, '').replace(/^syntheticSets/, '--synthetic names')}`);
  }
  // Everything that can be wrong with the inputs is checked before anything is written or trained.
  const manifests = job.synthetic.map((s) => ({ ...s, manifest: readManifest(s.dir) }));
  for (const m of manifests) checkSize(m, cfg.data.imageSize, cfg.data.channels);
  const data = job.data ?? (await loadDataAndSplit(cfg, log));
  const { dataset, split } = data;
  const classNames = dataset.classNames;
  const { preset, config } = utilityClassifierConfig(cfg, classNames.length);
  checkDiffersFromExpert(config, job.generatorExpert, 'the generator\'s expert');
  for (const m of manifests) {
    const eg = m.manifest.expertGuidance;
    const guide = eg && existsSync(eg.expert) ? checkpointExpertConfig(eg.expert) : null;
    if (guide) checkDiffersFromExpert(config, { config: guide, path: eg!.expert }, `the expert that guided synthetic set ${m.name}`);
  }
  if (split.validation.length === 0) throw new CliError('no held-out real test images: data.validationFraction is 0; the utility test needs the validation split (e.g. --set data.validationFraction=0.2)');
  const per = dataset.imageSize * dataset.imageSize * dataset.channels;
  const train = gather(dataset.images, dataset.labels, per, split.train);
  const test = gather(dataset.images, dataset.labels, per, split.validation);
  const synthetic: LoadedSynthetic[] = [];
  for (const m of manifests) synthetic.push(await loadSynthetic(m, classNames));
  // A fraction that leaves a class empty is refused here, before training (planned sets are seed-independent in size).
  for (const p of plan.protocols) {
    if (p.kind === 'real') {
      for (const [c, name] of classNames.entries()) {
        const n = train.labels.reduce((a, y) => a + (y === c ? 1 : 0), 0);
        if (Math.round(n * (p.fraction as number)) === 0 && p.fraction !== 1) {
          throw new CliError(`utility.fractions: ${p.fraction} leaves class "${name}" with no training images (it has ${n} in the training split; round(${n} * ${p.fraction}) = 0); use a larger fraction`);
        }
      }
    }
  }
  for (const s of synthetic) if (s.ignoredClasses.length) log.info(`fad: synthetic set ${s.name}: class(es) ${s.ignoredClasses.join(', ')} are not in the real data and are not used`);

  const training = { epochs: u.epochs, batchSize: u.batchSize, learningRate: u.learningRate, weightDecay: u.weightDecay, augment: u.augment };
  const inputs = { data: dataset.fingerprint, split: sha256(JSON.stringify({ train: split.train, validation: split.validation })) };
  const synSha = Object.fromEntries(synthetic.map((s) => [s.name, s.manifestSha256]));
  const runKey = (protocolId: string, seed: number): string => {
    const p = plan.protocols.find((x) => x.id === protocolId)!;
    return stepKey('utility-run', { protocol: p, seed, classifier: config, training }, { ...inputs, synthetic: p.synthetic ? synSha[p.synthetic] : '' });
  };
  const runsDir = join(out, 'runs');
  const fileOf = (protocolId: string, seed: number) => join(runsDir, utilityRunFileName(protocolId, seed));
  const key = stepKey('utility', { utility: u, classifier: config, seed: cfg.seed }, { ...inputs, synthetic: sha256(stableStringify(synSha)) });
  const header: UtilityHeader = {
    key,
    backend: job.backend,
    data: { dir: dataset.dir, fingerprint: dataset.fingerprint, imageSize: dataset.imageSize, channels: dataset.channels, classNames, numTrain: split.train.length, numTest: split.validation.length, validationFraction: split.validationFraction, splitSeed: split.seed },
    classifier: { preset, config },
    training,
    synthetic: synthetic.map((s) => ({
      name: s.name, dir: s.dir, manifestSha256: s.manifestSha256, numImages: s.manifest.images.length, perClass: s.perClass, ignoredClasses: s.ignoredClasses,
      sampler: s.manifest.sampler, steps: s.manifest.steps, expertGuidance: s.manifest.expertGuidance ?? null,
    })),
  };
  const summaryInput: UtilitySummaryInput = { protocols: plan.protocols, seeds, testLabels: Array.from(test.labels), classNames, bootstrap: { samples: u.bootstrapSamples, seed: cfg.seed, over: u.bootstrapOver } };
  const units = shard ? { ...shardSlice({ shard, units: plan.runs.length }), total: plan.runs.length } : null;
  const shardRuns = units ? plan.runs.slice(units.start, units.end) : null;
  const shardDir = shard ? join(out, shardName(shard)) : '';
  if (shard && units && shardRuns) {
    const done = readUtilityShard(shardDir);
    if (done && !job.force) {
      if (done.key === key && done.index === shard.index && done.count === shard.count && done.units.start === units.start && done.units.end === units.end && stableStringify(done.header) === stableStringify(header)) {
        log.info(`fad: shard ${shardName(shard)} is already complete in ${shardDir} (same settings); nothing to do`);
        return { kind: 'shard', result: { dir: shardDir, shard: done, trained: 0, reused: 0, alreadyComplete: true } };
      }
      throw new CliError(`${shardDir} holds shard ${shardName(shard)} of another run (other settings or inputs); remove it, choose another --out, or pass --force to replace it`);
    }
  }
  if (shard && job.force && shardRuns) {
    // Only this shard's classifiers: the other shards' share OUT/runs.
    for (const r of shardRuns) rmSync(fileOf(r.protocolId, r.seed), { force: true });
  } else if (job.force && existsSync(runsDir)) {
    assertNotDeletingInputs({ target: runsDir, inputs: [{ what: 'the data folder', path: dataset.dir }, ...job.synthetic.map((s) => ({ what: `the synthetic set ${s.name}`, path: s.dir }))] });
    rmSync(runsDir, { recursive: true, force: true });
  }
  const store = {
    get: ({ protocolId, seed }: { protocolId: string; seed: number }) => {
      const f = readJsonIfExists<{ format: string; key: string; record: UtilityRunRecord }>(fileOf(protocolId, seed));
      return f?.format === RUN_FORMAT && f.key === runKey(protocolId, seed) ? f.record : null;
    },
    put: (record: UtilityRunRecord) => writeJsonAtomic(fileOf(record.protocolId, record.seed), { format: RUN_FORMAT, key: runKey(record.protocolId, record.seed), record }),
  };
  log.info(
    `fad: utility${shard && units ? ` shard ${shardName(shard)}: classifiers ${units.start + 1}..${units.end} of` : ':'} ${plan.protocols.length} protocols x ${seeds.length} seed(s) = ${plan.runs.length} classifiers (${preset}, ${u.epochs} epoch(s)); ${split.train.length} real training images, ${split.validation.length} held-out real test images; synthetic: ${synthetic.map((s) => `${s.name} (${s.manifest.images.length})`).join(', ')}`,
  );
  const r = await runUtility({
    classNames, imageSize: dataset.imageSize, channels: dataset.channels, train, test,
    synthetic: Object.fromEntries(synthetic.map((s) => [s.name, { images: s.images, labels: s.labels }])),
    protocols: plan.protocols, seeds, classifier: config, training, store, ...(shardRuns ? { runs: shardRuns } : {}),
    shouldStop: job.interrupt ? () => job.interrupt!.requested : undefined,
    onEvent: (e) => {
      if (e.kind === 'reused') log.info(`fad: utility [${e.index}/${e.total}] ${e.record.protocolId} seed ${e.record.seed}: finished before (accuracy ${pct(e.record.accuracy)}); reused`);
      else if (e.kind === 'start') log.info(`fad: utility [${e.index}/${e.total}] ${e.protocolId} seed ${e.seed}: training on ${e.numTrain} images${e.repeatedClasses.length ? ` (synthetic images repeat in ${e.repeatedClasses.join(', ')}: the set has fewer than the ratio asks)` : ''}`);
      else if (e.kind === 'epoch' && !log.quiet) log.info(`fad: utility [${e.index}/${e.total}]   epoch ${e.epoch}/${e.epochs} loss ${e.loss.toFixed(3)}`);
      else if (e.kind === 'done') log.info(`fad: utility [${e.index}/${e.total}] ${e.record.protocolId} seed ${e.record.seed}: accuracy ${pct(e.record.accuracy)}, macro-F1 ${pct(e.record.macroF1)} (${formatDuration(e.record.trainSeconds + e.record.evalSeconds)})`);
    },
  });
  if (r.interrupted) {
    throw new InterruptedError(`interrupted: ${r.records.length} of ${shardRuns?.length ?? plan.runs.length} classifiers are finished and kept in ${runsDir}; ${job.resumeHint ?? 'run the same command again to continue'}`);
  }
  if (shard && units && shardRuns) {
    // The shard's folder: copies of its run files, shard.json last, renamed into place when complete.
    removeStaleTemps({ dir: out, prefix: `${shardName(shard)}.tmp-`, log: log.info });
    const tmp = `${shardDir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    try {
      mkdirSync(join(tmp, 'runs'), { recursive: true });
      const files = shardRuns.map((x) => ({ ...x, file: `runs/${utilityRunFileName(x.protocolId, x.seed)}` }));
      for (const f of files) copyFileSync(fileOf(f.protocolId, f.seed), join(tmp, f.file));
      const record: UtilityShardJson = {
        format: UTILITY_SHARD_FORMAT, index: shard.index, count: shard.count, key, units, header, summaryInput, runs: files,
        createdAt: new Date().toISOString(), elapsedSeconds: (Date.now() - t0) / 1000,
      };
      writeJsonAtomic(join(tmp, 'shard.json'), record, 'the shard record');
      if (existsSync(shardDir)) rmSync(shardDir, { recursive: true, force: true });
      renameSync(tmp, shardDir);
      return { kind: 'shard', result: { dir: shardDir, shard: record, trained: r.trained, reused: r.reused, alreadyComplete: false } };
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }
  const json = assembleUtilityJson({ header, summaryInput, records: r.records, createdAt: new Date().toISOString(), thisInvocation: (Date.now() - t0) / 1000 });
  const path = join(out, 'utility.json');
  writeJsonAtomic(path, json);
  return { kind: 'all', result: { path, json, trained: r.trained, reused: r.reused, key } };
}

/** The shard.json of a finished utility shard folder, or null. */
export function readUtilityShard(dir: string): UtilityShardJson | null {
  const j = readJsonIfExists<UtilityShardJson>(join(dir, 'shard.json'));
  return j && j.format === UTILITY_SHARD_FORMAT ? j : null;
}

const pct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '–');
const pts = (v: number) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)}` : '–');
const ciPct = (c: [number, number]) => `[${pct(c[0]).replace('%', '')}, ${pct(c[1])}]`;
const ciPts = (c: [number, number]) => `[${pts(c[0])}, ${pts(c[1])}]`;
const secs = (v: number) => (v < 60 ? `${v.toFixed(1)}s` : formatDuration(v));

/** The table `fad utility` prints: one row per protocol. */
export function formatUtilityTable(json: UtilityJson): string {
  const rows = json.summary.protocols.map((p: UtilityProtocolSummary) => [
    p.id,
    String(Math.round(p.numTrain)),
    `${pct(p.accuracy.mean)} ${ciPct(p.accuracy.ci95)}`,
    `${pct(p.macroF1.mean)} ${ciPct(p.macroF1.ci95)}`,
    p.gain ? `${pts(p.gain.accuracy.mean)} ${ciPts(p.gain.accuracy.ci95)}` : '',
    p.gain ? `${pts(p.gain.macroF1.mean)} ${ciPts(p.gain.macroF1.ci95)}` : '',
    secs(p.seconds.perClassifier),
  ]);
  const head = ['protocol', 'train imgs', 'accuracy [95% CI]', 'macro-F1 [95% CI]', 'gain acc, pts [CI]', 'gain F1, pts [CI]', 'time/classifier'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  const s = json.summary;
  return [
    `downstream classifier ${json.classifier.preset}, ${s.protocols[0]?.seeds.length ?? 0} seed(s) per protocol, tested on ${s.numTest} held-out real images; means over seeds, 95% CIs by ${s.bootstrap.method} (${s.bootstrap.samples} replicates); gains over real-only at the same fraction (synthetic-only: over the largest fraction)`,
    line(head),
    ...rows.map(line),
    `wall time: ${secs(json.wallTime.perClassifierMean)} per classifier, ${secs(json.wallTime.classifiersTotal)} for all ${json.runs.length} (train + evaluate, on ${json.backend})`,
  ].join('\n');
}
