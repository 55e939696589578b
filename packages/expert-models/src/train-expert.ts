/**
 * Supervised training of an expert classifier: seeded stratified train/validation split, Adam with
 * step decay of the learning rate per epoch (the paper: lr 1e-4, gamma 0.7 every epoch), weight
 * decay, seeded augmentation, validation after every epoch, the best epoch's weights kept (by
 * validation accuracy) and optionally written as a checkpoint.
 *
 * Long runs: with `statePath`, the whole training state (weights with BatchNorm statistics, Adam,
 * RNG states, position, partial sums, history, best epoch) is written atomically every
 * `checkpointEverySteps` steps (default: every epoch) and at the end; `resume` continues from it
 * and ends bit-identical to an uninterrupted run on the same backend; `shouldStop` (e.g. Ctrl-C)
 * writes the state and returns early. See train-state.ts for the file.
 */
import { Generator, decodeSafetensors, describeNonFiniteWeights, encodeSafetensors, findNonFiniteWeights } from '@fad/diffusion-core';
import { type AugmentConfig, type AugmentConfigInput, augmentBatch, resolveAugmentConfig } from './augment-batch';
import { checkImageSet, evaluateOnSet, type ExpertEvaluation } from './evaluate-expert';
import { CHECKPOINT_STATUS_KEY, serializeExpert } from './expert-checkpoint';
import type { ExpertModel } from './expert-model';
import { ExpertTrainer, WEIGHT_DECAY_MODES, type WeightDecayMode } from './expert-trainer';
import { type ImageSet, type ImageSetInput, type LabelSetInput, gatherImages, gatherLabels, readImageSet, readLabelSet } from './image-batch';
import { stepDecayLearningRate } from './lr-step-decay';
import { type NoiseAwareConfig, checkNoiseAwareConfig, noisyExpertBatch } from './noise-aware';
import { type DataSplit, stratifiedSplit } from './stratified-split';
import { checkStateMetadata, encodeTrainState, fnvFloats, fingerprintDifferences, readTrainState, type TrainState, trainFingerprint } from './train-state';
import type { TrainingFiles } from './training-files';
import { assertBoolean, assertFunction, assertInt, assertKnownKeys, assertNumber, assertObject, assertOneOf, show } from './validate';

/** Parameters of {@link trainExpert}. */
export interface TrainExpertParams {
  /** The expert to train in place (not frozen). */
  expert: ExpertModel;
  /** Training images [N,H,W,C] in the expert's input range. */
  images: ImageSetInput;
  /** Class indices [N]. */
  labels: LabelSetInput;
  /**
   * A separate validation set. Without it, `validationFraction` of every class of `images` is held
   * out (seeded, stratified).
   */
  validation?: { images: ImageSetInput; labels: LabelSetInput };
  /** Share held out for validation when `validation` is not given, in [0, 1); default 0.1. 0 = none. */
  validationFraction?: number;
  /** Passes over the training set, >= 1. */
  epochs: number;
  /** Images per step, default 32. A last batch of a single image is merged into the one before. */
  batchSize?: number;
  /** Learning rate of the first epoch, default 1e-4 (the paper's). */
  learningRate?: number;
  /** Learning-rate factor every `lrStepEpochs` epochs, in (0, 1], default 0.7 (the paper's). */
  lrGamma?: number;
  /** Epochs between decays, default 1. */
  lrStepEpochs?: number;
  /** Weight decay, default 0. */
  weightDecay?: number;
  /** `'l2'` (default, as PyTorch Adam) or `'decoupled'` (AdamW). */
  weightDecayMode?: WeightDecayMode;
  /** Augmentation: `true`/omitted = defaults (flips + robustness steps), `false` = none, or a partial config. */
  augment?: AugmentConfigInput | boolean;
  /**
   * Noise-aware training for guidance: after augmentation, each training batch is replaced by x_t of
   * a diffusion forward process at uniformly drawn timesteps (see `noisyExpertBatch`). Validation
   * stays on clean images. Omit for ordinary training.
   */
  noiseAware?: NoiseAwareConfig;
  /** Seed of the split, the shuffles and the augmentation, default 0. */
  seed?: number;
  /** Called after every step and every epoch (synchronously). */
  onProgress?: (event: TrainProgress) => void;
  /**
   * How the paths below are read and written. `trainExpert` from `@fad/expert-models/node` passes
   * Node's file system; from the main entry point, paths need this (there is no default there).
   */
  files?: TrainingFiles;
  /** Where to write the best checkpoint (Node; atomically, each time validation accuracy improves). */
  checkpointPath?: string;
  /** Where to write the split indices as JSON (Node; atomically, before training starts). */
  splitPath?: string;
  /** Load the best epoch's weights into the expert at the end, default true (needs validation). */
  restoreBest?: boolean;
  /** Images per forward pass in validation, default 64. */
  evalBatchSize?: number;
  /**
   * Where to write the resumable training state (Node; one safetensors file, atomically: temporary
   * file, then rename): every `checkpointEverySteps` steps, at the end, and when `shouldStop` stops
   * the run. It holds everything `resume` needs (see the README).
   */
  statePath?: string;
  /**
   * Steps between state writes (needs `statePath`); default: at the end of every epoch. The state
   * is also written at the end of training and when stopped.
   */
  checkpointEverySteps?: number;
  /**
   * Continue from the state in `statePath` (which must exist) instead of starting over, default
   * false. The expert's weights are replaced by the saved ones; every other input must match the
   * run that wrote the state (epochs, batch size, learning rate and schedule, weight decay, seed,
   * data, split, augmentation, expert config), or it throws naming what differs. The result equals
   * an uninterrupted run's bit for bit on the same backend (apart from timings).
   */
  resume?: boolean;
  /**
   * Checked after every step (the event loop runs in between, so signal handlers can set a flag):
   * when it returns true, the state is written (with `statePath`) and training returns early with
   * `interrupted: true`.
   */
  shouldStop?: () => boolean;
  /** Extra string metadata stored in the state file (e.g. a run key); `format`, `state`, `fingerprint` are reserved. */
  stateMetadata?: Record<string, string>;
}

/** A progress report. Epochs and steps count from 1. */
export interface TrainProgress {
  /** `'step'` after each optimiser step, `'epoch'` after each epoch's validation. */
  kind: 'step' | 'epoch';
  epoch: number;
  epochs: number;
  /** Step within the epoch (the last step for epoch events). */
  step: number;
  stepsPerEpoch: number;
  globalStep: number;
  totalSteps: number;
  /** Step: the batch's loss. Epoch: mean training loss of the epoch. */
  loss: number;
  /** Step: the batch's accuracy (training mode, augmented). Epoch: the epoch's mean. */
  trainAccuracy: number;
  learningRate: number;
  /** Epoch events with validation: accuracy and loss on the validation set; otherwise null. */
  validationAccuracy: number | null;
  validationLoss: number | null;
  /** Epoch events: whether this epoch is the best so far. */
  isBest: boolean;
  elapsedMs: number;
  /** Estimated time left (elapsed per step so far times steps left). */
  etaMs: number;
}

/** One epoch in the history. */
export interface EpochSummary {
  epoch: number;
  learningRate: number;
  trainLoss: number;
  trainAccuracy: number;
  validationAccuracy: number | null;
  validationLoss: number | null;
  isBest: boolean;
  elapsedMs: number;
}

/** Result of {@link trainExpert}. */
export interface TrainExpertResult {
  history: EpochSummary[];
  /**
   * The epoch (1-based) with the best validation accuracy (ties: lower validation loss), or the
   * last epoch without validation. The expert holds its weights at the end unless `restoreBest` is false.
   */
  bestEpoch: number;
  bestValidationAccuracy: number | null;
  /**
   * Indices into `images`: `train` and `validation` (held out). With a separate `validation` set,
   * `train` is every index and `validation` is empty.
   */
  split: DataSplit;
  /** Evaluation of the weights the expert holds at the end on the validation set, or null without one. */
  validation: ExpertEvaluation | null;
  steps: number;
  elapsedMs: number;
  /** The resolved augmentation config used. */
  augment: AugmentConfig;
  /**
   * True when `shouldStop` ended the run early: the expert then holds the current (not the best)
   * weights, `validation` is null, `bestEpoch` is 0 if no epoch finished, and the state (with
   * `statePath`) was written so that `resume` can continue.
   */
  interrupted: boolean;
  /** The global step the run resumed from (`resume`), or null. */
  resumedFromStep: number | null;
}

const KEYS = [
  'expert', 'images', 'labels', 'validation', 'validationFraction', 'epochs', 'batchSize', 'learningRate', 'lrGamma', 'lrStepEpochs',
  'weightDecay', 'weightDecayMode', 'augment', 'noiseAware', 'seed', 'onProgress', 'checkpointPath', 'splitPath', 'files', 'restoreBest', 'evalBatchSize',
  'statePath', 'checkpointEverySteps', 'resume', 'shouldStop', 'stateMetadata',
];

/** Splits `indices` into batches of `batchSize`; a trailing batch of one joins the previous batch. */
function batches(indices: number[], batchSize: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < indices.length; i += batchSize) out.push(indices.slice(i, i + batchSize));
  if (out.length > 1 && out[out.length - 1].length === 1) out[out.length - 2].push(...out.pop()!);
  return out;
}

/** Trains `expert` in place (see the file comment). Leaves no tensors behind. */
export async function trainExpert(params: TrainExpertParams): Promise<TrainExpertResult> {
  const fn = 'trainExpert';
  assertObject(fn, 'params', params);
  assertKnownKeys(fn, '', params, KEYS);
  const {
    expert, epochs, batchSize = 32, learningRate = 1e-4, lrGamma = 0.7, lrStepEpochs = 1, weightDecay = 0, weightDecayMode = 'l2',
    seed = 0, onProgress, checkpointPath, splitPath, restoreBest = true, evalBatchSize = 64, statePath, checkpointEverySteps, resume = false,
    shouldStop, files,
  } = params;
  if (!expert || typeof (expert as ExpertModel).trainableVariables !== 'function') {
    throw new TypeError(`${fn}: expert must be an expert model (ResNet or VisionTransformer), got ${show(expert)}`);
  }
  assertInt(fn, 'epochs', epochs, 1);
  assertInt(fn, 'batchSize', batchSize, 1);
  assertNumber(fn, 'learningRate', learningRate, { min: 0, minExclusive: true });
  assertNumber(fn, 'lrGamma', lrGamma, { min: 0, max: 1, minExclusive: true });
  assertInt(fn, 'lrStepEpochs', lrStepEpochs, 1);
  assertNumber(fn, 'weightDecay', weightDecay, { min: 0 });
  assertOneOf(fn, 'weightDecayMode', weightDecayMode, WEIGHT_DECAY_MODES);
  assertInt(fn, 'seed', seed, 0, 0xffffffff);
  if (onProgress !== undefined) assertFunction(fn, 'onProgress', onProgress);
  for (const [k, v] of [['checkpointPath', checkpointPath], ['splitPath', splitPath], ['statePath', statePath]] as const) {
    if (v !== undefined && (typeof v !== 'string' || v === '')) throw new TypeError(`${fn}: ${k} must be a non-empty string, got ${show(v)}`);
  }
  if (files !== undefined) {
    assertObject(fn, 'files', files);
    assertFunction(fn, 'files.readFile', files.readFile);
    assertFunction(fn, 'files.writeFileAtomic', files.writeFileAtomic);
  }
  const firstPath = ([['checkpointPath', checkpointPath], ['splitPath', splitPath], ['statePath', statePath]] as const).find(([, v]) => v !== undefined);
  if (firstPath && !files) {
    throw new TypeError(`${fn}: ${firstPath[0]} needs file access: import trainExpert from '@fad/expert-models/node' (Node), or pass files: {readFile, writeFileAtomic}`);
  }
  assertBoolean(fn, 'restoreBest', restoreBest);
  assertInt(fn, 'evalBatchSize', evalBatchSize, 1);
  if (checkpointEverySteps !== undefined) {
    assertInt(fn, 'checkpointEverySteps', checkpointEverySteps, 1);
    if (!statePath) throw new RangeError(`${fn}: checkpointEverySteps needs statePath (where to write the state)`);
  }
  assertBoolean(fn, 'resume', resume);
  if (resume && !statePath) throw new RangeError(`${fn}: resume needs statePath (the state to continue from)`);
  if (shouldStop !== undefined) assertFunction(fn, 'shouldStop', shouldStop);
  const stateMetadata = checkStateMetadata(fn, params.stateMetadata);
  const augment = resolveAugmentConfig(params.augment);
  const { noiseAware } = params;
  if (noiseAware !== undefined) checkNoiseAwareConfig(fn, 'noiseAware', noiseAware);

  // Data.
  const set = readImageSet(fn, 'images', params.images);
  checkImageSet(fn, 'images', set, expert);
  const labels = readLabelSet(fn, 'labels', params.labels, set.shape[0], expert.numClasses);
  let split: DataSplit;
  let valSet: ImageSet;
  let valLabels: Int32Array;
  let valIndices: number[];
  if (params.validation !== undefined) {
    if (params.validationFraction !== undefined) {
      throw new RangeError(`${fn}: give either validation (a separate set) or validationFraction, not both`);
    }
    assertObject(fn, 'validation', params.validation);
    assertKnownKeys(fn, 'validation', params.validation, ['images', 'labels']);
    valSet = readImageSet(fn, 'validation.images', params.validation.images);
    checkImageSet(fn, 'validation.images', valSet, expert);
    valLabels = readLabelSet(fn, 'validation.labels', params.validation.labels, valSet.shape[0], expert.numClasses);
    split = { train: Array.from({ length: set.shape[0] }, (_, i) => i), validation: [] };
    valIndices = Array.from({ length: valSet.shape[0] }, (_, i) => i);
  } else {
    const validationFraction = params.validationFraction ?? 0.1;
    split = stratifiedSplit({ labels, validationFraction, seed });
    valSet = set;
    valLabels = labels;
    valIndices = split.validation;
  }
  if (split.train.length === 0) throw new RangeError(`${fn}: no training samples (${set.shape[0]} images, ${split.validation.length} held out)`);
  const hasValidation = valIndices.length > 0;
  const fingerprint = statePath
    ? trainFingerprint({
        expertConfig: expert.config, images: set, labels, validation: params.validation !== undefined ? { images: valSet, labels: valLabels } : null, split,
        epochs, batchSize, learningRate, lrGamma, lrStepEpochs, weightDecay, weightDecayMode, seed, augment, restoreBest, evalBatchSize,
        noiseAware: noiseAware ? { ...noiseAware, alphasCumprod: fnvFloats(noiseAware.alphasCumprod) } : null,
      })
    : {};
  // Read (and check) the state before anything is written or trained.
  const saved = resume ? await readTrainState(fn, statePath!, files!) : null;
  if (saved) {
    const diff = fingerprintDifferences(saved.fingerprint, fingerprint);
    if (diff.length > 0) {
      throw new Error(`${fn}: cannot resume from ${statePath}: it was written with different inputs: ${diff.join('; ')}`);
    }
  }

  // Training state (the trainer checks the expert before anything is written).
  const trainer = new ExpertTrainer({ expert, learningRate, weightDecay, weightDecayMode });
  const shuffle = new Generator((seed + 1) >>> 0);
  const augmentGen = new Generator((seed + 2) >>> 0);
  const noiseGen = new Generator((seed + 3) >>> 0);
  const stepsPerEpoch = batches(split.train, batchSize).length;
  const totalSteps = stepsPerEpoch * epochs;
  let history: EpochSummary[] = [];
  let best: { epoch: number; accuracy: number; loss: number; state: ReturnType<ExpertModel['stateDict']> | null } | null = null;
  let globalStep = 0;
  let startEpoch = 0;
  let startStep = 0;
  let sums = { loss: 0, correct: 0, seen: 0 };
  let elapsedBefore = 0;
  if (saved) {
    // A state whose position does not fit this run (hand-edited, or damaged) must never end as a
    // finished run: every field is checked before anything is loaded.
    const st = saved.state;
    const bad = (field: string, expected: string): never => {
      trainer.dispose();
      throw new Error(`${fn}: cannot resume from ${statePath}: state.${field} is ${show((st as unknown as Record<string, unknown>)[field.split('.')[0]])}, expected ${expected}`);
    };
    const isInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v);
    if (!isInt(st.epoch) || st.epoch < 0 || st.epoch > epochs) bad('epoch', `an integer in 0..${epochs}`);
    if (st.stepsPerEpoch !== stepsPerEpoch) bad('stepsPerEpoch', String(stepsPerEpoch));
    if (st.totalSteps !== totalSteps) bad('totalSteps', String(totalSteps));
    const maxInEpoch = st.epoch === epochs ? 0 : stepsPerEpoch - 1;
    if (!isInt(st.stepInEpoch) || st.stepInEpoch < 0 || st.stepInEpoch > maxInEpoch) bad('stepInEpoch', `an integer in 0..${maxInEpoch}`);
    if (st.globalStep !== st.epoch * stepsPerEpoch + st.stepInEpoch) bad('globalStep', `${st.epoch * stepsPerEpoch + st.stepInEpoch} (epoch ${st.epoch} x ${stepsPerEpoch} steps + ${st.stepInEpoch})`);
    if (!Array.isArray(st.history) || st.history.length !== st.epoch) bad('history', `a list of ${st.epoch} epoch summaries`);
    if (st.best !== null && (typeof st.best !== 'object' || !isInt(st.best.epoch) || st.best.epoch < 1 || st.best.epoch > st.epoch)) bad('best', `null or a record of an epoch in 1..${st.epoch}`);
    try {
      expert.loadStateDict(saved.expert);
      trainer.setState(saved.adam);
    } catch (e) {
      trainer.dispose();
      throw new Error(`${fn}: cannot resume from ${statePath}: ${(e as Error).message}`);
    }
    shuffle.setState(st.shuffle);
    augmentGen.setState(st.augment);
    if (st.noise) noiseGen.setState(st.noise);
    globalStep = st.globalStep;
    startEpoch = st.epoch;
    startStep = st.stepInEpoch;
    sums = { ...st.sums };
    history = st.history.map((h) => ({ ...h }));
    best = st.best && { epoch: st.best.epoch, accuracy: st.best.accuracy ?? NaN, loss: st.best.loss ?? NaN, state: saved.best };
    elapsedBefore = st.elapsedMs;
  }
  const resumedFromStep = saved ? globalStep : null;
  const t0 = performance.now() - elapsedBefore;
  const range = expert.inputSpec.range;
  const stepsThisRun = () => globalStep - (resumedFromStep ?? 0);
  const eta = () => ((performance.now() - t0 - elapsedBefore) / Math.max(1, stepsThisRun())) * (totalSteps - globalStep);
  // The shuffle generator's state at the start of the epoch in progress.
  let epochShuffle = shuffle.getState();
  // Nothing non-finite is written: weights that overflowed stop training with the step and the tensor.
  const assertFinite = (what: string) => {
    const bad = findNonFiniteWeights(expert.namedParameters());
    if (bad) {
      throw Object.assign(new Error(`${fn}: non-finite weights after step ${globalStep} (${describeNonFiniteWeights(bad)}); ${what} was not written. Lower the learning rate.`), { code: 'FAD_NON_FINITE', step: globalStep, tensor: bad.first });
    }
  };
  const writeState = async (epoch: number, stepInEpoch: number) => {
    if (!statePath) return;
    assertFinite(`the training state ${statePath}`);
    const state: TrainState = {
      epoch, stepInEpoch, globalStep, totalSteps, epochs, stepsPerEpoch,
      shuffle: epochShuffle, augment: augmentGen.getState(), noise: noiseGen.getState(), sums: { ...sums }, history,
      best: best && { epoch: best.epoch, accuracy: Number.isNaN(best.accuracy) ? null : best.accuracy, loss: Number.isNaN(best.loss) ? null : best.loss, weights: best.state !== null },
      elapsedMs: performance.now() - t0,
    };
    await files!.writeFileAtomic(statePath, encodeTrainState({ state, fingerprint, metadata: stateMetadata, expert: expert.stateDict(), best: best?.state ?? null, adam: trainer.getState() }));
  };
  const yieldToEventLoop = () => new Promise<void>((res) => (typeof setImmediate === 'function' ? setImmediate(res) : setTimeout(res, 0)));
  let interrupted = false;

  try {
    if (splitPath) await files!.writeFileAtomic(splitPath, JSON.stringify({ seed, ...split }));
    for (let e = startEpoch; e < epochs && !interrupted; e++) {
      const lr = stepDecayLearningRate({ baseLearningRate: learningRate, gamma: lrGamma, stepEpochs: lrStepEpochs, epoch: e });
      epochShuffle = shuffle.getState();
      const order = shuffle.permutation(split.train.length).map((i) => split.train[i]);
      const epochBatches = batches(order, batchSize);
      const first = e === startEpoch ? startStep : 0;
      for (let s = first; s < epochBatches.length; s++) {
        const idx = epochBatches[s];
        const x = gatherImages(set, idx);
        let xa = augmentBatch({ images: x, config: augment, range, generator: augmentGen });
        x.dispose();
        if (noiseAware) {
          const noisy = noisyExpertBatch({ ...noiseAware, images: xa, range, generator: noiseGen }).images;
          xa.dispose();
          xa = noisy;
        }
        let r;
        try {
          r = trainer.trainStep({ images: xa, labels: gatherLabels(labels, idx), learningRate: lr });
        } finally {
          xa.dispose();
        }
        globalStep++;
        sums.loss += r.loss * idx.length;
        sums.correct += r.accuracy * idx.length;
        sums.seen += idx.length;
        onProgress?.({
          kind: 'step', epoch: e + 1, epochs, step: s + 1, stepsPerEpoch, globalStep, totalSteps, loss: r.loss, trainAccuracy: r.accuracy,
          learningRate: lr, validationAccuracy: null, validationLoss: null, isBest: false, elapsedMs: performance.now() - t0, etaMs: eta(),
        });
        // The last step of an epoch is saved after the epoch's validation (below).
        if (s === epochBatches.length - 1) break;
        const due = checkpointEverySteps !== undefined && globalStep % checkpointEverySteps === 0;
        if (due) await writeState(e, s + 1);
        if (shouldStop) {
          await yieldToEventLoop();
          if (shouldStop()) {
            if (!due) await writeState(e, s + 1);
            interrupted = true;
            break;
          }
        }
      }
      if (interrupted) break;
      const { loss: lossSum, correct: correctSum, seen } = sums;
      let valAcc: number | null = null;
      let valLoss: number | null = null;
      let isBest: boolean;
      if (hasValidation) {
        const ev = evaluateOnSet({ expert, set: valSet, labels: valLabels, indices: valIndices, batchSize: evalBatchSize });
        valAcc = ev.accuracy;
        valLoss = ev.loss;
        isBest = best === null || valAcc > best.accuracy || (valAcc === best.accuracy && valLoss < best.loss);
      } else {
        isBest = true; // without validation the latest epoch is kept
      }
      if (isBest) {
        best = { epoch: e + 1, accuracy: valAcc ?? NaN, loss: valLoss ?? NaN, state: hasValidation && restoreBest ? expert.stateDict() : null };
        if (checkpointPath) {
          const training = { epoch: e + 1, epochs, validationAccuracy: valAcc, validationLoss: valLoss, trainLoss: lossSum / seen, learningRate: lr, batchSize, seed, ...(noiseAware ? { noiseAware: true } : {}) };
          assertFinite(`the checkpoint ${checkpointPath}`);
          // partial until training has finished (then marked complete below).
          await files!.writeFileAtomic(checkpointPath, serializeExpert({ expert, metadata: { training: JSON.stringify(training), split: JSON.stringify(split), [CHECKPOINT_STATUS_KEY]: 'partial' } }));
        }
      }
      const summary: EpochSummary = {
        epoch: e + 1, learningRate: lr, trainLoss: lossSum / seen, trainAccuracy: correctSum / seen, validationAccuracy: valAcc, validationLoss: valLoss,
        isBest, elapsedMs: performance.now() - t0,
      };
      history.push(summary);
      onProgress?.({
        kind: 'epoch', epoch: e + 1, epochs, step: stepsPerEpoch, stepsPerEpoch, globalStep, totalSteps, loss: summary.trainLoss,
        trainAccuracy: summary.trainAccuracy, learningRate: lr, validationAccuracy: valAcc, validationLoss: valLoss, isBest,
        elapsedMs: summary.elapsedMs, etaMs: eta(),
      });
      // The next epoch starts with fresh sums and the shuffle generator as it is now.
      sums = { loss: 0, correct: 0, seen: 0 };
      epochShuffle = shuffle.getState();
      const last = e === epochs - 1;
      const due = last || checkpointEverySteps === undefined || globalStep % checkpointEverySteps === 0;
      if (due) await writeState(e + 1, 0);
      if (!last && shouldStop) {
        await yieldToEventLoop();
        if (shouldStop()) {
          if (!due) await writeState(e + 1, 0);
          interrupted = true;
        }
      }
    }
  } finally {
    trainer.dispose();
  }
  if (interrupted) {
    return {
      history, bestEpoch: best?.epoch ?? 0, bestValidationAccuracy: hasValidation && best ? best.accuracy : null, split, validation: null,
      steps: globalStep, elapsedMs: performance.now() - t0, augment, interrupted: true, resumedFromStep,
    };
  }
  // The expert holds the last epoch's weights; go back to the best one if asked.
  if (best?.state && best.epoch !== epochs) expert.loadStateDict(best.state);
  if (checkpointPath) await markCheckpointComplete(files!, checkpointPath, () => { assertFinite(`the checkpoint ${checkpointPath}`); return expert; });
  const validation = hasValidation ? evaluateOnSet({ expert, set: valSet, labels: valLabels, indices: valIndices, batchSize: evalBatchSize }) : null;
  return {
    history,
    bestEpoch: best?.epoch ?? epochs,
    bestValidationAccuracy: hasValidation ? (best?.accuracy ?? null) : null,
    split,
    validation,
    steps: globalStep,
    elapsedMs: performance.now() - t0,
    augment,
    interrupted: false,
    resumedFromStep,
  };
}

/**
 * Marks the checkpoint written during training (the best epoch's weights, status `partial`) as
 * complete, keeping its weights and other metadata. If it is missing (e.g. deleted before a resume),
 * the expert as it is now is written instead.
 */
async function markCheckpointComplete(files: TrainingFiles, path: string, current: () => ExpertModel): Promise<void> {
  let bytes: Uint8Array | null = null;
  try {
    bytes = await files.readFile(path);
  } catch {
    // Missing or unreadable (any TrainingFiles implementation): write the expert as it is now.
  }
  if (bytes === null) {
    await files.writeFileAtomic(path, serializeExpert({ expert: current(), metadata: { [CHECKPOINT_STATUS_KEY]: 'complete' } }));
    return;
  }
  const file = decodeSafetensors(bytes);
  await files.writeFileAtomic(path, encodeSafetensors({ tensors: file.tensors, metadata: { ...file.metadata, [CHECKPOINT_STATUS_KEY]: 'complete' } }));
}
