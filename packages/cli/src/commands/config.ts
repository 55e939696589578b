/** fad config print: the effective config as YAML. */
import type { Command } from 'commander';
import { configToYaml } from '../config';
import { effectiveConfig } from '../context';
import { abs, type CommandContext, globals } from './shared';

export function registerConfig(program: Command, { out }: CommandContext): void {
  // fad config print
  program
    .command('config')
    .description('configuration')
    .command('print')
    .description('print the effective config (defaults < --config file < --set < flags) as YAML')
    .option('-d, --data <dir>', 'data folder')
    .action(async (o, cmd: Command) => {
      const cfg = effectiveConfig(globals(cmd), { 'data.dir': abs(o.data) });
      out(configToYaml(cfg, 'effective fad config'));
    });
}
