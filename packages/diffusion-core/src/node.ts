// Explicit barrel of `@fad/diffusion-core/node`: everything that touches the file system.
// The main entry point (`@fad/diffusion-core`) has no Node import and bundles for the browser;
// these functions moved here from it with the same names and signatures.
export { writeFileAtomic, writeFileAtomicSync } from './node/write-file-atomic';
export { loadUNet, saveUNet } from './node/unet-files';
export { loadAutoencoder, saveAutoencoder } from './node/autoencoder-files';
export { loadDiffusersUNet, saveDiffusersUNet } from './node/diffusers-files';
export type { LoadDiffusersUNetParams } from './node/diffusers-files';
export {
  assertStateKey,
  COMPLETE_FILE,
  prepareResumableStep,
  readCompleteMarker,
  ResumableStepError,
  sha256,
  stableStringify,
  stepKey,
  writeCompleteMarker,
} from './node/resumable-step';
export type { CompleteMarker, PreparedStep, PrepareResumableStepParams, ResumableStepProblem } from './node/resumable-step';
export { numberedTensors, numberTensors, prefixTensors, tensorsWithPrefix, truncateMetricsLog } from './node/training-checkpoint';
export type { CheckpointTensor, StoredTensor } from './node/training-checkpoint';
