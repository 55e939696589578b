import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { presetConfig } from './expert-config';
import { protocolTrainingSet, runUtility, type RunUtilityParams, type UtilityRunRecord } from './run-utility';
import { useCpuBackend } from './testing/setup-cpu';
import { toyImages } from './testing/toy-data';
import { planProtocols } from './utility-protocols';

beforeAll(useCpuBackend);

const SIZE = 8;
const PER = SIZE * SIZE;
const names = ['a', 'b', 'c'];

/** 12 toy images per class: the first 8 of each class train, the last 4 test. */
function data() {
  const all = toyImages({ numClasses: 3, perClass: 12, size: SIZE, channels: 1, seed: 1 });
  const trainIdx: number[] = [];
  const testIdx: number[] = [];
  all.labels.forEach((_, i) => (Math.floor(i / 3) < 8 ? trainIdx : testIdx).push(i));
  const pick = (idx: number[]) => ({
    images: Float32Array.from(idx.flatMap((i) => Array.from(all.data.subarray(i * PER, (i + 1) * PER)))),
    labels: Int32Array.from(idx.map((i) => all.labels[i])),
  });
  const syn = toyImages({ numClasses: 3, perClass: 5, size: SIZE, channels: 1, seed: 2 });
  const synLabels = Int32Array.from(syn.labels);
  synLabels[14] = -1; // one image of a class the real data lacks
  return { train: pick(trainIdx), test: pick(testIdx), synthetic: { toy: { images: syn.data, labels: synLabels } } };
}

const plan = planProtocols({ fractions: [0.5, 1], ratios: [2], syntheticSets: ['toy'], seeds: [0, 1] });

function params(extra: Partial<RunUtilityParams> = {}): RunUtilityParams {
  return {
    classNames: names, imageSize: SIZE, channels: 1, ...data(), protocols: plan.protocols, seeds: plan.seeds,
    classifier: presetConfig({ name: 'resnet18-kather', overrides: { baseWidth: 4, layers: [1, 1], numClasses: 3, input: { size: SIZE } } }),
    training: { epochs: 2, batchSize: 8, learningRate: 3e-3 },
    ...extra,
  };
}

const withoutTime = (r: UtilityRunRecord) => ({ ...r, trainSeconds: 0, evalSeconds: 0 });

describe('runUtility', () => {
  let full: UtilityRunRecord[];

  it('trains and evaluates every (protocol, seed) with the hand-computed training sets, leaking no tensor', async () => {
    const before = tf.memory().numTensors;
    const events: string[] = [];
    const r = await runUtility(params({ onEvent: (e) => events.push(e.kind) }));
    expect(tf.memory().numTensors).toBe(before);
    expect(r).toMatchObject({ interrupted: false, trained: 10, reused: 0 });
    full = r.records;
    expect(full.map((x) => `${x.protocolId}/${x.seed}`)).toEqual(plan.runs.map((x) => `${x.protocolId}/${x.seed}`));
    const get = (id: string, seed = 0) => full.find((x) => x.protocolId === id && x.seed === seed)!;
    // 8 real per class; 0.5 -> 4; ratio 2 -> 8 synthetic per class of the 5 (4 for "c", one is unused): repeats.
    expect(get('real-f0.5').trainPerClass).toEqual([4, 4, 4]);
    expect(get('real-f1').trainPerClass).toEqual([8, 8, 8]);
    expect(get('mix-toy-r2-f0.5')).toMatchObject({ numReal: 12, numSynthetic: 24, numTrain: 36, trainPerClass: [12, 12, 12], repeatedClasses: ['a', 'b', 'c'] });
    expect(get('mix-toy-r2-f1')).toMatchObject({ numReal: 24, numSynthetic: 48, trainPerClass: [24, 24, 24] });
    expect(get('syn-toy')).toMatchObject({ numReal: 0, numSynthetic: 14, trainPerClass: [5, 5, 4] });
    for (const x of full) {
      expect(x.predictions).toHaveLength(12);
      const acc = x.predictions.filter((p, i) => p === [0, 1, 2][i % 3]).length / 12;
      expect(x.accuracy).toBeCloseTo(acc, 12);
      expect(x.perClassRecall).toHaveLength(3);
      expect(x.trainSeconds).toBeGreaterThan(0);
    }
    expect(events.filter((e) => e === 'done')).toHaveLength(10);
    expect(events).toContain('epoch');
  }, 120_000);

  it('seeds change the real subset, the synthetic draw and the initialisation, not the test set', () => {
    const d = data();
    const p = (id: string) => plan.protocols.find((x) => x.id === id)!;
    const set = (id: string, seed: number) => protocolTrainingSet({ protocol: p(id), seed, trainLabels: d.train.labels, syntheticLabels: d.synthetic.toy.labels, classNames: names });
    expect(set('real-f0.5', 0).real).not.toEqual(set('real-f0.5', 1).real);
    expect(set('real-f1', 0)).toEqual(set('real-f1', 1));
    // The real images of a mixed protocol are those of its real-only reference at the same seed.
    expect(set('mix-toy-r2-f0.5', 1).real).toEqual(set('real-f0.5', 1).real);
    expect(set('syn-toy', 0).synthetic).not.toContain(14);
    // Same training images at fraction 1: only the initialisation (and shuffles) differ between seeds.
    const f1 = full.filter((x) => x.protocolId === 'real-f1');
    expect(f1[0].trainPerClass).toEqual(f1[1].trainPerClass);
  });

  it('resumes from its store: a stopped run keeps its finished classifiers, the rerun trains only the rest and matches an uninterrupted run', async () => {
    const files = new Map<string, UtilityRunRecord>();
    const store = { get: (k: { protocolId: string; seed: number }) => files.get(`${k.protocolId}/${k.seed}`) ?? null, put: (r: UtilityRunRecord) => void files.set(`${r.protocolId}/${r.seed}`, r) };
    let stop = false;
    const first = await runUtility(params({ store, shouldStop: () => stop, onEvent: (e) => { if (e.kind === 'done' && e.index === 3) stop = true; } }));
    expect(first).toMatchObject({ interrupted: true, trained: 3, reused: 0 });
    expect(files.size).toBe(3);
    const trainedAgain: string[] = [];
    const second = await runUtility(params({ store, onEvent: (e) => e.kind === 'start' && trainedAgain.push(`${e.protocolId}/${e.seed}`) }));
    expect(second).toMatchObject({ interrupted: false, trained: 7, reused: 3 });
    expect(trainedAgain).not.toContain('real-f0.5/0');
    expect(trainedAgain).toHaveLength(7);
    expect(second.records.map(withoutTime)).toEqual(full.map(withoutTime));
  }, 120_000);

  it('runs only the (protocol, seed) pairs of `runs`, in plan order, each as in the full run (a shard of the plan)', async () => {
    const slice = plan.runs.slice(3, 7);
    const events: string[] = [];
    const r = await runUtility(params({ runs: [...slice].reverse(), onEvent: (e) => e.kind === 'done' && events.push(`${e.index}/${e.total}`) }));
    expect(r).toMatchObject({ interrupted: false, trained: 4, reused: 0 });
    expect(r.records.map((x) => `${x.protocolId}/${x.seed}`)).toEqual(slice.map((x) => `${x.protocolId}/${x.seed}`));
    expect(r.records.map(withoutTime)).toEqual(full.slice(3, 7).map(withoutTime));
    expect(events).toEqual(['1/4', '2/4', '3/4', '4/4']);
    await expect(runUtility(params({ runs: [{ protocolId: 'real-f0.3', seed: 0 }] }))).rejects.toThrow(/runs\[0\] must be \{ protocolId, seed \} with a protocol of protocols/);
    await expect(runUtility(params({ runs: [{ protocolId: 'real-f1', seed: 5 }] }))).rejects.toThrow(/runs\[0\] must be/);
  }, 120_000);

  it('rejects inputs that do not fit, naming them', async () => {
    await expect(runUtility(params({ classifier: presetConfig({ name: 'resnet18-kather', overrides: { baseWidth: 4, layers: [1, 1], input: { size: SIZE } } }) }))).rejects.toThrow(
      /classifier.numClasses is 8, the data has 3 classes/,
    );
    await expect(runUtility(params({ synthetic: {} }))).rejects.toThrow(/protocol mix-toy-r2-f0.5 needs the synthetic set "toy"/);
    const d = data();
    d.test.labels[2] = 3;
    await expect(runUtility(params({ test: d.test }))).rejects.toThrow(/test.labels\[2\] must be a class index in \[0, 3\)/);
    await expect(runUtility(params({ training: { epochs: 0 } }))).rejects.toThrow(/training.epochs/);
  });
});
