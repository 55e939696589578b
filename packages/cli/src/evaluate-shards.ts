/**
 * `fad evaluate --shard I/N` and its `fad merge`. The costly part of an evaluation is the expert's
 * forward passes: over every generated image, then over the real images of the counted classes, in
 * batches of `evaluate.batchSize`. Those batches are the work units (@fad/diffusion-core's
 * `planBatchShard`, generated images first): shard I runs its contiguous run of them and writes
 * `OUT/I-of-N/` (through `OUT/I-of-N.tmp-<pid>` and a rename) with
 * - `outputs.f32`: little-endian float32, the logits [n x K] and pooled features [n x D] of its
 *   generated images, then the features [m x D] of its real images;
 * - `shard.json` (format `fad-evaluation-shard/1`): its units, the expert's sha256, a key hashing
 *   the expert, the evaluate settings, the generated set's manifest and the real images compared,
 *   the effective config (to read the real data again at merge time) and its timing.
 * Each batch is a batch of the unsharded pass, so the numbers are the same bits.
 * `mergeEvaluationShards` checks the shards (all there, finished, same expert and key), reads the
 * generated set and the real data again, checks them against the key, and runs `evaluateGenerated`
 * with the shards' outputs: the eval.json the unsharded `fad evaluate` writes, byte for byte apart
 * from its timing fields (`createdAt`: the first shard's start; `elapsedSeconds`: the shards'
 * seconds added up).
 */
import { existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseShardName, planBatchShard, type ShardPart, shardName, type ShardSpec } from '@fad/diffusion-core';
import type { ExpertModel } from '@fad/expert-models';
import type { FadConfig } from './config';
import { type Logger, loadDataAndSplit } from './context';
import { CliError, withFs } from './errors';
import { type EvaluationOutputs, type EvaluationResult, evaluateGenerated, evaluationInputs, readGenerated, type RealSet } from './evaluate';
import { expertOutputs } from './expert';
import { readJsonIfExists, sha256, stableStringify, writeFileAtomicSync, writeJsonAtomic } from './fsutil';
import { assertNotDeletingInputs, removeStaleTemps } from './safety';
import { checkShardsForMerge, listShardFolders } from './shard-merge';

export const EVALUATION_SHARD_FORMAT = 'fad-evaluation-shard/1';
const OUTPUTS_FILE = 'outputs.f32';

/** `OUT/I-of-N/shard.json` of `fad evaluate --shard I/N`. */
export interface EvaluationShardJson {
  format: typeof EVALUATION_SHARD_FORMAT;
  index: number;
  count: number;
  /** Hash of the expert, the evaluate settings, the generated manifest and the real images compared: the same for every shard of a run. */
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
  /** The effective config: the merge reads the real data with it. */
  config: FadConfig;
  /** Timing. */
  createdAt: string;
  elapsedSeconds: number;
}

/** The real images `fad evaluate` compares with: the validation split (evaluate.realSet validation, if it has 2+ images) or every image. */
export async function loadRealSet(cfg: FadConfig, log: Logger): Promise<RealSet> {
  const { dataset, split } = await loadDataAndSplit(cfg, log);
  const idx = cfg.evaluate.realSet === 'validation' && split.validation.length >= 2 ? split.validation : dataset.files.map((_, i) => i);
  const per = dataset.imageSize ** 2 * dataset.channels;
  const real = { images: new Float32Array(idx.length * per), labels: Int32Array.from(idx.map((k) => dataset.labels[k])), classNames: dataset.classNames, imageSize: dataset.imageSize, channels: dataset.channels };
  idx.forEach((k, i) => real.images.set(dataset.images.subarray(k * per, (k + 1) * per), i * per));
  return real;
}

/** Hashes that tie a shard to its inputs. */
function inputHashes(p: { generatedDir: string; realPixels: Float32Array; realIdx: number[]; real: RealSet; expertSha256: string; config: FadConfig }) {
  const manifestSha256 = sha256(readFileSync(join(p.generatedDir, 'manifest.json')));
  const realSha256 = sha256(stableStringify({ pixels: sha256(new Uint8Array(p.realPixels.buffer, p.realPixels.byteOffset, p.realPixels.byteLength)), labels: p.realIdx.map((k) => p.real.classNames[p.real.labels[k]]) }));
  const key = sha256(stableStringify({ expert: p.expertSha256, settings: p.config.evaluate, manifest: manifestSha256, real: realSha256, generatedDir: p.generatedDir, backend: p.config.run.backend }));
  return { manifestSha256, realSha256, key };
}

/** The shard.json of a finished evaluate shard folder, or null. */
export function readEvaluationShard(dir: string): EvaluationShardJson | null {
  const j = readJsonIfExists<EvaluationShardJson>(join(dir, 'shard.json'));
  return j && j.format === EVALUATION_SHARD_FORMAT ? j : null;
}

export interface EvaluateShardJob {
  generatedDir: string;
  expert: ExpertModel;
  expertPath: string;
  expertSha256: string;
  real: RealSet;
  config: FadConfig;
  shard: ShardSpec;
  /** The shards folder: the shard goes into out/I-of-N. */
  out: string;
  force?: boolean;
  log: (m: string) => void;
}

/** Runs one shard of the expert passes of an evaluation (see the file comment). */
export async function evaluateShard(job: EvaluateShardJob): Promise<{ dir: string; shard: EvaluationShardJson; alreadyComplete: boolean }> {
  const t0 = Date.now();
  const settings = job.config.evaluate;
  const generatedDir = resolve(job.generatedDir);
  const { m, classNames, realIdx, realPixels, per } = evaluationInputs({ generatedDir, classNames: job.expert.classNames, real: job.real, settings });
  const { manifestSha256, realSha256, key } = inputHashes({ generatedDir, realPixels, realIdx, real: job.real, expertSha256: job.expertSha256, config: job.config });
  const plan = planBatchShard({ sizes: [m.images.length, realIdx.length], batchSize: settings.batchSize, shard: job.shard });
  const [g, r] = plan.lists;
  const out = resolve(job.out);
  const dir = join(out, shardName(job.shard));
  const done = readEvaluationShard(dir);
  if (done && !job.force) {
    if (done.key === key && done.expertSha256 === job.expertSha256 && done.index === job.shard.index && done.count === job.shard.count && done.units.start === plan.start && done.units.end === plan.end) {
      job.log(`fad: shard ${shardName(job.shard)} is already complete in ${dir} (same expert, settings and inputs); nothing to do`);
      return { dir, shard: done, alreadyComplete: true };
    }
    throw new CliError(`${dir} holds shard ${shardName(job.shard)} of another run (another expert, settings or inputs); remove it, choose another --out, or pass --force to replace it`);
  }
  if (existsSync(out) && !statSync(out).isDirectory()) throw new CliError(`--out ${job.out} is a file; with --shard, --out is the folder of the shards`);
  // The generated images of this shard only (the expert never sees the others here).
  const genPixels = await readGenerated(generatedDir, { ...m, images: m.images.slice(g.firstItem, g.endItem) });
  const gen = expertOutputs(job.expert, genPixels, g.endItem - g.firstItem, m.imageSize, m.channels, settings.batchSize);
  const realOut = expertOutputs(job.expert, realPixels.subarray(r.firstItem * per, r.endItem * per), r.endItem - r.firstItem, m.imageSize, m.channels, settings.batchSize);
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
  removeStaleTemps({ dir: out, prefix: `${shardName(job.shard)}.tmp-`, log: job.log });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    writeFileAtomicSync(join(tmp, OUTPUTS_FILE), bytes, 'the expert outputs');
    const record: EvaluationShardJson = {
      format: EVALUATION_SHARD_FORMAT, index: job.shard.index, count: job.shard.count, key,
      expertSha256: job.expertSha256, expert: job.expertPath, generatedDir, manifestSha256, realSha256, classNames,
      units: { start: plan.start, end: plan.end, total: plan.total, batchSize: settings.batchSize, generated: [g.firstItem, g.endItem], real: [r.firstItem, r.endItem], numGenerated: m.images.length, numReal: realIdx.length },
      dims: { logits: K, features: D }, outputsSha256: sha256(bytes), config: job.config,
      createdAt: new Date(t0).toISOString(), elapsedSeconds: (Date.now() - t0) / 1000,
    };
    // shard.json last: a folder with it is complete.
    writeJsonAtomic(join(tmp, 'shard.json'), record, 'the shard record');
    if (existsSync(dir)) withFs(dir, 'replace the shard folder', () => rmSync(dir, { recursive: true, force: true }));
    withFs(dir, 'move the shard into', () => renameSync(tmp, dir));
    return { dir, shard: record, alreadyComplete: false };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

const brief = (v: unknown) => {
  const s = stableStringify(v);
  return s.length > 48 ? `${s.slice(0, 45)}...` : s;
};

/** Reads the shards in `dir` and checks them as a set: in index order, with their outputs. */
function readShards(dir: string, shown: string): Array<{ s: EvaluationShardJson; where: string; data: Float32Array }> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CliError(`${shown} is not a folder of shards (fad evaluate --shard I/N --out ${shown})`);
  const { names, killed } = listShardFolders(dir);
  const parts: ShardPart[] = [];
  const found = new Map<number, { s: EvaluationShardJson; where: string; data: Float32Array }>();
  for (const name of names) {
    const spec = parseShardName(name)!;
    const where = join(dir, name);
    const s = readEvaluationShard(where);
    const bytes = s && existsSync(join(where, OUTPUTS_FILE)) ? readFileSync(join(where, OUTPUTS_FILE)) : null;
    if (!s || !bytes || s.index !== spec.index || s.count !== spec.count || sha256(bytes) !== s.outputsSha256) {
      parts.push({ ...spec, where, complete: false, modelHash: '', configHash: '' });
      continue;
    }
    parts.push({
      ...spec, where, complete: true, modelHash: s.expertSha256, configHash: sha256(stableStringify({ key: s.key, total: s.units.total, batchSize: s.units.batchSize })),
      configFields: {
        ...Object.fromEntries(Object.entries(s.config.evaluate).map(([k, v]) => [k, brief(v)])),
        generatedDir: s.generatedDir, manifest: s.manifestSha256.slice(0, 12), real: s.realSha256.slice(0, 12), backend: String(s.config.run.backend), units: `${s.units.total} batches`,
      },
    });
    const data = new Float32Array(bytes.byteLength / 4);
    new Uint8Array(data.buffer).set(bytes);
    found.set(spec.index, { s, where, data });
  }
  if (parts.length === 0) {
    const hint = killed.size ? ` (only temp folders of killed shards: ${[...killed.values()].join(', ')})` : '';
    throw new CliError(`${shown} holds no finished shard folders (I-of-N, written by fad evaluate --shard I/N --out ${shown})${hint}`);
  }
  const ordered = checkShardsForMerge(parts, `evaluate shards in ${shown}`, killed);
  return ordered.map((x) => found.get(x.index)!);
}

/** The expert outputs of the whole run, put together from the shards in order. */
function joinOutputs(shards: Array<{ s: EvaluationShardJson; data: Float32Array }>): EvaluationOutputs {
  const out: EvaluationOutputs = { gen: { features: [], logits: [] }, real: { features: [] } };
  let nextGen = 0;
  let nextReal = 0;
  let nextUnit = 0;
  const withRows = shards.find((x) => x.s.dims.features > 0)?.s.dims ?? shards[0].s.dims;
  for (const { s, data } of shards) {
    const name = shardName(s);
    if (s.units.start !== nextUnit || s.units.generated[0] !== nextGen || s.units.real[0] !== nextReal) throw new CliError(`shard ${name} holds batches ${s.units.start}..${s.units.end} of ${s.units.total}, expected to start at ${nextUnit}; run it again`);
    const ng = s.units.generated[1] - s.units.generated[0];
    const nr = s.units.real[1] - s.units.real[0];
    const { logits: K, features: D } = ng + nr > 0 ? s.dims : withRows;
    if (K !== withRows.logits || D !== withRows.features) throw new CliError(`shard ${name} has outputs of another size (${K} logits, ${D} features) than the others`);
    if (data.length !== ng * (K + D) + nr * D) throw new CliError(`shard ${name}: ${OUTPUTS_FILE} has ${data.length} values, expected ${ng * (K + D) + nr * D}; run it again`);
    const row = (at: number, n: number) => Array.from(data.subarray(at, at + n));
    for (let i = 0; i < ng; i++) out.gen.logits.push(row(i * K, K));
    for (let i = 0; i < ng; i++) out.gen.features.push(row(ng * K + i * D, D));
    for (let i = 0; i < nr; i++) out.real.features.push(row(ng * (K + D) + i * D, D));
    nextUnit = s.units.end;
    nextGen = s.units.generated[1];
    nextReal = s.units.real[1];
  }
  const last = shards[shards.length - 1].s;
  if (nextUnit !== last.units.total || nextGen !== last.units.numGenerated || nextReal !== last.units.numReal) throw new CliError(`the shards hold batches 0..${nextUnit} of ${last.units.total}; run the last shard again`);
  return out;
}

/**
 * Merges the evaluate shards in `p.dir` into the eval.json file `p.out` (see the file comment). Reads
 * the generated set and the real data again (the paths and config the shards recorded).
 */
export async function mergeEvaluationShards(p: { dir: string; out: string; force?: boolean; log: Logger; initBackend: (cfg: FadConfig) => Promise<unknown> }): Promise<{ out: string; result: EvaluationResult; count: number }> {
  const dir = resolve(p.dir);
  const out = resolve(p.out);
  const shards = readShards(dir, p.dir);
  const outputs = joinOutputs(shards);
  if (existsSync(out)) {
    if (!p.force) throw new CliError(`${p.out} already exists; choose another --out or pass --force to replace it`);
    if (statSync(out).isDirectory()) throw new CliError(`--out ${p.out} is a folder; the merged evaluation is a file (eval.json)`);
    assertNotDeletingInputs({ target: out, inputs: [{ what: 'the shards', path: dir }], kind: 'files' });
  }
  if (out === dir || out.startsWith(`${dir}/`)) throw new CliError(`--out ${p.out} must not be inside the shards folder ${p.dir}`);
  const first = shards[0].s;
  const cfg = first.config;
  await p.initBackend(cfg);
  const real = await loadRealSet(cfg, p.log);
  // The inputs must still be those the shards saw.
  const { realIdx, realPixels } = evaluationInputs({ generatedDir: first.generatedDir, classNames: first.classNames, real, settings: cfg.evaluate });
  const now = inputHashes({ generatedDir: first.generatedDir, realPixels, realIdx, real, expertSha256: first.expertSha256, config: cfg });
  if (now.manifestSha256 !== first.manifestSha256) throw new CliError(`the generated set ${first.generatedDir} changed since the shards ran (its manifest.json differs); run the shards again`);
  if (now.realSha256 !== first.realSha256) throw new CliError(`the real images read from ${cfg.data.dir} differ from those the shards compared with; run the shards again`);
  const result = await evaluateGenerated({
    generatedDir: first.generatedDir, expert: null, classNames: first.classNames, outputs, expertPath: first.expert, expertSha256: first.expertSha256, real, settings: cfg.evaluate,
    timing: { createdAt: shards.map((x) => x.s.createdAt).sort()[0], elapsedSeconds: shards.reduce((a, x) => a + x.s.elapsedSeconds, 0) },
  });
  writeJsonAtomic(out, result, 'the merged evaluation');
  return { out, result, count: shards.length };
}
