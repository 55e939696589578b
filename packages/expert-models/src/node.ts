// Explicit barrel of `@fad/expert-models/node`: everything that touches the file system. The
// main entry point (`@fad/expert-models`) has no Node import and bundles for the browser. These
// names moved here from it with the same signatures; `trainExpert` and `loadTorchvisionResNet`
// are in both: here they also read and write files (paths, `file`).
export {
  loadExpert,
  loadTorchvisionResNet,
  nodeTrainingFiles,
  readExpertTrainingState,
  saveExpert,
  saveTorchvisionResNet,
  trainExpert,
} from './node/expert-files';
export type { ReadExpertTrainingStateParams } from './node/expert-files';
export { EXPERT_RUN_FILES, prepareExpertRun, readTorchvisionResNetLayout, trainExpertRun } from './node/expert-training-run';
export type {
  ExpertPretrainedStart,
  ExpertScalarSink,
  PreparedExpertRun,
  PrepareExpertRunParams,
  ReadTorchvisionResNetLayoutParams,
  TrainExpertRunParams,
  TrainExpertRunResult,
} from './node/expert-training-run';
export { ExpertRunError } from './node/expert-run-error';
export type { ExpertRunErrorCode } from './node/expert-run-error';
export { TrainingValidation, validationScalars } from './node/training-validation';
export type { TrainingValidationParams, TrainingValidationSettings, ValidationRecord, ValidationSink } from './node/training-validation';
