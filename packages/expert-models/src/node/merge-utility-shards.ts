/**
 * Merging the shards of a sharded utility study (Node only: part of `@fad/expert-models/node`): the
 * folders `I-of-N` (with a `shard.json` of format `fad-utility-shard/1`) that
 * `runUtilityStudyShard` writes become the folder the unsharded `runUtilityStudy` writes: `runs/`
 * (the run files, copied) and `utility.json`, built by the same code from the same records, so it
 * is byte-identical to the unsharded run's apart from the timing fields (`createdAt`: the last
 * shard's end; `wallTime.thisInvocation`: the shards' invocations added up; the classifiers'
 * seconds are each shard's own). Every shard 0..N-1 must be there, finished, and from the same run
 * (same synthetic sets, settings, classifier, data and split; identified by hash), and together
 * they must hold every (protocol, seed) once in plan order.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { checkShardSet, parseShardName, type ShardPart, shardName, ShardSetError } from '@fad/diffusion-core';
import { assertNotReplacingInputs, killedShardHints, listShardFolders, pathInside, readJsonFileIfExists, removeStaleTemps, sha256, stableStringify } from '@fad/diffusion-core/node';
import type { UtilityRunRecord } from '@fad/expert-models';
import { assembleUtilityJson, readUtilityShard, UTILITY_RUN_FORMAT, type UtilityJson, type UtilityRunFile, type UtilityShardJson, writeJsonFile } from './utility-files';
import { UtilityRunError, withUtilityFs } from './utility-run-error';

/** Parameters of {@link mergeUtilityShards}. */
export interface MergeUtilityShardsParams {
  /** The folder holding the shard folders `I-of-N` (the sharded runs' `out`). */
  dir: string;
  /** The merged run folder (not inside `dir`). */
  out: string;
  /** Replace an existing `out` (only a utility run's folder, with utility.json, or an empty folder). */
  force?: boolean;
  /** Told when temp folders of killed merges are removed. */
  log?: (message: string) => void;
}

/** What {@link mergeUtilityShards} wrote. */
export interface MergeUtilityShardsResult {
  /** The merged folder, resolved. */
  out: string;
  json: UtilityJson;
  /** Shards merged. */
  count: number;
}

const brief = (v: unknown) => {
  const s = stableStringify(v);
  return s.length > 48 ? `${s.slice(0, 45)}...` : s;
};

/**
 * Merges the shards in `dir` into `out` (see the file comment); nothing is written unless every
 * check passes.
 * @throws UtilityRunError `not-shards`, `no-shards`, `bad-shards` (naming each missing,
 *   unfinished or foreign shard), `bad-run-file`, `exists`, `not-replaceable`,
 *   `out-inside-shards`, `fs`; GenerationRunError `holds-input`, `outside-folder`.
 */
export function mergeUtilityShards(p: MergeUtilityShardsParams): MergeUtilityShardsResult {
  const fn = 'mergeUtilityShards';
  if (p === null || typeof p !== 'object') throw new TypeError(`${fn}: params must be one params object, got ${String(p)}`);
  if (typeof p.dir !== 'string' || p.dir.length === 0) throw new TypeError(`${fn}: dir must be a non-empty string (the shards folder), got ${JSON.stringify(p.dir)}`);
  if (typeof p.out !== 'string' || p.out.length === 0) throw new TypeError(`${fn}: out must be a non-empty string (the merged run folder), got ${JSON.stringify(p.out)}`);
  if (p.force !== undefined && typeof p.force !== 'boolean') throw new TypeError(`${fn}: force must be a boolean, got ${JSON.stringify(p.force)}`);
  if (p.log !== undefined && typeof p.log !== 'function') throw new TypeError(`${fn}: log must be a function, got ${typeof p.log}`);
  const log = p.log ?? (() => {});
  const dir = resolve(p.dir);
  const out = resolve(p.out);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UtilityRunError('not-shards', `${p.dir} is not a folder of shards`, { dir: p.dir });
  const { names, killed } = withUtilityFs(dir, 'list the shards folder', () => listShardFolders({ dir }));
  const parts: ShardPart[] = [];
  const shards = new Map<number, UtilityShardJson>();
  for (const name of names) {
    const spec = parseShardName(name)!;
    const where = join(dir, name);
    const s = readUtilityShard({ dir: where });
    const ok = s !== null && s.index === spec.index && s.count === spec.count && Array.isArray(s.runs) && s.runs.every((r) => existsSync(join(where, r.file)));
    if (!ok) {
      parts.push({ ...spec, where, complete: false, modelHash: '', configHash: '' });
      continue;
    }
    const { synthetic, ...rest } = s.header;
    const config = { ...rest, summaryInput: s.summaryInput, total: s.units.total };
    parts.push({
      ...spec, where, complete: true,
      // The "model" of a utility run: the synthetic sets it tests (their manifests' sha256).
      modelHash: sha256(stableStringify(synthetic.map((x) => [x.name, x.manifestSha256]))),
      configHash: sha256(stableStringify({ key: s.key, config, synthetic })),
      configFields: {
        ...Object.fromEntries(Object.entries(s.header.training).map(([k, v]) => [k, brief(v)])),
        classifier: brief(s.header.classifier), backend: s.header.backend, data: `${s.header.data.dir} (${s.header.data.fingerprint.slice(0, 12)})`,
        protocols: brief(s.summaryInput.protocols.map((x) => x.id)), seeds: brief(s.summaryInput.seeds), bootstrap: brief(s.summaryInput.bootstrap),
        synthetic: brief(synthetic.map((x) => `${x.name}=${x.dir}`)), units: `${s.units.total} classifiers`,
      },
    });
    shards.set(spec.index, s);
  }
  if (parts.length === 0) {
    const hint = killed.size ? ` (only temp folders of killed shards: ${[...killed.values()].join(', ')})` : '';
    throw new UtilityRunError('no-shards', `${p.dir} holds no finished shard folders (I-of-N)${hint}`, { dir: p.dir, killed: [...killed.values()] });
  }
  let ordered: ShardPart[];
  try {
    ordered = checkShardSet({ parts, what: `utility shards in ${p.dir}` });
  } catch (e) {
    if (!(e instanceof ShardSetError)) throw e;
    throw new UtilityRunError('bad-shards', [e.message, ...killedShardHints({ problems: e.problems, killed })].join('\n'), { dir: p.dir, problems: e.problems }, e);
  }
  const all = ordered.map((x) => shards.get(x.index)!);
  const first = all[0];
  let expected = 0;
  for (const s of all) {
    if (s.units.start !== expected) throw new UtilityRunError('bad-shards', `shard ${shardName(s)} holds classifiers ${s.units.start}..${s.units.end} of ${s.units.total}, expected to start at ${expected}; run it again`, { dir: p.dir });
    expected = s.units.end;
  }
  if (expected !== first.units.total) throw new UtilityRunError('bad-shards', `the shards hold classifiers 0..${expected} of ${first.units.total}; run the last shard again`, { dir: p.dir });
  // The run files, in plan order (protocol-major), each checked against the unit it stands for.
  const plan = first.summaryInput.protocols.flatMap((x) => first.summaryInput.seeds.map((seed) => ({ protocolId: x.id, seed })));
  const files: Array<{ from: string; name: string; run: UtilityRunFile }> = [];
  for (const [k, s] of all.entries()) {
    const where = ordered[k].where;
    s.runs.forEach((r, j) => {
      const want = plan[s.units.start + j];
      const from = pathInside({ root: where, path: r.file, what: `${join(where, 'shard.json')}: runs[${j}].file`, verb: 'read' });
      const run = readJsonFileIfExists<UtilityRunFile>(from);
      const rec: UtilityRunRecord | undefined = run?.record;
      if (!run || run.format !== UTILITY_RUN_FORMAT || !rec || rec.protocolId !== want?.protocolId || rec.seed !== want.seed || r.protocolId !== rec.protocolId || r.seed !== rec.seed) {
        throw new UtilityRunError(
          'bad-run-file',
          `${from} is not the run file of ${want ? `${want.protocolId} seed ${want.seed}` : 'a classifier of the plan'} that shard ${shardName(s)} should hold; run that shard again`,
          { path: from, shard: shardName(s), protocolId: want?.protocolId ?? null, seed: want?.seed ?? null },
        );
      }
      files.push({ from, name: basename(r.file), run });
    });
  }
  if (files.length !== plan.length) throw new UtilityRunError('bad-shards', `the shards hold ${files.length} classifiers, the plan ${plan.length}; run them again`, { dir: p.dir });
  const json = assembleUtilityJson({
    header: first.header, summaryInput: first.summaryInput, records: files.map((f) => f.run.record),
    createdAt: all.map((s) => s.createdAt).sort().at(-1)!, thisInvocation: all.reduce((a, s) => a + s.elapsedSeconds, 0),
  });
  if (existsSync(out)) {
    if (!p.force) throw new UtilityRunError('exists', `${p.out} already exists`, { path: out, out: p.out });
    assertNotReplacingInputs({ target: out, inputs: [{ what: 'the shards', path: dir }] });
    const entries = withUtilityFs(out, 'list the output folder', () => readdirSync(out));
    if (entries.length > 0 && !entries.includes('utility.json')) throw new UtilityRunError('not-replaceable', `refusing to replace ${out}: it is not a utility run's folder (no utility.json)`, { path: out });
  }
  if (out === dir || out.startsWith(`${dir}/`)) throw new UtilityRunError('out-inside-shards', `out ${p.out} must not be inside the shards folder ${p.dir}`, { out: p.out, dir: p.dir });
  removeStaleTemps({ dir: dirname(out), prefix: `${basename(out)}.tmp-`, log: (m) => log(m.replace(/^fad: /, '')) });
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    withUtilityFs(join(tmp, 'runs'), 'create the folder', () => mkdirSync(join(tmp, 'runs'), { recursive: true }));
    for (const f of files) withUtilityFs(join(tmp, 'runs', f.name), 'copy the run file to', () => copyFileSync(f.from, join(tmp, 'runs', f.name)));
    writeJsonFile(join(tmp, 'utility.json'), json, 'the utility results');
    if (existsSync(out)) withUtilityFs(out, 'replace the output folder', () => rmSync(out, { recursive: true, force: true }));
    withUtilityFs(out, 'move the merged results into', () => renameSync(tmp, out));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { out, json, count: ordered.length };
}
