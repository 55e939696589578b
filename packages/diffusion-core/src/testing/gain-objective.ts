/**
 * Test helper: an extra trainable module (like the CLI's alignment projection) and an objective
 * that trains it, for the runs' tests of extra objectives and their modules.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../nn/module';
import type { TrainingObjective } from '../training/trainer';

/** A module with one parameter `gain.weight` [2]. */
export class Gain extends Module {
  readonly w: tf.Variable;
  constructor() {
    super();
    this.w = this.addParameter('gain.weight', tf.tensor1d([0.5, -0.25]));
  }
}

/** An objective `gain` (term `fit`) that pulls mean(model output) * sum(w) towards 1. */
export function gainObjective(gain: Gain): TrainingObjective {
  return {
    name: 'gain',
    activations: [],
    trainableVariables: () => [gain.w],
    loss: (ctx) => {
      const total = tf.tidy(() => tf.mul(0.1, tf.square(tf.sub(tf.mul(tf.mean(ctx.modelOutput), tf.sum(gain.w)), 1))) as tf.Scalar);
      return { total, terms: { fit: tf.clone(total) } };
    },
  };
}
