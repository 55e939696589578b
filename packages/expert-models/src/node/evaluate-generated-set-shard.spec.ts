/**
 * evaluateGeneratedSetShard on the evaluation fixture (stub expert: feature = mean pixel value,
 * logits = -(mean - centre)^2): the outputs.f32 layout holds the stub's known outputs, shard.json
 * pins the key formula, and a finished shard is kept, refused when foreign, replaced with force.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256, stableStringify } from '@fad/diffusion-core/node';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_CENTRES, FIXTURE_GENERATED, FIXTURE_REAL, FIXTURE_SETTINGS, fixtureReal, stubExpert, writeFixtureSet } from '../testing/evaluation-fixture';
import { useCpuBackend } from '../testing/setup-cpu';
import { EVALUATION_SHARD_FORMAT, type EvaluateGeneratedSetShardParams, evaluateGeneratedSetShard, readEvaluationShard } from './evaluate-generated-set-shard';
import { EvaluationRunError } from './evaluation-run-error';

const root = mkdtempSync(join(tmpdir(), 'fad-evaluate-shard-'));
const gen = join(root, 'gen');
beforeAll(async () => {
  await useCpuBackend();
  await writeFixtureSet(gen);
});

const config = (extra: Record<string, unknown> = {}) => ({ evaluate: { ...FIXTURE_SETTINGS, excludeClasses: ['empty'], ...extra }, run: { backend: 'cpu' }, data: { dir: '/data' } });
const params = (out: string, index: number, extra: Partial<EvaluateGeneratedSetShardParams> = {}): EvaluateGeneratedSetShardParams => ({
  generatedDir: gen, expert: stubExpert(), expertPath: 'stub.safetensors', expertSha256: 'stub-sha256', real: fixtureReal(), config: config(), shard: { index, count: 3 }, out, ...extra,
});

describe('evaluateGeneratedSetShard', () => {
  const out = join(root, 'shards');

  it('writes its batches\' logits, features and real features to outputs.f32 (the stub\'s known values), leaking no tensor', async () => {
    const before = tf.memory().numTensors;
    // 9 generated images and 6 real ("a", "b") in batches of 4: 3 + 2 = 5 units; shard 1 of 3 has units 2..3:
    // the last generated batch (image 8) and the first real batch (real images 0..3).
    const r = await evaluateGeneratedSetShard(params(out, 1));
    expect(tf.memory().numTensors).toBe(before);
    expect(r.alreadyComplete).toBe(false);
    expect(r.dir).toBe(join(out, '1-of-3'));
    const s = r.shard;
    expect(s.units).toEqual({ start: 2, end: 4, total: 5, batchSize: 4, generated: [8, 9], real: [0, 4], numGenerated: 9, numReal: 6 });
    expect(s.dims).toEqual({ logits: 3, features: 1 });
    const bytes = readFileSync(join(r.dir, 'outputs.f32'));
    expect(sha256(bytes)).toBe(s.outputsSha256);
    const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const g = FIXTURE_GENERATED[8].value;
    const real = FIXTURE_REAL.filter((x) => x.class !== 'empty').slice(0, 4).map((x) => x.value);
    const want = [...FIXTURE_CENTRES.map((c) => -((g - c) ** 2)), g, ...real];
    expect(data.length).toBe(want.length);
    want.forEach((v, i) => expect(data[i]).toBeCloseTo(v, 6));
    // shard.json: the record read back, with the key of the expert, settings, manifest, real images, folder and backend.
    expect(readEvaluationShard({ dir: r.dir })).toEqual(s);
    expect(s).toMatchObject({ format: EVALUATION_SHARD_FORMAT, index: 1, count: 3, expert: 'stub.safetensors', expertSha256: 'stub-sha256', generatedDir: gen, classNames: ['a', 'b', 'empty'], config: config() });
    const manifestSha256 = sha256(readFileSync(join(gen, 'manifest.json')));
    const realPixels = Float32Array.from(FIXTURE_REAL.filter((x) => x.class !== 'empty').flatMap((x) => new Array(64).fill(x.value)));
    const realSha256 = sha256(stableStringify({ pixels: sha256(new Uint8Array(realPixels.buffer)), labels: ['a', 'b', 'a', 'b', 'a', 'b'] }));
    expect(s.manifestSha256).toBe(manifestSha256);
    expect(s.realSha256).toBe(realSha256);
    expect(s.key).toBe(sha256(stableStringify({ expert: 'stub-sha256', settings: config().evaluate, manifest: manifestSha256, real: realSha256, generatedDir: gen, backend: 'cpu' })));
  });

  it('keeps a finished shard of the same run, refuses one of another run unless forced, and refuses a file as the shards folder', async () => {
    const logs: string[] = [];
    const again = await evaluateGeneratedSetShard(params(out, 1, { log: (m) => logs.push(m) }));
    expect(again.alreadyComplete).toBe(true);
    expect(logs.join('\n')).toMatch(/shard 1-of-3 is already complete/);
    const other = params(out, 1, { config: config({ ssimMaxPairs: 30 }) });
    const e = await evaluateGeneratedSetShard(other).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(EvaluationRunError);
    expect(e).toMatchObject({ code: 'foreign-shard', details: { path: join(out, '1-of-3'), shard: '1-of-3' } });
    const forced = await evaluateGeneratedSetShard({ ...other, force: true });
    expect(forced.alreadyComplete).toBe(false);
    expect(forced.shard.config.evaluate.ssimMaxPairs).toBe(30);
    const file = join(root, 'file');
    writeFileSync(file, 'x');
    await expect(evaluateGeneratedSetShard(params(file, 0))).rejects.toMatchObject({ code: 'out-is-file', details: { out: file } });
    rmSync(file);
  });

  it('checks its params up front', async () => {
    const err = (p: unknown) => evaluateGeneratedSetShard(p as EvaluateGeneratedSetShardParams).then(() => null, (e: Error) => `${e.name}: ${e.message}`);
    expect(await err(params(out, 3))).toMatch(/^RangeError: evaluateGeneratedSetShard: shard: shard index 3 is out of range for 3 shard/);
    expect(await err(params(out, 0, { config: { evaluate: config().evaluate } as never }))).toMatch(/config\.run\.backend must be a string/);
    expect(await err(params(out, 0, { config: { ...config(), evaluate: { ...config().evaluate, kidSubsets: 0 } } }))).toMatch(/settings\.kidSubsets must be an integer >= 1/);
    expect(await err(params(out, 0, { log: 'x' as never }))).toMatch(/^TypeError: evaluateGeneratedSetShard: log must be a function/);
  });
});
