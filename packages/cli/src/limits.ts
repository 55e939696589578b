/**
 * Upper bounds on sizes that come from a config or from a model file's metadata, so that a value
 * that cannot work (e.g. `data.imageSize: 100000`, or a hand-made model claiming a huge
 * `sampleSize`) is rejected with the key and the limit before anything is allocated. They are far
 * above anything this project trains (64x64 tiles, 9 classes, U-Nets of a few million parameters);
 * the README's "Limits" table lists them. Those that model files are checked against (image size,
 * channels, classes, name length, widths, levels, blocks, timesteps, parameters, header bytes) are
 * diffusion-core's `MODEL_FILE_LIMITS`, so that the CLI and a web page apply the same ones.
 */
import { MODEL_FILE_LIMITS } from '@fad/diffusion-core';

export const LIMITS = {
  ...MODEL_FILE_LIMITS,
  /** Batch sizes (training, generation, evaluation). */
  maxBatchSize: 4096,
  /** Training steps / epochs. */
  maxSteps: 100_000_000,
  /** Images per class and seed in fad generate; seeds per run. */
  maxImagesPerClass: 100_000,
  maxSeeds: 10_000,
  /** Float32 values of a loaded data set in memory (8 GiB). */
  maxDatasetValues: 2 ** 31,
} as const;
