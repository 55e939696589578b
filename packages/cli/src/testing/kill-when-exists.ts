/** Signals a running `fad` as soon as a file appears: how the kill-and-resume specs interrupt a run once it has written its state. */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface KillWhenExistsParams {
  /** The file to wait for (a checkpoint or training state). */
  file: string;
  signal: NodeJS.Signals;
  /** How often to look for the file, in ms. Default 10. */
  pollMs?: number;
}

/** An `onStart` for runFad: sends `signal` to the child as soon as `file` exists (nothing if it exits first). */
export function killWhenExists({ file, signal, pollMs = 10 }: KillWhenExistsParams): (child: ChildProcess) => void {
  return (child) => {
    const t = setInterval(() => {
      if (existsSync(file)) {
        clearInterval(t);
        child.kill(signal);
      }
    }, pollMs);
    child.on('exit', () => clearInterval(t));
  };
}
