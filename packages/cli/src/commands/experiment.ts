/** fad experiment: the paper's comparison, step by step, reusing finished steps. */
import type { Command } from 'commander';
import { effectiveConfig, initBackend, makeLogger } from '../context';
import { runExperiment } from '../experiment';
import { withInterrupt } from '../interrupt';
import { abs, type CommandContext, globals, RUN_SEED_KEYS, seedArg, seedOverrides } from './shared';

export function registerExperiment(program: Command, { out }: CommandContext): void {
  // fad experiment
  program
    .command('experiment')
    .description('expert + baseline, aligned-noisy and aligned-clean diffusion models, generation with fixed seeds, evaluation, report; finished steps are reused')
    .requiredOption('-r, --run-dir <dir>', 'run directory')
    .option('-d, --data <dir>', 'data folder')
    .option('--seed <n>', `training seed: sets ${RUN_SEED_KEYS.join(', ')} (not data.splitSeed, generate.seeds or diffusion.validation.seed: the comparison holds the split and the sampling seeds fixed)`, seedArg)
    .option('--force', 'redo every step')
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
      const cfg = effectiveConfig(g, { 'data.dir': abs(o.data), ...seedOverrides(RUN_SEED_KEYS, o.seed) });
      const backend = await initBackend(cfg, log);
      const r = await withInterrupt((interrupt) =>
        runExperiment({ cfg, runDir: o.runDir, backend, log, interrupt, force: Boolean(o.force), command: process.argv.slice(2).join(' ') }),
      );
      out(`report: ${r.report}\n`);
    });
}
