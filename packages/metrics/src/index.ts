// Explicit barrel: every public name is listed here.

// Inputs and errors
export { MetricInputError } from './metric-input';
export type { ArrayInput, FeatureInput, LabelInput, NumericArray, ShapedArray } from './metric-input';

// Image similarity
export { ssim } from './ssim';
export type { SsimOptions, SsimParams, SsimResult } from './ssim';
export { MS_SSIM_WEIGHTS, msSsim, msSsimMinSize } from './ms-ssim';
export type { MsSsimParams } from './ms-ssim';
export { diversity } from './diversity';
export type { DiversityParams, DiversityResult, DiversityStats } from './diversity';
export { compareIntensity, intensityStatistics } from './intensity-statistics';
export type {
  CompareIntensityParams,
  CompareIntensityResult,
  IntensityComparison,
  IntensityContrastSummary,
  IntensityMeanSummary,
  IntensityStatistics,
  IntensityStatisticsParams,
} from './intensity-statistics';

// Classification
export { accuracy, classificationReport, confusionMatrix } from './classification-metrics';
export { classificationReportFromConfusion } from './classification-metrics';
export type { ClassScores, ClassificationParams, ClassificationReport, ConfusionReportParams } from './classification-metrics';
export { generationAccuracy } from './generation-accuracy';
export type { GenerationAccuracyParams, GenerationAccuracyResult, GenerationClassAccuracy } from './generation-accuracy';

// Intervals
export { bootstrapIntervals, percentileInterval } from './bootstrap-interval';
export type { BootstrapDraw, BootstrapIntervalsParams, BootstrapIntervalsResult, PercentileIntervalParams } from './bootstrap-interval';
export { pairedAccuracies } from './paired-accuracy';
export type { PairedAccuraciesParams, PairedAccuraciesResult, PairedArmAccuracy, PairedDifference } from './paired-accuracy';

// Feature distributions
export { featureStatistics, frechetDistance, frechetDistanceFromStatistics } from './frechet-distance';
export type { FeatureStatistics, FrechetDistanceParams, FrechetDistanceResult, StatisticsInput } from './frechet-distance';
export { kernelInceptionDistance, mmd2Unbiased } from './kernel-inception-distance';
export type { KernelInceptionDistanceParams, KernelInceptionDistanceResult } from './kernel-inception-distance';

// TensorBoard event records (bytes in memory; the file writer is in @fad/metrics/node)
export { TFEVENTS_FILE_VERSION, crc32c, encodeEvent, encodeEventRecord, encodeTfRecord, maskedCrc32c } from './tfevents';
export type { SummaryValue, TfEvent } from './tfevents';
