/**
 * The downstream-utility experiment: for every (protocol, training seed) of a plan
 * (`planProtocols`), train a fresh downstream classifier on the protocol's training set (a stratified
 * fraction of the real training split, plus synthetic images at a ratio, or synthetic images only)
 * with `trainExpert` (its robustness augmentation by default), then predict the held-out real test
 * images. Every finished classifier is handed to `store.put` at once, and `store.get` returns the
 * ones finished before, which are not trained again: an interrupted run loses at most the
 * classifier in progress. `summarizeUtility` turns the records into means, CIs and gains.
 */
import * as tf from '@tensorflow/tfjs-core';
import { classificationReport } from '@fad/metrics';
import type { AugmentConfigInput } from './augment-batch';
import { createExpert } from './create-expert';
import { type ExpertConfig, type ExpertConfigInput, resolveExpertConfig } from './expert-config';
import type { ExpertModel } from './expert-model';
import { trainExpert } from './train-expert';
import { mixSynthetic, stratifiedFraction, type UtilityProtocol } from './utility-protocols';
import { assertFunction, assertInt, assertKnownKeys, assertObject, show } from './validate';

/** Images [N, size, size, channels] (row-major, in the classifier's input range) and their labels. */
export interface UtilityImageSet {
  images: Float32Array;
  /** Class index of every image; in a synthetic set, -1 marks an image not to use. */
  labels: Int32Array;
}

/** Training settings of the downstream classifiers (see `trainExpert`). */
export interface UtilityTraining {
  epochs: number;
  batchSize?: number;
  learningRate?: number;
  weightDecay?: number;
  /** Default true: the experts' robustness augmentation. */
  augment?: AugmentConfigInput | boolean;
}

/** One trained and evaluated downstream classifier. */
export interface UtilityRunRecord {
  protocolId: string;
  seed: number;
  /** Training images: real, synthetic (with repeats) and their sum, and the sum per class. */
  numReal: number;
  numSynthetic: number;
  numTrain: number;
  trainPerClass: number[];
  /** Classes whose synthetic images had to repeat to reach the ratio. */
  repeatedClasses: string[];
  /** On the held-out real test images. */
  accuracy: number;
  macroF1: number;
  perClassRecall: number[];
  /** The predicted class of every test image, in test order (what the bootstrap resamples). */
  predictions: number[];
  trainSeconds: number;
  evalSeconds: number;
}

/** Where finished classifiers are kept (e.g. one JSON file each); `get` returns null for one not finished (or stale). */
export interface UtilityStore {
  get(run: { protocolId: string; seed: number }): UtilityRunRecord | null;
  put(record: UtilityRunRecord): void;
}

/** Progress of {@link runUtility}. */
export type UtilityEvent =
  | { kind: 'reused'; index: number; total: number; record: UtilityRunRecord }
  | { kind: 'start'; index: number; total: number; protocolId: string; seed: number; numTrain: number; repeatedClasses: string[] }
  | { kind: 'epoch'; index: number; total: number; protocolId: string; seed: number; epoch: number; epochs: number; loss: number }
  | { kind: 'done'; index: number; total: number; record: UtilityRunRecord };

/** Parameters of {@link runUtility}. */
export interface RunUtilityParams {
  /** Class names of the real data, in label order. */
  classNames: readonly string[];
  imageSize: number;
  channels: number;
  /** The real training split. */
  train: UtilityImageSet;
  /** The held-out real test split (never trained on; the same for every protocol and seed). */
  test: UtilityImageSet;
  /** The synthetic sets by name, labels in the real data's class order. */
  synthetic?: Record<string, UtilityImageSet>;
  /** The protocols (`planProtocols(...).protocols`). */
  protocols: readonly UtilityProtocol[];
  /** Training seeds: the real subset, the synthetic draw, the initialisation, shuffles and augmentation. */
  seeds: readonly number[];
  /** The downstream classifier's architecture (numClasses and input size/channels must fit the data). */
  classifier: ExpertConfig | ExpertConfigInput;
  training: UtilityTraining;
  store?: UtilityStore;
  onEvent?: (event: UtilityEvent) => void;
  /** Checked between training steps: true stops the classifier in progress (its result is discarded). */
  shouldStop?: () => boolean;
  /** Test images per forward pass, default 64. */
  evalBatchSize?: number;
  /**
   * Only these (protocol, seed) pairs (e.g. a shard's slice of `planProtocols(...).runs`), done in
   * plan order; default every protocol with every seed. Each must name a protocol of `protocols`
   * and a seed of `seeds`. A classifier's result does not depend on which others are run.
   */
  runs?: ReadonlyArray<{ protocolId: string; seed: number }>;
}

/** Result of {@link runUtility}. */
export interface RunUtilityResult {
  /** Every finished (protocol, seed), protocol-major in plan order (all of them, or of `runs`, unless interrupted). */
  records: UtilityRunRecord[];
  interrupted: boolean;
  trained: number;
  reused: number;
}

const KEYS = ['classNames', 'imageSize', 'channels', 'train', 'test', 'synthetic', 'protocols', 'seeds', 'classifier', 'training', 'store', 'onEvent', 'shouldStop', 'evalBatchSize', 'runs'];
const TRAINING_KEYS = ['epochs', 'batchSize', 'learningRate', 'weightDecay', 'augment'];

function checkSet(fn: string, field: string, set: unknown, per: number, numClasses: number, allowUnused: boolean): UtilityImageSet {
  assertObject(fn, field, set);
  const { images, labels } = set as unknown as UtilityImageSet;
  if (!(images instanceof Float32Array)) throw new TypeError(`${fn}: ${field}.images must be a Float32Array, got ${show(images)}`);
  if (!(labels instanceof Int32Array)) throw new TypeError(`${fn}: ${field}.labels must be an Int32Array, got ${show(labels)}`);
  if (images.length !== labels.length * per) {
    throw new RangeError(`${fn}: ${field}.images has ${images.length} values, expected ${labels.length} images x ${per} (labels.length x size x size x channels)`);
  }
  labels.forEach((y, i) => {
    if (!(y >= 0 && y < numClasses) && !(allowUnused && y === -1)) throw new RangeError(`${fn}: ${field}.labels[${i}] must be a class index in [0, ${numClasses})${allowUnused ? ' or -1' : ''}, got ${y}`);
  });
  return { images, labels };
}

/** The images of a protocol and seed: indices into the real training split and into the synthetic set. */
export function protocolTrainingSet(args: {
  protocol: UtilityProtocol;
  seed: number;
  trainLabels: Int32Array;
  syntheticLabels: Int32Array | null;
  classNames: readonly string[];
}): { real: number[]; synthetic: number[]; repeatedClasses: string[] } {
  const { protocol: p, seed, trainLabels, syntheticLabels, classNames } = args;
  if (p.kind === 'synthetic') {
    const synthetic: number[] = [];
    syntheticLabels!.forEach((y, i) => y >= 0 && synthetic.push(i));
    return { real: [], synthetic, repeatedClasses: [] };
  }
  const real = stratifiedFraction({ labels: trainLabels, fraction: p.fraction as number, seed, classNames });
  if (p.kind === 'real') return { real, synthetic: [], repeatedClasses: [] };
  const mix = mixSynthetic({ real: real.map((i) => trainLabels[i]), synthetic: syntheticLabels!, ratio: p.ratio as number, seed, classNames });
  return { real, synthetic: mix.indices, repeatedClasses: mix.repeated };
}

/** Predicted classes of `images` (inference mode, in batches). Leaves no tensors behind. */
function predictAll(expert: ExpertModel, images: Float32Array, n: number, shape: [number, number, number], batchSize: number): Int32Array {
  const per = shape[0] * shape[1] * shape[2];
  const out = new Int32Array(n);
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    const pred = tf.tidy(() => expert.predict(tf.tensor4d(images.subarray(s * per, (s + m) * per), [m, ...shape])));
    out.set(pred.dataSync() as Int32Array, s);
    pred.dispose();
  }
  return out;
}

/** Trains and evaluates every (protocol, seed) not in the store (see the file comment). */
export async function runUtility(params: RunUtilityParams): Promise<RunUtilityResult> {
  const fn = 'runUtility';
  assertObject(fn, 'params', params);
  assertKnownKeys(fn, '', params, KEYS);
  const { classNames, imageSize, channels, protocols, seeds, training, store, onEvent, shouldStop, evalBatchSize = 64 } = params;
  if (!Array.isArray(classNames) || classNames.length < 2 || !classNames.every((c) => typeof c === 'string')) {
    throw new TypeError(`${fn}: classNames must be an array of at least 2 class names, got ${show(classNames)}`);
  }
  assertInt(fn, 'imageSize', imageSize, 1);
  assertInt(fn, 'channels', channels, 1);
  assertInt(fn, 'evalBatchSize', evalBatchSize, 1);
  const per = imageSize * imageSize * channels;
  const K = classNames.length;
  const train = checkSet(fn, 'train', params.train, per, K, false);
  const test = checkSet(fn, 'test', params.test, per, K, false);
  if (test.labels.length === 0) throw new RangeError(`${fn}: test has no images`);
  const synthetic: Record<string, UtilityImageSet> = {};
  if (params.synthetic !== undefined) {
    assertObject(fn, 'synthetic', params.synthetic);
    for (const [name, set] of Object.entries(params.synthetic)) synthetic[name] = checkSet(fn, `synthetic.${name}`, set, per, K, true);
  }
  if (!Array.isArray(protocols) || protocols.length === 0) throw new TypeError(`${fn}: protocols must be a non-empty array (planProtocols(...).protocols), got ${show(protocols)}`);
  for (const p of protocols) {
    if (p.synthetic !== null && !synthetic[p.synthetic]) throw new RangeError(`${fn}: protocol ${p.id} needs the synthetic set "${p.synthetic}", which is not in synthetic (${Object.keys(synthetic).join(', ') || 'none'})`);
  }
  if (!Array.isArray(seeds) || seeds.length === 0) throw new TypeError(`${fn}: seeds must be a non-empty array, got ${show(seeds)}`);
  seeds.forEach((s, i) => assertInt(fn, `seeds[${i}]`, s, 0, 0xffffffff));
  assertObject(fn, 'training', training);
  assertKnownKeys(fn, 'training', training, TRAINING_KEYS);
  assertInt(fn, 'training.epochs', training.epochs, 1);
  if (onEvent !== undefined) assertFunction(fn, 'onEvent', onEvent);
  if (shouldStop !== undefined) assertFunction(fn, 'shouldStop', shouldStop);
  if (store !== undefined && (typeof store?.get !== 'function' || typeof store?.put !== 'function')) throw new TypeError(`${fn}: store must have get and put functions, got ${show(store)}`);
  const config = resolveExpertConfig(params.classifier as ExpertConfigInput);
  if (config.numClasses !== K) throw new RangeError(`${fn}: classifier.numClasses is ${config.numClasses}, the data has ${K} classes`);
  if (config.input.size !== imageSize || config.input.channels !== channels) {
    throw new RangeError(`${fn}: classifier.input is ${config.input.size}x${config.input.size}x${config.input.channels}, the images are ${imageSize}x${imageSize}x${channels}`);
  }

  let only: Set<string> | null = null;
  if (params.runs !== undefined) {
    if (!Array.isArray(params.runs)) throw new TypeError(`${fn}: runs must be an array of { protocolId, seed }, got ${show(params.runs)}`);
    only = new Set();
    params.runs.forEach((r, i) => {
      if (r === null || typeof r !== 'object' || !protocols.some((p) => p.id === r.protocolId) || !seeds.includes(r.seed)) {
        throw new RangeError(`${fn}: runs[${i}] must be { protocolId, seed } with a protocol of protocols and a seed of seeds, got ${show(r)}`);
      }
      only!.add(`${r.protocolId}\u0000${r.seed}`);
    });
  }
  const shape: [number, number, number] = [imageSize, imageSize, channels];
  const total = only ? only.size : protocols.length * seeds.length;
  const records: UtilityRunRecord[] = [];
  let trained = 0;
  let reused = 0;
  let index = 0;
  for (const protocol of protocols) {
    for (const seed of seeds) {
      if (only && !only.has(`${protocol.id}\u0000${seed}`)) continue;
      index++;
      const old = store?.get({ protocolId: protocol.id, seed }) ?? null;
      if (old) {
        records.push(old);
        reused++;
        onEvent?.({ kind: 'reused', index, total, record: old });
        continue;
      }
      const syn = protocol.synthetic !== null ? synthetic[protocol.synthetic] : null;
      const set = protocolTrainingSet({ protocol, seed, trainLabels: train.labels, syntheticLabels: syn?.labels ?? null, classNames });
      const n = set.real.length + set.synthetic.length;
      const images = new Float32Array(n * per);
      const labels = new Int32Array(n);
      set.real.forEach((k, i) => {
        images.set(train.images.subarray(k * per, (k + 1) * per), i * per);
        labels[i] = train.labels[k];
      });
      set.synthetic.forEach((k, j) => {
        const i = set.real.length + j;
        images.set(syn!.images.subarray(k * per, (k + 1) * per), i * per);
        labels[i] = syn!.labels[k];
      });
      onEvent?.({ kind: 'start', index, total, protocolId: protocol.id, seed, numTrain: n, repeatedClasses: set.repeatedClasses });
      const expert = createExpert({ config, classNames, seed });
      try {
        const t0 = Date.now();
        const r = await trainExpert({
          expert, images: { data: images, shape: [n, ...shape] }, labels, validationFraction: 0,
          epochs: training.epochs, batchSize: training.batchSize, learningRate: training.learningRate, weightDecay: training.weightDecay,
          augment: training.augment ?? true, seed, shouldStop,
          onProgress: (p) => p.kind === 'epoch' && onEvent?.({ kind: 'epoch', index, total, protocolId: protocol.id, seed, epoch: p.epoch, epochs: p.epochs, loss: p.loss }),
        });
        if (r.interrupted) return { records, interrupted: true, trained, reused };
        const t1 = Date.now();
        const predictions = predictAll(expert, test.images, test.labels.length, shape, evalBatchSize);
        const rep = classificationReport({ yTrue: test.labels, yPred: predictions, numClasses: K });
        const record: UtilityRunRecord = {
          protocolId: protocol.id, seed,
          numReal: set.real.length, numSynthetic: set.synthetic.length, numTrain: n,
          trainPerClass: classNames.map((_, c) => labels.reduce((s, y) => s + (y === c ? 1 : 0), 0)),
          repeatedClasses: set.repeatedClasses,
          accuracy: rep.accuracy, macroF1: rep.macro.f1, perClassRecall: rep.perClass.map((c) => c.recall),
          predictions: Array.from(predictions),
          trainSeconds: (t1 - t0) / 1000, evalSeconds: (Date.now() - t1) / 1000,
        };
        store?.put(record);
        records.push(record);
        trained++;
        onEvent?.({ kind: 'done', index, total, record });
      } finally {
        expert.dispose();
      }
    }
  }
  return { records, interrupted: false, trained, reused };
}
