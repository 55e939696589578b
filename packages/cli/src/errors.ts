import { ModelFileError } from '@fad/diffusion-core';
import { GenerationRunError, ResumableStepError, TrainingRunError } from '@fad/diffusion-core/node';
import { EvaluationRunError, ExpertRunError, UtilityRunError } from '@fad/expert-models/node';
import { ExperimentRunError, ReportError } from '@fad/feature-align/node';

/**
 * Errors the user can act on (bad input, missing files, bad config). The top-level handler prints
 * their message as `fad: error: <message>` without a stack trace; other errors are printed the same
 * way, with the stack only under `--debug`.
 */
export class CliError extends Error {
  /** Process exit code (1 by default). */
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** Thrown when the run was interrupted (SIGINT/SIGTERM) after a checkpoint was written. */
export class InterruptedError extends CliError {
  constructor(message: string) {
    super(message, 130);
    this.name = 'InterruptedError';
  }
}

/**
 * The user's environment, not a fad bug: no permission, disk full, read-only file system, out of
 * memory. Exit code 3; printed as a plain `fad: error:` line naming the path and what fad was doing.
 */
export class EnvironmentError extends CliError {
  constructor(message: string) {
    super(message, 3);
    this.name = 'EnvironmentError';
  }
}

/**
 * Training diverged: a non-finite loss, gradient or weight. Exit code 4. Nothing non-finite is
 * written as a checkpoint or a finished model.
 */
export class DivergenceError extends CliError {
  constructor(message: string) {
    super(message, 4);
    this.name = 'DivergenceError';
  }
}

/** errno codes that are the user's environment (exit code 3). */
const ENVIRONMENT_CODES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device (disk full)',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EIO: 'input/output error',
};

/** errno codes that mean a path is wrong (exit code 1, still naming the path). */
const PATH_CODES: Record<string, string> = {
  ENOENT: 'no such file or folder',
  EISDIR: 'is a folder, not a file',
  ENOTDIR: 'a part of the path is not a folder',
  EEXIST: 'already exists',
  ENOTEMPTY: 'folder not empty',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links',
  EXDEV: 'cannot move across file systems',
};

/**
 * A filesystem error as an error for the user naming the path and what fad was doing, e.g.
 * `cannot write /runs/a/model.safetensors (writing the final model): no space left on the device
 * (disk full) [ENOSPC]`. Environment problems become an EnvironmentError (exit 3); anything else
 * with an errno code a CliError. Errors that are already CliErrors are returned unchanged.
 */
export function fsError(e: unknown, path: string, doing: string): Error {
  if (e instanceof CliError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = typeof err?.code === 'string' ? err.code : '';
  if (code in ENVIRONMENT_CODES) return new EnvironmentError(`cannot ${doing} ${path}: ${ENVIRONMENT_CODES[code]} [${code}]`);
  if (code in PATH_CODES) return new CliError(`cannot ${doing} ${path}: ${PATH_CODES[code]} [${code}]`);
  if (code) return new CliError(`cannot ${doing} ${path}: ${err.message} [${code}]`);
  return e as Error;
}

/** Runs a filesystem call, turning its errors into {@link fsError}s. */
export function withFs<T>(path: string, doing: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fsError(e, path, doing);
  }
}

/**
 * An error of the libraries' runs (@fad/diffusion-core/node, @fad/expert-models/node) as the
 * CLI's, with the same message: a refused run folder or a damaged checkpoint is a CliError,
 * non-finite weights a DivergenceError (exit 4), a file system error an {@link fsError} naming the
 * path and what fad was doing. Other errors are returned unchanged.
 */
export function fromLibraryError(e: unknown): unknown {
  if (e instanceof ResumableStepError) return new CliError(e.message);
  if (e instanceof GenerationRunError) return fromGenerationRunError(e);
  if (e instanceof ExpertRunError) return fromExpertRunError(e);
  if (e instanceof UtilityRunError) return fromUtilityRunError(e);
  if (e instanceof EvaluationRunError) return fromEvaluationRunError(e);
  if (e instanceof ReportError) return fromReportError(e);
  if (e instanceof ExperimentRunError) return fromExperimentRunError(e);
  if (e instanceof ModelFileError) return e.reason === 'non-finite' ? new DivergenceError(e.message) : new CliError(e.message);
  if (!(e instanceof TrainingRunError)) return e;
  if (e.code === 'non-finite') return new DivergenceError(e.message);
  if (e.code === 'too-few-images') return fromTooFewImages(e);
  if (e.code === 'fs') {
    const path = String(e.details.path);
    const doing = String(e.details.doing);
    const code = (e.cause as NodeJS.ErrnoException | undefined)?.code;
    // Reading an input file: the wording of readInputFile (model-files.ts).
    if (doing.startsWith('read ') && code === 'ENOENT') return new CliError(`cannot ${doing} ${path}: no such file`);
    if (doing.startsWith('read ') && code === 'EISDIR') return new CliError(`cannot ${doing} ${path}: it is a folder, not a file`);
    return fsError(e.cause, path, doing);
  }
  return new CliError(e.message);
}

/**
 * A TrainingRunError `too-few-images` (DreamBooth's instance images) worded with the setting and
 * the flag that choose their number.
 */
function fromTooFewImages(e: TrainingRunError): CliError {
  const d = e.details;
  return new CliError(`dreambooth.instanceImages is ${String(d.requested)} but class "${String(d.className)}" has only ${String(d.available)} training image(s); lower --instance-images`);
}

/**
 * A GenerationRunError (fad generate, fad merge) as the CLI's error, worded with the CLI's flags
 * (`--out`, `--force`) and commands from the error's details.
 */
function fromGenerationRunError(e: GenerationRunError): unknown {
  const d = e.details;
  switch (e.code) {
    case 'foreign-shard':
      return new CliError(`${String(d.path)} holds shard ${String(d.shard)} of another run (another model or settings); remove it, choose another --out, or pass --force to replace it`);
    case 'not-replaceable': {
      if (d.isFile) return new CliError(`refusing to --force replace ${String(d.path)}: it is a file, not a folder written by fad generate`);
      const n = Number(d.entries);
      return new CliError(`refusing to --force replace ${String(d.path)}: it is not a folder written by fad generate (no manifest.json) and holds ${n} entr${n === 1 ? 'y' : 'ies'}; choose another --out`);
    }
    case 'holds-input':
      return new CliError(holdsInputMessage(d, '--force'));
    case 'non-finite':
      return new DivergenceError(`${e.message}. The model or the sampler settings (--guidance-scale, --sampler) do not work together`);
    case 'not-shards':
    case 'no-shards':
      return new CliError(shardsFolderMessage(e.code, d, 'generate'));
    default:
      return sharedRunError(e);
  }
}

/**
 * An ExpertRunError (fad expert train, fad experiment) as the CLI's error: a pretrained file's
 * problem names the `expert.pretrained` key, divergence is a DivergenceError (exit 4), a file system
 * error an {@link fsError}. Other errors are returned unchanged.
 */
export function fromExpertRunError(e: unknown): unknown {
  if (!(e instanceof ExpertRunError)) return e;
  const d = e.details;
  switch (e.code) {
    case 'pretrained':
      return new CliError(`expert.pretrained${e.message.startsWith('cannot read ') ? ': ' : ' '}${e.message}`);
    case 'non-finite':
      return new DivergenceError(d.path !== undefined ? `expert.pretrained ${e.message}` : e.message);
    case 'fs':
      return fsError(e.cause, String(d.path), String(d.doing));
    default:
      return new CliError(e.message);
  }
}

/**
 * A UtilityRunError (fad utility, fad merge, fad experiment's utility stage) as the CLI's error,
 * worded with the CLI's config keys (`utility.*`, `data.*`), flags (`--synthetic`, `--out`,
 * `--force`) and commands from the error's details.
 */
function fromUtilityRunError(e: UtilityRunError): unknown {
  const d = e.details;
  switch (e.code) {
    case 'no-synthetic':
      return new CliError('give at least one synthetic set: --synthetic NAME=DIR (a folder written by fad generate)');
    case 'bad-settings':
      return new CliError(`utility: ${String(d.problem).replace(/^syntheticSets/, '--synthetic names')}`);
    case 'size-mismatch': {
      const [s, c, S, C] = [d.setSize, d.setChannels, d.imageSize, d.channels].map(String);
      return new CliError(`synthetic set ${String(d.name)} (${String(d.dir)}) has ${s}x${s}x${c} images, the real data is read at ${S}x${S}x${C} (data.imageSize, data.channels): generate at the real size or set data.imageSize/data.channels to match`);
    }
    case 'same-architecture':
      return new CliError(
        `the downstream classifier (utility.arch/preset/architecture) is the same architecture as ${String(d.what)} ${String(d.path)}: the utility test would measure how well the generator learned to please that expert. Choose another utility.preset (e.g. resnet18-kather or vit-small-kather) or other utility.architecture`,
      );
    case 'no-test-images':
      return new CliError('no held-out real test images: data.validationFraction is 0; the utility test needs the validation split (e.g. --set data.validationFraction=0.2)');
    case 'fraction-empties-class': {
      const [f, n] = [String(d.fraction), String(d.count)];
      return new CliError(`utility.fractions: ${f} leaves class "${String(d.className)}" with no training images (it has ${n} in the training split; round(${n} * ${f}) = 0); use a larger fraction`);
    }
    case 'foreign-shard':
      return new CliError(`${String(d.path)} holds shard ${String(d.shard)} of another run (other settings or inputs); remove it, choose another --out, or pass --force to replace it`);
    case 'interrupted':
      return new InterruptedError(`${e.message}; run the same command again to continue`);
    case 'not-shards':
    case 'no-shards':
      return new CliError(shardsFolderMessage(e.code, d, 'utility'));
    case 'bad-run-file': {
      const want = d.protocolId === null ? 'a classifier of the plan' : `${String(d.protocolId)} seed ${String(d.seed)}`;
      return new CliError(`${String(d.path)} is not the run file of ${want} that shard ${String(d.shard)} should hold; run that shard again (--force)`);
    }
    case 'not-replaceable':
      return new CliError(`refusing to --force replace ${String(d.path)}: it is not a folder written by fad utility (no utility.json); choose another --out`);
    default:
      return sharedRunError(e);
  }
}

/**
 * An EvaluationRunError (fad evaluate, fad merge of its shards, fad experiment) as the CLI's error,
 * worded with the CLI's config keys (`evaluate.classes`, `data.imageSize`) and flags (`--out`,
 * `--force`, `--shard`) from the error's details.
 */
function fromEvaluationRunError(e: EvaluationRunError): unknown {
  const d = e.details;
  switch (e.code) {
    case 'unknown-class':
      return new CliError(`evaluate.classes names "${String(d.class)}", which is not one of the classes (${(d.classNames as string[]).join(', ')})`);
    case 'no-classes':
      return new CliError('no class left to evaluate (check evaluate.classes and evaluate.excludeClasses)');
    case 'size-mismatch':
      return new CliError(`${e.message}; set data.imageSize/channels to match the model`);
    case 'foreign-shard':
      return new CliError(`${String(d.path)} holds shard ${String(d.shard)} of another run (another expert, settings or inputs); remove it, choose another --out, or pass --force to replace it`);
    case 'out-is-file':
      return new CliError(`--out ${String(d.out)} is a file; with --shard, --out is the folder of the shards`);
    case 'out-is-folder':
      return new CliError(`--out ${String(d.out)} is a folder; the merged evaluation is a file (eval.json)`);
    case 'real-changed':
      return new CliError(`the real images read from ${String((d.config as { data?: { dir?: unknown } } | undefined)?.data?.dir)} differ from those the shards compared with; run the shards again`);
    case 'not-shards':
    case 'no-shards':
      return new CliError(shardsFolderMessage(e.code, d, 'evaluate'));
    default:
      return sharedRunError(e);
  }
}

/** What the generation, utility and evaluation runs' errors share: `exists`, `out-inside-shards`, `fs`; any other code as its message. */
function sharedRunError(e: GenerationRunError | UtilityRunError | EvaluationRunError): Error {
  const d = e.details;
  switch (e.code) {
    case 'exists':
      return new CliError(`${String(d.out)} already exists; choose another --out or pass --force to replace it`);
    case 'out-inside-shards':
      return new CliError(`--out ${String(d.out)} must not be inside the shards folder ${String(d.dir)}`);
    case 'fs':
      return fsError(e.cause, String(d.path), String(d.doing));
    default:
      return new CliError(e.message);
  }
}

/** The message of a merge's `not-shards` or `no-shards` (`details.dir`, `details.killed`), naming the fad command that writes the shards. */
function shardsFolderMessage(code: 'not-shards' | 'no-shards', d: Readonly<Record<string, unknown>>, command: string): string {
  const dir = String(d.dir);
  if (code === 'not-shards') return `${dir} is not a folder of shards (fad ${command} --shard I/N --out ${dir})`;
  const killed = (d.killed as string[] | undefined) ?? [];
  const hint = killed.length ? ` (only temp folders of killed shards: ${killed.join(', ')})` : '';
  return `${dir} holds no finished shard folders (I-of-N, written by fad ${command} --shard I/N --out ${dir})${hint}`;
}

/**
 * A ReportError (fad report, the last step of fad experiment and fad demo) as the CLI's error, worded
 * as fad report always said it: a folder that is not a run directory names the commands that make
 * one; an image the decoder refuses is its reason as before (the channels named as the config's); a
 * failed write an {@link fsError}.
 */
function fromReportError(e: ReportError): unknown {
  const d = e.details;
  switch (e.code) {
    case 'not-run-dir':
      return new CliError(`${String(d.runDir)} is not an experiment run directory (no variants/ or expert/ folder); run fad experiment or fad demo first`);
    case 'bad-image':
      return new Error(String(d.reason).replace(', but channels is ', ', but data.channels is '));
    case 'fs':
      return fsError(e.cause, String(d.path), String(d.doing));
    default:
      return new CliError(e.message);
  }
}

/**
 * An ExperimentRunError (fad experiment, fad demo) as the CLI's error: a file of the run directory
 * that cannot be written is an {@link fsError} naming it and what fad was doing, as before the run
 * moved to @fad/feature-align/node.
 */
function fromExperimentRunError(e: ExperimentRunError): unknown {
  if (e.code === 'fs') return fsError(e.cause, String(e.details.path), String(e.details.doing));
  return new CliError(e.message);
}

/** The message of a GenerationRunError `holds-input` with the CLI's flag (`--force`). */
export function holdsInputMessage(d: Readonly<Record<string, unknown>>, flag: string): string {
  return `refusing to ${flag} replace ${String(d.target)}: it ${String(d.how)} ${String(d.what)} ${String(d.path)}, which this run reads; choose another output folder`;
}

/** Runs `fn`, turning library errors into the CLI's ({@link fromLibraryError}). */
export function withLibraryErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fromLibraryError(e);
  }
}

/**
 * Classifies an error that reached the top level without being a CliError: filesystem errors
 * (with their `path`), out-of-memory and non-finite training become Environment/Divergence errors;
 * anything else is returned unchanged (a fad bug: "an unexpected error").
 */
export function classifyError(e: unknown): unknown {
  e = fromLibraryError(e);
  if (e instanceof CliError || !(e instanceof Error)) return e;
  const err = e as NodeJS.ErrnoException & { code?: unknown };
  if (typeof err.code === 'string' && (err.code in ENVIRONMENT_CODES || err.code in PATH_CODES)) {
    return fsError(err, err.path ?? '(unknown path)', err.syscall ?? 'access');
  }
  if (err.code === 'FAD_NON_FINITE' || /non-finite (loss|gradient|weight)/i.test(err.message)) return new DivergenceError(err.message);
  if (/^Aborted\(/.test(err.message)) {
    return new EnvironmentError(
      `the wasm backend aborted (${err.message.split('\n')[0]}): almost always out of its 4 GiB memory. Lower the batch size or diffusion.microBatchSize (unset, fad picks one that fits), data.imageSize, or use --backend native`,
    );
  }
  const oom = /Array buffer allocation failed|Invalid typed array length|invalid array length|memory access out of bounds|Out of memory|Cannot allocate memory|allocation failed|JavaScript heap out of memory/i;
  if (oom.test(err.message)) {
    return new EnvironmentError(
      `out of memory (${err.message.split('\n')[0]}). Lower the batch size (--batch-size, or diffusion.microBatchSize to keep the batch with gradient accumulation), data.imageSize or data.maxPerClass, or use the native backend (--backend native)`,
    );
  }
  return e;
}
