/**
 * The last check before a training run writes weights (Node only: part of
 * `@fad/diffusion-core/node`): nothing non-finite is written as a checkpoint or a finished model.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { describeNonFiniteWeights, findNonFiniteWeights } from '@fad/diffusion-core';
import { TrainingRunError } from './training-run-error';

/** Anything with named trainable weights (a U-Net, an autoencoder, an alignment projection). */
export interface NamedParametersModule {
  namedParameters(): Array<[string, tf.Variable]>;
}

/**
 * Throws a TrainingRunError `non-finite` ("training diverged at step <step>: <what> was not written,
 * the weights are not finite: <first bad tensor>") when a module's weights hold NaN or infinity.
 * One reduction per tensor, so call it only before a write.
 */
export function assertFiniteTraining(p: { modules: ReadonlyArray<NamedParametersModule | null | undefined>; step: number; what: string }): void {
  const named = p.modules.flatMap((m) => (m ? m.namedParameters() : []));
  const bad = findNonFiniteWeights(named);
  if (bad) throw new TrainingRunError('non-finite', `training diverged at step ${p.step}: ${p.what} was not written, the weights are not finite: ${describeNonFiniteWeights(bad)}`, { step: p.step });
}
