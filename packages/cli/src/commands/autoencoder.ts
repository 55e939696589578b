/** fad autoencoder train: the KL autoencoder of latent diffusion and its fidelity check. */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { formatAutoencoderFidelity } from '@fad/expert-models';
import { trainAutoencoder } from '../autoencoder';
import { effectiveConfig, initBackend, loadDataAndSplit, makeLogger } from '../context';
import { loadExpertModel } from '../expert';
import { formatDuration, writeJsonAtomic } from '../fsutil';
import { withInterrupt } from '../interrupt';
import { assertNotDeletingInputs } from '../safety';
import { abs, applyRenamedFlags, type CommandContext, dataInput, fileInput, float, globals, int, type RenamedFlag, renamedOption, seedArg } from './shared';

/** Old spellings kept as deprecated aliases. */
const RENAMED: RenamedFlag[] = [{ was: '--steps', now: '--train-steps' }];

export function registerAutoencoder(program: Command, { out }: CommandContext): void {
  // fad autoencoder train
  program
    .command('autoencoder')
    .description('the autoencoder of latent diffusion')
    .command('train')
    .description('train the KL autoencoder (autoencoder.*) on the training split, store the latent scaling factor, then run the fidelity check on held-out images: PSNR, SSIM, and with --expert/--judge their accuracy on reconstructions vs originals (a drop above autoencoder.maxAccuracyDrop points is flagged).\nResumable: Ctrl-C keeps OUT/autoencoder-checkpoint.safetensors; run again with --resume to continue')
    .option('-d, --data <dir>', 'data folder')
    .requiredOption('-o, --out <dir>', 'output folder (autoencoder.safetensors, metrics.jsonl, fidelity.json, split.json)')
    .option('--train-steps <n>', 'training steps: autoencoder.steps', int('--train-steps'))
    .addOption(renamedOption(RENAMED[0], 'n', int('--steps')))
    .option('--batch-size <n>', 'batch size', int('--batch-size'))
    .option('--lr <x>', 'learning rate', float('--lr'))
    .option('--perceptual-weight <x>', 'weight of the perceptual term on the expert\'s features (needs --expert; default 0)', float('--perceptual-weight'))
    .option('-e, --expert <file>', 'expert checkpoint: accuracy in the fidelity check, and the perceptual features')
    .option('--judge <file>', 'an independent classifier checkpoint for the fidelity check')
    .option('--seed <n>', 'seed of the weights, posterior samples and batch order: autoencoder.seed', seedArg)
    .option('--checkpoint-every <n>', 'steps between checkpoints', int('--checkpoint-every'))
    .option('--resume', 'continue an interrupted run from its last checkpoint')
    .option('--force', 'start over, deleting a previous run in OUT')
    .addOption(new Option('--stop-after <n>', 'stop after step n as if interrupted (testing)').argParser(int('--stop-after')).hideHelp())
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
      applyRenamedFlags(o, RENAMED, log.warn);
      const cfg = effectiveConfig(g, {
        'data.dir': abs(o.data), 'expert.checkpoint': abs(o.expert), 'autoencoder.steps': o.trainSteps, 'autoencoder.batchSize': o.batchSize,
        'autoencoder.learningRate': o.lr, 'autoencoder.perceptualWeight': o.perceptualWeight, 'autoencoder.checkpointEvery': o.checkpointEvery,
        'autoencoder.seed': o.seed,
      });
      const dir = resolve(o.out);
      if (o.force) {
        assertNotDeletingInputs({ target: dir, kind: 'files', inputs: [dataInput(cfg.data.dir), fileInput('the expert', cfg.expert.checkpoint), fileInput('the judge', abs(o.judge))] });
      }
      const backend = await initBackend(cfg, log);
      mkdirSync(dir, { recursive: true });
      const { dataset, split } = await loadDataAndSplit(cfg, log, dir);
      // --expert (or expert.checkpoint) joins the fidelity check; it is required for the perceptual term.
      const expert = cfg.expert.checkpoint ? loadExpertModel(cfg.expert.checkpoint) : undefined;
      let judge: ReturnType<typeof loadExpertModel> | undefined;
      try {
        judge = o.judge ? loadExpertModel(resolve(o.judge)) : undefined;
        writeJsonAtomic(join(dir, 'run.json'), { backend, startedAt: new Date().toISOString(), node: process.version, command: process.argv.slice(2).join(' ') });
        const t0 = Date.now();
        const r = await withInterrupt((interrupt) =>
          trainAutoencoder({
            cfg, data: { images: dataset.images, labels: dataset.labels, imageSize: dataset.imageSize, channels: dataset.channels, indices: split.train, classNames: dataset.classNames, fingerprint: dataset.fingerprint },
            validation: split.validation, expert, judge, dir, resume: Boolean(o.resume), force: Boolean(o.force), interrupt, backend, log: log.info, quiet: log.quiet,
            stopAfterStep: o.stopAfter as number | undefined,
          }),
        );
        out(`${r.reused ? 'already trained' : `trained ${r.steps} steps in ${formatDuration((Date.now() - t0) / 1000)}`}; final loss ${r.finalLoss.toFixed(4)}\n${formatAutoencoderFidelity(r.fidelity)}\nautoencoder: ${r.modelPath}\nfidelity: ${join(dir, 'fidelity.json')}\n`);
      } finally {
        expert?.expert.dispose();
        judge?.expert.dispose();
      }
    });
}
