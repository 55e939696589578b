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
// The utility study into a folder: synthetic sets read through their manifests, one resumable run
// file per classifier, utility.json, shards and their merge (the `fad utility` run).
export { runUtilityStudy, runUtilityStudyShard } from './node/utility-study';
export type { RunUtilityStudyParams, RunUtilityStudyResult, RunUtilityStudyShardParams, RunUtilityStudyShardResult, UtilityClassifier, UtilityRealData, UtilityStudySettings } from './node/utility-study';
export { mergeUtilityShards } from './node/merge-utility-shards';
export type { MergeUtilityShardsParams, MergeUtilityShardsResult } from './node/merge-utility-shards';
export { assembleUtilityJson, readUtilityShard, UTILITY_FORMAT, UTILITY_RUN_FORMAT, UTILITY_SHARD_FORMAT, utilityRunFileName } from './node/utility-files';
export type { AssembleUtilityJsonParams, UtilityHeader, UtilityJson, UtilityRunFile, UtilityShardJson, UtilitySummaryInput } from './node/utility-files';
export { formatUtilityTable } from './node/format-utility-table';
export type { FormatUtilityTableParams } from './node/format-utility-table';
export { checkDiffersFromExpert, checkpointExpertConfig } from './node/utility-classifier-check';
export type { CheckDiffersFromExpertParams, CheckpointExpertConfigParams } from './node/utility-classifier-check';
export { UtilityRunError } from './node/utility-run-error';
export type { UtilityRunErrorCode } from './node/utility-run-error';
