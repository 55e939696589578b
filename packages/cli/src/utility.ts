/**
 * `fad utility` (and `fad experiment`'s utility stage) as wiring over @fad/expert-models/node's
 * utility study (`runUtilityStudy`, `runUtilityStudyShard`; see utility-study.ts there): reading
 * the synthetic sets through their manifests, one resumable run file per classifier
 * (`OUT/runs/<protocol>-s<seed>.json`), `OUT/utility.json`, shards (`OUT/I-of-N/`) and their merge
 * (`mergeUtilityShards`, `fad merge`) are the library's.
 *
 * What stays here, as the CLI's concerns:
 * - the downstream classifier from the config (`utilityClassifierConfig`: utility.arch, .preset,
 *   .architecture with the data's classes, size and channels; it must differ from the generator's
 *   expert, `--expert` or expert.checkpoint);
 * - loading the real data and its split (data.*: the training split trains, the held-out
 *   validation split tests), unless `fad experiment` gives them;
 * - the `utility` config section and the top-level seed as the library's settings (the section as
 *   it is: it is part of the run's key, so run folders of earlier versions keep theirs);
 * - Ctrl-C (the interrupt) and the hint after an interruption; library errors become the CLI's
 *   (exit codes, messages naming config keys and flags) by `fromLibraryError`.
 */
import {
  runUtilityStudy,
  type RunUtilityStudyParams,
  type RunUtilityStudyResult,
  runUtilityStudyShard,
  type RunUtilityStudyShardResult,
  UtilityRunError,
} from '@fad/expert-models/node';
import type { ShardSpec } from '@fad/diffusion-core';
import type { ExpertConfig } from '@fad/expert-models';
import type { FadConfig } from './config';
import { type DataWithSplit, type Logger, loadDataAndSplit } from './context';
import { CliError, fromLibraryError, InterruptedError } from './errors';
import { expertConfigFor } from './expert';
import type { Interrupt } from './interrupt';

/** utility.json's type (the end-to-end specs read it from here). */
export type { UtilityJson } from '@fad/expert-models/node';

/** The downstream classifier when utility.preset is not set. */
export const UTILITY_DEFAULT_PRESET = { resnet: 'resnet18-kather', vit: 'vit-small-kather' } as const;

export interface SyntheticSetArg {
  name: string;
  dir: string;
}

export interface UtilityJob {
  cfg: FadConfig;
  synthetic: SyntheticSetArg[];
  out: string;
  backend: string;
  log: Logger;
  interrupt?: Interrupt;
  /** Retrain every classifier (deletes OUT/runs; with a shard, only its classifiers' run files). */
  force?: boolean;
  /** The expert that aligned or guided the generators: the downstream classifier must differ from it. */
  generatorExpert?: { config: ExpertConfig; path: string } | null;
  /** The data and its split, already loaded (fad experiment); otherwise loaded from cfg.data (split by data.validationFraction and data.splitSeed). */
  data?: DataWithSplit;
  /** How to continue after an interruption. */
  resumeHint?: string;
}

/** The downstream classifier's architecture for the data (utility.arch/preset/architecture). */
export function utilityClassifierConfig(cfg: FadConfig, numClasses: number): { preset: string; config: ExpertConfig } {
  const u = cfg.utility;
  const preset = u.preset ?? UTILITY_DEFAULT_PRESET[u.arch];
  try {
    return { preset, config: expertConfigFor({ ...cfg, expert: { ...cfg.expert, arch: u.arch, preset, architecture: u.architecture, pretrained: null } }, numClasses) };
  } catch (e) {
    // expertConfigFor names the expert.* keys; here they are utility.* keys.
    throw new CliError((e as Error).message.replace(/\bexpert\.(preset|architecture|arch)\b/g, 'utility.$1'));
  }
}

/** The library's params from the config: the data (loaded after the synthetic sets' manifests are checked), the classifier, the settings. */
function studyParams(job: UtilityJob): RunUtilityStudyParams {
  const { cfg, log } = job;
  const withSplit = ({ dataset, split }: DataWithSplit) => ({ ...dataset, split });
  return {
    data: job.data ? withSplit(job.data) : async () => withSplit(await loadDataAndSplit(cfg, log)),
    synthetic: job.synthetic,
    out: job.out,
    classifier: ({ classNames }) => utilityClassifierConfig(cfg, classNames.length),
    settings: cfg.utility,
    seed: cfg.seed,
    backend: job.backend,
    force: Boolean(job.force),
    generatorExpert: job.generatorExpert ?? null,
    ...(job.interrupt ? { shouldStop: () => job.interrupt!.requested } : {}),
    log: (m) => log.info(`fad: ${m}`),
  };
}

/** Library errors as the CLI's; an interruption says how to continue. */
function cliError(e: unknown, job: UtilityJob): unknown {
  if (e instanceof UtilityRunError && e.code === 'interrupted') return new InterruptedError(`${e.message}; ${job.resumeHint ?? 'run the same command again to continue'}`);
  return fromLibraryError(e);
}

/** Runs the utility study into `job.out` (`runUtilityStudy`). */
export async function runUtilityJob(job: UtilityJob): Promise<RunUtilityStudyResult> {
  try {
    return await runUtilityStudy(studyParams(job));
  } catch (e) {
    throw cliError(e, job);
  }
}

/** Runs shard `job.shard` of the utility study into `job.out`/I-of-N (`runUtilityStudyShard`). */
export async function runUtilityShardJob(job: UtilityJob & { shard: ShardSpec }): Promise<RunUtilityStudyShardResult> {
  try {
    return await runUtilityStudyShard({ ...studyParams(job), shard: job.shard });
  } catch (e) {
    throw cliError(e, job);
  }
}
