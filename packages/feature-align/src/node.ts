// Explicit barrel of `@fad/feature-align/node`: everything that touches the file system. The
// main entry point (`@fad/feature-align`) has no Node import and bundles for the browser; these
// functions moved here from it with the same names and signatures.
export { loadFeatureAlignmentLoss, saveFeatureAlignmentLoss } from './node/feature-alignment-loss-files';
export type { LoadFeatureAlignmentLossParams, SaveFeatureAlignmentLossParams } from './node/feature-alignment-loss-files';
// The report of the paper's experiment (vega, vega-lite and sharp: optional peer dependencies).
export { writeExperimentReport } from './node/experiment-report';
export type { ExperimentReport, WriteExperimentReportParams } from './node/experiment-report';
export type { ReportEvaluation, ReportExpertEvaluation, ReportRunInfo, ReportSplit, ReportUtilityResults } from './node/report-inputs';
export { renderVegaLite } from './node/report-renderer';
export type { RenderVegaLiteParams } from './node/report-renderer';
export { ReportError } from './node/report-error';
export type { ReportErrorCode } from './node/report-error';
// The paper's experiment as a library run: the run folder, step keys and reuse, stage order, report.
export { runAlignmentExperiment } from './node/experiment-run';
export type {
  AlignmentExperimentResult,
  AlignmentExperimentStages,
  ExperimentEvaluationSummary,
  ExperimentExpert,
  ExperimentInputs,
  ExperimentRunRecord,
  ExperimentStepOutcome,
  ExperimentStepRecord,
  RunAlignmentExperimentParams,
} from './node/experiment-run';
export { ExperimentRunError } from './node/experiment-run-error';
export type { ExperimentRunErrorCode } from './node/experiment-run-error';
export { DREAMBOOTH_ARMS, dreamBoothArmAlignment, EXPERIMENT_VARIANTS, variantAlignment } from './node/experiment-variants';
export type { DreamBoothArm, ExperimentVariant, VariantAlignment } from './node/experiment-variants';
