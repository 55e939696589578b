/**
 * Progress for long loops: a redrawn bar with ETA on a terminal, plain lines every few seconds (and
 * at 25/50/75/100%) otherwise, so logs of unattended runs stay readable.
 */
import { formatDuration } from './fsutil';

export interface ProgressParams {
  label: string;
  total: number;
  /** Already done (a resumed run). */
  start?: number;
  stream?: NodeJS.WriteStream;
  /** Seconds between plain lines (non-TTY). Default 10. */
  intervalSeconds?: number;
  /** Force plain lines even on a TTY (tests). */
  plain?: boolean;
  /** No output at all. */
  quiet?: boolean;
}

export class Progress {
  private readonly t0 = Date.now();
  private readonly start: number;
  private lastLine = 0;
  private lastQuarter = -1;
  private readonly tty: boolean;
  private done: number;
  private printedDone = -1;

  constructor(private readonly p: ProgressParams) {
    this.start = p.start ?? 0;
    this.done = this.start;
    const stream = p.stream ?? process.stderr;
    this.tty = !p.plain && Boolean(stream.isTTY) && !process.env.CI;
  }

  private get stream(): NodeJS.WriteStream {
    return this.p.stream ?? process.stderr;
  }

  /** Seconds left, from the rate since this bar started. */
  eta(): number {
    const elapsed = (Date.now() - this.t0) / 1000;
    const did = this.done - this.start;
    return did > 0 ? (elapsed / did) * (this.p.total - this.done) : NaN;
  }

  update(done: number, info = ''): void {
    this.done = done;
    if (this.p.quiet) return;
    const { total, label } = this.p;
    const pct = total > 0 ? done / total : 1;
    const eta = formatDuration(this.eta());
    if (this.tty) {
      const width = 24;
      const fill = Math.round(pct * width);
      const line = `${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${done}/${total} eta ${eta}${info ? `  ${info}` : ''}`;
      this.stream.write(`\r\x1b[K${line}`);
      if (done >= total) this.stream.write('\n');
      return;
    }
    const now = Date.now();
    const quarter = Math.floor(pct * 4);
    const interval = (this.p.intervalSeconds ?? 10) * 1000;
    if (done === this.printedDone) return;
    if (done >= total || quarter > this.lastQuarter || now - this.lastLine >= interval) {
      this.printedDone = done;
      this.lastQuarter = quarter;
      this.lastLine = now;
      this.stream.write(`${label}: ${done}/${total} (${Math.round(pct * 100)}%) eta ${eta}${info ? `  ${info}` : ''}\n`);
    }
  }

  /** Ends a TTY bar that did not reach the total (interrupted). */
  end(): void {
    if (this.tty && !this.p.quiet && this.done < this.p.total) this.stream.write('\n');
  }
}
