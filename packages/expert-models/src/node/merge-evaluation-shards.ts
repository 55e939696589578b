/**
 * Merging the shards of a sharded evaluation (Node only: part of `@fad/expert-models/node`; `fad
 * merge` of `fad evaluate --shard` folders): checks the shards (all there, finished, same expert and
 * key), reads the generated set and, through the caller's `loadReal`, the real data again, checks them
 * against the shards' hashes, and runs the evaluation with the shards' expert outputs. The result is
 * the evaluation the unsharded `evaluateGeneratedSet` gives, byte for byte as JSON apart from its
 * timing fields (`createdAt`: the first shard's start; `elapsedSeconds`: the shards' seconds added up).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkShardSet, parseShardName, type ShardPart, shardName, ShardSetError } from '@fad/diffusion-core';
import { assertNotReplacingInputs, killedShardHints, listShardFolders, sha256, stableStringify, writeFileAtomicSync } from '@fad/diffusion-core/node';
import { assertBoolean, assertFunction, assertKnownKeys, assertObject } from '../validate';
import { checkRealImageSet, checkString, type EvaluationOutputs, type EvaluationResult, evaluateWith, evaluationInputs, type RealImageSet } from './evaluate-generated-set';
import { EVALUATION_OUTPUTS_FILE, evaluationInputHashes, type EvaluationShardConfig, type EvaluationShardJson, readEvaluationShard } from './evaluate-generated-set-shard';
import { EvaluationRunError, withEvaluationFs } from './evaluation-run-error';

/** Parameters of {@link mergeEvaluationShards}. */
export interface MergeEvaluationShardsParams<C extends EvaluationShardConfig = EvaluationShardConfig> {
  /** The folder holding the shard folders `I-of-N`. */
  dir: string;
  /** The merged evaluation's JSON file (not inside `dir`). */
  out: string;
  /** Replace an existing `out` file. */
  force?: boolean;
  /**
   * The real images the shards compared with, read again from the config the shards recorded (e.g.
   * the `fad` CLI selects its backend and loads the data set). Checked against the shards' hash.
   */
  loadReal: (p: { config: C }) => RealImageSet | Promise<RealImageSet>;
}

/** What {@link mergeEvaluationShards} wrote. */
export interface MergeEvaluationShardsResult {
  /** The merged file, resolved. */
  out: string;
  result: EvaluationResult;
  /** Shards merged. */
  count: number;
}

interface ReadShard<C extends EvaluationShardConfig> {
  s: EvaluationShardJson<C>;
  where: string;
  data: Float32Array;
}

const brief = (v: unknown) => {
  const s = stableStringify(v);
  return s.length > 48 ? `${s.slice(0, 45)}...` : s;
};

/** Reads the shards in `dir` and checks them as a set: in index order, with their outputs. */
function readShards<C extends EvaluationShardConfig>(dir: string, shown: string): Array<ReadShard<C>> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new EvaluationRunError('not-shards', `${shown} is not a folder of shards`, { dir: shown });
  const { names, killed } = withEvaluationFs(dir, 'list the shards folder', () => listShardFolders({ dir }));
  const parts: ShardPart[] = [];
  const found = new Map<number, ReadShard<C>>();
  for (const name of names) {
    const spec = parseShardName(name)!;
    const where = join(dir, name);
    const s = readEvaluationShard<C>({ dir: where });
    const bytes = s && existsSync(join(where, EVALUATION_OUTPUTS_FILE)) ? readFileSync(join(where, EVALUATION_OUTPUTS_FILE)) : null;
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
    throw new EvaluationRunError('no-shards', `${shown} holds no finished shard folders (I-of-N)${hint}`, { dir: shown, killed: [...killed.values()] });
  }
  let ordered: ShardPart[];
  try {
    ordered = checkShardSet({ parts, what: `evaluate shards in ${shown}` });
  } catch (e) {
    if (!(e instanceof ShardSetError)) throw e;
    throw new EvaluationRunError('bad-shards', [e.message, ...killedShardHints({ problems: e.problems, killed })].join('\n'), { dir: shown, problems: e.problems }, e);
  }
  return ordered.map((x) => found.get(x.index)!);
}

/** The expert outputs of the whole run, put together from the shards in order. */
function joinOutputs(shards: Array<{ s: EvaluationShardJson<EvaluationShardConfig>; data: Float32Array }>, shown: string): EvaluationOutputs {
  const out: EvaluationOutputs = { gen: { features: [], logits: [] }, real: { features: [] } };
  const bad = (message: string) => new EvaluationRunError('bad-shards', message, { dir: shown });
  let nextGen = 0;
  let nextReal = 0;
  let nextUnit = 0;
  const withRows = shards.find((x) => x.s.dims.features > 0)?.s.dims ?? shards[0].s.dims;
  for (const { s, data } of shards) {
    const name = shardName(s);
    if (s.units.start !== nextUnit || s.units.generated[0] !== nextGen || s.units.real[0] !== nextReal) throw bad(`shard ${name} holds batches ${s.units.start}..${s.units.end} of ${s.units.total}, expected to start at ${nextUnit}; run it again`);
    const ng = s.units.generated[1] - s.units.generated[0];
    const nr = s.units.real[1] - s.units.real[0];
    const { logits: K, features: D } = ng + nr > 0 ? s.dims : withRows;
    if (K !== withRows.logits || D !== withRows.features) throw bad(`shard ${name} has outputs of another size (${K} logits, ${D} features) than the others`);
    if (data.length !== ng * (K + D) + nr * D) throw bad(`shard ${name}: ${EVALUATION_OUTPUTS_FILE} has ${data.length} values, expected ${ng * (K + D) + nr * D}; run it again`);
    const row = (at: number, n: number) => Array.from(data.subarray(at, at + n));
    for (let i = 0; i < ng; i++) out.gen.logits.push(row(i * K, K));
    for (let i = 0; i < ng; i++) out.gen.features.push(row(ng * K + i * D, D));
    for (let i = 0; i < nr; i++) out.real.features.push(row(ng * (K + D) + i * D, D));
    nextUnit = s.units.end;
    nextGen = s.units.generated[1];
    nextReal = s.units.real[1];
  }
  const last = shards[shards.length - 1].s;
  if (nextUnit !== last.units.total || nextGen !== last.units.numGenerated || nextReal !== last.units.numReal) throw bad(`the shards hold batches 0..${nextUnit} of ${last.units.total}; run the last shard again`);
  return out;
}

/**
 * Merges the shards in `p.dir` into the evaluation JSON file `p.out` (see the file comment; written
 * atomically, as `JSON.stringify(result, null, 2)` and a newline). Nothing is written unless every
 * shard 0..N-1 is there, finished, from the same run, and the inputs are still those the shards saw.
 * @throws EvaluationRunError `not-shards`, `no-shards`, `bad-shards`, `exists`, `out-is-folder`,
 *   `out-inside-shards`, `generated-changed`, `real-changed`, `fs`; GenerationRunError (diffusion-core)
 *   `holds-input` when replacing `out` would delete the shards, and when the generated set cannot be read.
 */
export async function mergeEvaluationShards<C extends EvaluationShardConfig>(p: MergeEvaluationShardsParams<C>): Promise<MergeEvaluationShardsResult> {
  const fn = 'mergeEvaluationShards';
  assertObject(fn, 'params', p);
  assertKnownKeys(fn, '', p, ['dir', 'out', 'force', 'loadReal']);
  checkString(fn, 'dir', p.dir);
  checkString(fn, 'out', p.out);
  if (p.force !== undefined) assertBoolean(fn, 'force', p.force);
  assertFunction(fn, 'loadReal', p.loadReal);
  const dir = resolve(p.dir);
  const out = resolve(p.out);
  const shards = readShards<C>(dir, p.dir);
  const outputs = joinOutputs(shards, p.dir);
  if (existsSync(out)) {
    if (!p.force) throw new EvaluationRunError('exists', `${p.out} already exists`, { path: out, out: p.out });
    if (statSync(out).isDirectory()) throw new EvaluationRunError('out-is-folder', `out ${p.out} is a folder; the merged evaluation is a file (eval.json)`, { out: p.out });
    assertNotReplacingInputs({ target: out, inputs: [{ what: 'the shards', path: dir }], kind: 'files' });
  }
  if (out === dir || out.startsWith(`${dir}/`)) throw new EvaluationRunError('out-inside-shards', `out ${p.out} must not be inside the shards folder ${p.dir}`, { out: p.out, dir: p.dir });
  const first = shards[0].s;
  const config = first.config;
  const real = await p.loadReal({ config });
  checkRealImageSet(fn, 'loadReal()', real);
  // The inputs must still be those the shards saw.
  const { realIdx, realPixels } = evaluationInputs({ generatedDir: first.generatedDir, classNames: first.classNames, real, settings: config.evaluate });
  const now = evaluationInputHashes({ generatedDir: first.generatedDir, realPixels, realIdx, real, expertSha256: first.expertSha256, config });
  if (now.manifestSha256 !== first.manifestSha256) throw new EvaluationRunError('generated-changed', `the generated set ${first.generatedDir} changed since the shards ran (its manifest.json differs); run the shards again`, { generatedDir: first.generatedDir });
  if (now.realSha256 !== first.realSha256) throw new EvaluationRunError('real-changed', 'the real images loaded for the merge differ from those the shards compared with; run the shards again', { config });
  const result = await evaluateWith({
    generatedDir: first.generatedDir, expert: null, classNames: first.classNames, outputs, expertPath: first.expert, expertSha256: first.expertSha256, real, settings: config.evaluate,
    timing: { createdAt: shards.map((x) => x.s.createdAt).sort()[0], elapsedSeconds: shards.reduce((a, x) => a + x.s.elapsedSeconds, 0) },
  });
  withEvaluationFs(out, 'write the merged evaluation', () => writeFileAtomicSync(out, `${JSON.stringify(result, null, 2)}\n`));
  return { out, result, count: shards.length };
}
