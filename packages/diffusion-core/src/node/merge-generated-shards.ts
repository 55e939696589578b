/**
 * Merging the shards of a sharded generation run (Node only: part of `@fad/diffusion-core/node`):
 * the folders `I-of-N` that `generateImageSet` with `shard` writes become the set the same run
 * writes unsharded, byte for byte (images and manifest.json; timing.json adds up the shards'
 * timings and is not part of the reproducible result).
 */
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { checkShardSet, parseShardName, type ShardPart, shardName, ShardSetError } from '@fad/diffusion-core';
import { assertReplaceableSet, GENERATED_SET_FILES, GENERATED_TIMING_FORMAT, type GeneratedSetManifest, type GeneratedSetTiming, readFinishedShard, readGeneratedSetTiming, type StepTiming } from './generated-set';
import { writeJson } from './generate-image-set';
import { GenerationRunError, withGenerationFs } from './generation-run-error';
import { assertNotReplacingInputs, pathInside } from './output-folder';
import { sha256, stableStringify } from './resumable-step';
import { killedShardHints, listShardFolders } from './shard-folders';

/** Parameters of {@link mergeGeneratedShards}. */
export interface MergeGeneratedShardsParams {
  /** The folder holding the shard folders `I-of-N`. */
  dir: string;
  /** The merged set's folder (not inside `dir`). */
  out: string;
  /** Replace an existing `out` (only a generated set or an empty folder). */
  force?: boolean;
}

/** What {@link mergeGeneratedShards} wrote. */
export interface MergeGeneratedShardsResult {
  manifest: GeneratedSetManifest;
  /** The merged set's folder, resolved. */
  out: string;
  /** Shards merged. */
  count: number;
  timing: GeneratedSetTiming;
}

/** A manifest without what differs between the shards of one run (its images and shard record): what must match. */
function manifestHeader(m: GeneratedSetManifest): Record<string, unknown> {
  const { images: _i, shard: _s, ...header } = m;
  return header;
}

const brief = (v: unknown) => {
  const s = stableStringify(v);
  return s.length > 48 ? `${s.slice(0, 45)}...` : s;
};

function pathInsideOrSame(p: string, root: string): boolean {
  const r = `${root.replace(/\/+$/, '')}/`;
  return p === root || p.startsWith(r);
}

/**
 * Merges the shards. Every shard 0..N-1 must be there and complete, with the same model (checkpoint
 * sha256) and settings (everything else in the manifest); otherwise nothing is written and the
 * error names each missing, unfinished or foreign shard.
 * @throws GenerationRunError `not-shards`, `no-shards`, `bad-shards`, `exists`, `holds-input`,
 *   `not-replaceable`, `out-inside-shards`, `outside-folder`, `fs`.
 */
export function mergeGeneratedShards(p: MergeGeneratedShardsParams): MergeGeneratedShardsResult {
  const fn = 'mergeGeneratedShards';
  if (p === null || typeof p !== 'object') throw new TypeError(`${fn}: params must be one params object, got ${String(p)}`);
  if (typeof p.dir !== 'string' || p.dir.length === 0) throw new TypeError(`${fn}: dir must be a non-empty string (the shards folder), got ${JSON.stringify(p.dir)}`);
  if (typeof p.out !== 'string' || p.out.length === 0) throw new TypeError(`${fn}: out must be a non-empty string (the merged set's folder), got ${JSON.stringify(p.out)}`);
  if (p.force !== undefined && typeof p.force !== 'boolean') throw new TypeError(`${fn}: force must be a boolean, got ${JSON.stringify(p.force)}`);
  const dir = resolve(p.dir);
  const out = resolve(p.out);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new GenerationRunError('not-shards', `${p.dir} is not a folder of shards`, { dir: p.dir });
  const { names, killed } = withGenerationFs(dir, 'list the shards folder', () => listShardFolders({ dir }));
  const parts: ShardPart[] = [];
  const manifests = new Map<number, GeneratedSetManifest>();
  for (const name of names) {
    const spec = parseShardName(name);
    if (!spec) continue;
    const where = join(dir, name);
    const m = readFinishedShard({ dir: where });
    const ok = m !== null && m.shard!.index === spec.index && m.shard!.count === spec.count && Array.isArray(m.images) && m.images.every((img) => existsSync(join(where, img.file)));
    if (!ok) {
      parts.push({ ...spec, where, complete: false, modelHash: '', configHash: '' });
      continue;
    }
    const header = manifestHeader(m);
    const { checkpointSha256: _c, ...config } = header;
    parts.push({
      ...spec, where, complete: true, modelHash: m.checkpointSha256, configHash: sha256(stableStringify({ config, total: m.shard!.total, unit: m.shard!.unit })),
      configFields: { ...Object.fromEntries(Object.entries(config).map(([k, v]) => [k, brief(v)])), units: `${m.shard!.total} ${m.shard!.unit}s` },
    });
    manifests.set(spec.index, m);
  }
  if (parts.length === 0) {
    const hint = killed.size ? ` (only temp folders of killed shards: ${[...killed.values()].join(', ')})` : '';
    throw new GenerationRunError('no-shards', `${p.dir} holds no finished shard folders (I-of-N)${hint}`, { dir: p.dir, killed: [...killed.values()] });
  }
  let ordered: ShardPart[];
  try {
    ordered = checkShardSet({ parts, what: `generated shards in ${p.dir}` });
  } catch (e) {
    if (!(e instanceof ShardSetError)) throw e;
    const hints = killedShardHints({ problems: e.problems, killed });
    throw new GenerationRunError('bad-shards', [e.message, ...hints].join('\n'), { dir: p.dir, problems: e.problems }, e);
  }
  const all = ordered.map((x) => manifests.get(x.index)!);
  // Same run settings: each shard holds exactly the units and images planSamplingShard gives it.
  const total = all[0].shard!.total;
  let expectedStart = 0;
  for (const m of all) {
    if (m.shard!.start !== expectedStart) throw new GenerationRunError('bad-shards', `shard ${shardName(m.shard!)} holds units ${m.shard!.start}..${m.shard!.end} of ${total}, expected to start at ${expectedStart}; run it again`, { dir: p.dir });
    expectedStart = m.shard!.end;
  }
  if (expectedStart !== total) throw new GenerationRunError('bad-shards', `the shards hold units 0..${expectedStart} of ${total}; run the last shard again`, { dir: p.dir });
  const images = all.flatMap((m) => m.images);
  const seen = new Set<string>();
  for (const img of images) {
    if (seen.has(img.file)) throw new GenerationRunError('bad-shards', `the image ${img.file} is in two shards; the shards do not belong together`, { dir: p.dir });
    seen.add(img.file);
  }
  const { shard: _s, ...first } = all[0];
  const manifest: GeneratedSetManifest = { ...first, images };
  if (existsSync(out)) {
    if (!p.force) throw new GenerationRunError('exists', `${p.out} already exists`, { path: out, out: p.out });
    assertNotReplacingInputs({ target: out, inputs: [{ what: 'the shards', path: dir }] });
    assertReplaceableSet({ dir: out });
  }
  if (pathInsideOrSame(out, dir)) throw new GenerationRunError('out-inside-shards', `out ${p.out} must not be inside the shards folder ${p.dir}`, { out: p.out, dir: p.dir });
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    for (const [k, m] of all.entries()) {
      const from = ordered[k].where;
      for (const img of m.images) {
        const target = pathInside({ root: tmp, path: img.file, what: `${join(from, GENERATED_SET_FILES.manifest)}: the image ${JSON.stringify(img.file)}` });
        withGenerationFs(dirname(target), 'create the folder', () => mkdirSync(dirname(target), { recursive: true }));
        const source = pathInside({ root: from, path: img.file, what: `${join(from, GENERATED_SET_FILES.manifest)}: the image`, verb: 'read' });
        withGenerationFs(target, 'copy the image to', () => copyFileSync(source, target));
      }
    }
    // Class folders that the unsharded run creates even when empty of images in every shard.
    for (const c of manifest.generatedClasses) {
      const d = pathInside({ root: tmp, path: c, what: 'a class name' });
      withGenerationFs(join(tmp, c), 'create the folder', () => mkdirSync(d, { recursive: true }));
    }
    const timings = ordered.map((x) => ({ shard: shardName(x), t: readGeneratedSetTiming({ dir: x.where }) }));
    const steps = timings.reduce((a, x) => a + (x.t?.timing?.steps ?? 0), 0);
    const sum = (f: (t: StepTiming) => number) => timings.reduce((a, x) => a + (x.t?.timing ? f(x.t.timing) * x.t.timing.steps : 0), 0);
    const timing: GeneratedSetTiming = {
      format: GENERATED_TIMING_FORMAT,
      createdAt: timings.map((x) => x.t?.createdAt ?? '').filter(Boolean).sort()[0] ?? new Date().toISOString(),
      elapsedSeconds: timings.reduce((a, x) => a + (x.t?.elapsedSeconds ?? 0), 0),
      ...(timings.some((x) => x.t?.timing) ? {
        timing: {
          steps,
          msPerStep: sum((t) => t.msPerStep) / Math.max(1, steps),
          guidanceMsPerStep: sum((t) => t.guidanceMsPerStep) / Math.max(1, steps),
          unguidedMsPerStep: sum((t) => t.unguidedMsPerStep) / Math.max(1, steps),
          batchSize: manifest.batchSize,
        },
      } : {}),
      shards: timings.map((x) => ({ shard: x.shard, createdAt: x.t?.createdAt ?? '', elapsedSeconds: x.t?.elapsedSeconds ?? 0, ...(x.t?.timing ? { timing: x.t.timing } : {}) })),
    };
    writeJson(join(tmp, GENERATED_SET_FILES.timing), timing, 'the timing record');
    writeJson(join(tmp, GENERATED_SET_FILES.manifest), manifest, 'the manifest');
    if (existsSync(out)) withGenerationFs(out, 'replace the output folder', () => rmSync(out, { recursive: true, force: true }));
    withGenerationFs(out, 'move the merged images into', () => renameSync(tmp, out));
    return { manifest, out, count: ordered.length, timing };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
