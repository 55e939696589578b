/**
 * Writes TensorBoard events files (Node only: exported by `@fad/metrics/node`). One writer is one
 * file `events.out.tfevents.<seconds>.<host>.<pid>` in `logDir`, opened for appending; every call
 * writes its records at once (no buffering), so a killed process leaves a readable file. View
 * with `tensorboard --logdir DIR`.
 *
 * Every file starts with a session-start event (SessionLog START), at step 0, or at `resumeStep + 1`
 * for a run resumed after `resumeStep` (a new file: one per process, as TensorBoard expects).
 * TensorBoard's loader takes each session start after the first of a run as a restart and drops
 * the run's points at steps >= its step: those the interrupted process logged after its last
 * checkpoint.
 */
import { closeSync, existsSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { TFEVENTS_FILE_VERSION, type SummaryValue, encodeEventRecord } from './tfevents';

export interface TensorBoardWriterParams {
  /** The folder of the run (created when missing). */
  logDir: string;
  /** Resuming a run whose last kept step is `resumeStep` (default: a fresh run): see the file comment. */
  resumeStep?: number;
  /** Seconds since the epoch, for the file name and the events (tests); default the clock. */
  now?: () => number;
}

export interface AddImageParams {
  tag: string;
  step: number;
  /** The PNG bytes. */
  png: Uint8Array;
  height: number;
  width: number;
  channels: 1 | 2 | 3 | 4;
}

/** True for a file name TensorBoard reads as an events file. */
export function isTfEventsFileName(name: string): boolean {
  return name.startsWith('events.out.tfevents.');
}

export class TensorBoardWriter {
  /** The events file. */
  readonly path: string;
  private fd: number | null;
  private readonly now: () => number;

  constructor(p: TensorBoardWriterParams) {
    if (p === null || typeof p !== 'object') throw new TypeError('TensorBoardWriter: params must be an object ({ logDir })');
    if (typeof p.logDir !== 'string' || p.logDir === '') throw new TypeError(`TensorBoardWriter: logDir must be a non-empty string, got ${JSON.stringify(p.logDir)}`);
    if (p.resumeStep !== undefined && !(Number.isSafeInteger(p.resumeStep) && p.resumeStep >= 0)) {
      throw new TypeError(`TensorBoardWriter: resumeStep must be a non-negative integer, got ${p.resumeStep}`);
    }
    if (p.now !== undefined && typeof p.now !== 'function') throw new TypeError('TensorBoardWriter: now must be a function returning seconds');
    this.now = p.now ?? (() => Date.now() / 1000);
    mkdirSync(p.logDir, { recursive: true });
    const start = this.now();
    const base = `events.out.tfevents.${Math.floor(start)}.${hostname().replace(/[/\\]/g, '_')}.${process.pid}`;
    let path = join(p.logDir, base);
    for (let i = 1; existsSync(path); i++) path = join(p.logDir, `${base}.${i}`);
    this.path = path;
    this.fd = openSync(path, 'a');
    this.write({ wallTime: start, step: 0, fileVersion: TFEVENTS_FILE_VERSION });
    this.write({ wallTime: start, step: p.resumeStep !== undefined ? p.resumeStep + 1 : 0, sessionStart: true });
  }

  private write(event: Parameters<typeof encodeEventRecord>[0]): void {
    if (this.fd === null) throw new Error(`TensorBoardWriter: ${this.path} is closed`);
    const bytes = encodeEventRecord(event);
    let o = 0;
    while (o < bytes.length) o += writeSync(this.fd, bytes, o, bytes.length - o);
  }

  /** One event holding the scalars (tag -> value) at `step`; null and undefined values are left out. */
  addScalars(p: { step: number; scalars: Record<string, number | null | undefined> }): void {
    if (p === null || typeof p !== 'object' || p.scalars === null || typeof p.scalars !== 'object') {
      throw new TypeError('TensorBoardWriter.addScalars: params must be { step, scalars: { tag: number } }');
    }
    const summary: SummaryValue[] = [];
    for (const [tag, v] of Object.entries(p.scalars)) {
      if (v === null || v === undefined) continue;
      if (typeof v !== 'number') throw new TypeError(`TensorBoardWriter.addScalars: scalars.${tag} must be a number, got ${typeof v}`);
      summary.push({ tag, scalar: v });
    }
    if (summary.length > 0) this.write({ wallTime: this.now(), step: p.step, summary });
  }

  /** One image (PNG) at `step`. */
  addImage(p: AddImageParams): void {
    if (p === null || typeof p !== 'object') throw new TypeError('TensorBoardWriter.addImage: params must be { tag, step, png, height, width, channels }');
    this.write({ wallTime: this.now(), step: p.step, summary: [{ tag: p.tag, image: { height: p.height, width: p.width, channels: p.channels, encoded: p.png } }] });
  }

  /** Closes the file (later calls throw); closing twice is a no-op. */
  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }
}
