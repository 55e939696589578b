/**
 * The guidance-related flags, in process through `main` (no build, no training): `fad generate
 * --guidance/--guidance-expert/--guidance-expert-scale/--two-stage`, `fad train --cond-drop-prob`,
 * `fad expert train --noise-aware` (its step key and schedule).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import { DDPMScheduler, UNET_PRESETS, UNet2DConditional, serializeUNet } from '@fad/diffusion-core';
import { createExpert } from '@fad/expert-models';
import { saveExpert } from '@fad/expert-models/node';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from './cli';
import { parseConfig } from './config';
import { diffusionStepKey, pickData } from './diffusion';
import { expertStepKey, noiseAwareFor } from './expert';
import { sha256, stepKey } from './fsutil';

const root = mkdtempSync(join(tmpdir(), 'fad-flags-'));
const modelPath = join(root, 'model.safetensors');
const expertPath = join(root, 'expert.safetensors');

async function fad(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'fad', ...args, '--backend', 'cpu', '--quiet'], { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

beforeAll(async () => {
  const unet = new UNet2DConditional({ ...UNET_PRESETS.tiny, sampleSize: 8, numClasses: 2, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' }, { seed: 1 });
  writeFileSync(modelPath, serializeUNet(unet, { classes: JSON.stringify(['a', 'b']) }));
  unet.dispose();
  const expert = createExpert({ config: { arch: 'resnet', block: 'basic', layers: [1], baseWidth: 4, numClasses: 2, input: { size: 8, channels: 1, range: [0, 1] } }, classNames: ['b', 'a'] });
  await saveExpert({ expert, path: expertPath });
  expert.dispose();
});

describe('fad generate --guidance', () => {
  it('writes the guidance and ms/step into the manifest and the summary line', async () => {
    const out = join(root, 'g');
    const r = await fad(['generate', '--model', modelPath, '--out', out, '-n', '1', '--seeds', '0', '--steps', '2', '--guidance', 'least-confidence',
      '--guidance-expert', expertPath, '--guidance-expert-scale', '5', '--two-stage', '--guidance-scale', '1']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/two-stage least-confidence guidance 5\) to .* ms\/step \(\d+ in guidance\)/);
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(m.expertGuidance).toMatchObject({ kind: 'least-confidence', scale: 5, twoStage: true, expert: expertPath, expertNoiseAware: false });
    expect(JSON.parse(readFileSync(join(out, 'timing.json'), 'utf8')).timing.steps).toBe(4);
  });

  it('needs an expert, and warns when guidance flags come without --guidance', async () => {
    const r = await fad(['generate', '--model', modelPath, '--out', join(root, 'x'), '--guidance', 'classifier']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/fad: error: --guidance classifier needs the guiding expert: --guidance-expert FILE/);
    // Warnings and commander's own errors go to process.stderr.
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const stderr = () => spy.mock.calls.map((c) => String(c[0])).join('');
    try {
      const w = await fad(['generate', '--model', modelPath, '--out', join(root, 'y'), '-n', '1', '--seeds', '0', '--steps', '1', '--two-stage', '--guidance-scale', '1']);
      expect(w.code, w.err).toBe(0);
      expect(stderr()).toMatch(/fad: warning: --guidance-expert\/--guidance-expert-scale\/--two-stage have no effect without --guidance KIND/);
      const bad = await fad(['generate', '--model', modelPath, '--out', join(root, 'z'), '--guidance', 'hardness']);
      expect(bad.code).toBe(1);
      expect(bad.err + stderr()).toMatch(/argument 'hardness' is invalid. Allowed choices are none, classifier, entropy, margin, least-confidence/);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('fad train --cond-drop-prob', () => {
  it('sets diffusion.condDropProb (checked against [0, 1))', async () => {
    const r = await fad(['train', '--out', join(root, 't'), '--cond-drop-prob', '1.5']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/diffusion\.condDropProb: must be < 1, got 1\.5/);
  });
});

describe('fad expert train --noise-aware', () => {
  it('keeps the step key of ordinary experts and keys noise-aware ones with the schedule', () => {
    const split = { train: [0, 1], validation: [2] };
    const off = parseConfig({});
    // The key formula from before the option existed.
    const { checkpoint: _c, checkpointEvery: _e, noiseAware: _n, pretrained: _p, pretrainedConv1: _pc, ...expert } = off.expert;
    const legacy = stepKey('train-expert', { expert, data: { imageSize: 64, channels: 1 } }, { data: 'fp', split: sha256(JSON.stringify(split)) });
    expect(expertStepKey(off, 'fp', split)).toBe(legacy);
    const on = parseConfig({ expert: { noiseAware: true } });
    const cos = parseConfig({ expert: { noiseAware: true }, diffusion: { scheduler: { betaSchedule: 'squaredcos_cap_v2' } } });
    expect(expertStepKey(on, 'fp', split)).not.toBe(legacy);
    expect(expertStepKey(cos, 'fp', split)).not.toBe(expertStepKey(on, 'fp', split));
    expect(noiseAwareFor(off)).toBeUndefined();
    expect(Array.from(noiseAwareFor(cos)!.alphasCumprod)).toEqual(Array.from(new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2' }).alphasCumprod));
  });
});


describe('alignment.centering', () => {
  it('keeps the step key of aligned runs made before the option, and keys batch centering apart', () => {
    const data = { fingerprint: 'fp', indices: [0, 1, 2] } as unknown as Parameters<typeof diffusionStepKey>[1];
    const on = parseConfig({ alignment: { enabled: true } });
    expect(on.alignment.centering).toBe('none');
    // The key formula from before the option existed: the alignment section without it.
    const { centering: _c, latentExpertInput: _l, ...alignment } = on.alignment;
    const legacy = stepKey(
      'train-diffusion',
      { data: pickData(on.data), diffusion: legacyDiffusion(on), alignment },
      { data: 'fp', split: sha256(JSON.stringify([0, 1, 2])), expert: 'e' },
    );
    expect(diffusionStepKey(on, data, 'e')).toBe(legacy);
    const centred = diffusionStepKey(parseConfig({ alignment: { enabled: true, centering: 'batch' } }), data, 'e');
    expect(centred).not.toBe(legacy);
    expect(() => parseConfig({ alignment: { centering: 'mean' } })).toThrow(/alignment\.centering/);
  });
});

/** The diffusion section as the step key saw it before noiseOffset, snrGamma, rescaleBetasZeroSnr, space, autoencoder, pretrainedDiffusers and emaWarmup existed. */
function legacyDiffusion(cfg: ReturnType<typeof parseConfig>) {
  const { noiseOffset: _n, snrGamma: _s, space: _sp, autoencoder: _ae, pretrainedDiffusers: _pd, emaWarmup: _ew, scheduler, ...rest } = cfg.diffusion;
  const { rescaleBetasZeroSnr: _r, ...sched } = scheduler;
  return { ...rest, scheduler: sched, checkpointEvery: undefined };
}

describe('diffusion.noiseOffset, diffusion.snrGamma, diffusion.scheduler.rescaleBetasZeroSnr, diffusion.emaWarmup', () => {
  const data = { fingerprint: 'fp', indices: [0, 1, 2] } as unknown as Parameters<typeof diffusionStepKey>[1];
  const legacyKey = (cfg: ReturnType<typeof parseConfig>) =>
    stepKey('train-diffusion', { data: pickData(cfg.data), diffusion: legacyDiffusion(cfg), alignment: { enabled: false } }, { data: 'fp', split: sha256(JSON.stringify([0, 1, 2])), expert: '' });

  it('keep the step key of runs made before them at their defaults, and key every non-default apart', () => {
    const plain = parseConfig({});
    expect(plain.diffusion.noiseOffset).toBe(0);
    expect(plain.diffusion.snrGamma).toBeNull();
    expect(plain.diffusion.scheduler.rescaleBetasZeroSnr).toBe(false);
    expect(plain.diffusion.emaWarmup).toBe(false);
    expect(diffusionStepKey(plain, data, null)).toBe(legacyKey(plain));
    const keys = new Set([
      diffusionStepKey(plain, data, null),
      diffusionStepKey(parseConfig({ diffusion: { noiseOffset: 0.1 } }), data, null),
      diffusionStepKey(parseConfig({ diffusion: { snrGamma: 5 } }), data, null),
      diffusionStepKey(parseConfig({ diffusion: { scheduler: { predictionType: 'v_prediction', rescaleBetasZeroSnr: true } } }), data, null),
      diffusionStepKey(parseConfig({ diffusion: { emaWarmup: true } }), data, null),
    ]);
    expect(keys.size).toBe(5);
  });

  it('reject bad values naming the key', () => {
    expect(() => parseConfig({ diffusion: { noiseOffset: -1 } })).toThrow(/diffusion\.noiseOffset/);
    expect(() => parseConfig({ diffusion: { snrGamma: 0 } })).toThrow(/diffusion\.snrGamma/);
    expect(() => parseConfig({ diffusion: { emaWarmup: 'on' } })).toThrow(/diffusion\.emaWarmup/);
    expect(() => parseConfig({ diffusion: { scheduler: { rescaleBetasZeroSnr: 'yes' } } })).toThrow(/diffusion\.scheduler\.rescaleBetasZeroSnr/);
    expect(() => parseConfig({ generate: { timestepSpacing: 'middle' } })).toThrow(/generate\.timestepSpacing/);
    expect(() => parseConfig({ diffusion: { scheduler: { rescaleBetasZeroSnr: true } } })).toThrow(/diffusion\.scheduler\.rescaleBetasZeroSnr: needs predictionType v_prediction or sample/);
  });
});
