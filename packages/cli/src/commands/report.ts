/** fad report: the self-contained HTML report of a run directory. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { makeLogger } from '../context';
import { writeReport } from '../report';
import { type CommandContext, globals } from './shared';

export function registerReport(program: Command, { out }: CommandContext): void {
  // fad report
  program
    .command('report')
    .description('write RUN_DIR/report/report.html (self-contained) and the PNG figures')
    .argument('<run-dir>', 'experiment run directory')
    .action(async (runDir: string, _o, cmd: Command) => {
      const log = makeLogger(Boolean(globals(cmd).quiet));
      const r = await writeReport(resolve(runDir), { log: log.info });
      for (const w of r.warnings) log.warn(w);
      out(`report: ${r.html} (${r.figures.length} figures)\n`);
    });
}
