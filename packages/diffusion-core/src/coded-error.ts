/**
 * The base of the libraries' run errors (`TrainingRunError`, `GenerationRunError`,
 * `ImageFolderError`, expert-models' `ExpertRunError`, ...): a message for the user plus a `code`
 * saying what went wrong and the facts behind it (`details`), so that an application can word it its
 * own way (the `fad` CLI names its flags from the details). The Node error behind a file system
 * failure is `cause`. A subclass names itself: `override readonly name = 'XError';` (class names do not
 * survive bundling reliably).
 */
export class CodedError<C extends string> extends Error {
  readonly code: C;
  readonly details: Readonly<Record<string, unknown>>;
  constructor(code: C, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.details = details;
  }
}

/** Parameters of {@link withFsError}. */
export interface WithFsErrorParams<T> {
  /** The path the call works on, in the message. */
  path: string;
  /** What it does, in the message: `cannot <doing> <path>: <reason>`. */
  doing: string;
  /** The run error for a file system failure, e.g. `(m, d, c) => new TrainingRunError('fs', m, d, c)`. */
  error: (message: string, details: { path: string; doing: string }, cause: unknown) => Error;
  /** The file system call. */
  run: () => T;
}

/**
 * Runs a file system call. Its errno error (one with a string `code`, as Node's are) becomes the
 * run's `fs` error, `cannot <doing> <path>: <Node's message>` with the Node error as `cause`; a
 * CodedError or any other error passes unchanged (a refused folder, a bug).
 */
export function withFsError<T>(p: WithFsErrorParams<T>): T {
  try {
    return p.run();
  } catch (e) {
    const err = e as { code?: unknown; message?: unknown };
    if (e instanceof CodedError || typeof err?.code !== 'string') throw e;
    throw p.error(`cannot ${p.doing} ${p.path}: ${String(err.message)}`, { path: p.path, doing: p.doing }, e);
  }
}
