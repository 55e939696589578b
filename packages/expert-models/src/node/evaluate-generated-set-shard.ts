/**
 * One shard of an evaluation (Node only: part of `@fad/expert-models/node`; `fad evaluate --shard
 * I/N`). The costly part of an evaluation is the expert's forward passes: over every generated image,
 * then over the real images of the counted classes, in batches of `settings.batchSize`. Those
 * batches are the work units (@fad/diffusion-core's `planBatchShard`, generated images first): shard
 * I runs its contiguous run of them and writes `OUT/I-of-N/` (through `OUT/I-of-N.tmp-<pid>` and a
 * rename) with
 * - `outputs.f32`: little-endian float32, the logits [n x K] and pooled features [n x D] of its
 *   generated images, then the features [m x D] of its real images;
 * - `shard.json` (format `fad-evaluation-shard/1`): its units, the expert's sha256, a key hashing
 *   the expert, the evaluation settings, the generated set's manifest and the real images compared,
 *   the caller's config (to read the real data again at merge time) and its timing.
 * Each batch is a batch of the unsharded pass, so the numbers are the same bits;
 * `mergeEvaluationShards` turns the shards into the unsharded evaluation.
 */
import { existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkShardSpec, planBatchShard, shardName, type ShardSpec } from '@fad/diffusion-core';
import { readGeneratedSetImages, removeStaleTemps, sha256, stableStringify, writeFileAtomicSync } from '@fad/diffusion-core/node';
import { type Expert, expertOutputs } from '@fad/expert-models';
import { assertBoolean, assertFunction, assertKnownKeys, assertObject, show } from '../validate';
import { checkEvaluationSettings, checkExpert, checkRealImageSet, checkString, type EvaluationSettings, evaluationInputs, type RealImageSet } from './evaluate-generated-set';
import { EvaluationRunError, withEvaluationFs } from './evaluation-run-error';

/** `shard.json`'s `format`. */
export const EVALUATION_SHARD_FORMAT = 'fad-evaluation-shard/1';
/** The file of a shard's expert outputs. */
export const EVALUATION_OUTPUTS_FILE = 'outputs.f32';

/**
 * The caller's config, recorded in `shard.json` (so that the merge can read the real data again):
 * the library reads its `evaluate` (the settings) and `run.backend` (part of the shard key); the rest
 * is the caller's (the `fad` CLI records its whole effective config).
 */
export interface EvaluationShardConfig {
  evaluate: EvaluationSettings;
  run: { backend: string };
}

/** `OUT/I-of-N/shard.json` of a shard. */
export interface EvaluationShardJson<C extends EvaluationShardConfig = EvaluationShardConfig> {
  format: typeof EVALUATION_SHARD_FORMAT;
  index: number;
  count: number;
  /** Hash of the expert, the settings, the generated manifest and the real images compared: the same for every shard of a run. */
  key: string;
  expertSha256: string;
  expert: string;
  generatedDir: string;
  manifestSha256: string;
  realSha256: string;
  /** The expert's classes (the merge needs no expert). */
  classNames: string[];
  /** Batches [start, end) of `total` (generated images' batches, then the real images'), and the items they hold. */
  units: { start: number; end: number; total: number; batchSize: number; generated: [number, number]; real: [number, number]; numGenerated: number; numReal: number };
  /** Sizes of the rows in outputs.f32: logits (the expert's classes) and features (0 when the shard has no images). */
  dims: { logits: number; features: number };
  outputsSha256: string;
  /** The caller's config: the merge reads the real data with it. */
  config: C;
  /** Timing. */
  createdAt: string;
  elapsedSeconds: number;
}

/** Hashes that tie a shard to its inputs (the merge checks them again). Internal. */
export function evaluationInputHashes(p: { generatedDir: string; realPixels: Float32Array; realIdx: number[]; real: RealImageSet; expertSha256: string; config: EvaluationShardConfig }): { manifestSha256: string; realSha256: string; key: string } {
  const manifestSha256 = sha256(readFileSync(join(p.generatedDir, 'manifest.json')));
  const realSha256 = sha256(stableStringify({ pixels: sha256(new Uint8Array(p.realPixels.buffer, p.realPixels.byteOffset, p.realPixels.byteLength)), labels: p.realIdx.map((k) => p.real.classNames[p.real.labels[k]]) }));
  const key = sha256(stableStringify({ expert: p.expertSha256, settings: p.config.evaluate, manifest: manifestSha256, real: realSha256, generatedDir: p.generatedDir, backend: p.config.run.backend }));
  return { manifestSha256, realSha256, key };
}

/** Parameters of {@link readEvaluationShard}. */
export interface ReadEvaluationShardParams {
  /** A shard folder `OUT/I-of-N`. */
  dir: string;
}

/** The shard.json of a finished shard folder, or null (none, unreadable, or another format). */
export function readEvaluationShard<C extends EvaluationShardConfig = EvaluationShardConfig>(params: ReadEvaluationShardParams): EvaluationShardJson<C> | null {
  assertObject('readEvaluationShard', 'params', params);
  checkString('readEvaluationShard', 'dir', params.dir);
  const path = join(params.dir, 'shard.json');
  if (!existsSync(path)) return null;
  try {
    const j = JSON.parse(readFileSync(path, 'utf8')) as EvaluationShardJson<C> | null;
    return j && j.format === EVALUATION_SHARD_FORMAT ? j : null;
  } catch {
    return null;
  }
}

/** Parameters of {@link evaluateGeneratedSetShard}. */
export interface EvaluateGeneratedSetShardParams<C extends EvaluationShardConfig = EvaluationShardConfig> {
  /** The generated set's folder (recorded resolved). */
  generatedDir: string;
  /** The expert (inference mode; not disposed). */
  expert: Expert;
  /** The expert's file and sha256 (recorded; the sha256 identifies the expert). */
  expertPath: string;
  expertSha256: string;
  /** The real images to compare with. */
  real: RealImageSet;
  /** Recorded in shard.json; its `evaluate` are the settings (see {@link EvaluationShardConfig}). */
  config: C;
  /** Which shard: `index` of `count`. */
  shard: ShardSpec;
  /** The shards folder: the shard goes into `out/I-of-N`. */
  out: string;
  /** Replace a finished shard of another run in `out/I-of-N` (default: refuse). */
  force?: boolean;
  /** Told when the shard was already complete, and of stale temp folders removed. */
  log?: (message: string) => void;
}

/** What {@link evaluateGeneratedSetShard} did. */
export interface EvaluateGeneratedSetShardResult<C extends EvaluationShardConfig = EvaluationShardConfig> {
  /** The shard's folder. */
  dir: string;
  shard: EvaluationShardJson<C>;
  /** True when the folder already held this shard (same expert, settings and inputs): nothing was run. */
  alreadyComplete: boolean;
}

/**
 * Runs one shard of the expert passes of an evaluation (see the file comment). A finished shard of
 * the same run is kept as it is.
 * @throws EvaluationRunError `foreign-shard`, `out-is-file`, `fs`, and those of `evaluateGeneratedSet`'s checks.
 */
export async function evaluateGeneratedSetShard<C extends EvaluationShardConfig>(p: EvaluateGeneratedSetShardParams<C>): Promise<EvaluateGeneratedSetShardResult<C>> {
  const fn = 'evaluateGeneratedSetShard';
  assertObject(fn, 'params', p);
  assertKnownKeys(fn, '', p, ['generatedDir', 'expert', 'expertPath', 'expertSha256', 'real', 'config', 'shard', 'out', 'force', 'log']);
  checkString(fn, 'generatedDir', p.generatedDir);
  checkExpert(fn, p.expert);
  checkString(fn, 'expertPath', p.expertPath);
  checkString(fn, 'expertSha256', p.expertSha256);
  checkRealImageSet(fn, 'real', p.real);
  assertObject(fn, 'config', p.config);
  checkEvaluationSettings(fn, p.config.evaluate);
  if (p.config.run === null || typeof p.config.run !== 'object' || typeof p.config.run.backend !== 'string') throw new TypeError(`${fn}: config.run.backend must be a string (the backend, part of the shard key), got ${show(p.config.run)}`);
  checkShardSpec(p.shard, `${fn}: shard`);
  checkString(fn, 'out', p.out);
  if (p.force !== undefined) assertBoolean(fn, 'force', p.force);
  if (p.log !== undefined) assertFunction(fn, 'log', p.log);
  const log = p.log ?? (() => undefined);
  const t0 = Date.now();
  const settings = p.config.evaluate;
  const generatedDir = resolve(p.generatedDir);
  const { m, classNames, realIdx, realPixels, per } = evaluationInputs({ generatedDir, classNames: p.expert.classNames, real: p.real, settings });
  const { manifestSha256, realSha256, key } = evaluationInputHashes({ generatedDir, realPixels, realIdx, real: p.real, expertSha256: p.expertSha256, config: p.config });
  const plan = planBatchShard({ sizes: [m.images.length, realIdx.length], batchSize: settings.batchSize, shard: p.shard });
  const [g, r] = plan.lists;
  const out = resolve(p.out);
  const name = shardName(p.shard);
  const dir = join(out, name);
  const done = readEvaluationShard<C>({ dir });
  if (done && !p.force) {
    if (done.key === key && done.expertSha256 === p.expertSha256 && done.index === p.shard.index && done.count === p.shard.count && done.units.start === plan.start && done.units.end === plan.end) {
      log(`fad: shard ${name} is already complete in ${dir} (same expert, settings and inputs); nothing to do`);
      return { dir, shard: done, alreadyComplete: true };
    }
    throw new EvaluationRunError('foreign-shard', `${dir} holds shard ${name} of another run (another expert, settings or inputs)`, { path: dir, shard: name });
  }
  if (existsSync(out) && !statSync(out).isDirectory()) throw new EvaluationRunError('out-is-file', `out ${p.out} is a file; it must be the folder of the shards`, { out: p.out });
  // The generated images of this shard only (the expert never sees the others here).
  const genPixels = await readGeneratedSetImages({ dir: generatedDir, manifest: { ...m, images: m.images.slice(g.firstItem, g.endItem) } });
  const pass = (images: Float32Array, n: number) => expertOutputs({ expert: p.expert, images, n, size: m.imageSize, channels: m.channels, batchSize: settings.batchSize });
  const gen = pass(genPixels, g.endItem - g.firstItem);
  const realOut = pass(realPixels.subarray(r.firstItem * per, r.endItem * per), r.endItem - r.firstItem);
  const K = classNames.length;
  const D = gen.features[0]?.length ?? realOut.features[0]?.length ?? 0;
  const rows = [...gen.logits, ...gen.features, ...realOut.features];
  const data = new Float32Array(rows.reduce((a, x) => a + x.length, 0));
  let at = 0;
  for (const row of rows) {
    data.set(row, at);
    at += row.length;
  }
  const bytes = new Uint8Array(data.buffer);
  removeStaleTemps({ dir: out, prefix: `${name}.tmp-`, log });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    const outputsPath = join(tmp, EVALUATION_OUTPUTS_FILE);
    withEvaluationFs(outputsPath, 'write the expert outputs', () => writeFileAtomicSync(outputsPath, bytes));
    const record: EvaluationShardJson<C> = {
      format: EVALUATION_SHARD_FORMAT, index: p.shard.index, count: p.shard.count, key,
      expertSha256: p.expertSha256, expert: p.expertPath, generatedDir, manifestSha256, realSha256, classNames,
      units: { start: plan.start, end: plan.end, total: plan.total, batchSize: settings.batchSize, generated: [g.firstItem, g.endItem], real: [r.firstItem, r.endItem], numGenerated: m.images.length, numReal: realIdx.length },
      dims: { logits: K, features: D }, outputsSha256: sha256(bytes), config: p.config,
      createdAt: new Date(t0).toISOString(), elapsedSeconds: (Date.now() - t0) / 1000,
    };
    // shard.json last: a folder with it is complete.
    const recordPath = join(tmp, 'shard.json');
    withEvaluationFs(recordPath, 'write the shard record', () => writeFileAtomicSync(recordPath, `${JSON.stringify(record, null, 2)}\n`));
    if (existsSync(dir)) withEvaluationFs(dir, 'replace the shard folder', () => rmSync(dir, { recursive: true, force: true }));
    withEvaluationFs(dir, 'move the shard into', () => renameSync(tmp, dir));
    return { dir, shard: record, alreadyComplete: false };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
