/** fad expert train: the expert classifier (resumable), with @fad/expert-models. */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { formatConfusionMatrix } from '@fad/expert-models';
import { ExpertConfigSchema } from '../config';
import { effectiveConfig, initBackend, loadDataAndSplit, makeLogger } from '../context';
import { trainExpertJob } from '../expert';
import { withInterrupt } from '../interrupt';
import { assertNotDeletingInputs } from '../safety';
import { abs, choicesOf, type CommandContext, dataInput, float, globals, int, seedArg } from './shared';

export function registerExpert(program: Command, { out }: CommandContext): void {
  // fad expert train
  program
    .command('expert')
    .description('the expert classifier')
    .command('train')
    .description('train the expert (ResNet50 by default, --arch vit for a ViT) and write its checkpoint; prints accuracy and the confusion matrix.\nResumable: Ctrl-C (or a kill) keeps OUT/expert-state.safetensors; run again with --resume to continue')
    .option('-d, --data <dir>', 'data folder')
    .requiredOption('-o, --out <dir>', 'output folder (expert.safetensors, eval.json, metrics.jsonl, split.json; expert-state.safetensors while unfinished)')
    .addOption(new Option('--arch <arch>', 'architecture').choices(choicesOf(ExpertConfigSchema.shape.arch)))
    .option('--preset <name>', 'preset of @fad/expert-models (e.g. resnet50-kather, resnet18-kather, vit-small-kather)')
    .option('--epochs <n>', 'epochs', int('--epochs'))
    .option('--batch-size <n>', 'batch size', int('--batch-size'))
    .option('--lr <x>', 'learning rate', float('--lr'))
    .option('--seed <n>', 'seed of the initialisation, shuffles and augmentation: expert.seed', seedArg)
    .option('--checkpoint-every <n>', 'steps between writes of the resumable state (default: every epoch; always at the end and on Ctrl-C)', int('--checkpoint-every'))
    .option('--resume', 'continue an interrupted run from OUT/expert-state.safetensors')
    .option('--noise-aware', 'train on diffusion-noised x_t (random t of diffusion.scheduler): the expert to guide sampling with (generate --guidance)')
    .option('--pretrained <file>', 'fine-tune from a torchvision ResNet state dict (safetensors; resnet18/34/50...): its backbone, a new head for the data\'s classes')
    .addOption(new Option('--pretrained-conv1 <mode>', 'with --pretrained, 1-channel data and an RGB file: sum the RGB conv1 kernels, or a new seeded conv1 (default sum-rgb)').choices(choicesOf(ExpertConfigSchema.shape.pretrainedConv1)))
    .option('--force', 'retrain even if OUT holds a finished expert or an unfinished run')
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
      const cfg = effectiveConfig(g, {
        'data.dir': abs(o.data), 'expert.arch': o.arch, 'expert.preset': o.preset ?? (o.arch === 'vit' ? 'vit-small-kather' : undefined),
        'expert.epochs': o.epochs, 'expert.batchSize': o.batchSize, 'expert.learningRate': o.lr, 'expert.checkpointEvery': o.checkpointEvery,
        'expert.noiseAware': o.noiseAware ? true : undefined, 'expert.pretrained': abs(o.pretrained), 'expert.pretrainedConv1': o.pretrainedConv1,
        'expert.seed': o.seed,
      });
      const dir = resolve(o.out);
      if (o.force) assertNotDeletingInputs({ target: dir, kind: 'files', inputs: [dataInput(cfg.data.dir)] });
      const backend = await initBackend(cfg, log);
      mkdirSync(dir, { recursive: true });
      const { dataset, split } = await loadDataAndSplit(cfg, log, dir);
      const r = await withInterrupt((interrupt) =>
        trainExpertJob({
          cfg, images: dataset.images, labels: dataset.labels, imageSize: dataset.imageSize, channels: dataset.channels, classNames: dataset.classNames,
          train: split.train, validation: split.validation, fingerprint: dataset.fingerprint, dir, force: Boolean(o.force), log: log.info, quiet: log.quiet, backend,
          resume: Boolean(o.resume), interrupt,
        }),
      );
      if (r.evaluation) {
        out(`expert accuracy on ${r.evaluation.numSamples} held-out images: ${(r.evaluation.accuracy * 100).toFixed(1)}%\n`);
        out(`${formatConfusionMatrix({ matrix: r.evaluation.confusionMatrix, classNames: dataset.classNames })}\n`);
      } else if (!r.reused) out('no validation images (data.validationFraction is 0): accuracy not measured\n');
      out(`expert checkpoint: ${r.path}\n`);
    });
}
