/**
 * Upper bounds on sizes that come from a config or from a model file's metadata, so that a value
 * that cannot work (e.g. `data.imageSize: 100000`, or a hand-made model claiming a huge
 * `sampleSize`) is rejected with the key and the limit before anything is allocated. They are far
 * above anything this project trains (64x64 tiles, 9 classes, U-Nets of a few million parameters);
 * the README's "Limits" table lists them.
 */
export const LIMITS = {
  /** data.imageSize, a U-Net's sampleSize, an expert's input.size, an autoencoder's image side. */
  maxImageSize: 2048,
  /** Image channels of a model (in/out) or an expert's input. */
  maxChannels: 16,
  /** Classes of a data set or a model; names listed in a file. */
  maxClasses: 1000,
  /** Characters of a class name (it becomes a folder name). */
  maxNameLength: 100,
  /** Channels of one U-Net level / width of an expert. */
  maxWidth: 8192,
  /** Resolution levels of a U-Net, stages of a ResNet. */
  maxLevels: 8,
  /** Blocks per level / stage, transformer depth. */
  maxBlocks: 64,
  /** Diffusion timesteps of a noise schedule. */
  maxTrainTimesteps: 100_000,
  /** Values (float32) in one model file: 4e9 bytes. */
  maxParameters: 1_000_000_000,
  /** Values in one tensor's shape dimension. */
  maxDim: 1 << 30,
  /** Batch sizes (training, generation, evaluation). */
  maxBatchSize: 4096,
  /** Training steps / epochs. */
  maxSteps: 100_000_000,
  /** Images per class and seed in fad generate; seeds per run. */
  maxImagesPerClass: 100_000,
  maxSeeds: 10_000,
  /** Float32 values of a loaded data set in memory (8 GiB). */
  maxDatasetValues: 2 ** 31,
  /** Bytes of a safetensors header (JSON). */
  maxHeaderBytes: 100 * 1024 * 1024,
} as const;
