/**
 * `fad merge` for the shards of `fad utility --shard I/N` (folders `I-of-N` with a `shard.json` of
 * format `fad-utility-shard/1`, see utility.ts): checks that every shard 0..N-1 is there, finished,
 * and from the same run (same synthetic sets, same settings, classifier, data and split; identified
 * by hash), that together they hold every (protocol, seed) once in plan order, and writes the folder
 * the unsharded `fad utility` writes: `runs/` (the run files, copied) and `utility.json`, built by
 * the same code from the same records, so it is byte-identical to the unsharded run's apart from the
 * timing fields (`createdAt`: the last shard's end; `wallTime.thisInvocation`: the shards'
 * invocations added up; the classifiers' seconds are each shard's own).
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { checkShardSet, parseShardName, type ShardPart, shardName, ShardSetError } from '@fad/diffusion-core';
import { killedShardHints, listShardFolders as listShardFolderNames, type ShardFolders } from '@fad/diffusion-core/node';
import type { UtilityRunRecord } from '@fad/expert-models';
import { CliError, withFs } from './errors';
import { readJsonIfExists, sha256, stableStringify, writeJsonAtomic } from './fsutil';
import { assertNotDeletingInputs, pathInside, removeStaleTemps } from './safety';
import { assembleUtilityJson, readUtilityShard, type UtilityJson, type UtilityRunFile, type UtilityShardJson } from './utility';

export interface MergeUtilityResult {
  out: string;
  json: UtilityJson;
  count: number;
}

const brief = (v: unknown) => {
  const s = stableStringify(v);
  return s.length > 48 ? `${s.slice(0, 45)}...` : s;
};

/** Shard folders in `dir` and the temp folders that killed shards left (diffusion-core's `listShardFolders`). */
export function listShardFolders(dir: string): ShardFolders {
  return withFs(dir, 'list the shards folder', () => listShardFolderNames({ dir }));
}

/** checkShardSet, as a CliError that also says which missing shards were killed mid-run. */
export function checkShardsForMerge(parts: ShardPart[], what: string, killed: Map<string, string>): ShardPart[] {
  try {
    return checkShardSet({ parts, what });
  } catch (e) {
    if (!(e instanceof ShardSetError)) throw e;
    throw new CliError([e.message, ...killedShardHints({ problems: e.problems, killed })].join('\n'));
  }
}

/** Merges the utility shards in `p.dir` into the folder `p.out` (see the file comment). */
export function mergeUtilityShards(p: { dir: string; out: string; force?: boolean; log: (m: string) => void }): MergeUtilityResult {
  const dir = resolve(p.dir);
  const out = resolve(p.out);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CliError(`${p.dir} is not a folder of shards (fad utility --shard I/N --out ${p.dir})`);
  const { names, killed } = listShardFolders(dir);
  const parts: ShardPart[] = [];
  const shards = new Map<number, UtilityShardJson>();
  for (const name of names) {
    const spec = parseShardName(name)!;
    const where = join(dir, name);
    const s = readUtilityShard(where);
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
    throw new CliError(`${p.dir} holds no finished shard folders (I-of-N, written by fad utility --shard I/N --out ${p.dir})${hint}`);
  }
  const ordered = checkShardsForMerge(parts, `utility shards in ${p.dir}`, killed);
  const all = ordered.map((x) => shards.get(x.index)!);
  const first = all[0];
  let expected = 0;
  for (const s of all) {
    if (s.units.start !== expected) throw new CliError(`shard ${shardName(s)} holds classifiers ${s.units.start}..${s.units.end} of ${s.units.total}, expected to start at ${expected}; run it again`);
    expected = s.units.end;
  }
  if (expected !== first.units.total) throw new CliError(`the shards hold classifiers 0..${expected} of ${first.units.total}; run the last shard again`);
  // The run files, in plan order (protocol-major), each checked against the unit it stands for.
  const plan = first.summaryInput.protocols.flatMap((x) => first.summaryInput.seeds.map((seed) => ({ protocolId: x.id, seed })));
  const files: Array<{ from: string; name: string; run: UtilityRunFile }> = [];
  for (const [k, s] of all.entries()) {
    const where = ordered[k].where;
    s.runs.forEach((r, j) => {
      const want = plan[s.units.start + j];
      const from = pathInside(where, r.file, `${join(where, 'shard.json')}: runs[${j}].file`, 'read');
      const run = readJsonIfExists<UtilityRunFile>(from);
      const rec: UtilityRunRecord | undefined = run?.record;
      if (!run || run.format !== 'fad-utility-run/1' || !rec || rec.protocolId !== want?.protocolId || rec.seed !== want.seed || r.protocolId !== rec.protocolId || r.seed !== rec.seed) {
        throw new CliError(`${from} is not the run file of ${want ? `${want.protocolId} seed ${want.seed}` : 'a classifier of the plan'} that shard ${shardName(s)} should hold; run that shard again (--force)`);
      }
      files.push({ from, name: basename(r.file), run });
    });
  }
  if (files.length !== plan.length) throw new CliError(`the shards hold ${files.length} classifiers, the plan ${plan.length}; run them again`);
  const json = assembleUtilityJson({
    header: first.header, summaryInput: first.summaryInput, records: files.map((f) => f.run.record),
    createdAt: all.map((s) => s.createdAt).sort().at(-1)!, thisInvocation: all.reduce((a, s) => a + s.elapsedSeconds, 0),
  });
  if (existsSync(out)) {
    if (!p.force) throw new CliError(`${p.out} already exists; choose another --out or pass --force to replace it`);
    assertNotDeletingInputs({ target: out, inputs: [{ what: 'the shards', path: dir }] });
    const entries = withFs(out, 'list the output folder', () => readdirSync(out));
    if (entries.length > 0 && !entries.includes('utility.json')) throw new CliError(`refusing to --force replace ${out}: it is not a folder written by fad utility (no utility.json); choose another --out`);
  }
  if (out === dir || out.startsWith(`${dir}/`)) throw new CliError(`--out ${p.out} must not be inside the shards folder ${p.dir}`);
  removeStaleTemps({ dir: dirname(out), prefix: `${basename(out)}.tmp-`, log: p.log });
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    withFs(join(tmp, 'runs'), 'create the folder', () => mkdirSync(join(tmp, 'runs'), { recursive: true }));
    for (const f of files) withFs(join(tmp, 'runs', f.name), 'copy the run file to', () => copyFileSync(f.from, join(tmp, 'runs', f.name)));
    writeJsonAtomic(join(tmp, 'utility.json'), json, 'the utility results');
    if (existsSync(out)) withFs(out, 'replace the output folder', () => rmSync(out, { recursive: true, force: true }));
    withFs(out, 'move the merged results into', () => renameSync(tmp, out));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { out, json, count: ordered.length };
}
