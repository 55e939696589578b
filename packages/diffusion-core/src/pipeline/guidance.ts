/**
 * Gradient guidance at sampling time, independent of where the gradient comes from.
 *
 * A {@link GuidanceFn} maps the current noisy batch x_t (model space, e.g. [-1, 1]) at timestep t to
 * g = s * grad_x E(x_t), the direction the sampler climbs, or to `null` for "no guidance at this
 * step". With E = log p(y | x_t) from a classifier this is classifier guidance (Dhariwal & Nichol
 * 2021); with E = an uncertainty of a classifier (entropy, negative margin, negative top
 * probability) it is the uncertainty guidance of Yang et al. (TPAMI 2024). How the step uses g is
 * in `guided-step.ts`.
 *
 * diffusion-core knows no classifier: `@fad/expert-models`' `expertGuidance` builds GuidanceFns from
 * an expert; {@link energyGuidance} builds one from any differentiable per-image energy.
 */
import '../register-gradients';
import * as tf from '@tensorflow/tfjs-core';

/** What a {@link GuidanceFn} is called with at each step. */
export interface GuidanceParams {
  /** x_t [B,H,W,C] in model space. Owned by the sampler: do not dispose it. */
  x: tf.Tensor4D;
  /** The timestep t of x. */
  timestep: number;
  /** alpha-bar_t. */
  alphaBar: number;
  /** The sampler's class per image (U-Net label space), when it has labels. */
  classLabels?: readonly number[];
}

/**
 * Returns g = s * grad_x E(x_t), same shape as `x` (the caller disposes it), or null to leave this
 * step unguided. It may be called inside a `tf.tidy`.
 */
export type GuidanceFn = (params: GuidanceParams) => tf.Tensor4D | null;

/** A differentiable energy per image: [B] values of E(x_t) for x_t [B,H,W,C]. */
export type GuidanceEnergy = (params: GuidanceParams) => tf.Tensor1D;

/** Parameters of {@link energyGuidance}. */
export interface EnergyGuidanceParams {
  /** E(x_t) per image; the sampler climbs it. Images must not interact (no batch statistics). */
  energy: GuidanceEnergy;
  /** s >= 0. 0 returns null at every step: the sampler runs exactly as unguided, E is never evaluated. */
  scale: number;
  /**
   * Guide only at timesteps t with t >= minTimestep (default 0: every step). Guidance at the last,
   * almost clean steps mainly adds adversarial high-frequency detail.
   */
  minTimestep?: number;
}

/**
 * g = scale * grad_x sum_b E_b(x_t): per image, the gradient of its own energy (images are
 * independent). Leaves no tensors behind besides the returned g.
 * @throws TypeError / RangeError naming the field, before any work.
 */
export function energyGuidance(params: EnergyGuidanceParams): GuidanceFn {
  const owner = 'energyGuidance';
  if (typeof params !== 'object' || params === null) throw new TypeError(`${owner}: params must be an object {energy, scale}, got ${String(params)}`);
  const { energy, scale, minTimestep = 0 } = params;
  if (typeof energy !== 'function') throw new TypeError(`${owner}: energy must be a function (params) => tf.Tensor1D, got ${typeof energy}`);
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale < 0) throw new RangeError(`${owner}: scale must be a finite number >= 0, got ${String(scale)}`);
  if (!Number.isInteger(minTimestep) || minTimestep < 0) throw new RangeError(`${owner}: minTimestep must be an integer >= 0, got ${String(minTimestep)}`);
  return (p: GuidanceParams) => {
    if (scale === 0 || p.timestep < minTimestep) return null;
    return tf.tidy(() => {
      const grad = tf.grad((x: tf.Tensor) => {
        const e = energy({ ...p, x: x as tf.Tensor4D });
        if (e.rank !== 1 || e.shape[0] !== p.x.shape[0]) {
          throw new RangeError(`${owner}: energy must return one value per image, shape [${p.x.shape[0]}], got [${e.shape}]`);
        }
        return tf.sum(e);
      })(p.x);
      return tf.mul(grad, scale) as tf.Tensor4D;
    });
  };
}
