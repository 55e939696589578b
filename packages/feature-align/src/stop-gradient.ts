/**
 * Cutting tensors out of the gradient tape (tfjs-core has no `stopGradient`).
 *
 * Both helpers run their work inside a `tf.customGrad` op that takes no tensor inputs. While a
 * kernel runs, tfjs records nothing on the tape, and an op without inputs lies on no path from any
 * variable to the loss, so back-propagation never reaches what happened inside: gradients with
 * respect to variables used in there are absent (not merely zero), and none of the intermediate
 * tensors are kept for a backward pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, fail } from './validate';

/**
 * Runs `fn` off the tape and returns its result as a constant of any surrounding gradient
 * computation. Intermediate tensors of `fn` are freed; only the returned tensor is kept.
 */
export function runWithoutGradient<T extends tf.Tensor>(fn: () => T): T {
  if (typeof fn !== 'function') fail('runWithoutGradient', `fn must be a function, got ${typeof fn}`, TypeError);
  const op = tf.customGrad(() => {
    const value = fn();
    if (!(value instanceof tf.Tensor)) fail('runWithoutGradient', `fn must return a tf.Tensor, got ${typeof value}`, TypeError);
    return { value, gradFunc: () => [] };
  });
  return op() as T;
}

/**
 * A copy of `x` (sharing its data, no extra memory) that gradients do not flow through: the
 * equivalent of TensorFlow's `tf.stop_gradient` / PyTorch's `x.detach()`.
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  if (!(x instanceof tf.Tensor)) fail('stopGradient', `x must be a tf.Tensor, got ${describe(x)}`, TypeError);
  return runWithoutGradient(() => tf.clone(x));
}
