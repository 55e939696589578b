/**
 * The utility study into a folder (Node only: part of `@fad/expert-models/node`): does synthetic
 * data help a downstream classifier? It reads one or more generated sets through their manifests
 * (`readGeneratedSetManifest`/`readGeneratedSetImages` of `@fad/diffusion-core/node`; labels follow
 * the real data's class order by class name, images of a class the real data lacks are not used),
 * runs `runUtility` over the protocols of `planProtocols` (real-only at each fraction of the real
 * training split, real + synthetic at each fraction and ratio, synthetic-only), K seeds each, on the
 * real split's held-out images, then `summarizeUtility` (means, 95% bootstrap CIs, paired gains).
 *
 * Resumable: every finished classifier is written atomically to `OUT/runs/<protocol>-s<seed>.json`
 * with a key (its protocol, seed, classifier, training settings, data, split and synthetic set); a
 * file whose key matches is reused, so a stop or a kill loses at most the classifier in progress.
 * `OUT/utility.json` is written (atomically) once every classifier is done (see utility-files.ts).
 *
 * Shards (`runUtilityStudyShard`): the work units are the (protocol, seed) pairs of
 * `planProtocols(...).runs`, in plan order; shard I trains its contiguous slice (`shardSlice`),
 * keeping each finished classifier in the shared `OUT/runs/` as above, then writes `OUT/I-of-N/`
 * (through `OUT/I-of-N.tmp-<pid>` and a rename): copies of its run files in `runs/` and
 * `shard.json` (the run's key, its units, the header of utility.json and what `summarizeUtility`
 * needs). A finished shard is kept when run again with the same settings; `mergeUtilityShards`
 * assembles the utility.json of the unsharded run.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { shardName, shardSlice, type ShardSpec } from '@fad/diffusion-core';
import {
  assertNotReplacingInputs,
  formatDuration,
  type GeneratedSetManifest,
  GenerationRunError,
  readGeneratedSetImages,
  readGeneratedSetManifest,
  readJsonFileIfExists,
  removeStaleTemps,
  sha256,
  stableStringify,
  stepKey,
} from '@fad/diffusion-core/node';
import { type ExpertConfig, planProtocols, resolveExpertConfig, runUtility, type UtilityRunRecord } from '@fad/expert-models';
import { assertBoolean, assertInt, assertKnownKeys, assertNumber, assertObject, assertOneOf, show } from '../validate';
import { percent } from './format-utility-table';
import { checkDiffersFromExpert, checkpointExpertConfig } from './utility-classifier-check';
import {
  assembleUtilityJson,
  readUtilityShard,
  UTILITY_RUN_FORMAT,
  UTILITY_SHARD_FORMAT,
  type UtilityHeader,
  type UtilityJson,
  utilityRunFileName,
  type UtilityRunFile,
  type UtilityShardJson,
  type UtilitySummaryInput,
  writeJsonFile,
} from './utility-files';
import { UtilityRunError } from './utility-run-error';

/** The real data and its split: the training split trains, the held-out validation split tests. */
export interface UtilityRealData {
  /** Where the images came from (recorded in utility.json; never replaced by `force`). */
  dir: string;
  /** A hash identifying the data (part of the keys), e.g. `loadImageFolder`'s `fingerprint`. */
  fingerprint: string;
  /** Class names in label order. */
  classNames: string[];
  imageSize: number;
  channels: number;
  /** [N, size, size, channels], row-major, in the classifier's input range. */
  images: Float32Array;
  labels: Int32Array;
  split: {
    /** Indices into the images. */
    train: number[];
    validation: number[];
    /** How the split was made (recorded in utility.json). */
    validationFraction: number;
    seed: number;
  };
}

/** The downstream classifier: a preset's name (recorded) and its architecture for the data. */
export interface UtilityClassifier {
  preset: string;
  config: ExpertConfig;
}

/** The study's settings (the `fad` CLI passes its `utility` config section as it is). */
export interface UtilityStudySettings {
  /** Shares of the real training split, each in (0, 1], distinct. */
  fractions: number[];
  /** Synthetic:real ratios, each > 0, distinct (may be empty). */
  ratios: number[];
  /** K: the classifiers of every protocol train with seeds 0..K-1. */
  seeds: number;
  /** Also train on each synthetic set alone. */
  syntheticOnly: boolean;
  epochs: number;
  batchSize: number;
  learningRate: number;
  weightDecay: number;
  /** The experts' robustness augmentation. */
  augment: boolean;
  /** Bootstrap replicates of the 95% intervals. */
  bootstrapSamples: number;
  /** What the bootstrap redraws. */
  bootstrapOver: 'seeds-and-images' | 'images';
  /**
   * How the caller chose the classifier (the `fad` CLI's `utility.arch`, `utility.preset`,
   * `utility.architecture`): not used, only part of the run's key, so that folders keep theirs.
   */
  arch?: string;
  preset?: string | null;
  architecture?: Record<string, unknown>;
}

/** Parameters of {@link runUtilityStudy}. */
export interface RunUtilityStudyParams {
  /**
   * The real data with its split, or a function loading it: called once the synthetic sets'
   * manifests are read and the plan is checked, so that a wrong set fails before a slow load.
   */
  data: UtilityRealData | (() => Promise<UtilityRealData>);
  /** The synthetic sets: a name (letters, digits, `_`, `-`, `.`; not `real`) and a folder written by `generateImageSet`. */
  synthetic: ReadonlyArray<{ name: string; dir: string }>;
  /** The run folder (`utility.json`, `runs/`; a shard's `I-of-N/`). */
  out: string;
  /** The downstream classifier, or a function of the real data's class names giving it. */
  classifier: UtilityClassifier | ((p: { classNames: string[] }) => UtilityClassifier);
  settings: UtilityStudySettings;
  /** The seed of the bootstrap CIs. */
  seed: number;
  /** Recorded in utility.json (e.g. `tf.getBackend()`). */
  backend: string;
  /** Retrain every classifier: deletes OUT/runs (a shard: only its classifiers' run files). */
  force?: boolean;
  /**
   * The expert that aligned or guided the generators: the classifier must not be its architecture.
   * Experts that guided a set (its manifest's `expertGuidance.expert`, when that file exists) are
   * checked too.
   */
  generatorExpert?: { config: ExpertConfig; path: string } | null;
  /** Checked between training steps: true stops the run (a UtilityRunError `interrupted`; the finished classifiers are kept). */
  shouldStop?: () => boolean;
  /** Progress lines (one per classifier started and finished, and per epoch). */
  log?: (message: string) => void;
}

/** Parameters of {@link runUtilityStudyShard}. */
export interface RunUtilityStudyShardParams extends RunUtilityStudyParams {
  /** This shard's (protocol, seed) pairs go into `OUT/I-of-N/`. */
  shard: ShardSpec;
}

/** What {@link runUtilityStudy} wrote. */
export interface RunUtilityStudyResult {
  /** `OUT/utility.json`. */
  path: string;
  json: UtilityJson;
  trained: number;
  reused: number;
  /** The run's key (also `json.key`). */
  key: string;
}

/** What {@link runUtilityStudyShard} wrote. */
export interface RunUtilityStudyShardResult {
  /** The shard's folder, OUT/I-of-N. */
  dir: string;
  shard: UtilityShardJson;
  trained: number;
  reused: number;
  /** True when the folder was finished before (same settings) and left as it was. */
  alreadyComplete: boolean;
}

const KEYS = ['data', 'synthetic', 'out', 'classifier', 'settings', 'seed', 'backend', 'force', 'generatorExpert', 'shouldStop', 'log', 'shard'];
const SETTINGS_KEYS = ['fractions', 'ratios', 'seeds', 'syntheticOnly', 'epochs', 'batchSize', 'learningRate', 'weightDecay', 'augment', 'bootstrapSamples', 'bootstrapOver', 'arch', 'preset', 'architecture'];

function checkParams(fn: string, p: RunUtilityStudyParams & { shard?: ShardSpec }): void {
  assertObject(fn, 'params', p);
  assertKnownKeys(fn, '', p, KEYS);
  if (typeof p.data !== 'function') assertObject(fn, 'data', p.data);
  if (!Array.isArray(p.synthetic) || !p.synthetic.every((s) => s !== null && typeof s === 'object' && typeof s.name === 'string' && typeof s.dir === 'string' && s.dir !== '')) {
    throw new TypeError(`${fn}: synthetic must be an array of { name, dir } (dir: a folder written by generateImageSet), got ${show(p.synthetic)}`);
  }
  if (typeof p.out !== 'string' || p.out === '') throw new TypeError(`${fn}: out must be a non-empty string (the run folder), got ${show(p.out)}`);
  if (typeof p.classifier !== 'function') {
    assertObject(fn, 'classifier', p.classifier);
    checkClassifier(fn, p.classifier);
  }
  const s = p.settings;
  assertObject(fn, 'settings', s);
  assertKnownKeys(fn, 'settings', s, SETTINGS_KEYS);
  assertInt(fn, 'settings.seeds', s.seeds, 1);
  assertBoolean(fn, 'settings.syntheticOnly', s.syntheticOnly);
  assertInt(fn, 'settings.epochs', s.epochs, 1);
  assertInt(fn, 'settings.batchSize', s.batchSize, 1);
  assertNumber(fn, 'settings.learningRate', s.learningRate, { min: 0, minExclusive: true });
  assertNumber(fn, 'settings.weightDecay', s.weightDecay, { min: 0 });
  assertBoolean(fn, 'settings.augment', s.augment);
  assertInt(fn, 'settings.bootstrapSamples', s.bootstrapSamples, 1);
  assertOneOf(fn, 'settings.bootstrapOver', s.bootstrapOver, ['seeds-and-images', 'images'] as const);
  assertInt(fn, 'seed', p.seed, 0, 0xffffffff);
  if (typeof p.backend !== 'string' || p.backend === '') throw new TypeError(`${fn}: backend must be a non-empty string, got ${show(p.backend)}`);
  if (p.force !== undefined) assertBoolean(fn, 'force', p.force);
  const ge = p.generatorExpert;
  if (ge !== undefined && ge !== null && (typeof ge !== 'object' || ge.config === null || typeof ge.config !== 'object' || typeof ge.path !== 'string')) {
    throw new TypeError(`${fn}: generatorExpert must be null or { config: ExpertConfig, path: string }, got ${show(ge)}`);
  }
  if (p.shouldStop !== undefined && typeof p.shouldStop !== 'function') throw new TypeError(`${fn}: shouldStop must be a function, got ${show(p.shouldStop)}`);
  if (p.log !== undefined && typeof p.log !== 'function') throw new TypeError(`${fn}: log must be a function, got ${show(p.log)}`);
}

function checkClassifier(fn: string, c: UtilityClassifier): void {
  if (typeof c.preset !== 'string' || c.preset === '' || c.config === null || typeof c.config !== 'object') {
    throw new TypeError(`${fn}: classifier must be { preset: a non-empty string, config: ExpertConfig }, got ${show(c)}`);
  }
  resolveExpertConfig(c.config);
}

function checkData(fn: string, d: UtilityRealData): void {
  assertObject(fn, 'data', d);
  if (typeof d.dir !== 'string' || typeof d.fingerprint !== 'string') throw new TypeError(`${fn}: data.dir and data.fingerprint must be strings, got ${show(d.dir)}, ${show(d.fingerprint)}`);
  if (!Array.isArray(d.classNames) || d.classNames.length < 2 || !d.classNames.every((c) => typeof c === 'string')) throw new TypeError(`${fn}: data.classNames must be an array of at least 2 class names, got ${show(d.classNames)}`);
  assertInt(fn, 'data.imageSize', d.imageSize, 1);
  assertInt(fn, 'data.channels', d.channels, 1);
  if (!(d.images instanceof Float32Array)) throw new TypeError(`${fn}: data.images must be a Float32Array, got ${show(d.images)}`);
  if (!(d.labels instanceof Int32Array)) throw new TypeError(`${fn}: data.labels must be an Int32Array, got ${show(d.labels)}`);
  const per = d.imageSize * d.imageSize * d.channels;
  if (d.images.length !== d.labels.length * per) throw new RangeError(`${fn}: data.images has ${d.images.length} values, expected ${d.labels.length} images x ${per} (labels.length x size x size x channels)`);
  assertObject(fn, 'data.split', d.split);
  for (const side of ['train', 'validation'] as const) {
    const idx = d.split[side];
    if (!Array.isArray(idx) || !idx.every((i) => Number.isInteger(i) && i >= 0 && i < d.labels.length)) throw new RangeError(`${fn}: data.split.${side} must be an array of image indices in [0, ${d.labels.length}), got ${show(idx)}`);
  }
  assertNumber(fn, 'data.split.validationFraction', d.split.validationFraction, { min: 0, max: 1 });
  assertInt(fn, 'data.split.seed', d.split.seed, 0, 0xffffffff);
}

interface ReadSet {
  name: string;
  dir: string;
  manifest: GeneratedSetManifest<unknown, unknown>;
}

/** The set's manifest, its read errors as UtilityRunErrors naming the set. */
function readManifest(set: { name: string; dir: string }): ReadSet {
  try {
    return { ...set, manifest: readGeneratedSetManifest<unknown, unknown>({ dir: set.dir }) };
  } catch (e) {
    if (!(e instanceof GenerationRunError)) throw e;
    throw new UtilityRunError(e.code === 'not-generated-set' ? 'no-manifest' : 'bad-manifest', e.message, { name: set.name, dir: set.dir, path: e.details.path }, e);
  }
}

interface LoadedSynthetic extends ReadSet {
  manifestSha256: string;
  images: Float32Array;
  labels: Int32Array;
  perClass: Record<string, number>;
  ignoredClasses: string[];
}

/** Reads a synthetic set's images; labels follow the real class order (-1: a class the real data lacks, not used). */
async function loadSynthetic(set: ReadSet, classNames: string[]): Promise<LoadedSynthetic> {
  const { manifest } = set;
  const perClass: Record<string, number> = {};
  for (const img of manifest.images) perClass[img.class] = (perClass[img.class] ?? 0) + 1;
  const missing = classNames.filter((c) => !perClass[c]);
  if (missing.length) {
    throw new UtilityRunError(
      'missing-class',
      `synthetic set ${set.name} (${set.dir}) has no image of class${missing.length > 1 ? 'es' : ''} ${missing.map((c) => `"${c}"`).join(', ')} (its classes: ${Object.keys(perClass).join(', ') || 'none'}); generate every class of the real data`,
      { name: set.name, dir: set.dir, missing, classes: Object.keys(perClass) },
    );
  }
  const ignoredClasses = Object.keys(perClass).filter((c) => !classNames.includes(c));
  let images: Float32Array;
  try {
    images = await readGeneratedSetImages({ dir: set.dir, manifest });
  } catch (e) {
    if (!(e instanceof GenerationRunError)) throw e;
    throw new UtilityRunError('bad-image', e.message, { name: set.name, dir: set.dir, path: e.details.path }, e);
  }
  const labels = Int32Array.from(manifest.images.map((img) => classNames.indexOf(img.class)));
  return { ...set, manifestSha256: sha256(readFileSync(join(set.dir, 'manifest.json'))), images, labels, perClass, ignoredClasses };
}

function gather(images: Float32Array, labels: Int32Array, per: number, idx: number[]): { images: Float32Array; labels: Int32Array } {
  const out = new Float32Array(idx.length * per);
  idx.forEach((k, i) => out.set(images.subarray(k * per, (k + 1) * per), i * per));
  return { images: out, labels: Int32Array.from(idx.map((k) => labels[k])) };
}

/**
 * Runs the utility study into `out` (see the file comment) and writes `OUT/utility.json`.
 * Everything that can be wrong with the inputs is checked before anything is written or trained.
 * @throws UtilityRunError `no-synthetic`, `bad-settings`, `no-manifest`, `bad-manifest`,
 *   `size-mismatch`, `same-architecture`, `no-test-images`, `missing-class`, `bad-image`,
 *   `fraction-empties-class`, `interrupted`, `fs`; GenerationRunError `holds-input` (`force` would
 *   delete an input).
 */
export async function runUtilityStudy(params: RunUtilityStudyParams): Promise<RunUtilityStudyResult> {
  if ((params as { shard?: unknown } | null)?.shard != null) throw new TypeError('runUtilityStudy: a shard runs with runUtilityStudyShard');
  const r = await studyRun('runUtilityStudy', params, null);
  if (r.kind !== 'all') throw new Error('unreachable');
  return r.result;
}

/**
 * Runs shard `shard` of the utility study into `OUT/I-of-N/` (see the file comment); a finished
 * shard of the same run is kept.
 * @throws as {@link runUtilityStudy}, and UtilityRunError `foreign-shard` (the shard's folder holds
 *   a finished shard of another run, without `force`).
 */
export async function runUtilityStudyShard(params: RunUtilityStudyShardParams): Promise<RunUtilityStudyShardResult> {
  const fn = 'runUtilityStudyShard';
  const s = (params as { shard?: unknown } | null)?.shard as ShardSpec | undefined;
  if (s === null || typeof s !== 'object' || !Number.isInteger(s.count) || s.count < 1 || !Number.isInteger(s.index) || s.index < 0 || s.index >= s.count) {
    throw new RangeError(`${fn}: shard must be { index, count } with 0 <= index < count, got ${show(s)}`);
  }
  const r = await studyRun(fn, params, s);
  if (r.kind !== 'shard') throw new Error('unreachable');
  return r.result;
}

async function studyRun(
  fn: string,
  p: RunUtilityStudyParams,
  shard: ShardSpec | null,
): Promise<{ kind: 'all'; result: RunUtilityStudyResult } | { kind: 'shard'; result: RunUtilityStudyShardResult }> {
  checkParams(fn, p);
  const log = p.log ?? (() => {});
  const u = p.settings;
  const t0 = Date.now();
  const out = resolve(p.out);
  if (p.synthetic.length === 0) throw new UtilityRunError('no-synthetic', 'give at least one synthetic set (a folder written by generateImageSet)');
  const names = p.synthetic.map((s) => s.name);
  const seeds = Array.from({ length: u.seeds }, (_, i) => i);
  let plan;
  try {
    plan = planProtocols({ fractions: u.fractions, ratios: u.ratios, syntheticSets: names, seeds, includeSyntheticOnly: u.syntheticOnly });
  } catch (e) {
    const problem = (e as Error).message.replace(/^planProtocols: /, '');
    throw new UtilityRunError('bad-settings', `${fn}: ${problem.replace(/^syntheticSets/, 'synthetic names')}`, { problem });
  }
  // Everything that can be wrong with the inputs is checked before anything is written or trained.
  const manifests = p.synthetic.map((s) => readManifest(s));
  const data = typeof p.data === 'function' ? await p.data() : p.data;
  checkData(fn, data);
  for (const m of manifests) {
    const { imageSize: s, channels: c } = m.manifest;
    if (s !== data.imageSize || c !== data.channels) {
      throw new UtilityRunError('size-mismatch', `synthetic set ${m.name} (${m.dir}) has ${s}x${s}x${c} images, the real data is ${data.imageSize}x${data.imageSize}x${data.channels}`, {
        name: m.name, dir: m.dir, setSize: s, setChannels: c, imageSize: data.imageSize, channels: data.channels,
      });
    }
  }
  const { split, classNames } = data;
  const classifier = typeof p.classifier === 'function' ? p.classifier({ classNames }) : p.classifier;
  checkClassifier(fn, classifier);
  const { preset, config } = classifier;
  checkDiffersFromExpert({ classifier: config, expert: p.generatorExpert, what: 'the generator\'s expert' });
  for (const m of manifests) {
    const eg = m.manifest.expertGuidance as { expert?: unknown } | null | undefined;
    const path = eg && typeof eg.expert === 'string' && existsSync(eg.expert) ? eg.expert : null;
    const guide = path ? checkpointExpertConfig({ path }) : null;
    if (guide) checkDiffersFromExpert({ classifier: config, expert: { config: guide, path: path! }, what: `the expert that guided synthetic set ${m.name}` });
  }
  if (split.validation.length === 0) throw new UtilityRunError('no-test-images', 'no held-out real test images: the split\'s validation part is empty; the utility test needs held-out real images');
  const per = data.imageSize * data.imageSize * data.channels;
  const train = gather(data.images, data.labels, per, split.train);
  const test = gather(data.images, data.labels, per, split.validation);
  const synthetic: LoadedSynthetic[] = [];
  for (const m of manifests) synthetic.push(await loadSynthetic(m, classNames));
  // A fraction that leaves a class empty is refused here, before training (planned sets are seed-independent in size).
  for (const x of plan.protocols) {
    if (x.kind !== 'real') continue;
    for (const [c, name] of classNames.entries()) {
      const n = train.labels.reduce((a, y) => a + (y === c ? 1 : 0), 0);
      if (Math.round(n * (x.fraction as number)) === 0 && x.fraction !== 1) {
        throw new UtilityRunError(
          'fraction-empties-class',
          `fractions: ${x.fraction} leaves class "${name}" with no training images (it has ${n} in the training split; round(${n} * ${x.fraction}) = 0); use a larger fraction`,
          { fraction: x.fraction, className: name, count: n },
        );
      }
    }
  }
  for (const s of synthetic) if (s.ignoredClasses.length) log(`synthetic set ${s.name}: class(es) ${s.ignoredClasses.join(', ')} are not in the real data and are not used`);

  // The keys: a run file's (what its classifier depends on) and the run's (every setting and input).
  const training = { epochs: u.epochs, batchSize: u.batchSize, learningRate: u.learningRate, weightDecay: u.weightDecay, augment: u.augment };
  const inputs = { data: data.fingerprint, split: sha256(JSON.stringify({ train: split.train, validation: split.validation })) };
  const synSha = Object.fromEntries(synthetic.map((s) => [s.name, s.manifestSha256]));
  const runKey = (protocolId: string, seed: number): string => {
    const x = plan.protocols.find((q) => q.id === protocolId)!;
    return stepKey('utility-run', { protocol: x, seed, classifier: config, training }, { ...inputs, synthetic: x.synthetic ? synSha[x.synthetic] : '' });
  };
  const runsDir = join(out, 'runs');
  const fileOf = (protocolId: string, seed: number) => join(runsDir, utilityRunFileName({ protocolId, seed }));
  const key = stepKey('utility', { utility: u, classifier: config, seed: p.seed }, { ...inputs, synthetic: sha256(stableStringify(synSha)) });
  const header: UtilityHeader = {
    key,
    backend: p.backend,
    data: { dir: data.dir, fingerprint: data.fingerprint, imageSize: data.imageSize, channels: data.channels, classNames, numTrain: split.train.length, numTest: split.validation.length, validationFraction: split.validationFraction, splitSeed: split.seed },
    classifier: { preset, config },
    training,
    synthetic: synthetic.map((s) => ({
      name: s.name, dir: s.dir, manifestSha256: s.manifestSha256, numImages: s.manifest.images.length, perClass: s.perClass, ignoredClasses: s.ignoredClasses,
      sampler: s.manifest.sampler, steps: s.manifest.steps, expertGuidance: s.manifest.expertGuidance ?? null,
    })),
  };
  const summaryInput: UtilitySummaryInput = { protocols: plan.protocols, seeds, testLabels: Array.from(test.labels), classNames, bootstrap: { samples: u.bootstrapSamples, seed: p.seed, over: u.bootstrapOver } };
  const units = shard ? { ...shardSlice({ shard, units: plan.runs.length }), total: plan.runs.length } : null;
  const shardRuns = units ? plan.runs.slice(units.start, units.end) : null;
  const shardDir = shard ? join(out, shardName(shard)) : '';
  if (shard && units) {
    const done = readUtilityShard({ dir: shardDir });
    if (done && !p.force) {
      if (done.key === key && done.index === shard.index && done.count === shard.count && done.units.start === units.start && done.units.end === units.end && stableStringify(done.header) === stableStringify(header)) {
        log(`shard ${shardName(shard)} is already complete in ${shardDir} (same settings); nothing to do`);
        return { kind: 'shard', result: { dir: shardDir, shard: done, trained: 0, reused: 0, alreadyComplete: true } };
      }
      throw new UtilityRunError('foreign-shard', `${shardDir} holds shard ${shardName(shard)} of another run (other settings or inputs)`, { path: shardDir, shard: shardName(shard) });
    }
  }
  if (shardRuns && p.force) {
    // Only this shard's classifiers: the other shards' share OUT/runs.
    for (const r of shardRuns) rmSync(fileOf(r.protocolId, r.seed), { force: true });
  } else if (p.force && existsSync(runsDir)) {
    assertNotReplacingInputs({ target: runsDir, inputs: [{ what: 'the data folder', path: data.dir }, ...p.synthetic.map((s) => ({ what: `the synthetic set ${s.name}`, path: s.dir }))] });
    rmSync(runsDir, { recursive: true, force: true });
  }
  const store = {
    get: ({ protocolId, seed }: { protocolId: string; seed: number }) => {
      const f = readJsonFileIfExists<UtilityRunFile>(fileOf(protocolId, seed));
      return f?.format === UTILITY_RUN_FORMAT && f.key === runKey(protocolId, seed) ? f.record : null;
    },
    put: (record: UtilityRunRecord) => writeJsonFile(fileOf(record.protocolId, record.seed), { format: UTILITY_RUN_FORMAT, key: runKey(record.protocolId, record.seed), record }),
  };
  log(
    `utility${shard && units ? ` shard ${shardName(shard)}: classifiers ${units.start + 1}..${units.end} of` : ':'} ${plan.protocols.length} protocols x ${seeds.length} seed(s) = ${plan.runs.length} classifiers (${preset}, ${u.epochs} epoch(s)); ${split.train.length} real training images, ${split.validation.length} held-out real test images; synthetic: ${synthetic.map((s) => `${s.name} (${s.manifest.images.length})`).join(', ')}`,
  );
  const r = await runUtility({
    classNames, imageSize: data.imageSize, channels: data.channels, train, test,
    synthetic: Object.fromEntries(synthetic.map((s) => [s.name, { images: s.images, labels: s.labels }])),
    protocols: plan.protocols, seeds, classifier: config, training, store, ...(shardRuns ? { runs: shardRuns } : {}),
    shouldStop: p.shouldStop,
    onEvent: (e) => {
      if (e.kind === 'reused') log(`utility [${e.index}/${e.total}] ${e.record.protocolId} seed ${e.record.seed}: finished before (accuracy ${percent(e.record.accuracy)}); reused`);
      else if (e.kind === 'start') log(`utility [${e.index}/${e.total}] ${e.protocolId} seed ${e.seed}: training on ${e.numTrain} images${e.repeatedClasses.length ? ` (synthetic images repeat in ${e.repeatedClasses.join(', ')}: the set has fewer than the ratio asks)` : ''}`);
      else if (e.kind === 'epoch') log(`utility [${e.index}/${e.total}]   epoch ${e.epoch}/${e.epochs} loss ${e.loss.toFixed(3)}`);
      else if (e.kind === 'done') log(`utility [${e.index}/${e.total}] ${e.record.protocolId} seed ${e.record.seed}: accuracy ${percent(e.record.accuracy)}, macro-F1 ${percent(e.record.macroF1)} (${formatDuration(e.record.trainSeconds + e.record.evalSeconds)})`);
    },
  });
  if (r.interrupted) {
    const total = shardRuns?.length ?? plan.runs.length;
    throw new UtilityRunError('interrupted', `interrupted: ${r.records.length} of ${total} classifiers are finished and kept in ${runsDir}`, { finished: r.records.length, total, runsDir });
  }
  if (shard && units && shardRuns) {
    // The shard's folder: copies of its run files, shard.json last, renamed into place when complete.
    removeStaleTemps({ dir: out, prefix: `${shardName(shard)}.tmp-`, log: (m) => log(m.replace(/^fad: /, '')) });
    const tmp = `${shardDir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    try {
      mkdirSync(join(tmp, 'runs'), { recursive: true });
      const files = shardRuns.map((x) => ({ ...x, file: `runs/${utilityRunFileName(x)}` }));
      for (const f of files) copyFileSync(fileOf(f.protocolId, f.seed), join(tmp, f.file));
      const record: UtilityShardJson = {
        format: UTILITY_SHARD_FORMAT, index: shard.index, count: shard.count, key, units, header, summaryInput, runs: files,
        createdAt: new Date().toISOString(), elapsedSeconds: (Date.now() - t0) / 1000,
      };
      writeJsonFile(join(tmp, 'shard.json'), record, 'the shard record');
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
  writeJsonFile(path, json);
  return { kind: 'all', result: { path, json, trained: r.trained, reused: r.reused, key } };
}
