/**
 * `fad experiment` (and `fad demo`): the paper's comparison end to end in one run directory, as
 * wiring over `runAlignmentExperiment` of @fad/feature-align/node, which owns the run directory
 * (run.json, config.yaml, steps.json, complete.json), the generate and evaluate step keys and
 * their reuse, the stale-checkpoint check, the order of the stages, the report and the summary
 * lines. What stays here: the checks of the experiment.* keys, the config as the run's params, and
 * the stages as the CLI's jobs: loading the data and its split, the expert (trained, or a given
 * checkpoint evaluated on the held-out images), the variants' training, generation and evaluation,
 * the DreamBooth arms and the utility stage.
 *
 * Layout: see packages/cli/README.md ("Run directory").
 */
import { join, resolve } from 'node:path';
import { evaluateExpert, formatConfusionMatrix } from '@fad/expert-models';
import { checkDiffersFromExpert, checkpointExpertConfig, type EvaluationResult, type EvaluationSettings, evaluateGeneratedSet } from '@fad/expert-models/node';
import { type AlignmentExperimentResult, runAlignmentExperiment } from '@fad/feature-align/node';
import { type FadConfig, configToYaml } from './config';
import { type DataWithSplit, type Logger, loadDataAndSplit } from './context';
import { type TrainingData, diffusionStepKey, latentAutoencoderSha256, trainDiffusion } from './diffusion';
import { generateDreamBooth, trainDreamBooth } from './dreambooth';
import { CliError, fromLibraryError, withLibraryErrors } from './errors';
import { expertConfigFor, type LoadedExpertModel, loadExpertModel, trainExpertJob } from './expert';
import { readComplete, sha256, stepKey, writeComplete, writeJsonAtomic } from './fsutil';
import { classIntensityStats, generateImages } from './generate';
import type { Interrupt } from './interrupt';
import { runUtilityJob, utilityClassifierConfig } from './utility';

export interface ExperimentJob {
  cfg: FadConfig;
  runDir: string;
  backend: string;
  log: Logger;
  interrupt?: Interrupt;
  /** Redo every step. */
  force?: boolean;
  /** The command line, recorded in run.json. */
  command?: string;
}

export type ExperimentResult = AlignmentExperimentResult<EvaluationResult>;

/** The loaded expert as the run's stages use it. */
type OpenExpert = LoadedExpertModel & { dispose(): void };

/** A variant's or a DreamBooth arm's config: the config with its alignment switched as the run says. */
function withAlignment(cfg: FadConfig, alignment: { enabled: boolean; alignTo?: 'noisy' | 'clean' }): FadConfig {
  return { ...cfg, alignment: { ...cfg.alignment, ...alignment } };
}

export async function runExperiment(job: ExperimentJob): Promise<ExperimentResult> {
  const { cfg, log, backend, interrupt } = job;
  if (cfg.experiment.dreambooth) {
    if (!cfg.dreambooth.class) throw new CliError('experiment.dreambooth needs the class to fine-tune on: set dreambooth.class (e.g. tumor)');
    if (!cfg.experiment.variants.includes('baseline')) throw new CliError('experiment.dreambooth fine-tunes the baseline variant\'s model: keep "baseline" in experiment.variants');
  }
  const runDir = resolve(job.runDir);
  // Set by the prepare stage (the data is loaded after run.json is written).
  let loaded!: DataWithSplit;
  let training!: TrainingData;
  let real!: Parameters<typeof evaluateGeneratedSet>[0]['real'];
  let realStats!: ReturnType<typeof classIntensityStats>;
  try {
    return await runAlignmentExperiment<OpenExpert, EvaluationResult>({
      runDir,
      variants: cfg.experiment.variants,
      force: job.force ?? false,
      record: { backend, command: job.command ?? null, dataDir: cfg.data.dir ?? null, imageSize: cfg.data.imageSize, channels: cfg.data.channels },
      config: cfg,
      configYaml: configToYaml(cfg, `effective config of fad experiment (written ${new Date().toISOString()})`),
      generateSettings: cfg.generate,
      evaluateSettings: cfg.evaluate,
      log: log.info,
      warn: log.warn,
      formatConfusionMatrix: log.quiet ? undefined : formatConfusionMatrix,
      stages: {
        prepare: async () => {
          loaded = await loadDataAndSplit(cfg, log, runDir);
          const { dataset, split } = loaded;
          if (cfg.experiment.utility) {
            // The utility stage's classifier must not be the expert the variants align to (checked before any training).
            const expertConfig = cfg.expert.checkpoint ? checkpointExpertConfig({ path: resolve(cfg.expert.checkpoint) }) : expertConfigFor(cfg, dataset.classNames.length);
            if (expertConfig) {
              const classifier = utilityClassifierConfig(cfg, dataset.classNames.length).config;
              withLibraryErrors(() => checkDiffersFromExpert({ classifier, expert: { config: expertConfig, path: cfg.expert.checkpoint ?? 'expert.*' }, what: 'the experiment\'s expert' }));
            }
          }
          training = { images: dataset.images, labels: dataset.labels, imageSize: dataset.imageSize, channels: dataset.channels, indices: split.train, classNames: dataset.classNames, fingerprint: dataset.fingerprint };
          const per = dataset.imageSize * dataset.imageSize * dataset.channels;
          const realIdx = cfg.evaluate.realSet === 'validation' && split.validation.length >= 2 ? split.validation : split.train.concat(split.validation).sort((a, b) => a - b);
          real = {
            images: new Float32Array(realIdx.length * per),
            labels: Int32Array.from(realIdx.map((k) => dataset.labels[k])),
            classNames: dataset.classNames,
            imageSize: dataset.imageSize,
            channels: dataset.channels,
          };
          realIdx.forEach((k, i) => real.images.set(dataset.images.subarray(k * per, (k + 1) * per), i * per));
          realStats = classIntensityStats(dataset.images, dataset.labels, per, dataset.classNames);
          return { fingerprint: dataset.fingerprint, realIndices: realIdx, realStats: cfg.generate.matchMean.enabled ? realStats : null };
        },
        expert: async ({ dir, force }) => {
          const { dataset, split } = loaded;
          if (cfg.expert.checkpoint) return evaluateExpertCheckpoint({ path: resolve(cfg.expert.checkpoint), dir, force, loaded });
          const r = await trainExpertJob({
            cfg, images: dataset.images, labels: dataset.labels, imageSize: dataset.imageSize, channels: dataset.channels, classNames: dataset.classNames,
            train: split.train, validation: split.validation, fingerprint: dataset.fingerprint, dir, force, log: log.info, quiet: log.quiet, backend,
            // An unfinished expert continues from its state; a state from other settings is stale.
            resume: true, staleState: 'restart', interrupt, resumeHint: 'run the same command again to continue',
          });
          return { key: r.key, reused: r.reused, path: join(dir, 'expert.safetensors') };
        },
        openExpert: ({ path }) => {
          const expert = loadExpertModel(path);
          return { ...expert, dispose: () => expert.expert.dispose() };
        },
        trainVariantKey: ({ alignment, expert }) => {
          const vcfg = withAlignment(cfg, alignment);
          return diffusionStepKey(vcfg, training, vcfg.alignment.enabled ? expert.sha256 : null, latentAutoencoderSha256(vcfg));
        },
        trainVariant: ({ variant, alignment, dir, force, expert }) => {
          const vcfg = withAlignment(cfg, alignment);
          const a = vcfg.alignment;
          log.info(`fad: variant ${variant}: ${a.enabled ? `feature alignment to the ${a.alignTo} image (lambda1 ${a.lambda1}, lambda2 ${a.lambda2}, tap ${a.tap})` : 'vanilla fine-tuning (no alignment)'}`);
          return trainDiffusion({ cfg: vcfg, data: training, expert, dir, resume: true, force, interrupt, backend, log: log.info, quiet: log.quiet, resumeHint: 'run the same command again to continue' });
        },
        generate: ({ modelPath, dir, key }) => generateImages({ checkpoint: modelPath, out: dir, gen: cfg.generate, realStats, backend, force: true, key, quiet: log.quiet, log: log.info }),
        evaluate: ({ generatedDir, settings, expert }) =>
          evaluateGeneratedSet({ generatedDir, expert: expert.expert, expertPath: expert.path, expertSha256: expert.sha256, real, settings: settings as EvaluationSettings }),
        dreamBooth: cfg.experiment.dreambooth
          ? {
              className: cfg.dreambooth.class as string,
              token: cfg.dreambooth.token,
              train: ({ arm, alignment, dir, priorPath, pretrained, expert, force }) => {
                const acfg = withAlignment(cfg, alignment);
                log.info(`fad: ${arm}: DreamBooth on "${cfg.dreambooth.class}" from the baseline model${acfg.alignment.enabled ? `, with feature alignment (${acfg.alignment.alignTo})` : ''}`);
                return trainDreamBooth({ cfg: acfg, data: training, pretrained, expert, dir, priorPath, force, replaceStale: true, interrupt, backend, log: log.info, quiet: log.quiet });
              },
              generate: ({ modelPath, dir, key }) => generateDreamBooth({ checkpoint: modelPath, out: dir, gen: cfg.generate, backend, key, quiet: log.quiet }),
            }
          : undefined,
        utility: cfg.experiment.utility
          ? ({ sets, dir, expert, force }) =>
              runUtilityJob({ cfg, synthetic: sets, out: dir, backend, log, interrupt, force, generatorExpert: { config: expert.expert.config, path: expert.path }, data: loaded })
          : undefined,
      },
    });
  } catch (e) {
    throw fromLibraryError(e);
  }
}

/**
 * The expert step for a given checkpoint (`expert.checkpoint`): evaluated on the held-out real
 * images into `dir/eval.json` (step `expert-eval`), reused while the checkpoint, data and split
 * are unchanged.
 */
function evaluateExpertCheckpoint(p: { path: string; dir: string; force: boolean; loaded: DataWithSplit }): { key: string; reused: boolean; path: string } {
  const { dataset, split } = p.loaded;
  const per = dataset.imageSize * dataset.imageSize * dataset.channels;
  const loaded = loadExpertModel(p.path);
  const key = stepKey('expert-eval', {}, { expert: loaded.sha256, data: dataset.fingerprint, split: sha256(JSON.stringify(split.validation)) });
  const done = readComplete(p.dir);
  if (done?.key === key && !p.force) {
    loaded.expert.dispose();
    return { key, reused: true, path: p.path };
  }
  checkClasses(loaded.expert.classNames, dataset.classNames, p.path);
  const idx = split.validation.length ? split.validation : split.train;
  const images = new Float32Array(idx.length * per);
  idx.forEach((k, i) => images.set(dataset.images.subarray(k * per, (k + 1) * per), i * per));
  // Labels in the expert's class order (its checkpoint may list the classes differently).
  const labels = idx.map((k) => loaded.expert.classNames.indexOf(dataset.classNames[dataset.labels[k]]));
  const ev = evaluateExpert({ expert: loaded.expert, images: { data: images, shape: [idx.length, dataset.imageSize, dataset.imageSize, dataset.channels] }, labels });
  writeJsonAtomic(join(p.dir, 'eval.json'), { classNames: [...loaded.expert.classNames], ...ev });
  writeComplete(p.dir, { step: 'expert-eval', key, sha256: loaded.sha256, checkpoint: p.path });
  loaded.expert.dispose();
  return { key, reused: false, path: p.path };
}

function checkClasses(expertClasses: readonly string[], dataClasses: string[], path: string): void {
  const missing = dataClasses.filter((c) => !expertClasses.includes(c));
  if (missing.length) throw new CliError(`the expert ${path} does not know the class(es) ${missing.join(', ')} (its classes: ${expertClasses.join(', ')})`);
}
