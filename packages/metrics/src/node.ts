// The Node-only entry point (`@fad/metrics/node`): what writes files. Explicit barrel.
export { TensorBoardWriter, isTfEventsFileName } from './tensorboard-writer';
export type { AddImageParams, TensorBoardWriterParams } from './tensorboard-writer';
