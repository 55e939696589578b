/** Runs the built `fad` executable in a child process. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { BIN } from './paths';

export interface FadRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function assertBuilt(): void {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build the CLI first (npm run build -w @fad/cli; nx runs it before the tests)`);
}

/** Starts fad; `onStart` gets the child (to signal it). Resolves when it exits. */
export function runFad(args: string[], opts: { cwd?: string; onStart?: (child: ChildProcess) => void; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<FadRun> {
  assertBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, CI: '1', FORCE_COLOR: '0', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fad ${args.join(' ')} timed out after ${opts.timeoutMs} ms\n${stderr}`));
    }, opts.timeoutMs ?? 170_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    opts.onStart?.(child);
  });
}
