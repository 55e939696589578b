/**
 * The error of the image-folder functions (`scanImageFolder`, `loadImageFolder`,
 * `inspectImageFolder`, `decodeImageFile`): a message for the user, plus a `code` and the facts
 * behind it, so an application can word it in its own vocabulary (the `fad` CLI names its config
 * fields).
 */
import { CodedError } from '@fad/diffusion-core';

/** What went wrong. */
export type ImageFolderErrorCode =
  /** The folder does not exist, or is not a folder. */
  | 'missing-folder'
  /** No class subfolders. */
  | 'no-classes'
  /** Two folders map to one class name (`details.name`, `details.folders`). */
  | 'class-name-clash'
  /** `classes` names a class that is not there (`details.name`, `details.classes`). */
  | 'unknown-class'
  /** A chosen class folder has no image files, or none usable after skipping (`details.folder`). */
  | 'empty-class'
  /** The images would need more than `maxValues` float32 values (`details.count`, `details.values`, `details.maxValues`). */
  | 'too-large'
  /** A bad file under `onBadFile: 'error'` (`details.path`, `details.reason`). */
  | 'bad-file'
  /** A file system call failed (`details.path`, `details.doing`; the Node error is `cause`). */
  | 'fs'
  /** sharp is not installed. */
  | 'no-sharp';

export class ImageFolderError extends CodedError<ImageFolderErrorCode> {
  override readonly name = 'ImageFolderError';
}

/** Runs a file system call; its error becomes an ImageFolderError `fs` naming the path and what was being done. */
export function withFolderFs<T>(path: string, doing: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ImageFolderError('fs', `cannot ${doing} ${path}: ${err?.message ?? String(e)}`, { path, doing }, e);
  }
}
