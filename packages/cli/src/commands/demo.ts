/** fad demo: the whole experiment at toy scale on procedural textures. */
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { effectiveConfig, initBackend, makeLogger } from '../context';
import { DEMO_SCALES, type DemoScale, demoPlan, writeDemoData } from '../demo';
import { formatDuration } from '../fsutil';
import { withInterrupt } from '../interrupt';
import { runExperiment } from '../experiment';
import { type CommandContext, globals, RUN_SEED_KEYS, seedArg, seedOverrides } from './shared';

export function registerDemo(program: Command, { out }: CommandContext): void {
  // fad demo
  program
    .command('demo')
    .description('the whole experiment at toy scale on built-in procedural textures (no data needed); prints the report path')
    .addOption(new Option('--scale <scale>', 'toy scale').choices([...DEMO_SCALES]).default('small'))
    .option('-r, --run-dir <dir>', 'run directory (default runs/demo-<scale>)')
    .option('--seed <n>', `seed of the procedural data and of training: sets ${RUN_SEED_KEYS.join(', ')} (as fad experiment --seed)`, seedArg)
    .option('--force', 'redo every step')
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
      const scale = o.scale as DemoScale;
      const plan = demoPlan(scale);
      const runDir = resolve(o.runDir ?? join('runs', `demo-${scale}`));
      const dataDir = join(runDir, 'data');
      const cfg = effectiveConfig(g, seedOverrides(RUN_SEED_KEYS, o.seed), { ...plan.config, data: { ...plan.config.data, dir: dataDir } });
      const backend = await initBackend(cfg, log);
      const t0 = Date.now();
      log.info(`fad demo (${scale}): ${plan.perClass} procedural ${plan.imageSize}x${plan.imageSize} textures per class in ${dataDir}`);
      await writeDemoData(dataDir, plan.imageSize, plan.perClass, cfg.seed);
      const r = await withInterrupt((interrupt) => runExperiment({ cfg, runDir, backend, log, interrupt, force: Boolean(o.force), command: process.argv.slice(2).join(' ') }));
      out(`fad demo (${scale}, ${backend}) finished in ${formatDuration((Date.now() - t0) / 1000)}\nreport: ${r.report}\n`);
    });
}
