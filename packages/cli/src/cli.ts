/**
 * The `fad` command line (commander). Thin: it reads flags into the config and calls the modules
 * that do the work. `main` never throws: errors are printed as `fad: error: <message>` (with the
 * stack under --debug) and turned into an exit code.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { BUILTIN_SCHEDULER_NAMES } from '@fad/diffusion-core';
import { formatFidelity, trainAutoencoder } from './autoencoder';
import { configToYaml } from './config';
import { effectiveConfig, type GlobalOptions, initBackend, loadDataAndSplit, makeLogger } from './context';
import { inspectDataset } from './data';
import { DEMO_SCALES, type DemoScale, demoPlan, writeDemoData } from './demo';
import { trainDiffusion } from './diffusion';
import { trainDreamBooth } from './dreambooth';
import { CliError, classifyError } from './errors';
import { assertNotDeletingInputs, type RunInput } from './safety';
import { evaluateGenerated, formatConfusion, formatIntensity, readManifest } from './evaluate';
import { runExperiment } from './experiment';
import { loadExpertModel, trainExpertJob } from './expert';
import { formatDuration, writeJsonAtomic } from './fsutil';
import { classIntensityStats, generateImages, readGenerateTiming } from './generate';
import { addMergeCommand } from './merge';
import { addShardOptions, shardFromOptions } from './shard-options';
import { withInterrupt } from './interrupt';
import { writeReport } from './report';
import { checkpointExpertConfig, formatUtilityTable, runUtilityJob } from './utility';

export const VERSION = '0.1.0';

const int = (name: string, min = 1) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got "${v}"`);
  return n;
};
const float = (name: string, min = 0) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`${name} must be a number >= ${min}, got "${v}"`);
  return n;
};
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
const intList = (name: string) => (v: string) =>
  list(v).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a comma-separated list of integers >= 0, got "${v}"`);
    return n;
  });
const collect = (v: string, prev: string[] = []) => [...prev, v];
const floatList = (name: string) => (v: string) =>
  list(v).map((s) => {
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a comma-separated list of numbers > 0, got "${v}"`);
    return n;
  });
const namedDir = (v: string, prev: Array<{ name: string; dir: string }> = []) => {
  const eq = v.indexOf('=');
  if (eq <= 0 || eq === v.length - 1) throw new InvalidArgumentError(`--synthetic expects NAME=DIR (a folder written by fad generate), got "${v}"`);
  return [...prev, { name: v.slice(0, eq).trim(), dir: resolve(v.slice(eq + 1).trim()) }];
};

type Opts = Record<string, unknown> & GlobalOptions;

function globals(cmd: Command): Opts {
  return cmd.optsWithGlobals() as Opts;
}

function abs(p: unknown): string | undefined {
  return typeof p === 'string' ? resolve(p) : undefined;
}

const dataInput = (dir: string | null | undefined): RunInput | null => (dir ? { what: 'the data folder', path: dir } : null);
const fileInput = (what: string, path: string | null | undefined): RunInput | null => (path ? { what, path } : null);

/** Builds the program. `out` receives normal output (tests capture it). */
export function buildProgram(out: (s: string) => void = (s) => process.stdout.write(s)): Command {
  const program = new Command('fad')
    .description('Feature-aligned diffusion for synthetic medical images: train, generate, evaluate, report.\nWithout a command, runs `fad demo`.')
    .version(VERSION, '-V, --version')
    .option('-c, --config <file>', 'YAML config file (see `fad config print` for every key)')
    .option('--set <key=value>', 'override one config key, e.g. --set diffusion.steps=500 (repeatable)', collect)
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend (default: the config\'s run.backend, auto)').choices(['auto', 'tensorflow', 'native', 'wasm', 'cpu']))
    .addOption(new Option('--precision <p>', 'native backend precision: fp32, or bf16 mixed precision (default: the config\'s run.precision, fp32)').choices(['fp32', 'bf16']))
    .option('--report-to <list>', 'training logs besides metrics.jsonl: tensorboard (events files in the run folder; view with tensorboard --logdir DIR) or none (default: the config\'s run.reportTo, tensorboard)')
    .option('-q, --quiet', 'only errors and results')
    .option('--debug', 'print stack traces of errors')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: out, outputError: (s, write) => write(`fad: ${s.replace(/^error: /, 'error: ')}`) })
    .exitOverride();

  // fad data inspect
  const data = program.command('data').description('look at a data folder');
  data
    .command('inspect')
    .description('classes and counts, image sizes and modes, unreadable and odd files')
    .option('-d, --data <dir>', 'data folder (class subfolders of PNG/TIFF/JPEG)')
    .option('--json', 'print the report as JSON')
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const cfg = effectiveConfig(g, { 'data.dir': abs(o.data) });
      if (!cfg.data.dir) throw new CliError('give the data folder: fad data inspect --data DIR');
      const r = await inspectDataset(cfg.data.dir);
      if (o.json) return out(`${JSON.stringify(r, null, 2)}\n`);
      const lines = [`data folder ${cfg.data.dir}: ${r.total} images in ${r.classes.length} classes`];
      const w = Math.max(...r.classes.map((c) => c.name.length), 5);
      for (const c of r.classes) lines.push(`  ${c.name.padEnd(w)}  ${String(c.count).padStart(6)}  (${c.folder})`);
      lines.push(`image sizes: ${Object.entries(r.sizes).map(([k, v]) => `${k} (${v})`).join(', ') || 'none'}`);
      lines.push(`image modes: ${Object.entries(r.modes).map(([k, v]) => `${k} (${v})`).join(', ') || 'none'}`);
      if (r.unreadable.length) lines.push(`unreadable files (${r.unreadable.length}):`, ...r.unreadable.slice(0, 20).map((u) => `  ${u.file}: ${u.reason}`));
      if (r.oddFiles.length) lines.push(`other files (${r.oddFiles.length}, ignored):`, ...r.oddFiles.slice(0, 20).map((f) => `  ${f}`));
      lines.push(r.warnings.length ? `warnings:\n${r.warnings.map((x) => `  - ${x}`).join('\n')}` : 'no problems found');
      out(`${lines.join('\n')}\n`);
    });

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

  // fad expert train
  program
    .command('expert')
    .description('the expert classifier')
    .command('train')
    .description('train the expert (ResNet50 by default, --arch vit for a ViT) and write its checkpoint; prints accuracy and the confusion matrix.\nResumable: Ctrl-C (or a kill) keeps OUT/expert-state.safetensors; run again with --resume to continue')
    .option('-d, --data <dir>', 'data folder')
    .requiredOption('-o, --out <dir>', 'output folder (expert.safetensors, eval.json, metrics.jsonl, split.json; expert-state.safetensors while unfinished)')
    .addOption(new Option('--arch <arch>', 'architecture').choices(['resnet', 'vit']))
    .option('--preset <name>', 'preset of @fad/expert-models (e.g. resnet50-kather, resnet18-kather, vit-small-kather)')
    .option('--epochs <n>', 'epochs', int('--epochs'))
    .option('--batch-size <n>', 'batch size', int('--batch-size'))
    .option('--lr <x>', 'learning rate', float('--lr'))
    .option('--checkpoint-every <n>', 'steps between writes of the resumable state (default: every epoch; always at the end and on Ctrl-C)', int('--checkpoint-every'))
    .option('--resume', 'continue an interrupted run from OUT/expert-state.safetensors')
    .option('--noise-aware', 'train on diffusion-noised x_t (random t of diffusion.scheduler): the expert to guide sampling with (generate --guidance)')
    .option('--pretrained <file>', 'fine-tune from a torchvision ResNet state dict (safetensors; resnet18/34/50...): its backbone, a new head for the data\'s classes')
    .addOption(new Option('--pretrained-conv1 <mode>', 'with --pretrained, 1-channel data and an RGB file: sum the RGB conv1 kernels, or a new seeded conv1 (default sum-rgb)').choices(['sum-rgb', 'new']))
    .option('--force', 'retrain even if OUT holds a finished expert or an unfinished run')
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
      const cfg = effectiveConfig(g, {
        'data.dir': abs(o.data), 'expert.arch': o.arch, 'expert.preset': o.preset ?? (o.arch === 'vit' ? 'vit-small-kather' : undefined),
        'expert.epochs': o.epochs, 'expert.batchSize': o.batchSize, 'expert.learningRate': o.lr, 'expert.checkpointEvery': o.checkpointEvery,
        'expert.noiseAware': o.noiseAware ? true : undefined, 'expert.pretrained': abs(o.pretrained), 'expert.pretrainedConv1': o.pretrainedConv1,
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
        out(`${formatConfusion(r.evaluation.confusionMatrix, dataset.classNames)}\n`);
      } else if (!r.reused) out('no validation images (data.validationFraction is 0): accuracy not measured\n');
      out(`expert checkpoint: ${r.path}\n`);
    });

  // fad autoencoder train
  program
    .command('autoencoder')
    .description('the autoencoder of latent diffusion')
    .command('train')
    .description('train the KL autoencoder (autoencoder.*) on the training split, store the latent scaling factor, then run the fidelity check on held-out images: PSNR, SSIM, and with --expert/--judge their accuracy on reconstructions vs originals (a drop above autoencoder.maxAccuracyDrop points is flagged).\nResumable: Ctrl-C keeps OUT/autoencoder-checkpoint.safetensors; run again with --resume to continue')
    .option('-d, --data <dir>', 'data folder')
    .requiredOption('-o, --out <dir>', 'output folder (autoencoder.safetensors, metrics.jsonl, fidelity.json, split.json)')
    .option('--steps <n>', 'training steps', int('--steps'))
    .option('--batch-size <n>', 'batch size', int('--batch-size'))
    .option('--lr <x>', 'learning rate', float('--lr'))
    .option('--perceptual-weight <x>', 'weight of the perceptual term on the expert\'s features (needs --expert; default 0)', float('--perceptual-weight'))
    .option('--expert <file>', 'expert checkpoint: accuracy in the fidelity check, and the perceptual features')
    .option('--judge <file>', 'an independent classifier checkpoint for the fidelity check')
    .option('--checkpoint-every <n>', 'steps between checkpoints', int('--checkpoint-every'))
    .option('--resume', 'continue an interrupted run from its last checkpoint')
    .option('--force', 'start over, deleting a previous run in OUT')
    .addOption(new Option('--stop-after <n>', 'stop after step n as if interrupted (testing)').argParser(int('--stop-after')).hideHelp())
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
      const cfg = effectiveConfig(g, {
        'data.dir': abs(o.data), 'expert.checkpoint': abs(o.expert), 'autoencoder.steps': o.steps, 'autoencoder.batchSize': o.batchSize,
        'autoencoder.learningRate': o.lr, 'autoencoder.perceptualWeight': o.perceptualWeight, 'autoencoder.checkpointEvery': o.checkpointEvery,
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
        out(`${r.reused ? 'already trained' : `trained ${r.steps} steps in ${formatDuration((Date.now() - t0) / 1000)}`}; final loss ${r.finalLoss.toFixed(4)}\n${formatFidelity(r.fidelity)}\nautoencoder: ${r.modelPath}\nfidelity: ${join(dir, 'fidelity.json')}\n`);
      } finally {
        expert?.expert.dispose();
        judge?.expert.dispose();
      }
    });

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
    .addOption(new Option('--train-embeddings <which>', 'with --dreambooth: conditioning embeddings that train (token: the new one only)').choices(['token', 'all', 'none']))
    .addOption(new Option('--align-to <target>', 'what the expert sees').choices(['noisy', 'clean']))
    .option('--lambda1 <x>', 'weight of the diffusion loss', float('--lambda1'))
    .option('--lambda2 <x>', 'weight of the alignment loss', float('--lambda2'))
    .option('--tap <name>', 'U-Net activation to align (default down_out)')
    .option('--expert <file>', 'expert checkpoint (expert.safetensors)')
    .option('--steps <n>', 'training steps (dreambooth.steps with --dreambooth)', int('--steps'))
    .option('--batch-size <n>', 'batch size (instance images per step with --dreambooth)', int('--batch-size'))
    .option('--lr <x>', 'learning rate (dreambooth.learningRate with --dreambooth)', float('--lr'))
    .option('--cond-drop-prob <p>', 'label dropout for classifier-free guidance, in [0, 1) (default 0.1; dreambooth.condDropProb with --dreambooth)', float('--cond-drop-prob'))
    .option('--checkpoint-every <n>', 'steps between checkpoints', int('--checkpoint-every'))
    .option('--resume', 'continue an interrupted run from its last checkpoint')
    .option('--force', 'start over, deleting a previous run in OUT')
    .addOption(new Option('--stop-after <n>', 'stop after step n as if interrupted (testing)').argParser(int('--stop-after')).hideHelp())
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
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
              'dreambooth.steps': o.steps, 'dreambooth.batchSize': o.batchSize, 'dreambooth.learningRate': o.lr, 'dreambooth.condDropProb': o.condDropProb,
            }
          : { 'diffusion.steps': o.steps, 'diffusion.batchSize': o.batchSize, 'diffusion.learningRate': o.lr, 'diffusion.condDropProb': o.condDropProb }),
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

  // fad generate
  const generateCmd = program
    .command('generate')
    .description('sample N images per class into OUT/<class>/*.png with a manifest')
    .requiredOption('-m, --model <file>', 'model.safetensors (or the training folder holding it)')
    .requiredOption('-o, --out <dir>', 'output folder')
    .option('-n, --per-class <n>', 'images per class and seed', int('--per-class'))
    .option('--classes <names>', 'comma-separated class names (default: all)', list)
    .option('--seeds <list>', 'comma-separated seeds, one image set per seed', intList('--seeds'))
    .option('--num-seeds <k>', 'seeds 0..k-1', int('--num-seeds'))
    .addOption(new Option('--sampler <name>', 'sampler: ddim, ddpm, dpm-solver++ (DPM-Solver++(2M), good in 10-25 steps) or dpm-solver').choices([...BUILTIN_SCHEDULER_NAMES]))
    .option('--steps <n>', 'denoising steps', int('--steps'))
    .option('--guidance-scale <x>', 'classifier-free guidance scale (1 = none)', float('--guidance-scale'))
    .option('--guidance-rescale <phi>', 'rescale the guided prediction to the conditional std, in [0, 1] (Lin et al. 2024; 0.7 with zero terminal SNR)', float('--guidance-rescale'))
    .addOption(new Option('--guidance <kind>', 'expert guidance: climb log p(class | x_t) (classifier) or the expert\'s uncertainty (entropy, margin, least-confidence: hard, boundary samples)').choices(['none', 'classifier', 'entropy', 'margin', 'least-confidence']))
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
      if (o.seeds && o.numSeeds) throw new CliError('give either --seeds or --num-seeds, not both');
      const shard = shardFromOptions(o);
      if (shard) log.info(`fad: generate: shard ${shard.index}/${shard.count} (${shard.source}) into ${join(resolve(o.out), `${shard.index}-of-${shard.count}`)}`);
      const cfg = effectiveConfig(g, {
        'data.dir': abs(o.data), 'generate.imagesPerClass': o.perClass, 'generate.classes': o.classes,
        'generate.seeds': o.seeds ?? (o.numSeeds ? Array.from({ length: o.numSeeds as number }, (_, i) => i) : undefined),
        'generate.sampler': o.sampler, 'generate.steps': o.steps, 'generate.guidanceScale': o.guidanceScale, 'generate.guidanceRescale': o.guidanceRescale, 'generate.eta': o.eta,
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

  // fad evaluate
  program
    .command('evaluate')
    .description('generation accuracy (per class, overall, confusion matrix), SSIM diversity beside the real images\', Fréchet distance and KID on expert features, per-class mean intensity and contrast beside the real images\'')
    .requiredOption('-g, --generated <dir>', 'folder written by fad generate')
    .requiredOption('-e, --expert <file>', 'expert checkpoint')
    .option('-d, --data <dir>', 'real data folder')
    .option('--classes <names>', 'classes to count (default: all but evaluate.excludeClasses, i.e. "empty")', list)
    .option('--exclude <names>', 'classes to leave out (default: empty)', list)
    .addOption(new Option('--real-set <which>', 'real images compared with').choices(['validation', 'all']))
    .option('-o, --out <file>', 'write the results as JSON here (default: GENERATED/eval.json)')
    .option('--json', 'print the results as JSON')
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
      // Real images are compared at the generated images' size and channels.
      const manifest = readManifest(resolve(o.generated));
      const cfg = effectiveConfig(g, {
        'data.dir': abs(o.data), 'data.imageSize': manifest.imageSize, 'data.channels': manifest.channels,
        'evaluate.classes': o.classes, 'evaluate.excludeClasses': o.exclude, 'evaluate.realSet': o.realSet,
      });
      await initBackend(cfg, log);
      const { dataset, split } = await loadDataAndSplit(cfg, log);
      const idx = cfg.evaluate.realSet === 'validation' && split.validation.length >= 2 ? split.validation : dataset.files.map((_, i) => i);
      const per = dataset.imageSize ** 2 * dataset.channels;
      const real = { images: new Float32Array(idx.length * per), labels: Int32Array.from(idx.map((k) => dataset.labels[k])), classNames: dataset.classNames, imageSize: dataset.imageSize, channels: dataset.channels };
      idx.forEach((k, i) => real.images.set(dataset.images.subarray(k * per, (k + 1) * per), i * per));
      const expert = loadExpertModel(resolve(o.expert));
      try {
        const r = await evaluateGenerated({ generatedDir: resolve(o.generated), expert: expert.expert, expertPath: expert.path, expertSha256: expert.sha256, real, settings: cfg.evaluate });
        writeJsonAtomic(o.out ? resolve(o.out) : join(resolve(o.generated), 'eval.json'), r);
        if (o.json) return out(`${JSON.stringify(r, null, 2)}\n`);
        const lines = [
          `generation accuracy: ${(r.generationAccuracy.overall * 100).toFixed(1)}% overall, ${(r.generationAccuracy.macro * 100).toFixed(1)}% macro, over ${r.numGenerated} images of ${r.countedClasses.join(', ')}`,
          ...r.generationAccuracy.perClass.filter((c) => c.numImages > 0).map((c) => `  ${c.class.padEnd(10)} ${(c.accuracy * 100).toFixed(1).padStart(5)}%  (${c.numCorrect}/${c.numImages})`),
          'per seed: ' + r.generationAccuracy.perSeed.map((s) => `${s.seed}: ${(s.overall * 100).toFixed(1)}%`).join(', '),
          formatConfusion(r.confusionMatrix, r.classNames),
          `SSIM diversity (mean pairwise SSIM, lower = more diverse; ${r.diversity.window}): generated ${r.diversity.overall.generated.toFixed(4)}, real ${r.diversity.overall.real.toFixed(4)}`,
          ...r.diversity.perClass.map((c) => `  ${c.class.padEnd(10)} generated ${c.generated.toFixed(4)}  real ${c.real.toFixed(4)}`),
          `Fréchet distance (expert features): ${r.frechetDistance.toFixed(3)}`,
          `KID (expert features): ${r.kid.mean.toFixed(5)} ± ${r.kid.std.toFixed(5)} (${r.kid.numSubsets} subsets of ${r.kid.subsetSize})`,
          ...(r.intensity ? [formatIntensity(r.intensity)] : []),
        ];
        out(`${lines.join('\n')}\n`);
      } finally {
        expert.expert.dispose();
      }
    });

  // fad utility
  program
    .command('utility')
    .description('does the synthetic data help? Trains a downstream classifier (utility.*: ResNet18 by default, --arch vit for a ViT) per protocol and seed: real-only at each fraction of the real training split, real + synthetic at each ratio, synthetic-only; tests each on the held-out real split; prints means, 95% bootstrap CIs and gains over real-only.\nResumable: each finished classifier is kept in OUT/runs/; run the same command again after Ctrl-C or a kill')
    .requiredOption('-s, --synthetic <name=dir>', 'a synthetic set: NAME=DIR, DIR written by fad generate (repeatable)', namedDir)
    .requiredOption('-o, --out <dir>', 'output folder (utility.json, runs/)')
    .option('-d, --data <dir>', 'real data folder (split by data.validationFraction and data.splitSeed: the training split trains, the validation split tests)')
    .option('--fractions <list>', 'shares of the real training split, e.g. 0.1,1', floatList('--fractions'))
    .option('--ratios <list>', 'synthetic:real ratios, e.g. 1,4', floatList('--ratios'))
    .option('--seeds <k>', 'training seeds per protocol (K)', int('--seeds'))
    .addOption(new Option('--arch <arch>', 'downstream classifier architecture').choices(['resnet', 'vit']))
    .option('--preset <name>', 'preset of @fad/expert-models (default resnet18-kather, vit-small-kather with --arch vit)')
    .option('--epochs <n>', 'epochs per classifier', int('--epochs'))
    .option('--batch-size <n>', 'batch size', int('--batch-size'))
    .option('--lr <x>', 'learning rate', float('--lr'))
    .option('--without-synthetic-only', 'no synthetic-only (train synthetic, test real) protocols')
    .option('--expert <file>', 'the expert that aligned or guided the generators (default: expert.checkpoint): the classifier must not be its architecture')
    .option('--force', 'retrain every classifier (deletes OUT/runs)')
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
      const cfg = effectiveConfig(g, {
        'data.dir': abs(o.data), 'expert.checkpoint': abs(o.expert), 'utility.fractions': o.fractions, 'utility.ratios': o.ratios, 'utility.seeds': o.seeds,
        'utility.arch': o.arch, 'utility.preset': o.preset, 'utility.epochs': o.epochs, 'utility.batchSize': o.batchSize, 'utility.learningRate': o.lr,
        'utility.syntheticOnly': o.withoutSyntheticOnly ? false : undefined,
      });
      const expertPath = cfg.expert.checkpoint;
      const expertConfig = expertPath ? checkpointExpertConfig(expertPath) : null;
      if (expertPath && !expertConfig) throw new CliError(`cannot read the architecture of the expert checkpoint ${expertPath} (--expert or expert.checkpoint)`);
      const backend = await initBackend(cfg, log);
      const r = await withInterrupt((interrupt) =>
        runUtilityJob({ cfg, synthetic: o.synthetic, out: o.out, backend, log, interrupt, force: Boolean(o.force), generatorExpert: expertConfig ? { config: expertConfig, path: expertPath as string } : null }),
      );
      out(`${formatUtilityTable(r.json)}\n${r.trained} classifier(s) trained, ${r.reused} reused\nutility: ${r.path}\n`);
    });

  // fad experiment
  program
    .command('experiment')
    .description('expert + baseline, aligned-noisy and aligned-clean diffusion models, generation with fixed seeds, evaluation, report; finished steps are reused')
    .requiredOption('-r, --run-dir <dir>', 'run directory')
    .option('-d, --data <dir>', 'data folder')
    .option('--force', 'redo every step')
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
      const cfg = effectiveConfig(g, { 'data.dir': abs(o.data) });
      const backend = await initBackend(cfg, log);
      const r = await withInterrupt((interrupt) =>
        runExperiment({ cfg, runDir: o.runDir, backend, log, interrupt, force: Boolean(o.force), command: process.argv.slice(2).join(' ') }),
      );
      out(`report: ${r.report}\n`);
    });

  // fad merge
  addMergeCommand(program, out);

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

  // fad demo (the default command)
  program
    .command('demo', { isDefault: true })
    .description('the whole experiment at toy scale on built-in procedural textures (no data needed); prints the report path')
    .addOption(new Option('--scale <scale>', 'toy scale').choices([...DEMO_SCALES]).default('small'))
    .option('-r, --run-dir <dir>', 'run directory (default runs/demo-<scale>)')
    .option('--force', 'redo every step')
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const log = makeLogger(Boolean(g.quiet));
      const scale = o.scale as DemoScale;
      const plan = demoPlan(scale);
      const runDir = resolve(o.runDir ?? join('runs', `demo-${scale}`));
      const dataDir = join(runDir, 'data');
      const cfg = effectiveConfig(g, {}, { ...plan.config, data: { ...plan.config.data, dir: dataDir } });
      const backend = await initBackend(cfg, log);
      const t0 = Date.now();
      log.info(`fad demo (${scale}): ${plan.perClass} procedural ${plan.imageSize}x${plan.imageSize} textures per class in ${dataDir}`);
      await writeDemoData(dataDir, plan.imageSize, plan.perClass, cfg.seed);
      const r = await withInterrupt((interrupt) => runExperiment({ cfg, runDir, backend, log, interrupt, force: Boolean(o.force), command: process.argv.slice(2).join(' ') }));
      out(`fad demo (${scale}, ${backend}) finished in ${formatDuration((Date.now() - t0) / 1000)}\nreport: ${r.report}\n`);
    });

  return program;
}

/** Runs the CLI; resolves to the exit code (never rejects). */
export async function main(argv: string[] = process.argv, io: { out?: (s: string) => void; err?: (s: string) => void } = {}): Promise<number> {
  const err = io.err ?? ((s: string) => process.stderr.write(s));
  const debug = argv.includes('--debug');
  const program = buildProgram(io.out);
  program.configureOutput({ writeOut: io.out ?? ((s) => process.stdout.write(s)), writeErr: err, outputError: (s, write) => write(`fad: ${s}`) });
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    // Filesystem, memory and divergence problems are the user's environment, not a fad bug.
    const original = e as Error;
    e = classifyError(e);
    const error = e as Error;
    const code = e instanceof CliError ? e.exitCode : 1;
    if (e instanceof CliError) err(`fad: ${code === 130 ? '' : 'error: '}${error.message}\n`);
    else err(`fad: error: ${error?.message ?? String(e)}${debug ? '' : '\n(an unexpected error: run again with --debug for the stack trace, and report it)'}\n`);
    if (debug && (original?.stack ?? error?.stack)) err(`${original?.stack ?? error.stack}\n`);
    return code;
  }
}
