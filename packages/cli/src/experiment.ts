/**
 * `fad experiment`: the paper's comparison end to end in one run directory. Trains (or reuses) the
 * expert, fine-tunes the three diffusion variants (baseline, aligned to the noisy input, aligned to
 * the clean image), generates images with K fixed seeds, evaluates every variant and writes the
 * report. Every step stores a key (a hash of its config and its inputs' hashes) in its folder's
 * complete.json; a step whose key is unchanged is reused, a changed one is redone, and an unfinished
 * training run continues from its checkpoint.
 *
 * Layout: see packages/cli/README.md ("Run directory").
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readSafetensorsMetadata } from '@fad/diffusion-core';
import { evaluateExpert, formatConfusionMatrix } from '@fad/expert-models';
import { checkDiffersFromExpert, checkpointExpertConfig, type EvaluationResult, evaluateGeneratedSet } from '@fad/expert-models/node';
import { writeExperimentReport } from '@fad/feature-align/node';
import { type FadConfig, type VariantName, configToYaml } from './config';
import { type Logger, loadDataAndSplit } from './context';
import { type DiffusionResult, diffusionStepKey, latentAutoencoderSha256, trainDiffusion } from './diffusion';
import { DREAMBOOTH_ARMS, dreamBoothArmConfig, generateDreamBooth, trainDreamBooth } from './dreambooth';
import { CliError, withLibraryErrors } from './errors';
import { expertConfigFor, expertStepKey, loadExpertModel, trainExpertJob } from './expert';
import { COMPLETE_FILE, formatDuration, readComplete, readJsonIfExists, sha256, sha256File, stepKey, writeComplete, writeFileAtomicSync, writeJsonAtomic } from './fsutil';
import { classIntensityStats, type GenerateManifest, generateImages } from './generate';
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

export interface ExperimentResult {
  runDir: string;
  report: string;
  evaluations: Record<string, EvaluationResult>;
  steps: Record<string, { key: string; reused: boolean; seconds: number }>;
}

export function variantConfig(cfg: FadConfig, v: VariantName): FadConfig {
  const alignment = v === 'baseline' ? { ...cfg.alignment, enabled: false } : { ...cfg.alignment, enabled: true, alignTo: v === 'aligned-noisy' ? ('noisy' as const) : ('clean' as const) };
  return { ...cfg, alignment };
}

export async function runExperiment(job: ExperimentJob): Promise<ExperimentResult> {
  const { cfg, log } = job;
  if (cfg.experiment.dreambooth) {
    if (!cfg.dreambooth.class) throw new CliError('experiment.dreambooth needs the class to fine-tune on: set dreambooth.class (e.g. tumor)');
    if (!cfg.experiment.variants.includes('baseline')) throw new CliError('experiment.dreambooth fine-tunes the baseline variant\'s model: keep "baseline" in experiment.variants');
  }
  const runDir = resolve(job.runDir);
  mkdirSync(runDir, { recursive: true });
  const t0 = Date.now();
  const steps: ExperimentResult['steps'] = {};
  const timed = async <T>(name: string, fn: () => Promise<{ key: string; reused: boolean; value: T }>): Promise<T> => {
    const s = Date.now();
    const r = await fn();
    steps[name] = { key: r.key, reused: r.reused, seconds: (Date.now() - s) / 1000 };
    writeJsonAtomic(join(runDir, 'steps.json'), steps);
    return r.value;
  };
  rmSync(join(runDir, COMPLETE_FILE), { force: true });
  const previous = readJsonIfExists<{ backend?: string }>(join(runDir, 'run.json'));
  if (previous?.backend && previous.backend !== job.backend) log.warn(`this run directory was started on the "${previous.backend}" backend; continuing on "${job.backend}"`);
  writeFileAtomicSync(join(runDir, 'config.yaml'), configToYaml(cfg, `effective config of fad experiment (written ${new Date().toISOString()})`));
  writeJsonAtomic(join(runDir, 'run.json'), {
    backend: job.backend,
    startedAt: new Date(t0).toISOString(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    command: job.command ?? null,
    dataDir: cfg.data.dir ? resolve(cfg.data.dir) : null,
    imageSize: cfg.data.imageSize,
    channels: cfg.data.channels,
  });

  const { dataset, split } = await loadDataAndSplit(cfg, log, runDir);
  const per = dataset.imageSize * dataset.imageSize * dataset.channels;
  if (cfg.experiment.utility) {
    // The utility stage's classifier must not be the expert the variants align to (checked before any training).
    const expertConfig = cfg.expert.checkpoint ? checkpointExpertConfig({ path: resolve(cfg.expert.checkpoint) }) : expertConfigFor(cfg, dataset.classNames.length);
    if (expertConfig) {
      const classifier = utilityClassifierConfig(cfg, dataset.classNames.length).config;
      withLibraryErrors(() => checkDiffersFromExpert({ classifier, expert: { config: expertConfig, path: cfg.expert.checkpoint ?? 'expert.*' }, what: 'the experiment\'s expert' }));
    }
  }

  // 1. The expert.
  const expertDir = join(runDir, 'expert');
  let expertPath: string;
  if (cfg.expert.checkpoint) {
    expertPath = resolve(cfg.expert.checkpoint);
    await timed('expert', async () => {
      const loaded = loadExpertModel(expertPath);
      const key = stepKey('expert-eval', {}, { expert: loaded.sha256, data: dataset.fingerprint, split: sha256(JSON.stringify(split.validation)) });
      const done = readComplete(expertDir);
      if (done?.key === key && !job.force) {
        loaded.expert.dispose();
        return { key, reused: true, value: null };
      }
      checkClasses(loaded.expert.classNames, dataset.classNames, expertPath);
      const idx = split.validation.length ? split.validation : split.train;
      const images = new Float32Array(idx.length * per);
      idx.forEach((k, i) => images.set(dataset.images.subarray(k * per, (k + 1) * per), i * per));
      // Labels in the expert's class order (its checkpoint may list the classes differently).
      const labels = idx.map((k) => loaded.expert.classNames.indexOf(dataset.classNames[dataset.labels[k]]));
      const ev = evaluateExpert({ expert: loaded.expert, images: { data: images, shape: [idx.length, dataset.imageSize, dataset.imageSize, dataset.channels] }, labels });
      writeJsonAtomic(join(expertDir, 'eval.json'), { classNames: [...loaded.expert.classNames], ...ev });
      writeComplete(expertDir, { step: 'expert-eval', key, sha256: loaded.sha256, checkpoint: expertPath });
      loaded.expert.dispose();
      return { key, reused: false, value: null };
    });
  } else {
    expertPath = join(expertDir, 'expert.safetensors');
    await timed('expert', async () => {
      const r = await trainExpertJob({
        cfg, images: dataset.images, labels: dataset.labels, imageSize: dataset.imageSize, channels: dataset.channels, classNames: dataset.classNames,
        train: split.train, validation: split.validation, fingerprint: dataset.fingerprint, dir: expertDir, force: job.force, log: log.info, quiet: log.quiet, backend: job.backend,
        // An unfinished expert continues from its state; a state from other settings is stale.
        resume: true, staleState: 'restart', interrupt: job.interrupt, resumeHint: 'run the same command again to continue',
      });
      return { key: r.key, reused: r.reused, value: null };
    });
  }
  const expert = loadExpertModel(expertPath);
  try {
    const ev = readJsonIfExists<{ accuracy: number | null; confusionMatrix: number[][] | null; classNames: string[]; numSamples: number }>(join(expertDir, 'eval.json'));
    if (ev?.accuracy !== null && ev?.accuracy !== undefined) {
      log.info(`fad: expert accuracy on ${ev.numSamples} held-out real images: ${(ev.accuracy * 100).toFixed(1)}%`);
      if (ev.confusionMatrix && !log.quiet) log.info(formatConfusionMatrix({ matrix: ev.confusionMatrix, classNames: ev.classNames }));
    }

    const realIdx = cfg.evaluate.realSet === 'validation' && split.validation.length >= 2 ? split.validation : split.train.concat(split.validation).sort((a, b) => a - b);
    const real = {
      images: new Float32Array(realIdx.length * per),
      labels: Int32Array.from(realIdx.map((k) => dataset.labels[k])),
      classNames: dataset.classNames,
      imageSize: dataset.imageSize,
      channels: dataset.channels,
    };
    realIdx.forEach((k, i) => real.images.set(dataset.images.subarray(k * per, (k + 1) * per), i * per));
    const realStats = classIntensityStats(dataset.images, dataset.labels, per, dataset.classNames);

    // 2.-4. Each variant: train, generate, evaluate.
    const evaluations: Record<string, EvaluationResult> = {};
    const trainedModels: Record<string, string> = {};
    for (const v of cfg.experiment.variants) {
      const vcfg = variantConfig(cfg, v);
      const vdir = join(runDir, 'variants', v);
      const trainDir = join(vdir, 'train');
      const data = { images: dataset.images, labels: dataset.labels, imageSize: dataset.imageSize, channels: dataset.channels, indices: split.train, classNames: dataset.classNames, fingerprint: dataset.fingerprint };
      const trained: DiffusionResult = await timed(`train:${v}`, async () => {
        // A checkpoint or finished run from other settings is stale: start that step over.
        const key = diffusionStepKey(vcfg, data, vcfg.alignment.enabled ? expert.sha256 : null, latentAutoencoderSha256(vcfg));
        const done = readComplete(trainDir);
        const ckpt = join(trainDir, 'checkpoint.safetensors');
        let force = job.force ?? false;
        if ((done && done.key !== key) || (!done && existsSync(ckpt) && !checkpointKeyMatches(ckpt, key))) {
          log.info(`fad: ${v}: the config or inputs changed since the last run; training again`);
          force = true;
        }
        log.info(`fad: variant ${v}: ${vcfg.alignment.enabled ? `feature alignment to the ${vcfg.alignment.alignTo} image (lambda1 ${vcfg.alignment.lambda1}, lambda2 ${vcfg.alignment.lambda2}, tap ${vcfg.alignment.tap})` : 'vanilla fine-tuning (no alignment)'}`);
        const r = await trainDiffusion({ cfg: vcfg, data, expert, dir: trainDir, resume: true, force, interrupt: job.interrupt, backend: job.backend, log: log.info, quiet: log.quiet, resumeHint: 'run the same command again to continue' });
        return { key: r.key, reused: r.reused, value: r };
      });
      const genDir = join(vdir, 'generated');
      const manifest: GenerateManifest = await timed(`generate:${v}`, async () => {
        const modelSha = sha256File(trained.modelPath);
        const key = stepKey('generate', cfg.generate, { model: modelSha, realStats: cfg.generate.matchMean.enabled ? sha256(JSON.stringify(realStats)) : '' });
        const old = readJsonIfExists<GenerateManifest>(join(genDir, 'manifest.json'));
        if (old?.key === key && !job.force) return { key, reused: true, value: old };
        const m = await generateImages({ checkpoint: trained.modelPath, out: genDir, gen: cfg.generate, realStats, backend: job.backend, force: true, key, quiet: log.quiet, log: log.info });
        return { key, reused: false, value: m };
      });
      evaluations[v] = await timed(`evaluate:${v}`, async () => {
        const key = stepKey('evaluate', cfg.evaluate, { generated: sha256(readFileSync(join(genDir, 'manifest.json'))), expert: expert.sha256, data: dataset.fingerprint, real: sha256(JSON.stringify(realIdx)) });
        const path = join(vdir, 'eval.json');
        const old = readJsonIfExists<EvaluationResult & { key?: string }>(path);
        if (old?.key === key && !job.force) return { key, reused: true, value: old };
        const e = await evaluateGeneratedSet({ generatedDir: genDir, expert: expert.expert, expertPath, expertSha256: expert.sha256, real, settings: cfg.evaluate });
        writeJsonAtomic(path, { ...e, key });
        return { key, reused: false, value: e };
      });
      void manifest;
      trainedModels[v] = trained.modelPath;
      const e = evaluations[v];
      log.info(`fad: ${v}: generation accuracy ${(e.generationAccuracy.overall * 100).toFixed(1)}%, SSIM diversity ${e.diversity.overall.generated.toFixed(3)} (real ${e.diversity.overall.real.toFixed(3)}), FD ${e.frechetDistance.toFixed(2)}, KID ${e.kid.mean.toFixed(4)}`);
    }

    // 5. DreamBooth arm (paper Fig. 4, second panel): the baseline model fine-tuned on one class,
    //    without and with feature alignment; generated with the token, evaluated on the class.
    if (cfg.experiment.dreambooth) {
      const className = cfg.dreambooth.class as string;
      const data = { images: dataset.images, labels: dataset.labels, imageSize: dataset.imageSize, channels: dataset.channels, indices: split.train, classNames: dataset.classNames, fingerprint: dataset.fingerprint };
      const dbRoot = join(runDir, 'dreambooth');
      const evalSettings = { ...cfg.evaluate, classes: [className], excludeClasses: [] };
      for (const arm of DREAMBOOTH_ARMS) {
        const acfg = dreamBoothArmConfig(cfg, arm);
        const adir = join(dbRoot, arm);
        const trained = await timed(`train:${arm}`, async () => {
          log.info(`fad: ${arm}: DreamBooth on "${className}" from the baseline model${acfg.alignment.enabled ? `, with feature alignment (${acfg.alignment.alignTo})` : ''}`);
          const r = await trainDreamBooth({
            cfg: acfg, data, pretrained: trainedModels.baseline, expert, dir: join(adir, 'train'), priorPath: join(dbRoot, 'class-images.safetensors'),
            force: job.force, replaceStale: true, interrupt: job.interrupt, backend: job.backend, log: log.info, quiet: log.quiet,
          });
          return { key: r.key, reused: r.reused, value: r };
        });
        const genDir = join(adir, 'generated');
        await timed(`generate:${arm}`, async () => {
          const key = stepKey('generate-dreambooth', cfg.generate, { model: sha256File(trained.modelPath) });
          const old = readJsonIfExists<GenerateManifest>(join(genDir, 'manifest.json'));
          if (old?.key === key && !job.force) return { key, reused: true, value: old };
          const m = await generateDreamBooth({ checkpoint: trained.modelPath, out: genDir, gen: cfg.generate, backend: job.backend, key, quiet: log.quiet });
          return { key, reused: false, value: m };
        });
        const e = await timed(`evaluate:${arm}`, async () => {
          const key = stepKey('evaluate', evalSettings, { generated: sha256(readFileSync(join(genDir, 'manifest.json'))), expert: expert.sha256, data: dataset.fingerprint, real: sha256(JSON.stringify(realIdx)) });
          const path = join(adir, 'eval.json');
          const old = readJsonIfExists<EvaluationResult & { key?: string }>(path);
          if (old?.key === key && !job.force) return { key, reused: true, value: old };
          const ev = await evaluateGeneratedSet({ generatedDir: genDir, expert: expert.expert, expertPath, expertSha256: expert.sha256, real, settings: evalSettings });
          writeJsonAtomic(path, { ...ev, key });
          return { key, reused: false, value: ev };
        });
        evaluations[arm] = e;
        log.info(`fad: ${arm}: generation accuracy on "${className}" with token "${cfg.dreambooth.token}" ${(e.generationAccuracy.overall * 100).toFixed(1)}%, SSIM diversity ${e.diversity.overall.generated.toFixed(3)} (real ${e.diversity.overall.real.toFixed(3)})`);
      }
    }

    // 5b. Downstream utility of the variants' generated sets (experiment.utility; fad utility into RUN_DIR/utility).
    if (cfg.experiment.utility) {
      await timed('utility', async () => {
        const r = await runUtilityJob({
          cfg, synthetic: cfg.experiment.variants.map((v) => ({ name: v, dir: join(runDir, 'variants', v, 'generated') })), out: join(runDir, 'utility'),
          backend: job.backend, log, interrupt: job.interrupt, force: job.force, generatorExpert: { config: expert.expert.config, path: expertPath }, data: { dataset, split },
        });
        log.info(`fad: utility: ${r.trained} classifier(s) trained, ${r.reused} reused; ${r.path}`);
        return { key: r.key, reused: r.trained === 0, value: null };
      });
    }

    // 6. Report.
    const report = await timed('report', async () => {
      const r = await writeExperimentReport({ runDir });
      for (const w of r.warnings) log.warn(w);
      return { key: '', reused: false, value: r.html };
    });
    writeComplete(runDir, { step: 'experiment', key: stepKey('experiment', cfg, {}), backend: job.backend, report, elapsedSeconds: (Date.now() - t0) / 1000 });
    log.info(`fad: experiment done in ${formatDuration((Date.now() - t0) / 1000)}`);
    return { runDir, report, evaluations, steps };
  } finally {
    expert.expert.dispose();
  }
}

/** Whether the training checkpoint at `path` was written with `key` (its `state` metadata). */
export function checkpointKeyMatches(path: string, key: string): boolean {
  try {
    return JSON.parse(readSafetensorsMetadata(new Uint8Array(readFileSync(path))).state).key === key;
  } catch {
    return false;
  }
}

function checkClasses(expertClasses: readonly string[], dataClasses: string[], path: string): void {
  const missing = dataClasses.filter((c) => !expertClasses.includes(c));
  if (missing.length) throw new CliError(`the expert ${path} does not know the class(es) ${missing.join(', ')} (its classes: ${expertClasses.join(', ')})`);
}

export { expertStepKey };
