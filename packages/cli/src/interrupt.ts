/**
 * Ctrl-C (SIGINT) and SIGTERM during checkpointable work: the first signal sets `requested`, the
 * training loop notices it between steps, writes a checkpoint and exits cleanly (code 130); a second
 * signal exits at once. Outside `withInterrupt`, signals keep Node's default (immediate exit), which
 * is safe because nothing is marked complete before it is.
 */
export interface Interrupt {
  readonly requested: boolean;
  readonly signal: string | null;
}

export async function withInterrupt<T>(fn: (interrupt: Interrupt) => Promise<T>, log: (m: string) => void = (m) => process.stderr.write(`${m}\n`)): Promise<T> {
  const state = { requested: false, signal: null as string | null };
  const handler = (sig: NodeJS.Signals) => {
    if (state.requested) {
      log(`fad: ${sig} again: exiting without a checkpoint`);
      process.exit(130);
    }
    state.requested = true;
    state.signal = sig;
    log(`fad: ${sig} received: writing a checkpoint after the current step (press Ctrl-C again to quit at once)`);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  try {
    return await fn(state);
  } finally {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  }
}
