/**
 * Micro-batches that fit the backend's memory (diffusion-core's `chooseMicroBatch`), with the
 * config key and flag the CLI's messages name.
 */
import { chooseMicroBatch as chooseMicroBatchCore, type ChooseMicroBatchParams, type MicroBatchChoice } from '@fad/diffusion-core';

export type { MicroBatchChoice };

/** The micro-batch to train with; messages name `diffusion.microBatchSize` and `--backend native`. */
export function chooseMicroBatch(p: Omit<ChooseMicroBatchParams, 'names'>): MicroBatchChoice {
  return chooseMicroBatchCore({ ...p, names: { setting: 'diffusion.microBatchSize', alternative: 'use --backend native' } });
}
