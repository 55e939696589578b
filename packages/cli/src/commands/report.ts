/** fad report: the self-contained HTML report of a run directory. */
import { resolve } from 'node:path';
import { writeExperimentReport } from '@fad/feature-align/node';
import type { Command } from 'commander';
import { makeLogger } from '../context';
import { CliError } from '../errors';
import { type CommandContext, globals } from './shared';

export function registerReport(program: Command, { out }: CommandContext): void {
  // fad report
  program
    .command('report')
    .description('write RUN_DIR/report/report.html (self-contained) and the PNG figures')
    .usage('--run-dir DIR [options]')
    .option('-r, --run-dir <dir>', 'experiment run directory (fad experiment --run-dir, fad demo, or a fad utility --out folder)')
    // `fad report DIR`, the old spelling, still works (deprecated, so not in the help).
    .allowExcessArguments()
    .action(async (o, cmd: Command) => {
      const log = makeLogger(Boolean(globals(cmd).quiet));
      if (cmd.args.length > 1) throw new CliError(`fad report takes one run directory (--run-dir DIR), got ${cmd.args.length} arguments`);
      const positional = cmd.args[0] as string | undefined;
      if (positional !== undefined) {
        if (o.runDir !== undefined) throw new CliError('give the run directory once: fad report --run-dir DIR');
        log.warn('fad report RUN_DIR is deprecated; use fad report --run-dir RUN_DIR (same meaning)');
      }
      const runDir = (o.runDir ?? positional) as string | undefined;
      if (runDir === undefined) throw new CliError('give the run directory: fad report --run-dir DIR');
      const r = await writeExperimentReport({ runDir: resolve(runDir), log: (m) => log.info(`fad: ${m}`) });
      for (const w of r.warnings) log.warn(w);
      out(`report: ${r.html} (${r.figures.length} figures)\n`);
    });
}
