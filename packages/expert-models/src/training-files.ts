/**
 * The file access `trainExpert` needs for its paths (`checkpointPath`, `splitPath`, `statePath`).
 * The main entry point imports no Node module, so it cannot write files by itself: give it one
 * (the Node one is what `trainExpert` from `@fad/expert-models/node` passes; in a browser, an
 * IndexedDB- or OPFS-backed one).
 */
export interface TrainingFiles {
  /** The whole file; rejects when it cannot be read (the message is shown to the user). */
  readFile(path: string): Promise<Uint8Array>;
  /** Replaces the file in one step: a reader sees the old content or the new one, never a mix. */
  writeFileAtomic(path: string, data: Uint8Array | string): Promise<void>;
}
