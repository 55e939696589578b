/**
 * fad evaluate: generation accuracy, diversity, Fréchet distance, KID, intensity of a generated
 * folder (@fad/expert-models/node's `evaluateGeneratedSet`, or with --shard `evaluateGeneratedSetShard`).
 * This file turns the config and flags into their params and loads the real images.
 */
import { join, resolve } from 'node:path';
import { shardName } from '@fad/diffusion-core';
import { formatConfusionMatrix, formatIntensityTable } from '@fad/expert-models';
import { evaluateGeneratedSet, evaluateGeneratedSetShard, type RealImageSet } from '@fad/expert-models/node';
import { type Command, Option } from 'commander';
import { EvaluateConfigSchema, type FadConfig } from '../config';
import { effectiveConfig, initBackend, type Logger, loadDataAndSplit, makeLogger } from '../context';
import { CliError } from '../errors';
import { addShardOptions, shardFromOptions } from '../shard-options';
import { readManifest } from '../generated-set';
import { loadExpertModel } from '../expert';
import { writeJsonAtomic } from '../fsutil';
import { abs, choicesOf, type CommandContext, globals, list } from './shared';

/** The real images `fad evaluate` compares with: the validation split (evaluate.realSet validation, if it has 2+ images) or every image. */
export async function loadRealSet(cfg: FadConfig, log: Logger): Promise<RealImageSet> {
  const { dataset, split } = await loadDataAndSplit(cfg, log);
  const idx = cfg.evaluate.realSet === 'validation' && split.validation.length >= 2 ? split.validation : dataset.files.map((_, i) => i);
  const per = dataset.imageSize ** 2 * dataset.channels;
  const real = { images: new Float32Array(idx.length * per), labels: Int32Array.from(idx.map((k) => dataset.labels[k])), classNames: dataset.classNames, imageSize: dataset.imageSize, channels: dataset.channels };
  idx.forEach((k, i) => real.images.set(dataset.images.subarray(k * per, (k + 1) * per), i * per));
  return real;
}

export function registerEvaluate(program: Command, { out }: CommandContext): void {
  // fad evaluate
  const evaluateCmd = program
    .command('evaluate')
    .description('generation accuracy (per class, overall, confusion matrix), SSIM diversity beside the real images\', Fréchet distance and KID on expert features, per-class mean intensity and contrast beside the real images\'')
    .requiredOption('-g, --generated <dir>', 'folder written by fad generate')
    .requiredOption('-e, --expert <file>', 'expert checkpoint')
    .option('-d, --data <dir>', 'real data folder')
    .option('--classes <names>', 'classes to count (default: all but evaluate.excludeClasses, i.e. "empty")', list)
    .option('--exclude <names>', 'classes to leave out (default: empty)', list)
    .addOption(new Option('--real-set <which>', 'real images compared with').choices(choicesOf(EvaluateConfigSchema.shape.realSet)))
    .option('-o, --out <file>', 'write the results as JSON here (default: GENERATED/eval.json); with --shard: the folder of the shards')
    .option('--json', 'print the results as JSON')
    .option('--force', 'with --shard: replace a finished shard of another run');
  addShardOptions(evaluateCmd, 'expert passes (units: batches of generated, then real images)')
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
      const shard = shardFromOptions(o);
      if (shard && !o.out) throw new CliError('--shard needs --out DIR, the folder of the shards (fad merge DIR --out eval.json combines them)');
      if (shard) log.info(`fad: evaluate: shard ${shard.index}/${shard.count} (${shard.source}) into ${join(resolve(o.out), shardName(shard))}`);
      // Real images are compared at the generated images' size and channels.
      const manifest = readManifest(resolve(o.generated));
      const cfg = effectiveConfig(g, {
        'data.dir': abs(o.data), 'data.imageSize': manifest.imageSize, 'data.channels': manifest.channels,
        'evaluate.classes': o.classes, 'evaluate.excludeClasses': o.exclude, 'evaluate.realSet': o.realSet,
      });
      await initBackend(cfg, log);
      const real = await loadRealSet(cfg, log);
      const expert = loadExpertModel(resolve(o.expert));
      try {
        if (shard) {
          const r = await evaluateGeneratedSetShard({ generatedDir: resolve(o.generated), expert: expert.expert, expertPath: expert.path, expertSha256: expert.sha256, real, config: cfg, shard, out: o.out, force: Boolean(o.force), log: log.info });
          const u = r.shard.units;
          out(`${r.alreadyComplete ? 'shard was complete' : `wrote shard ${shard.index}/${shard.count}`}: expert passes over batches ${u.start}..${u.end - 1} of ${u.total} (${u.generated[1] - u.generated[0]} generated, ${u.real[1] - u.real[0]} real images) to ${r.dir}\nwhen all ${shard.count} shards are done: fad merge ${resolve(o.out)} --out FILE.json\n`);
          return;
        }
        const r = await evaluateGeneratedSet({ generatedDir: resolve(o.generated), expert: expert.expert, expertPath: expert.path, expertSha256: expert.sha256, real, settings: cfg.evaluate });
        writeJsonAtomic(o.out ? resolve(o.out) : join(resolve(o.generated), 'eval.json'), r);
        if (o.json) return out(`${JSON.stringify(r, null, 2)}\n`);
        const lines = [
          `generation accuracy: ${(r.generationAccuracy.overall * 100).toFixed(1)}% overall, ${(r.generationAccuracy.macro * 100).toFixed(1)}% macro, over ${r.numGenerated} images of ${r.countedClasses.join(', ')}`,
          ...r.generationAccuracy.perClass.filter((c) => c.numImages > 0).map((c) => `  ${c.class.padEnd(10)} ${(c.accuracy * 100).toFixed(1).padStart(5)}%  (${c.numCorrect}/${c.numImages})`),
          'per seed: ' + r.generationAccuracy.perSeed.map((s) => `${s.seed}: ${(s.overall * 100).toFixed(1)}%`).join(', '),
          formatConfusionMatrix({ matrix: r.confusionMatrix, classNames: r.classNames }),
          `SSIM diversity (mean pairwise SSIM, lower = more diverse; ${r.diversity.window}): generated ${r.diversity.overall.generated.toFixed(4)}, real ${r.diversity.overall.real.toFixed(4)}`,
          ...r.diversity.perClass.map((c) => `  ${c.class.padEnd(10)} generated ${c.generated.toFixed(4)}  real ${c.real.toFixed(4)}`),
          `Fréchet distance (expert features): ${r.frechetDistance.toFixed(3)}`,
          `KID (expert features): ${r.kid.mean.toFixed(5)} ± ${r.kid.std.toFixed(5)} (${r.kid.numSubsets} subsets of ${r.kid.subsetSize})`,
          ...(r.intensity ? [formatIntensityTable({ intensity: r.intensity })] : []),
        ];
        out(`${lines.join('\n')}\n`);
      } finally {
        expert.expert.dispose();
      }
    });
}
