// Explicit barrel: every public name of @fad/expert-models is listed here.

// Architectures and configs
export {
  EXPERT_ARCHS,
  EXPERT_PRESETS,
  HEAD_TYPES,
  KATHER_CLASS_NAMES,
  featureDimOf,
  presetConfig,
  resolveExpertConfig,
} from './expert-config';
export type {
  ExpertConfig,
  ExpertConfigInput,
  ExpertConfigOverrides,
  ExpertPresetName,
  HeadConfig,
  InputSpec,
  InputSpecInput,
  PresetConfigParams,
  ResNetConfig,
  ViTConfig,
} from './expert-config';
export { ExpertModel } from './expert-model';
export type { Expert, ExpertForwardOptions, ExpertForwardResult, ExpertModelParams, ExpertPredictOptions } from './expert-model';
export { ResNet } from './resnet';
export type { ResNetConvSummary, ResNetParams } from './resnet';
export { VisionTransformer, gelu } from './vision-transformer';
export type { VisionTransformerParams } from './vision-transformer';
export { createExpert } from './create-expert';
export type { CreateExpertParams } from './create-expert';

// Layers
export { BatchNorm2d, isBufferVariable } from './batch-norm-2d';
export type { BatchNorm2dParams, BatchNormForwardOptions } from './batch-norm-2d';
export { maxPool2d } from './max-pool-2d';
export type { MaxPool2dParams } from './max-pool-2d';
export { ClassifierHead } from './classifier-head';
export type { ClassifierHeadParams } from './classifier-head';

// Augmentation
// Flips and resizing live in @fad/diffusion-core (one home for this package, the CLI and the image-folder loader).
export { flipImages, rotate90 } from '@fad/diffusion-core';
export type { FlipImagesParams, Rotate90Params } from '@fad/diffusion-core';
export { gaussianBlur, gaussianKernel1d, unsharpMask } from './gaussian-blur';
export type { GaussianBlurParams, GaussianKernel1dParams, UnsharpMaskParams } from './gaussian-blur';
export { RESIZE_METHODS, areaMatrix, resampleDownUp, resizeImages } from '@fad/diffusion-core';
export type { ResampleDownUpParams, ResizeImagesParams, ResizeMethod } from '@fad/diffusion-core';
export { adjustBrightness, adjustContrast } from './intensity-jitter';
export type { AdjustBrightnessParams, AdjustContrastParams } from './intensity-jitter';
export {
  DEFAULT_AUGMENT_CONFIG,
  NO_AUGMENTATION,
  applyAugmentParams,
  augmentBatch,
  resolveAugmentConfig,
  sampleAugmentParams,
} from './augment-batch';
export type {
  ApplyAugmentParamsParams,
  AugmentBatchParams,
  AugmentConfig,
  AugmentConfigInput,
  AugmentSampleParams,
  BlurSharpenConfig,
  BrightnessConfig,
  ContrastConfig,
  ResampleConfig,
  SampleAugmentParamsParams,
} from './augment-batch';

// Training and evaluation
export { stratifiedSplit } from './stratified-split';
export type { DataSplit, StratifiedSplitParams } from './stratified-split';
export { stepDecayLearningRate } from './lr-step-decay';
export type { StepDecayParams } from './lr-step-decay';
export { ExpertTrainer, WEIGHT_DECAY_MODES, softmaxCrossEntropy } from './expert-trainer';
export type { ExpertTrainerParams, TrainStepParams, TrainStepResult, WeightDecayMode } from './expert-trainer';
export { trainExpert } from './train-expert';
export type { EpochSummary, TrainExpertParams, TrainExpertResult, TrainProgress } from './train-expert';
export { TRAIN_STATE_FORMAT, expertTrainingStateInfo } from './train-state';
export type { ExpertTrainingStateInfo, ExpertTrainingStateInfoParams } from './train-state';
export type { TrainingFiles } from './training-files';
export { autoencoderFidelity, formatAutoencoderFidelity } from './autoencoder-fidelity';
export type { AutoencoderFidelity, AutoencoderFidelityParams, ClassifierFidelity, FidelityClassifier } from './autoencoder-fidelity';
export { evaluateExpert } from './evaluate-expert';
export type { ClassEvaluation, EvaluateExpertParams, ExpertEvaluation } from './evaluate-expert';
export { formatConfusionMatrix, formatIntensityTable } from './evaluation-tables';
export type { FormatConfusionMatrixParams, FormatIntensityTableParams, IntensityEvaluation, IntensityRow } from './evaluation-tables';
export type { ImageSetInput, LabelSetInput } from './image-batch';

// Downstream utility of synthetic data (train on real + synthetic, test on real)
export { mixSynthetic, planProtocols, stratifiedFraction } from './utility-protocols';
export type {
  MixClassCount,
  MixSyntheticParams,
  MixSyntheticResult,
  PlanProtocolsParams,
  StratifiedFractionParams,
  UtilityPlan,
  UtilityProtocol,
} from './utility-protocols';
export { protocolTrainingSet, runUtility } from './run-utility';
export type { RunUtilityParams, RunUtilityResult, UtilityEvent, UtilityImageSet, UtilityRunRecord, UtilityStore, UtilityTraining } from './run-utility';
export { summarizeUtility } from './summarize-utility';
export type { SummarizeUtilityParams, UtilityEstimate, UtilityGain, UtilityProtocolSummary, UtilitySummary } from './summarize-utility';

// Guided sampling (GuidanceFns for @fad/diffusion-core's sampleImages) and noise-aware training
export { GUIDANCE_KINDS, UNCERTAINTY_KINDS, classLogLikelihood, uncertaintyEnergy } from './guidance-energies';
export type { ClassLogLikelihoodParams, GuidanceKind, UncertaintyEnergyParams, UncertaintyKind } from './guidance-energies';
export { toExpertInput } from './expert-input';
export { generationGuidance } from './generation-guidance';
export type { ExpertGuidanceRecord, GenerationGuidance, GenerationGuidanceParams } from './generation-guidance';
export { argMax, expertOutputs } from './expert-outputs';
export type { ExpertOutputs, ExpertOutputsParams } from './expert-outputs';
export type { ToExpertInputParams } from './expert-input';
export { expertGuidance } from './expert-guidance';
export type { ExpertGuidanceParams } from './expert-guidance';
export { noisyExpertBatch } from './noise-aware';
export type { NoiseAwareConfig, NoisyExpertBatch, NoisyExpertBatchParams } from './noise-aware';

// Checkpoints
export { CHECKPOINT_STATUS_KEY, EXPERT_FORMAT, deserializeExpert, serializeExpert } from './expert-checkpoint';
export { parseExpertFile } from './expert-file';
export type { ParsedExpertFile, ParseExpertFileParams } from './expert-file';
export type { DeserializeExpertParams, LoadExpertParams, LoadedExpert, SaveExpertParams, SerializeExpertParams } from './expert-checkpoint';

// torchvision ResNet state dicts (pretrained weights in, fad experts out)
export {
  TORCHVISION_RESNET_ARCHS,
  describeTorchvisionResNet,
  exportTorchvisionResNet,
  loadTorchvisionResNet,
  torchvisionStateDict,
} from './torchvision-resnet';
export type {
  ExportTorchvisionResNetParams,
  LoadTorchvisionResNetParams,
  LoadedTorchvisionResNet,
  NewHeadOption,
  SaveTorchvisionResNetParams,
  TorchTensorInput,
  TorchvisionResNetArch,
  TorchvisionResNetBackbone,
  TorchvisionResNetLayout,
} from './torchvision-resnet';
export { decodeTorchStateDict } from './torch-state-dict';
export type { DecodeTorchStateDictParams, TorchStateDict, TorchStateTensor } from './torch-state-dict';
