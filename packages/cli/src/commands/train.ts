/** fad train: the diffusion U-Net (baseline, feature-aligned, pretrained diffusers) and DreamBooth fine-tuning. */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { AlignmentConfigSchema, DreamBoothConfigSchema } from '../config';
import { effectiveConfig, initBackend, loadDataAndSplit, makeLogger } from '../context';
import { trainDiffusion } from '../diffusion';
import { trainDreamBooth } from '../dreambooth';
import { CliError } from '../errors';
import { loadExpertModel } from '../expert';
import { formatDuration, writeJsonAtomic } from '../fsutil';
import { withInterrupt } from '../interrupt';
import { assertNotDeletingInputs } from '../safety';
import { abs, applyRenamedFlags, choicesOf, type CommandContext, dataInput, fileInput, float, globals, int, type RenamedFlag, renamedOption, seedArg } from './shared';

/** Old spellings kept as deprecated aliases. */
const RENAMED: RenamedFlag[] = [{ was: '--steps', now: '--train-steps' }];

export function registerTrain(program: Command, { out }: CommandContext): void {
  // fad train
  program
    .command('train')
    .description('fine-tune the diffusion U-Net: the vanilla baseline, or with --feature-alignment; --dreambooth CLASS fine-tunes a trained model (--pretrained) on a few images of CLASS bound to a new token')
    .option('-d, --data <dir>', 'data folder')
    .requiredOption('-o, --out <dir>', 'run folder (checkpoint, metrics.jsonl, model.safetensors)')
    .option('--feature-alignment', 'add the feature-alignment loss (needs --expert)')
    .option('--dreambooth <class>', 'DreamBooth: fine-tune --pretrained on --instance-images images of CLASS bound to a new token (dreambooth.*)')
    .option('--pretrained <model>', 'with --dreambooth: the trained model (model.safetensors or its training folder)')
    .option('--pretrained-diffusers <dir>', 'fine-tune a pretrained diffusers UNet2DConditionModel folder (config.json + diffusion_pytorch_model.safetensors) instead of a new U-Net (diffusion.pretrainedDiffusers)')
    .option('--token <name>', 'with --dreambooth: name of the identifier token (default sks)')
    .option('--instance-images <n>', 'with --dreambooth: how many of the class\'s training images to fine-tune on', int('--instance-images'))
    .option('--with-prior-preservation', 'with --dreambooth: add the loss on class images the model generated before fine-tuning (the default)')
    .option('--without-prior-preservation', 'with --dreambooth: no prior preservation')
    .option('--num-class-images <n>', 'with --dreambooth: class images for prior preservation', int('--num-class-images'))
    .option('--prior-loss-weight <x>', 'with --dreambooth: weight of the prior-preservation loss', float('--prior-loss-weight'))
    .addOption(new Option('--train-embeddings <which>', 'with --dreambooth: conditioning embeddings that train (token: the new one only)').choices(choicesOf(DreamBoothConfigSchema.shape.trainEmbeddings)))
    .addOption(new Option('--align-to <target>', 'what the expert sees').choices(choicesOf(AlignmentConfigSchema.shape.alignTo)))
    .option('--lambda1 <x>', 'weight of the diffusion loss', float('--lambda1'))
    .option('--lambda2 <x>', 'weight of the alignment loss', float('--lambda2'))
    .option('--tap <name>', 'U-Net activation to align (default down_out)')
    .option('-e, --expert <file>', 'expert checkpoint (expert.safetensors)')
    .option('--train-steps <n>', 'training steps: diffusion.steps (dreambooth.steps with --dreambooth)', int('--train-steps'))
    .addOption(renamedOption(RENAMED[0], 'n', int('--steps')))
    .option('--batch-size <n>', 'batch size (instance images per step with --dreambooth)', int('--batch-size'))
    .option('--lr <x>', 'learning rate (dreambooth.learningRate with --dreambooth)', float('--lr'))
    .option('--cond-drop-prob <p>', 'label dropout for classifier-free guidance, in [0, 1) (default 0.1; dreambooth.condDropProb with --dreambooth)', float('--cond-drop-prob'))
    .option('--seed <n>', 'seed of the initialisation, noise and timestep draws and data order: diffusion.seed (dreambooth.seed with --dreambooth)', seedArg)
    .option('--checkpoint-every <n>', 'steps between checkpoints', int('--checkpoint-every'))
    .option('--resume', 'continue an interrupted run from its last checkpoint')
    .option('--force', 'start over, deleting a previous run in OUT')
    .addOption(new Option('--stop-after <n>', 'stop after step n as if interrupted (testing)').argParser(int('--stop-after')).hideHelp())
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
      applyRenamedFlags(o, RENAMED, log.warn);
      const db = o.dreambooth !== undefined;
      const dbFlags = ['pretrained', 'token', 'instanceImages', 'withPriorPreservation', 'withoutPriorPreservation', 'numClassImages', 'priorLossWeight', 'trainEmbeddings'];
      if (!db) {
        const stray = dbFlags.filter((f) => o[f] !== undefined);
        if (stray.length) throw new CliError(`${stray.map((f) => `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} only apply with --dreambooth CLASS`);
      }
      if (o.withPriorPreservation && o.withoutPriorPreservation) throw new CliError('give either --with-prior-preservation or --without-prior-preservation, not both');
      const cfg = effectiveConfig(g, {
        'data.dir': abs(o.data), 'alignment.enabled': o.featureAlignment ? true : undefined, 'alignment.alignTo': o.alignTo,
        'alignment.lambda1': o.lambda1, 'alignment.lambda2': o.lambda2, 'alignment.tap': o.tap, 'expert.checkpoint': abs(o.expert),
        ...(db
          ? {
              'dreambooth.class': o.dreambooth, 'dreambooth.token': o.token, 'dreambooth.instanceImages': o.instanceImages,
              'dreambooth.withPriorPreservation': o.withPriorPreservation ? true : o.withoutPriorPreservation ? false : undefined,
              'dreambooth.numClassImages': o.numClassImages, 'dreambooth.priorLossWeight': o.priorLossWeight, 'dreambooth.trainEmbeddings': o.trainEmbeddings,
              'dreambooth.steps': o.trainSteps, 'dreambooth.batchSize': o.batchSize, 'dreambooth.learningRate': o.lr, 'dreambooth.condDropProb': o.condDropProb,
              'dreambooth.seed': o.seed,
            }
          : { 'diffusion.steps': o.trainSteps, 'diffusion.batchSize': o.batchSize, 'diffusion.learningRate': o.lr, 'diffusion.condDropProb': o.condDropProb, 'diffusion.seed': o.seed }),
        'diffusion.checkpointEvery': o.checkpointEvery, 'diffusion.pretrainedDiffusers': abs(o.pretrainedDiffusers),
      });
      if (db && o.pretrainedDiffusers) throw new CliError('--pretrained-diffusers does not apply with --dreambooth (which fine-tunes a fad model: --pretrained MODEL)');
      if (db && !o.pretrained) throw new CliError('--dreambooth needs the trained model to fine-tune: --pretrained MODEL (e.g. a fad train run folder)');
      if (db && o.resume) log.warn('--resume has no effect with --dreambooth: DreamBooth runs are short and start over when interrupted');
      if (!cfg.alignment.enabled && (o.alignTo || o.lambda2 !== undefined || o.tap)) log.warn('--align-to/--lambda2/--tap have no effect without --feature-alignment');
      const dir = resolve(o.out);
      // --force (and DreamBooth, which always starts over) deletes the run's own files in OUT: never
      // when OUT is the folder of, or inside, an input.
      if (o.force || db) {
        let pretrained = db ? resolve(o.pretrained as string) : null;
        if (pretrained && existsSync(pretrained) && statSync(pretrained).isDirectory()) pretrained = join(pretrained, 'model.safetensors');
        assertNotDeletingInputs({ target: dir, kind: 'files', inputs: [dataInput(cfg.data.dir), fileInput('the expert', cfg.alignment.enabled ? cfg.expert.checkpoint : null), fileInput('the pretrained model', pretrained)] });
      }
      const backend = await initBackend(cfg, log);
      mkdirSync(dir, { recursive: true });
      const { dataset, split } = await loadDataAndSplit(cfg, log, dir);
      let expert: ReturnType<typeof loadExpertModel> | undefined;
      if (cfg.alignment.enabled) {
        if (!cfg.expert.checkpoint) throw new CliError('--feature-alignment needs an expert: --expert FILE (train one with fad expert train)');
        expert = loadExpertModel(cfg.expert.checkpoint);
      }
      writeJsonAtomic(join(dir, 'run.json'), { backend, startedAt: new Date().toISOString(), node: process.version, command: process.argv.slice(2).join(' ') });
      if (db) {
        try {
          let pretrained = resolve(o.pretrained as string);
          if (existsSync(pretrained) && statSync(pretrained).isDirectory()) pretrained = join(pretrained, 'model.safetensors');
          const t0 = Date.now();
          const r = await withInterrupt((interrupt) =>
            trainDreamBooth({
              cfg, data: { images: dataset.images, labels: dataset.labels, imageSize: dataset.imageSize, channels: dataset.channels, indices: split.train, classNames: dataset.classNames, fingerprint: dataset.fingerprint },
              pretrained, expert, dir, force: Boolean(o.force), interrupt, backend, log: log.info, quiet: log.quiet,
            }),
          );
          out(`${r.reused ? 'already fine-tuned' : `DreamBooth fine-tuned ${r.steps} steps in ${formatDuration((Date.now() - t0) / 1000)}`}; final loss ${r.finalLoss.toFixed(4)}\ntoken "${r.token}" for class "${r.className}"\nmodel: ${r.modelPath}\n`);
        } finally {
          expert?.expert.dispose();
        }
        return;
      }
      try {
        const t0 = Date.now();
        const r = await withInterrupt((interrupt) =>
          trainDiffusion({
            cfg, data: { images: dataset.images, labels: dataset.labels, imageSize: dataset.imageSize, channels: dataset.channels, indices: split.train, classNames: dataset.classNames, fingerprint: dataset.fingerprint },
            expert, dir, resume: Boolean(o.resume), force: Boolean(o.force), interrupt, backend, log: log.info, quiet: log.quiet, stopAfterStep: o.stopAfter as number | undefined,
          }),
        );
        out(`${r.reused ? 'already trained' : `trained ${r.steps} steps in ${formatDuration((Date.now() - t0) / 1000)}`}; final loss ${r.finalLoss.toFixed(4)}\nmodel: ${r.modelPath}\n`);
      } finally {
        expert?.expert.dispose();
      }
    });
}
