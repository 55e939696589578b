/**
 * Checks of untrusted model files, on bytes only (no file system), so that every reader of a fad
 * model file applies them: the CLI (`fad generate`, `fad evaluate`, ...) and a web page that loads a
 * file the user picked. A model file can be damaged or hand-made; these checks run before anything
 * is allocated:
 *
 * - {@link readCheckedHeader}: the safetensors header, bounded in size, every tensor shape within
 *   {@link MODEL_FILE_LIMITS} (a huge claimed shape is refused, not allocated);
 * - {@link checkClassNames}: class names as safe, unique path segments (they become folder and file
 *   names), as many as the model has classes;
 * - {@link checkAutoencoderConfigLimits}: an embedded autoencoder's config within the limits.
 *
 * Every failure is a {@link ModelFileError} whose message names the file and the field and whose
 * `reason` says what kind of problem it is (for an application that shows it to a user).
 */

/**
 * Upper bounds on sizes read from a model file's metadata and header. They are far above anything
 * this project trains (64x64 tiles, 9 classes, U-Nets of a few million parameters).
 */
export const MODEL_FILE_LIMITS = {
  /** A U-Net's sampleSize, an expert's input size, an autoencoder's image side. */
  maxImageSize: 2048,
  /** Image channels of a model (in/out). */
  maxChannels: 16,
  /** Classes of a model; names listed in a file. */
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
  /** Bytes of a safetensors header (JSON). */
  maxHeaderBytes: 100 * 1024 * 1024,
} as const;

/** The completion marker of final model files (metadata key); `partial` marks an unfinished run's file. */
export const MODEL_STATUS_KEY = 'fad.status';

/**
 * What is wrong with a model file:
 * - `not-safetensors`: the bytes are not a safetensors file (too short, bad header);
 * - `not-a-model`: a safetensors file, but not a fad U-Net (`metadata.format`);
 * - `unfinished`: written by a training run that has not finished (`fad.status: partial`);
 * - `metadata`: a metadata field is missing or malformed (JSON, class names, DreamBooth record);
 * - `unsupported-config`: the U-Net, scheduler or autoencoder config is not one this version can build;
 * - `limits`: a size above {@link MODEL_FILE_LIMITS};
 * - `weights`: the tensors do not fit the config;
 * - `non-finite`: the weights hold NaN or infinity (training diverged).
 */
export type ModelFileProblem = 'not-safetensors' | 'not-a-model' | 'unfinished' | 'metadata' | 'unsupported-config' | 'limits' | 'weights' | 'non-finite';

/** A model file that cannot be used; `message` names the file and the field. */
export class ModelFileError extends Error {
  readonly reason: ModelFileProblem;
  constructor(reason: ModelFileProblem, message: string) {
    super(message);
    this.name = 'ModelFileError';
    this.reason = reason;
  }
}

/** A tensor as its header describes it. */
export interface CheckedHeaderTensor {
  dtype: string;
  shape: number[];
}

export interface ReadCheckedHeaderParams {
  /** The whole file. */
  bytes: Uint8Array;
  /** Names the file in errors, e.g. "the model /runs/a/model.safetensors". */
  where: string;
}

function checkWhere(owner: string, where: unknown): void {
  if (typeof where !== 'string' || where.length === 0) throw new TypeError(`${owner}: where must be a non-empty string naming the file, got ${typeof where}`);
}

/**
 * The safetensors header (metadata and tensor shapes) of `bytes`, checked against
 * {@link MODEL_FILE_LIMITS} before any tensor is decoded: a header of bounded size that is a JSON
 * object, string metadata values, integer shapes within `maxDim`, at most `maxParameters` values.
 */
export function readCheckedHeader(p: ReadCheckedHeaderParams): { metadata: Record<string, string>; tensors: Record<string, CheckedHeaderTensor> } {
  if (!p || typeof p !== 'object') throw new TypeError(`readCheckedHeader: expected a params object, got ${String(p)}`);
  if (!(p.bytes instanceof Uint8Array)) throw new TypeError(`readCheckedHeader: bytes must be a Uint8Array, got ${typeof p.bytes}`);
  checkWhere('readCheckedHeader', p.where);
  const { bytes, where } = p;
  const L = MODEL_FILE_LIMITS;
  if (bytes.length < 8) throw new ModelFileError('not-safetensors', `${where} is not a safetensors file (${bytes.length} bytes)`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > L.maxHeaderBytes || 8 + n > bytes.length) throw new ModelFileError('not-safetensors', `${where} is not a usable safetensors file: its header claims ${n} bytes (file ${bytes.length} bytes)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new ModelFileError('not-safetensors', `${where} is not a usable safetensors file: its header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new ModelFileError('not-safetensors', `${where}: the safetensors header is not a JSON object`);
  const meta = (header.__metadata__ ?? {}) as Record<string, unknown>;
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw new ModelFileError('not-safetensors', `${where}: __metadata__ is not a JSON object`);
  for (const [k, v] of Object.entries(meta)) if (typeof v !== 'string') throw new ModelFileError('metadata', `${where}: metadata.${k} must be a string, got ${typeof v}`);
  const tensors: Record<string, CheckedHeaderTensor> = {};
  let total = 0;
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const shape = (t as { shape?: unknown })?.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0 && d <= L.maxDim)) {
      throw new ModelFileError('not-safetensors', `${where}: tensor "${name}" has an invalid shape ${JSON.stringify(shape)?.slice(0, 80)}`);
    }
    const size = shape.reduce((a: number, b: number) => a * b, 1);
    total += size;
    if (total > L.maxParameters) throw new ModelFileError('limits', `${where}: the tensors hold more than ${L.maxParameters} values (at "${name}"); refusing to load it`);
    tensors[name] = { dtype: String((t as { dtype?: unknown }).dtype), shape };
  }
  return { metadata: meta as Record<string, string>, tensors };
}

/** A metadata field's JSON; a `metadata` ModelFileError naming the field when it does not parse. */
export function parseMetadataJson(p: { metadata: Record<string, string>; key: string; where: string }): unknown {
  try {
    return JSON.parse(p.metadata[p.key]);
  } catch (e) {
    throw new ModelFileError('metadata', `${p.where}: metadata.${p.key} is not valid JSON (${(e as Error).message})`);
  }
}

/** A `limits` ModelFileError when a config number of a file is above `max` (`metadata.config.<field>`). */
export function checkConfigLimit(p: { where: string; field: string; value: unknown; max: number }): void {
  if (typeof p.value === 'number' && p.value > p.max) throw new ModelFileError('limits', `${p.where}: metadata.config.${p.field} is ${p.value}, above the limit ${p.max}; the file is damaged or hand-made`);
}

/** Why `name` is not a safe single path segment (a class name that becomes a folder name), or null when it is. */
export function classNameProblem(name: unknown): string | null {
  if (typeof name !== 'string') return `must be a string, got ${typeof name}`;
  if (name.length === 0) return 'must not be empty';
  if (name.length > MODEL_FILE_LIMITS.maxNameLength) return `must be at most ${MODEL_FILE_LIMITS.maxNameLength} characters, got ${name.length}`;
  if (name === '.' || name === '..') return `must not be "${name}" (a path)`;
  if (/[/\\]/.test(name)) return 'must not contain "/" or "\\" (a path separator)';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'must not contain control characters (NUL, newline, ...)';
  if (name.trim() !== name) return 'must not start or end with white space';
  return null;
}

export interface CheckClassNamesParams {
  /** The parsed JSON value that should be a list of names. */
  names: unknown;
  /** Names the file and field, e.g. `the model /x/model.safetensors: metadata.classes`. */
  where: string;
  /** The number of classes the model has, when known. */
  expectedCount?: number;
}

/**
 * Checks a list of class names: each a safe path segment ({@link classNameProblem}), all unique
 * (also case-insensitively, for case-insensitive file systems), as many as `expectedCount`.
 * Returns them.
 */
export function checkClassNames(p: CheckClassNamesParams): string[] {
  if (!p || typeof p !== 'object') throw new TypeError(`checkClassNames: expected a params object, got ${String(p)}`);
  checkWhere('checkClassNames', p.where);
  if (p.expectedCount !== undefined && !(Number.isInteger(p.expectedCount) && p.expectedCount >= 0)) {
    throw new TypeError(`checkClassNames: expectedCount must be a non-negative integer, got ${p.expectedCount}`);
  }
  const { names, where, expectedCount } = p;
  if (!Array.isArray(names)) throw new ModelFileError('metadata', `${where} must be a JSON list of names, got ${typeof names}`);
  if (names.length > MODEL_FILE_LIMITS.maxClasses) throw new ModelFileError('limits', `${where} has ${names.length} names; at most ${MODEL_FILE_LIMITS.maxClasses} are allowed`);
  if (expectedCount !== undefined && names.length !== expectedCount) {
    throw new ModelFileError('metadata', `${where} lists ${names.length} name(s), but the model has ${expectedCount} classes; the file is damaged or was edited`);
  }
  const seen = new Map<string, number>();
  names.forEach((n, i) => {
    const why = classNameProblem(n);
    if (why) throw new ModelFileError('metadata', `${where}[${i}] ${JSON.stringify(n)} is not a usable class name: it ${why}`);
    const k = (n as string).toLowerCase();
    if (seen.has(k)) throw new ModelFileError('metadata', `${where}[${i}] ${JSON.stringify(n)} repeats ${where}[${seen.get(k)}]; class names must be unique`);
    seen.set(k, i);
  });
  return names as string[];
}

export interface CheckAutoencoderConfigLimitsParams {
  /** The parsed JSON config (before `resolveAutoencoderConfig`). */
  config: unknown;
  /** Names the file. */
  where: string;
  /** The metadata key holding the config, for messages ("config", "autoencoderConfig"). */
  field: string;
}

/** Checks an autoencoder config read from a file's metadata against the limits before it is built. */
export function checkAutoencoderConfigLimits(p: CheckAutoencoderConfigLimitsParams): void {
  if (!p || typeof p !== 'object') throw new TypeError(`checkAutoencoderConfigLimits: expected a params object, got ${String(p)}`);
  checkWhere('checkAutoencoderConfigLimits', p.where);
  if (typeof p.field !== 'string' || p.field.length === 0) throw new TypeError(`checkAutoencoderConfigLimits: field must be a non-empty string, got ${typeof p.field}`);
  const { where, field } = p;
  const L = MODEL_FILE_LIMITS;
  const cfg = p.config as Record<string, unknown> | null;
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) throw new ModelFileError('unsupported-config', `${where}: metadata.${field} must be a JSON object`);
  const b = (k: string, v: unknown, max: number) => {
    if (typeof v === 'number' && v > max) throw new ModelFileError('limits', `${where}: metadata.${field}.${k} is ${v}, above the limit ${max}; the file is damaged or hand-made`);
  };
  for (const k of ['inChannels', 'outChannels', 'latentChannels']) b(k, cfg[k], L.maxChannels * 4);
  b('layersPerBlock', cfg.layersPerBlock, L.maxBlocks);
  if (Array.isArray(cfg.blockChannels)) {
    b('blockChannels.length', cfg.blockChannels.length, L.maxLevels);
    cfg.blockChannels.forEach((c, i) => b(`blockChannels[${i}]`, c, L.maxWidth));
  }
}
