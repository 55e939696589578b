/** fad generate: sample images per class and seed into a folder with a manifest. */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { ExpertGuidanceSchema, GenerateConfigSchema } from '../config';
import { effectiveConfig, initBackend, loadDataAndSplit, makeLogger } from '../context';
import { CliError } from '../errors';
import { formatDuration } from '../fsutil';
import { classIntensityStats, generateImages, readGenerateTiming } from '../generate';
import { addShardOptions, shardFromOptions } from '../shard-options';
import type { RunInput } from '../safety';
import { abs, applyRenamedFlags, choicesOf, type CommandContext, dataInput, float, globals, int, intList, list, type RenamedFlag, renamedOption, seedArg } from './shared';

/** Old spellings kept as deprecated aliases. */
const RENAMED: RenamedFlag[] = [{ was: '--steps', now: '--sampling-steps' }];

export function registerGenerate(program: Command, { out }: CommandContext): void {
  // fad generate
  const generateCmd = program
    .command('generate')
    .description('sample N images per class into OUT/<class>/*.png with a manifest')
    .requiredOption('-m, --model <file>', 'model.safetensors (or the training folder holding it)')
    .requiredOption('-o, --out <dir>', 'output folder')
    .option('-n, --per-class <n>', 'images per class and seed', int('--per-class'))
    .option('--classes <names>', 'comma-separated class names (default: all)', list)
    .option('--seed <n>', 'one image set from seed n: generate.seeds = [n] (as --seeds n)', seedArg)
    .option('--seeds <list>', 'comma-separated seeds, one image set per seed: generate.seeds', intList('--seeds'))
    .option('--num-seeds <k>', 'seeds 0..k-1', int('--num-seeds'))
    .addOption(new Option('--sampler <name>', 'sampler: ddim, ddpm, dpm-solver++ (DPM-Solver++(2M), good in 10-25 steps) or dpm-solver').choices(choicesOf(GenerateConfigSchema.shape.sampler)))
    .option('--sampling-steps <n>', 'denoising steps: generate.steps', int('--sampling-steps'))
    .addOption(renamedOption(RENAMED[0], 'n', int('--steps')))
    .option('--guidance-scale <x>', 'classifier-free guidance scale (1 = none)', float('--guidance-scale'))
    .option('--guidance-rescale <phi>', 'rescale the guided prediction to the conditional std, in [0, 1] (Lin et al. 2024; 0.7 with zero terminal SNR)', float('--guidance-rescale'))
    .addOption(new Option('--guidance <kind>', 'expert guidance: climb log p(class | x_t) (classifier) or the expert\'s uncertainty (entropy, margin, least-confidence: hard, boundary samples)').choices(choicesOf(ExpertGuidanceSchema.shape.kind)))
    .option('--guidance-expert <file>', 'expert checkpoint that guides (default: expert.checkpoint; best trained with fad expert train --noise-aware)')
    .option('--guidance-expert-scale <s>', 'strength s of expert guidance, g = s * grad log p or s * grad U (default 1; 0 = off)', float('--guidance-expert-scale'))
    .option('--two-stage', 'expert guidance in two stages: sample, DDIM-invert to x_T, decode with guidance (ddim)')
    .option('--eta <x>', 'DDIM eta (0 = deterministic)', float('--eta'))
    .option('--batch-size <n>', 'images per forward pass', int('--batch-size'))
    .option('--match-mean', 'keep only images whose mean intensity is within k std of the real class mean (biases results; see README)')
    .option('--match-mean-k <k>', 'k for --match-mean (default 1)', float('--match-mean-k'))
    .option('-d, --data <dir>', 'real data folder (needed by --match-mean)')
    .option('--force', 'replace OUT if it exists');
  addShardOptions(generateCmd, 'images (units: batches of a seed)')
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
      applyRenamedFlags(o, RENAMED, log.warn);
      if (o.seeds && o.numSeeds) throw new CliError('give either --seeds or --num-seeds, not both');
      if (o.seed !== undefined && (o.seeds || o.numSeeds)) throw new CliError('give either --seed or --seeds/--num-seeds, not both');
      const shard = shardFromOptions(o);
      if (shard) log.info(`fad: generate: shard ${shard.index}/${shard.count} (${shard.source}) into ${join(resolve(o.out), `${shard.index}-of-${shard.count}`)}`);
      const cfg = effectiveConfig(g, {
        'data.dir': abs(o.data), 'generate.imagesPerClass': o.perClass, 'generate.classes': o.classes,
        'generate.seeds': o.seed !== undefined ? [o.seed] : o.seeds ?? (o.numSeeds ? Array.from({ length: o.numSeeds as number }, (_, i) => i) : undefined),
        'generate.sampler': o.sampler, 'generate.steps': o.samplingSteps, 'generate.guidanceScale': o.guidanceScale, 'generate.guidanceRescale': o.guidanceRescale, 'generate.eta': o.eta,
        'generate.batchSize': o.batchSize, 'generate.matchMean.enabled': o.matchMean ? true : undefined, 'generate.matchMean.k': o.matchMeanK,
        'generate.expertGuidance.kind': o.guidance, 'generate.expertGuidance.scale': o.guidanceExpertScale,
        'generate.expertGuidance.expert': abs(o.guidanceExpert), 'generate.expertGuidance.twoStage': o.twoStage ? true : undefined,
      });
      const eg = cfg.generate.expertGuidance;
      if (eg && eg.kind !== 'none' && !eg.expert && cfg.expert.checkpoint) eg.expert = cfg.expert.checkpoint;
      if ((!eg || eg.kind === 'none') && (o.guidanceExpert || o.guidanceExpertScale !== undefined || o.twoStage)) log.warn('--guidance-expert/--guidance-expert-scale/--two-stage have no effect without --guidance KIND');
      const backend = await initBackend(cfg, log);
      let model = resolve(o.model);
      if (existsSync(model) && statSync(model).isDirectory()) model = join(model, 'model.safetensors');
      let realStats;
      if (cfg.generate.matchMean.enabled) {
        const { dataset } = await loadDataAndSplit(cfg, log);
        realStats = classIntensityStats(dataset.images, dataset.labels, dataset.imageSize ** 2 * dataset.channels, dataset.classNames);
      }
      const m = await generateImages({ checkpoint: model, out: o.out, gen: cfg.generate, realStats, backend, force: Boolean(o.force), quiet: log.quiet, log: log.info, inputs: [dataInput(cfg.data.dir)].filter((x): x is RunInput => x !== null), shard });
      const dir = shard ? join(resolve(o.out), `${shard.index}-of-${shard.count}`) : resolve(o.out);
      const t = readGenerateTiming(dir);
      const eg2 = m.expertGuidance ? `, ${m.expertGuidance.twoStage ? 'two-stage ' : ''}${m.expertGuidance.kind} guidance ${m.expertGuidance.scale}` : '';
      const ms = t?.timing ? `; ${t.timing.msPerStep.toFixed(0)} ms/step${m.expertGuidance ? ` (${t.timing.guidanceMsPerStep.toFixed(0)} in guidance)` : ''}` : '';
      const what = shard ? `shard ${shard.index}/${shard.count}: ${m.images.length} of the images (units ${m.shard!.start}..${m.shard!.end - 1} of ${m.shard!.total})` : `${m.images.length} images`;
      out(`wrote ${what} (${m.generatedClasses.length} classes x ${m.imagesPerClass} x ${m.seeds.length} seed(s), ${m.sampler} ${m.steps} steps, guidance ${m.guidanceScale}${eg2}) to ${dir} in ${formatDuration(t?.elapsedSeconds ?? 0)}${ms}\n`);
      if (shard) out(`when all ${shard.count} shards are done: fad merge ${resolve(o.out)} --out DIR\n`);
    });
}
