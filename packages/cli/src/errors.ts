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
