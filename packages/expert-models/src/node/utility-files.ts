/**
 * The files of the utility study's run folder (Node only: part of `@fad/expert-models/node`):
 *
 * - `OUT/runs/<protocol>-s<seed>.json` ({@link UtilityRunFile}, format `fad-utility-run/1`): one
 *   finished classifier with the key of its inputs; a file whose key matches is reused.
 * - `OUT/utility.json` ({@link UtilityJson}, format `fad-utility/1`): the settings, the summary
 *   (`summarizeUtility`) and every classifier without its test predictions; written last.
 * - `OUT/I-of-N/shard.json` ({@link UtilityShardJson}, format `fad-utility-shard/1`) with copies of
 *   the shard's run files in `OUT/I-of-N/runs/`: a finished shard of a sharded run.
 *
 * Timing fields (they hold wall times, so they differ between any two runs): `createdAt`,
 * `wallTime`, `runs[].trainSeconds`/`evalSeconds`, `summary.protocols[].seconds`, and a shard's
 * `createdAt`/`elapsedSeconds`.
 */
import { join } from 'node:path';
import { readJsonFileIfExists, writeFileAtomicSync } from '@fad/diffusion-core/node';
import { type ExpertConfig, summarizeUtility, type UtilityPlan, type UtilityRunRecord, type UtilitySummary } from '@fad/expert-models';
import { withUtilityFs } from './utility-run-error';

/** `utility.json`'s `format`. */
export const UTILITY_FORMAT = 'fad-utility/1';
/** A run file's `format`. */
export const UTILITY_RUN_FORMAT = 'fad-utility-run/1';
/** `shard.json`'s `format`. */
export const UTILITY_SHARD_FORMAT = 'fad-utility-shard/1';

/** `OUT/utility.json`. */
export interface UtilityJson {
  format: typeof UTILITY_FORMAT;
  /** The run's key: settings, classifier, data, split and synthetic sets. */
  key: string;
  createdAt: string;
  backend: string;
  data: { dir: string; fingerprint: string; imageSize: number; channels: number; classNames: string[]; numTrain: number; numTest: number; validationFraction: number; splitSeed: number };
  classifier: { preset: string; config: ExpertConfig };
  training: { epochs: number; batchSize: number; learningRate: number; weightDecay: number; augment: boolean };
  /** Each synthetic set: its manifest's sha256, size per class, classes the real data lacks (not used), and how it was sampled. */
  synthetic: Array<{ name: string; dir: string; manifestSha256: string; numImages: number; perClass: Record<string, number>; ignoredClasses: string[]; sampler: string; steps: number; expertGuidance: unknown }>;
  summary: UtilitySummary;
  /** Every classifier without its test predictions (those are in runs/). */
  runs: Array<Omit<UtilityRunRecord, 'predictions'>>;
  wallTime: { perClassifierMean: number; classifiersTotal: number; thisInvocation: number };
}

/** The part of utility.json that does not depend on the classifiers' results or the clock. */
export type UtilityHeader = Pick<UtilityJson, 'key' | 'backend' | 'data' | 'classifier' | 'training' | 'synthetic'>;

/** What `summarizeUtility` needs besides the records. */
export interface UtilitySummaryInput {
  protocols: UtilityPlan['protocols'];
  seeds: number[];
  testLabels: number[];
  classNames: string[];
  bootstrap: { samples: number; seed: number; over: 'seeds-and-images' | 'images' };
}

/** `OUT/I-of-N/shard.json` of a sharded run. */
export interface UtilityShardJson {
  format: typeof UTILITY_SHARD_FORMAT;
  index: number;
  count: number;
  /** The run's key (settings, classifier, data, split, synthetic sets): the same for every shard of a run. */
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

/** A run file of OUT/runs (and of a shard's runs/). */
export interface UtilityRunFile {
  format: typeof UTILITY_RUN_FORMAT;
  key: string;
  record: UtilityRunRecord;
}

/** The name of a classifier's run file in runs/: `<protocol>-s<seed>.json`. */
export function utilityRunFileName(p: { protocolId: string; seed: number }): string {
  return `${p.protocolId}-s${p.seed}.json`;
}

/** Parameters of {@link assembleUtilityJson}. */
export interface AssembleUtilityJsonParams {
  header: UtilityHeader;
  summaryInput: UtilitySummaryInput;
  /** One record per (protocol, seed), in plan order. */
  records: UtilityRunRecord[];
  createdAt: string;
  /** Seconds of the invocation(s) that made the records. */
  thisInvocation: number;
}

/** utility.json from its parts (the unsharded run and the merge of shards both build it here, so the bytes agree). */
export function assembleUtilityJson(p: AssembleUtilityJsonParams): UtilityJson {
  const s = p.summaryInput;
  const summary = summarizeUtility({ protocols: s.protocols, seeds: s.seeds, records: p.records, testLabels: Int32Array.from(s.testLabels), classNames: s.classNames, bootstrap: s.bootstrap });
  const classifierSeconds = p.records.map((x) => x.trainSeconds + x.evalSeconds);
  const { key, backend, data, classifier, training, synthetic } = p.header;
  return {
    format: UTILITY_FORMAT,
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

/** Writes `value` as indented JSON atomically; a file system error is a UtilityRunError `fs` (`write <what>`). */
export function writeJsonFile(path: string, value: unknown, what?: string): void {
  withUtilityFs(path, what ? `write ${what}` : 'write', () => writeFileAtomicSync(path, `${JSON.stringify(value, null, 2)}\n`));
}

/** The shard.json of a finished utility shard folder, or null. */
export function readUtilityShard(p: { dir: string }): UtilityShardJson | null {
  if (p === null || typeof p !== 'object' || typeof p.dir !== 'string' || p.dir === '') throw new TypeError(`readUtilityShard: expected { dir: a non-empty string }, got ${JSON.stringify(p)}`);
  const j = readJsonFileIfExists<UtilityShardJson>(join(p.dir, 'shard.json'));
  return j && j.format === UTILITY_SHARD_FORMAT ? j : null;
}
