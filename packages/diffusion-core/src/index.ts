// Explicit barrel: every public name of @fad/diffusion-core is listed here.

// Images: resizing, flips and adapting images to what an expert expects (see src/image)
export { flipImages, rotate90 } from './image/flip-images';
export type { FlipImagesParams, Rotate90Params } from './image/flip-images';
export { areaMatrix, RESIZE_IMAGE_DATA_METHODS, RESIZE_METHODS, resampleDownUp, resizeImageData, resizeImages } from './image/resize-images';
export type { ResampleDownUpParams, ResizeImageDataParams, ResizeImagesParams, ResizeMethod } from './image/resize-images';
export { adaptExpertInput, INPUT_ADAPTATION_NAMES, RAW_INPUT_ADAPTATION, resolveInputAdaptation } from './image/input-adaptation';
export type {
  AdaptExpertInputParams,
  ExpertInputSpec,
  InputAdaptation,
  InputAdaptationOption,
  InputAdaptationOverrides,
  ResolveInputAdaptationParams,
} from './image/input-adaptation';

// Seeded randomness
export { Generator } from './random';
export type { GeneratorState } from './random';

// Noise schedulers
export {
  alphasCumprodFromBetas,
  BASE_SCHEDULER_DEFAULTS,
  betaScheduleNames,
  betasForAlphaBar,
  DDIM_SCHEDULER_DEFAULTS,
  DDIMScheduler,
  DDPM_SCHEDULER_DEFAULTS,
  DDPMScheduler,
  BUILTIN_BETA_SCHEDULE_NAMES,
  BUILTIN_SCHEDULER_NAMES,
  DPM_FINAL_SIGMAS_TYPES,
  DPM_SOLVER_ALGORITHM_TYPES,
  DPM_SOLVER_MULTISTEP_SCHEDULER_DEFAULTS,
  DPM_SOLVER_TYPES,
  DPMSolverMultistepScheduler,
  dpmSolverTimesteps,
  inferenceTimesteps,
  makeBetas,
  PREDICTION_TYPES,
  registerBetaSchedule,
  registerScheduler,
  rescaleZeroTerminalSnr,
  SCHEDULER_CLASS_NAMES,
  schedulerFromConfig,
  schedulerFromName,
  schedulerNames,
  supportsGuidedStep,
  TIMESTEP_SPACINGS,
  unregisterBetaSchedule,
  unregisterScheduler,
  VARIANCE_TYPES,
} from './schedulers';
export type {
  AnyScheduler,
  BaseSchedulerConfig,
  BetaScheduleFn,
  BetaScheduleName,
  BetaScheduleParams,
  BetasForAlphaBarParams,
  BuiltinSchedulerName,
  DDIMSchedulerConfig,
  DDIMSchedulerJSON,
  DDIMStepCoefficients,
  DDPMSchedulerConfig,
  DDPMSchedulerJSON,
  DPMFinalSigmasType,
  DPMSolverAlgorithmType,
  DPMSolverMultistepSchedulerConfig,
  DPMSolverMultistepSchedulerJSON,
  DPMSolverTimestepsParams,
  DPMSolverType,
  DPMVarianceType,
  GuidedStepInput,
  InferenceTimestepsParams,
  MakeBetasParams,
  NoiseScheduler,
  PosteriorCoefficients,
  PredictionType,
  SchedulerFactory,
  SchedulerFromNameParams,
  SchedulerJSON,
  SchedulerOutput,
  StepOptions,
  TimestepSpacing,
  VarianceType,
} from './schedulers';

// Neural-network building blocks (NHWC, TensorFlow weight layouts)
export { Module } from './nn/module';
export { Conv2d, Embedding, GroupNorm, LayerNorm, Linear, silu } from './nn/layers';
export type { Conv2dParams, GroupNormParams, LinearParams } from './nn/layers';
export { conv2dSymmetric, conv2dSymmetricBias, conv2dFilterGradAsConv } from './nn/conv2d-op';
export {
  FUSED_ADAM_KERNEL,
  FUSED_ATTENTION_KERNEL,
  FUSED_BATCH_NORM_KERNEL,
  FUSED_GROUP_NORM_KERNEL,
  FUSED_SILU_KERNEL,
  fusedAdamStep,
  fusedBatchNorm,
  hasFusedKernel,
  hasKernel,
  setFusedKernelsEnabled,
} from './nn/fused';
export type { FusedAdamStepAttrs, FusedBatchNormParams } from './nn/fused';
export { upsampleNearest2x } from './nn/upsample';
export { fanInUniform, uniformInit } from './nn/init';

// The U-Net
export { UNet2DConditional } from './unet/unet';
export type { DiffusionModel, UNetForwardParams, UNetForwardResult } from './unet/unet';
export {
  CLASS_CONDITIONINGS,
  conditioningLabelCount,
  conditioningTokenLabel,
  DEFAULT_UNET_CONFIG,
  UNET_PRESETS,
  resolveUNetConfig,
} from './unet/unet-config';
export type { ClassConditioning, ConditioningToken, FeedForwardKind, UNetConfig } from './unet/unet-config';
export { FEED_FORWARD_KINDS, levelHeads, levelLayers, upAttentionLevelsOf } from './unet/unet-config';
export { timestepEmbedding } from './unet/timestep-embedding';
export type { TimestepEmbeddingOptions } from './unet/timestep-embedding';
export { Attention, ResBlock, scopedTap, TransformerBlock } from './unet/blocks';
export type { ActivationTap, ResBlockParams } from './unet/blocks';
export { unetLayout } from './unet/unet-layout';
export type { DownBlockLayout, ResnetLayout, UNetLayout, UpBlockLayout } from './unet/unet-layout';
export {
  DIFFUSERS_DOWN_BLOCK_TYPES,
  DIFFUSERS_MID_BLOCK_TYPES,
  DIFFUSERS_UNET_DEFAULTS,
  DIFFUSERS_UP_BLOCK_TYPES,
  DIFFUSERS_VERSION,
  DiffusersConfigError,
  diffusersConfigFromUNet,
  unetConfigFromDiffusers,
} from './unet/diffusers-config';

// Training
export { DiffusionTrainer, minSnrWeight } from './training/trainer';
export type {
  DiffusionTrainerParams,
  LatentObjectiveContext,
  ObjectiveContext,
  TrainerState,
  TrainingObjective,
  TrainStepParams,
  TrainStepResult,
} from './training/trainer';
export { addConditioningToken } from './training/conditioning-token';
export type { AddConditioningTokenParams, AddConditioningTokenResult } from './training/conditioning-token';
export { composeDreamBoothBatch } from './training/dreambooth-batch';
export type { ComposeDreamBoothBatchParams, DreamBoothBatch } from './training/dreambooth-batch';
export { DreamBoothTrainer, EMBEDDING_TRAINING_MODES } from './training/dreambooth-trainer';
export type { DreamBoothStepParams, DreamBoothTrainerParams, EmbeddingTraining } from './training/dreambooth-trainer';
export { Adam, DEFAULT_ADAM_CONFIG, resolveAdamConfig } from './training/adam';
export type { AdamConfig, AdamState } from './training/adam';
export { DEFAULT_LR_SCHEDULE, learningRateAt, LR_SCHEDULE_TYPES, resolveLrSchedule } from './training/lr-schedule';
export type { LrScheduleConfig } from './training/lr-schedule';
export { EmaWeights, type EmaOptions } from './training/ema';
export { clipByGlobalNorm, globalNorm } from './training/grad-clip';
export { describeNonFiniteWeights, findNonFiniteWeights } from './training/finite-weights';
export { chooseMicroBatch, WASM_MICRO_BATCH_64 } from './training/micro-batch';
export type { ChooseMicroBatchParams, MicroBatchChoice } from './training/micro-batch';
export type { NonFiniteWeights } from './training/finite-weights';

// Sampling
export { checkGuidanceRescale, rescaleGuidance } from './pipeline/guidance-rescale';
export { checkLatentSampling, sampleImages } from './pipeline/sample';
export type { SampleParams, SampleProgress } from './pipeline/sample';
export { sampleClassGrid, tileClassGrid } from './pipeline/sample-class-grid';
export type { ClassGrid, SampleClassGridParams, TileClassGridParams } from './pipeline/sample-class-grid';
export { energyGuidance } from './pipeline/guidance';
export type { EnergyGuidanceParams, GuidanceEnergy, GuidanceFn, GuidanceParams } from './pipeline/guidance';
export { guidedStep } from './pipeline/guided-step';
export type { GuidedStepParams } from './pipeline/guided-step';
export { invertDdim } from './pipeline/ddim-inversion';
export type { InversionProgress, InvertDdimParams } from './pipeline/ddim-inversion';
export { sampleTwoStage } from './pipeline/two-stage-sample';
export type { TwoStageProgress, TwoStageSampleParams, TwoStageSampleResult } from './pipeline/two-stage-sample';
export { skipSamplingDraws } from './pipeline/skip-sampling-draws';
export type { SkipSamplingDrawsParams } from './pipeline/skip-sampling-draws';

// Shards: cutting a run into slices for Kubernetes Indexed Jobs and SLURM arrays, and checking them before a merge
export {
  checkShardSet,
  checkShardSpec,
  formatShard,
  MAX_SHARDS,
  parseShard,
  parseShardName,
  planBatchShard,
  planSamplingShard,
  resolveShard,
  shardName,
  ShardSetError,
  shardSlice,
} from './shard';
export type {
  BatchShardList,
  BatchShardPlan,
  PlanBatchShardParams,
  PlanSamplingShardParams,
  ResolvedShard,
  ResolveShardParams,
  SamplingShardPlan,
  SamplingShardSeed,
  ShardPart,
  ShardSetProblem,
  ShardSpec,
} from './shard';
export { predictedMeanByTimestep } from './pipeline/predicted-mean';
export type { PredictedMeanParams, PredictedMeanRow, PredictedMeanScheduler } from './pipeline/predicted-mean';

// Latent diffusion: the KL autoencoder
export {
  AutoencoderDecoder,
  AutoencoderEncoder,
  AutoencoderKL,
  AutoencoderResBlock,
  LOG_VAR_RANGE,
  sampleLatent,
} from './autoencoder/autoencoder';
export type { AutoencoderForwardParams, AutoencoderForwardResult, LatentDistribution } from './autoencoder/autoencoder';
export {
  AUTOENCODER_PRESETS,
  autoencoderDownsamplingFactor,
  DEFAULT_AUTOENCODER_CONFIG,
  resolveAutoencoderConfig,
} from './autoencoder/autoencoder-config';
export type { AutoencoderKLConfig } from './autoencoder/autoencoder-config';
export {
  autoencoderLoss,
  DEFAULT_AUTOENCODER_LOSS_WEIGHTS,
  klDivergence,
  resolveAutoencoderLossWeights,
  ssimTensor,
} from './autoencoder/autoencoder-loss';
export type {
  AutoencoderLoss,
  AutoencoderLossParams,
  AutoencoderLossWeights,
  FeatureFunction,
  SsimTensorOptions,
} from './autoencoder/autoencoder-loss';
export { AutoencoderTrainer } from './autoencoder/autoencoder-trainer';
export type { AutoencoderStepResult, AutoencoderTrainerParams, AutoencoderTrainerState } from './autoencoder/autoencoder-trainer';
export { computeScalingFactor } from './autoencoder/scaling-factor';
export { reconstructImages } from './autoencoder/reconstruct-images';
export type { ReconstructImagesParams } from './autoencoder/reconstruct-images';
export { decodeLatents, encodeToLatents } from './autoencoder/latents';
export type { DecodeLatentsParams, EncodeToLatentsParams } from './autoencoder/latents';
export type { ComputeScalingFactorParams } from './autoencoder/scaling-factor';

// Weights I/O (safetensors) as bytes. The file functions (saveUNet, loadUNet, saveAutoencoder,
// loadAutoencoder, writeFileAtomic) are in `@fad/diffusion-core/node`.
export { decodeSafetensors, encodeSafetensors, readSafetensorsMetadata } from './io/safetensors';
export type { SafetensorsDtype, SafetensorsFile, SafetensorsTensor } from './io/safetensors';
export {
  AUTOENCODER_PREFIX,
  deserializeUNet,
  loadModuleWeights,
  moduleToSafetensors,
  serializeUNet,
  UNET_FORMAT,
  WEIGHT_LAYOUT,
} from './io/unet-io';
export type { SerializeUNetOptions } from './io/unet-io';
export {
  DIFFUSERS_CONFIG_FILE,
  DIFFUSERS_WEIGHTS_FILE,
  diffusersUNetFromFiles,
  diffusersWeightNames,
  FAD_CONDITIONING_FILE,
  serializeDiffusersUNet,
} from './io/diffusers-unet-io';
export type {
  DiffusersSurgeryOptions,
  DiffusersUNetFromFilesParams,
  DiffusersWeightKind,
  DiffusersWeightName,
  LoadedDiffusersUNet,
  SerializedDiffusersUNet,
} from './io/diffusers-unet-io';
// The base of the run errors (code + details).
export { CodedError, withFsError } from './coded-error';
export type { WithFsErrorParams } from './coded-error';
// Untrusted model files: checks on bytes (the CLI and a web page read model files through these).
export {
  checkAutoencoderConfigLimits,
  checkClassNames,
  checkConfigLimit,
  classNameProblem,
  MODEL_FILE_LIMITS,
  MODEL_STATUS_KEY,
  ModelFileError,
  parseMetadataJson,
  readCheckedHeader,
} from './io/model-file-checks';
export type {
  CheckAutoencoderConfigLimitsParams,
  CheckClassNamesParams,
  CheckedHeaderTensor,
  ModelFileProblem,
  ReadCheckedHeaderParams,
} from './io/model-file-checks';
export { checkModelStatus, parseModelFile } from './io/model-file';
export type { DreamBoothRecord, ParsedModelFile, ParseModelFileParams } from './io/model-file';
export {
  AUTOENCODER_FORMAT,
  deserializeAutoencoder,
  serializeAutoencoder,
} from './io/autoencoder-io';
