// Explicit barrel of `@fad/feature-align/node`: everything that touches the file system. The
// main entry point (`@fad/feature-align`) has no Node import and bundles for the browser; these
// functions moved here from it with the same names and signatures.
export { loadFeatureAlignmentLoss, saveFeatureAlignmentLoss } from './node/feature-alignment-loss-files';
export type { LoadFeatureAlignmentLossParams, SaveFeatureAlignmentLossParams } from './node/feature-alignment-loss-files';
