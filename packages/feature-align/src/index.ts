// Explicit barrel: every public name of @fad/feature-align is listed here.
import './register-gradients';

// The loss and its projection
export { ALIGNMENT_CENTERINGS, FeatureAlignmentLoss, PROJECTION_SIDES, resolveFeatureAlignmentLossConfig } from './feature-alignment-loss';
export type { AlignmentCentering, AlignmentFeatures, FeatureAlignmentLossConfig, FeatureAlignmentLossParams, ProjectionSide } from './feature-alignment-loss';
export { PROJECTION_KINDS, ProjectionHead } from './projection-head';
export type { ParameterValue, ProjectionHeadParams, ProjectionKind } from './projection-head';
export { combinedLoss } from './combined-loss';
export type { CombinedLossParams } from './combined-loss';

// Building blocks
export { DEFAULT_COSINE_EPSILON, rowCosineSimilarity } from './cosine-similarity';
export type { RowCosineSimilarityParams } from './cosine-similarity';
export { adaptiveAvgPool2d, poolFeatures } from './adaptive-avg-pool';
export type { AdaptiveAvgPool2dParams, PoolFeaturesParams } from './adaptive-avg-pool';
export { runWithoutGradient, stopGradient } from './stop-gradient';

// The frozen expert
export { featureExtractorFromFunction } from './feature-extractor';
export type { ExpertInputSpec, FeatureExtractor, FeatureExtractorFromFunctionParams, FeatureOptions } from './feature-extractor';
// Input adaptation lives in @fad/diffusion-core (one home for expert guidance, the CLI and this package).
export { adaptExpertInput, INPUT_ADAPTATION_NAMES, RAW_INPUT_ADAPTATION, resolveInputAdaptation } from '@fad/diffusion-core';
export type { AdaptExpertInputParams, InputAdaptation, InputAdaptationOption, InputAdaptationOverrides, ResolveInputAdaptationParams } from '@fad/diffusion-core';
export { extractExpertFeatures } from './expert-features';
export type { ExtractExpertFeaturesParams } from './expert-features';

// Features from any model
export { featureExtractorFromLayersModel, tapLayersModel } from './tap-layers-model';
export type { FeatureExtractorFromLayersModelParams, LayersModelFeatureExtractor, TapLayersModelParams, TappedLayersModel, TapResult } from './tap-layers-model';
export { DEFAULT_TAP, tapDiffusionModel } from './tap-diffusion-model';
export type { TapDiffusionModelParams, TappableDiffusionModel, TappedDiffusionModel } from './tap-diffusion-model';

// Composition with @fad/diffusion-core
export { ALIGNMENT_TARGETS, featureAlignmentObjective, LATENT_EXPERT_INPUTS, latentExpertImages } from './feature-alignment-objective';
export { unetFeatureAlignment } from './unet-feature-alignment';
export type { UNetFeatureAlignment, UNetFeatureAlignmentParams } from './unet-feature-alignment';
export type { AlignmentTarget, FeatureAlignmentObjective, FeatureAlignmentObjectiveParams, LatentExpertInput } from './feature-alignment-objective';

// Saving and loading as bytes (the file functions are in `@fad/feature-align/node`)
export {
  deserializeFeatureAlignmentLoss,
  FEATURE_ALIGN_FORMAT,
  FEATURE_ALIGN_WEIGHT_LAYOUT,
  serializeFeatureAlignmentLoss,
} from './feature-alignment-loss-io';
export type {
  DeserializeFeatureAlignmentLossParams,
  SerializeFeatureAlignmentLossParams,
} from './feature-alignment-loss-io';
