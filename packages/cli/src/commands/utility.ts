/** fad utility: does the synthetic data help a downstream classifier? */
import { type Command, Option } from 'commander';
import { UtilityConfigSchema } from '../config';
import { effectiveConfig, initBackend, makeLogger } from '../context';
import { CliError } from '../errors';
import { withInterrupt } from '../interrupt';
import { join, resolve } from 'node:path';
import { shardName } from '@fad/diffusion-core';
import { addShardOptions, shardFromOptions } from '../shard-options';
import { checkpointExpertConfig, formatUtilityTable } from '@fad/expert-models/node';
import { runUtilityJob, runUtilityShardJob } from '../utility';
import { abs, applyRenamedFlags, choicesOf, type CommandContext, float, floatList, globals, int, namedDir, type RenamedFlag, renamedOption, seedArg } from './shared';

/** Old spellings kept as deprecated aliases (`--seeds` is a list of seeds in fad generate). */
const RENAMED: RenamedFlag[] = [{ was: '--seeds', now: '--num-seeds' }];

export function registerUtility(program: Command, { out }: CommandContext): void {
  // fad utility
  const utilityCmd = program
    .command('utility')
    .description('does the synthetic data help? Trains a downstream classifier (utility.*: ResNet18 by default, --arch vit for a ViT) per protocol and seed: real-only at each fraction of the real training split, real + synthetic at each ratio, synthetic-only; tests each on the held-out real split; prints means, 95% bootstrap CIs and gains over real-only.\nResumable: each finished classifier is kept in OUT/runs/; run the same command again after Ctrl-C or a kill')
    .requiredOption('-s, --synthetic <name=dir>', 'a synthetic set: NAME=DIR, DIR written by fad generate (repeatable)', namedDir)
    .requiredOption('-o, --out <dir>', 'output folder (utility.json, runs/)')
    .option('-d, --data <dir>', 'real data folder (split by data.validationFraction and data.splitSeed: the training split trains, the validation split tests)')
    .option('--fractions <list>', 'shares of the real training split, e.g. 0.1,1', floatList('--fractions'))
    .option('--ratios <list>', 'synthetic:real ratios, e.g. 1,4', floatList('--ratios'))
    .option('--num-seeds <k>', 'training seeds per protocol: seeds 0..K-1 (utility.seeds)', int('--num-seeds'))
    .addOption(renamedOption(RENAMED[0], 'k', int('--seeds')))
    .option('--seed <n>', 'seed of the bootstrap CIs: the top-level seed (the classifiers train with seeds 0..K-1, --num-seeds K)', seedArg)
    .addOption(new Option('--arch <arch>', 'downstream classifier architecture').choices(choicesOf(UtilityConfigSchema.shape.arch)))
    .option('--preset <name>', 'preset of @fad/expert-models (default resnet18-kather, vit-small-kather with --arch vit)')
    .option('--epochs <n>', 'epochs per classifier', int('--epochs'))
    .option('--batch-size <n>', 'batch size', int('--batch-size'))
    .option('--lr <x>', 'learning rate', float('--lr'))
    .option('--without-synthetic-only', 'no synthetic-only (train synthetic, test real) protocols')
    .option('-e, --expert <file>', 'the expert that aligned or guided the generators (default: expert.checkpoint): the classifier must not be its architecture')
    .option('--force', 'retrain every classifier (deletes OUT/runs; with --shard, only the shard\'s classifiers)');
  addShardOptions(utilityCmd, 'classifiers (units: protocol x seed)')
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
      applyRenamedFlags(o, RENAMED, log.warn);
      const shard = shardFromOptions(o);
      if (shard) log.info(`fad: utility: shard ${shard.index}/${shard.count} (${shard.source}) into ${join(resolve(o.out), shardName(shard))}`);
      const cfg = effectiveConfig(g, {
        'data.dir': abs(o.data), 'expert.checkpoint': abs(o.expert), 'utility.fractions': o.fractions, 'utility.ratios': o.ratios, 'utility.seeds': o.numSeeds, seed: o.seed,
        'utility.arch': o.arch, 'utility.preset': o.preset, 'utility.epochs': o.epochs, 'utility.batchSize': o.batchSize, 'utility.learningRate': o.lr,
        'utility.syntheticOnly': o.withoutSyntheticOnly ? false : undefined,
      });
      const expertPath = cfg.expert.checkpoint;
      const expertConfig = expertPath ? checkpointExpertConfig({ path: expertPath }) : null;
      if (expertPath && !expertConfig) throw new CliError(`cannot read the architecture of the expert checkpoint ${expertPath} (--expert or expert.checkpoint)`);
      const backend = await initBackend(cfg, log);
      const generatorExpert = expertConfig ? { config: expertConfig, path: expertPath as string } : null;
      if (shard) {
        const r = await withInterrupt((interrupt) =>
          runUtilityShardJob({ cfg, synthetic: o.synthetic, out: o.out, backend, log, interrupt, force: Boolean(o.force), generatorExpert, shard, resumeHint: 'run the same shard again to continue' }),
        );
        const u = r.shard.units;
        out(`${r.alreadyComplete ? 'shard was complete' : `wrote shard ${shard.index}/${shard.count}`}: classifiers ${u.start + 1}..${u.end} of ${u.total} (${r.trained} trained, ${r.reused} reused) to ${r.dir}\nwhen all ${shard.count} shards are done: fad merge ${resolve(o.out)} --out DIR\n`);
        return;
      }
      const r = await withInterrupt((interrupt) =>
        runUtilityJob({ cfg, synthetic: o.synthetic, out: o.out, backend, log, interrupt, force: Boolean(o.force), generatorExpert }),
      );
      out(`${formatUtilityTable({ json: r.json })}\n${r.trained} classifier(s) trained, ${r.reused} reused\nutility: ${r.path}\n`);
    });
}
