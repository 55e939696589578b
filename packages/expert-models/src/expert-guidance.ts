/**
 * Guided sampling with an expert (a `GuidanceFn` for `@fad/diffusion-core`'s `sampleImages`):
 * classifier guidance (climb log p(y | x_t), Dhariwal & Nichol 2021) or uncertainty guidance (climb
 * the entropy, the negative margin or the negative top probability of the expert's softmax, Yang et
 * al. TPAMI 2024). The expert sees x_t itself (mapped linearly from model space to its input range,
 * unclipped), in inference mode. An expert trained on clean images has never seen x_t at high noise
 * and its gradients there are mostly noise; one trained on noisy inputs (`noisyExpertBatch`,
 * `trainExpert({ noiseAware })`) guides better.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type GuidanceFn, type GuidanceParams, energyGuidance } from '@fad/diffusion-core';
import type { Expert } from './expert-model';
import { toExpertInput, checkRange } from './expert-input';
import { GUIDANCE_KINDS, type GuidanceKind, classLogLikelihood, uncertaintyEnergy } from './guidance-energies';
import { assertInt, assertNumber, assertOneOf, show } from './validate';

/** Parameters of {@link expertGuidance}. */
export interface ExpertGuidanceParams {
  /** Any expert (ResNet, ViT, ...); used in inference mode. Freeze it for clarity; it is not changed. */
  expert: Expert;
  /** `classifier` (needs class labels in the sampler) or an uncertainty: `entropy`, `margin`, `least-confidence`. */
  kind: GuidanceKind;
  /** s >= 0 in g = s * grad_x E(x_t). 0: no guidance at all (the sampler runs unguided, bit for bit). */
  scale: number;
  /** The sampler's model space, mapped linearly onto `expert.inputSpec.range`; default [-1, 1]. */
  dataRange?: readonly [number, number];
  /**
   * `classifier` only: the expert class of each sampler label, `labelMap[unetLabel]` (default: the
   * same index). Use it when the U-Net and the expert order their classes differently.
   */
  labelMap?: readonly number[];
  /** Guide only at timesteps >= minTimestep (default 0: every step). */
  minTimestep?: number;
}

/** Builds the {@link GuidanceFn} (see the file comment). Validates every argument up front. */
export function expertGuidance(params: ExpertGuidanceParams): GuidanceFn {
  const fn = 'expertGuidance';
  if (typeof params !== 'object' || params === null) throw new TypeError(`${fn}: params must be an object {expert, kind, scale}, got ${show(params)}`);
  const { expert, kind, scale, labelMap, minTimestep = 0 } = params;
  const dataRange = params.dataRange ?? [-1, 1];
  if (!expert || typeof (expert as Expert).logits !== 'function' || typeof (expert as Expert).inputSpec !== 'object') {
    throw new TypeError(`${fn}: expert must be an expert model (from createExpert or loadExpert), got ${show(expert)}`);
  }
  assertOneOf(fn, 'kind', kind, GUIDANCE_KINDS);
  assertNumber(fn, 'scale', scale, { min: 0 });
  checkRange(fn, 'dataRange', dataRange);
  assertInt(fn, 'minTimestep', minTimestep, 0);
  if (labelMap !== undefined) {
    if (kind !== 'classifier') throw new RangeError(`${fn}: labelMap applies to kind "classifier" only, got kind ${show(kind)}`);
    if (!Array.isArray(labelMap) || !labelMap.every((k) => Number.isInteger(k) && k >= 0 && k < expert.numClasses)) {
      throw new RangeError(`${fn}: labelMap must be an array of expert class indices in 0..${expert.numClasses - 1}, got ${show(labelMap)}`);
    }
  }
  const { inputSpec } = expert;
  if (expert.numClasses < 2 && kind !== 'classifier') throw new RangeError(`${fn}: kind ${show(kind)} needs an expert with >= 2 classes`);
  const energy = (p: GuidanceParams): tf.Tensor1D => {
    const logits = expert.logits(toExpertInput({ images: p.x, inputSpec, dataRange }));
    if (kind !== 'classifier') return uncertaintyEnergy({ logits, kind });
    if (!p.classLabels) throw new RangeError(`${fn}: kind "classifier" needs class labels in the sampler (sampleImages classLabels)`);
    const labels = labelMap ? p.classLabels.map((l) => {
      if (l >= labelMap.length) throw new RangeError(`${fn}: sampler label ${l} has no entry in labelMap (length ${labelMap.length})`);
      return labelMap[l];
    }) : p.classLabels;
    return classLogLikelihood({ logits, labels });
  };
  return energyGuidance({ energy, scale, minTimestep });
}
