/**
 * End-to-end tests of the built `fad` executable: the CI smoke test (`fad demo --scale smallest`
 * on the pure-JS cpu backend), the report it writes, the single commands on its outputs, and the
 * error handling.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors } from '@fad/diffusion-core';
import { runFad } from './testing/run-fad';

const root = mkdtempSync(join(tmpdir(), 'fad-cli-'));
const run = join(root, 'demo');
let demoSeconds = 0;

describe('fad demo --scale smallest (the CI smoke test)', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    const r = await runFad(['demo', '--scale', 'smallest', '--run-dir', run, '--backend', 'cpu'], { timeoutMs: 180_000 });
    demoSeconds = (Date.now() - t0) / 1000;
    if (r.code !== 0) throw new Error(`fad demo failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
    expect(r.stdout).toMatch(/report: .*report\.html/);
    expect(r.stderr).toContain('using the "cpu" backend');
  }, 200_000);

  it('runs the whole experiment in well under 3 minutes and marks it complete', () => {
    expect(demoSeconds).toBeLessThan(180);
    console.log(`fad demo --scale smallest on cpu: ${demoSeconds.toFixed(1)} s`);
    const done = JSON.parse(readFileSync(join(run, 'complete.json'), 'utf8'));
    expect(done).toMatchObject({ step: 'experiment', backend: 'cpu' });
    expect(JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')).backend).toBe('cpu');
    for (const v of ['baseline', 'aligned-noisy', 'aligned-clean']) {
      expect(existsSync(join(run, 'variants', v, 'train', 'complete.json')), v).toBe(true);
      const e = JSON.parse(readFileSync(join(run, 'variants', v, 'eval.json'), 'utf8'));
      expect(e.generationAccuracy.perSeed).toHaveLength(2);
      expect(Number.isFinite(e.frechetDistance)).toBe(true);
      const m = JSON.parse(readFileSync(join(run, 'variants', v, 'generated', 'manifest.json'), 'utf8'));
      expect(m).toMatchObject({ sampler: 'ddim', seeds: [0, 1], imagesPerClass: 2, backend: 'cpu' });
      expect(m.checkpointSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(m.images).toHaveLength(16);
      const metrics = readFileSync(join(run, 'variants', v, 'train', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(metrics.at(-1).step).toBe(12);
      expect(Object.keys(metrics[0].terms)).toEqual(v === 'baseline' ? ['diffusion'] : ['diffusion', 'feature_align.align']);
    }
    // The DreamBooth arm: the baseline fine-tuned on "rings" without and with alignment.
    expect(existsSync(join(run, 'dreambooth', 'class-images.safetensors'))).toBe(true);
    for (const arm of ['dreambooth', 'dreambooth-aligned']) {
      expect(existsSync(join(run, 'dreambooth', arm, 'train', 'complete.json')), arm).toBe(true);
      const e = JSON.parse(readFileSync(join(run, 'dreambooth', arm, 'eval.json'), 'utf8'));
      expect(e.countedClasses).toEqual(['rings']);
      expect(e.generationAccuracy.perSeed).toHaveLength(2);
      const m = JSON.parse(readFileSync(join(run, 'dreambooth', arm, 'generated', 'manifest.json'), 'utf8'));
      expect(m.generatedClasses).toEqual(['rings']);
      expect(m.images).toHaveLength(4);
      expect(m.dreambooth).toMatchObject({ class: 'rings', token: 'sks', classLabel: 3, tokenLabel: 5 });
      const metrics = readFileSync(join(run, 'dreambooth', arm, 'train', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(metrics.at(-1).step).toBe(4);
      expect(Object.keys(metrics[0].terms).sort()).toEqual(arm === 'dreambooth' ? ['diffusion', 'diffusion.instance', 'diffusion.prior'] : ['diffusion', 'diffusion.instance', 'diffusion.prior', 'feature_align.align']);
    }
  });

  it('writes a self-contained HTML report that references every figure, and every PNG decodes', async () => {
    const html = readFileSync(join(run, 'report', 'report.html'), 'utf8');
    const figures = readdirSync(join(run, 'report', 'figures')).filter((f) => f.endsWith('.png'));
    for (const f of ['loss-diffusion.png', 'loss-alignment.png', 'confusion-expert-real.png', 'confusion-baseline.png', 'confusion-aligned-noisy.png', 'confusion-aligned-clean.png', 'accuracy-per-seed.png', 'ssim-diversity.png', 'intensity.png', 'grid-rings.png', 'dreambooth-accuracy-per-seed.png', 'grid-dreambooth.png']) {
      expect(figures).toContain(f);
    }
    for (const f of figures) {
      expect(html, f).toContain(`data-file="figures/${f}"`);
      const meta = await sharp(join(run, 'report', 'figures', f)).metadata();
      expect(meta.format, f).toBe('png');
      expect(meta.width, f).toBeGreaterThan(50);
      await sharp(join(run, 'report', 'figures', f)).raw().toBuffer();
    }
    // Embedded: one data URI per figure, and nothing fetched from outside.
    expect(html.match(/src="data:image\/png;base64,/g)?.length).toBe(figures.length);
    expect(html).not.toMatch(/(src|href)="https?:/);
    // Re-running the experiment reuses every finished step.
    const again = await runFad(['demo', '--scale', 'smallest', '--run-dir', run, '--backend', 'cpu']);
    expect(again.code).toBe(0);
    const steps = JSON.parse(readFileSync(join(run, 'steps.json'), 'utf8'));
    for (const [name, s] of Object.entries(steps as Record<string, { reused: boolean }>)) if (name !== 'report') expect(s.reused, name).toBe(true);
    const r = await runFad(['report', '--run-dir', run]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/report: .*report\.html \(\d+ figures\)/);
  }, 120_000);

  it('generate, evaluate, data inspect and config print work on their own', async () => {
    const out = join(root, 'gen');
    const g = await runFad(['generate', '--model', join(run, 'variants', 'baseline', 'train'), '--out', out, '--num-seeds', '1', '--per-class', '3',
      '--classes', 'rings,checker', '--sampler', 'ddpm', '--steps', '3', '--guidance-scale', '1.5', '--match-mean', '--match-mean-k', '3', '--data', join(run, 'data'), '--backend', 'cpu']);
    expect(g.code, g.stderr).toBe(0);
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(m).toMatchObject({ sampler: 'ddpm', steps: 3, guidanceScale: 1.5, seeds: [0], generatedClasses: ['rings', 'checker'] });
    expect(m.matchMean.k).toBe(3);
    expect(readdirSync(join(out, 'rings'))).toHaveLength(3);
    const again = await runFad(['generate', '--model', join(run, 'variants', 'baseline', 'train', 'model.safetensors'), '--out', out, '--backend', 'cpu']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^fad: error: .*gen already exists; choose another --out or pass --force/m);
    const e = await runFad(['evaluate', '--generated', out, '--expert', join(run, 'expert', 'expert.safetensors'), '--data', join(run, 'data'),
      '--set', 'data.validationFraction=0.25', '--set', 'evaluate.ssimWindow=uniform', '--set', 'evaluate.kidSubsetSize=4', '--backend', 'cpu']);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/generation accuracy: [\d.]+% overall/);
    expect(e.stdout).toMatch(/Fréchet distance/);
    expect(e.stdout).toMatch(/intensity \(mean pixel value; contrast = sd within an image\)\n(.*\n)* {2}rings /);
    const ej = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
    expect(ej.countedClasses).toEqual(['stripes_h', 'stripes_v', 'checker', 'rings']);
    expect(ej.intensity.perClass.map((c: { class: string }) => c.class)).toEqual(['checker', 'rings']); // the generated classes
    const i = await runFad(['data', 'inspect', '--data', join(run, 'data')]);
    expect(i.code).toBe(0);
    expect(i.stdout).toMatch(/48 images in 4 classes/);
    expect(i.stdout).toMatch(/8x8 \(48\)/);
    const c = await runFad(['config', 'print', '--set', 'diffusion.steps=5']);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/\n {2}steps: 5\n/);
  }, 120_000);
});

describe('fad train --dreambooth', () => {
  it('fine-tunes the demo baseline on one class with a new token (with alignment), saves the token, reuses a finished run', async () => {
    const out = join(root, 'db');
    const args = ['--config', join(run, 'config.yaml'), 'train', '--dreambooth', 'checker', '--pretrained', join(run, 'variants', 'baseline', 'train'), '--out', out,
      '--token', 'zz', '--instance-images', '3', '--num-class-images', '2', '--prior-loss-weight', '0.5', '--train-embeddings', 'all', '--steps', '3', '--batch-size', '2',
      '--feature-alignment', '--expert', join(run, 'expert', 'expert.safetensors'), '--backend', 'cpu'];
    const r = await runFad(args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/DreamBooth fine-tuned 3 steps/);
    expect(r.stdout).toMatch(/token "zz" for class "checker"/);
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(join(out, 'model.safetensors'))));
    expect(JSON.parse(metadata.config).conditioningTokens).toEqual([{ name: 'zz', fromClass: 2 }]);
    expect(tensors['token_emb.weight'].shape).toEqual([1, JSON.parse(metadata.config).crossAttentionDim]);
    expect(JSON.parse(metadata.dreambooth)).toMatchObject({ class: 'checker', token: 'zz', tokenLabel: 5, settings: { priorLossWeight: 0.5, trainEmbeddings: 'all', instanceImages: 3 } });
    expect(JSON.parse(readFileSync(join(out, 'instances.json'), 'utf8')).indices).toHaveLength(3);
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.at(-1).step).toBe(3);
    expect(Object.keys(metrics[0].terms)).toContain('feature_align.align');
    const again = await runFad(args);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/already fine-tuned/);
  }, 60_000);

  it('rejects DreamBooth flags without --dreambooth, a missing --pretrained and an unknown class', async () => {
    const base = ['--config', join(run, 'config.yaml'), 'train', '--out', join(root, 'db-err'), '--backend', 'cpu'];
    const a = await runFad([...base, '--token', 'zz', '--num-class-images', '3']);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/fad: error: --token, --num-class-images only apply with --dreambooth CLASS/);
    const b = await runFad([...base, '--dreambooth', 'rings']);
    expect(b.stderr).toMatch(/fad: error: --dreambooth needs the trained model to fine-tune: --pretrained MODEL/);
    const c = await runFad([...base, '--dreambooth', 'tumor', '--pretrained', join(run, 'variants', 'baseline', 'train')]);
    expect(c.stderr).toMatch(/fad: error: --dreambooth tumor: not a class of the data \(stripes_h, stripes_v, checker, rings\)/);
    const d = await runFad(['config', 'print', '--set', 'dreambooth.class=tumor', '--set', 'experiment.dreambooth=true']);
    expect(d.stdout).toMatch(/\ndreambooth:\n {2}class: tumor\n {2}token: sks\n {2}instanceImages: 10\n {2}withPriorPreservation: true\n {2}numClassImages: 50\n {2}priorLossWeight: 1\n {2}trainEmbeddings: token\n/);
    expect(d.stdout).toMatch(/\nexperiment:\n(.*\n)* {2}dreambooth: true\n/);
  }, 60_000);
});

describe('errors', () => {
  it('print "fad: error: ..." without a stack trace and exit 1; --debug adds the stack', async () => {
    const r = await runFad(['train', '--data', '/nonexistent/images', '--out', join(root, 'x'), '--backend', 'cpu']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fad: error: data folder \/nonexistent\/images does not exist$/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const d = await runFad(['--debug', 'train', '--data', '/nonexistent/images', '--out', join(root, 'x'), '--backend', 'cpu']);
    expect(d.stderr).toMatch(/\n\s+at /);
    const bad = join(root, 'bad.yaml');
    writeFileSync(bad, 'generate:\n  sampler: euler\n  stepz: 3\n');
    const c = await runFad(['--config', bad, 'config', 'print']);
    expect(c.code).toBe(1);
    expect(c.stderr).toContain('generate.sampler: must be one of "ddim", "ddpm", "dpm-solver++", "dpm-solver", got "euler"');
    expect(c.stderr).toContain('generate: unknown key "stepz"');
    const u = await runFad(['train', '--steps', 'ten', '--out', root]);
    expect(u.code).toBe(1);
    expect(u.stderr).toMatch(/fad: error: option '--steps <n>' argument 'ten' is invalid/);
    const a = await runFad(['train', '--data', join(run, 'data'), '--out', join(root, 'y'), '--feature-alignment', '--backend', 'cpu']);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/fad: error: --feature-alignment needs an expert/);
  }, 60_000);
});
