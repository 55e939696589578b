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
export { decodeImageFile } from './node/decode-image-file';
export type { DecodedImage, DecodeImageFileParams } from './node/decode-image-file';
export { inspectImageFolder, loadImageFolder, selectImageFolderClasses } from './node/image-folder';
export type { BadImageFile, ImageFolderReport, InspectImageFolderParams, LoadedImageFolder, LoadImageFolderParams } from './node/image-folder';
export { ImageFolderError } from './node/image-folder-error';
export type { ImageFolderErrorCode } from './node/image-folder-error';
export { IMAGE_EXTENSIONS, mapClassName, scanImageFolder, skippedLinksWarning } from './node/image-folder-scan';
export type { ImageFolderScan, ScanImageFolderParams, ScannedClass } from './node/image-folder-scan';
export { mapLimit } from './node/map-limit';
export { TrainingRunError } from './node/training-run-error';
export type { TrainingRunErrorCode } from './node/training-run-error';
export { DataOrder, makeBatch } from './node/data-order';
export type { DataOrderParams, DataOrderState, MakeBatchParams } from './node/data-order';
export { emptyMetricsWindow, logTrainingStep, trainingScalars } from './node/metrics-log';
export type { LogTrainingStepParams, MetricsLine, MetricsWindow, ScalarSink, TrainingStepLog } from './node/metrics-log';
export { assertFiniteTraining } from './node/finite-training';
export type { NamedParametersModule } from './node/finite-training';
export { loadCheckpointInto, parseTrainingCheckpoint } from './node/read-training-checkpoint';
export type { ParsedTrainingCheckpoint, ParseTrainingCheckpointParams } from './node/read-training-checkpoint';
export { DIFFUSION_CHECKPOINT_FORMAT, encodeDiffusionCheckpoint, readDiffusionCheckpoint } from './node/diffusion-checkpoint';
export type { CheckpointModule, DiffusionCheckpointState, EncodeDiffusionCheckpointParams, ReadDiffusionCheckpointParams } from './node/diffusion-checkpoint';
export { runTrainingLoop } from './node/training-loop';
export type { AbortFlag, RunTrainingLoopParams, TrainingLoopOutcome } from './node/training-loop';
export { DIFFUSION_RUN_FILES, prepareDiffusionRun, trainDiffusionRun } from './node/diffusion-training-run';
export type { DiffusionRunData, DiffusionRunFinalFile, PreparedDiffusionRun, PrepareDiffusionRunParams, TrainDiffusionRunParams, TrainDiffusionRunResult } from './node/diffusion-training-run';
export { AUTOENCODER_CHECKPOINT_FORMAT, encodeAutoencoderCheckpoint, readAutoencoderCheckpoint } from './node/autoencoder-checkpoint';
export type { AutoencoderCheckpointState, EncodeAutoencoderCheckpointParams, ReadAutoencoderCheckpointParams } from './node/autoencoder-checkpoint';
export { AUTOENCODER_RUN_FILES, prepareAutoencoderRun, trainAutoencoderRun } from './node/autoencoder-training-run';
export type { RunFolderOptions } from './node/checkpointed-run';
export type { AutoencoderRunData, PreparedAutoencoderRun, PrepareAutoencoderRunParams, TrainAutoencoderRunParams, TrainAutoencoderRunResult } from './node/autoencoder-training-run';
export { chooseInstances } from './node/dreambooth-instances';
export type { ChooseInstancesParams } from './node/dreambooth-instances';
export { DREAMBOOTH_CLASS_IMAGES_FORMAT, dreamBoothClassImages } from './node/dreambooth-class-images';
export type { DreamBoothClassImagesParams, DreamBoothPriorSettings } from './node/dreambooth-class-images';
export { DREAMBOOTH_RUN_FILES, prepareDreamBoothRun, trainDreamBoothRun } from './node/dreambooth-training-run';
export type { DreamBoothRunData, PreparedDreamBoothRun, PrepareDreamBoothRunParams, TrainDreamBoothRunParams, TrainDreamBoothRunResult } from './node/dreambooth-training-run';
export { GenerationRunError } from './node/generation-run-error';
export type { GenerationRunErrorCode } from './node/generation-run-error';
export { assertNotReplacingInputs, isPathInside, pathInside, realpathOfExistingPrefix } from './node/output-folder';
export type { AssertNotReplacingInputsParams, PathInsideParams, RunInputPath } from './node/output-folder';
export {
  assertReplaceableSet,
  GENERATED_SET_FILES,
  GENERATED_SET_FORMAT,
  GENERATED_TIMING_FORMAT,
  readFinishedShard,
  readGeneratedSetTiming,
  readJsonFileIfExists,
} from './node/generated-set';
export type { GeneratedImage, GeneratedSetManifest, GeneratedSetTiming, GeneratedShardRecord, IntensityStats, StepTiming } from './node/generated-set';
export { readGeneratedSetImages, readGeneratedSetManifest } from './node/read-generated-set';
export type { ReadGeneratedSetImagesParams, ReadGeneratedSetManifestParams } from './node/read-generated-set';
export { killedShardHints, listShardFolders } from './node/shard-folders';
export type { KilledShardHintsParams, ListShardFoldersParams, ShardFolders } from './node/shard-folders';
export { removeStaleTemps } from './node/stale-temps';
export { formatDuration } from './node/format-duration';
export type { RemoveStaleTempsParams } from './node/stale-temps';
export { encodePng, writePngFile } from './node/write-png-file';
export { TEXTURE_CLASSES, textureImage, writeTextureDataset } from './node/texture-dataset';
export type { TextureImageParams, WriteTextureDatasetParams } from './node/texture-dataset';
export type { EncodePngParams, WritePngFileParams } from './node/write-png-file';
export { classIntensityStats, countNonFinite } from './node/class-intensity-stats';
export type { ClassIntensityStatsParams } from './node/class-intensity-stats';
export { generatedSetDir, generateImageSet, prepareGeneratedSet } from './node/generate-image-set';
export type { GenerateImageSetParams, GenerateImageSetResult, GenerationGuidance, PreparedGeneratedSet, PrepareGeneratedSetParams } from './node/generate-image-set';
export { mergeGeneratedShards } from './node/merge-generated-shards';
export type { MergeGeneratedShardsParams, MergeGeneratedShardsResult } from './node/merge-generated-shards';
