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
