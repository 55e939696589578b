// Test helpers (not exported): tiny inputs of the utility study's file-based run. Deterministic, so
// that the keys the run computes from them (data fingerprint, split, manifests' sha256) are pinned.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writePngFile } from '@fad/diffusion-core/node';
import { presetConfig } from '../expert-config';
import type { ExpertConfig } from '../expert-config';
import { stratifiedSplit } from '../stratified-split';
import type { UtilityStudySettings } from '../node/utility-study';
import { toyImages } from './toy-data';

export const TOY_SIZE = 8;
export const TOY_CLASSES = ['a', 'b', 'c'];

/** 8 toy images per class a, b, c (8x8 grayscale), split 6 train / 2 held out per class (seed 0). */
export function toyRealData() {
  const t = toyImages({ numClasses: 3, perClass: 8, size: TOY_SIZE, channels: 1, seed: 1 });
  const labels = Int32Array.from(t.labels);
  const s = stratifiedSplit({ labels, validationFraction: 0.25, seed: 0 });
  return {
    dir: '/toy/real', fingerprint: 'toy-fingerprint', classNames: [...TOY_CLASSES], imageSize: TOY_SIZE, channels: 1,
    images: t.data, labels, split: { train: s.train, validation: s.validation, validationFraction: 0.25, seed: 0 },
  };
}

/** The tiny ResNet the specs train (numClasses 3, 8x8x1). */
export function toyClassifier(): { preset: string; config: ExpertConfig } {
  return { preset: 'resnet18-kather', config: presetConfig({ name: 'resnet18-kather', overrides: { baseWidth: 4, layers: [1, 1], numClasses: 3, input: { size: TOY_SIZE, channels: 1, range: [0, 1] } } }) };
}

/**
 * A folder shaped like a generated set (`<class>/s<seed>-<i>.png` + manifest.json, format
 * fad-generated/1): `perClass` toy images of each of `classes` (a class's images look like those of
 * the real class of the same name; other names get the pattern of class index 3), manifest bytes
 * fixed by the arguments.
 */
export async function writeToySyntheticSet(p: { dir: string; classes: string[]; perClass: number; seed: number; size?: number; expertGuidance?: object | null }): Promise<void> {
  const size = p.size ?? TOY_SIZE;
  const t = toyImages({ numClasses: 4, perClass: p.perClass, size, channels: 1, seed: p.seed });
  const per = size * size;
  const images: Array<Record<string, unknown>> = [];
  for (const cls of p.classes) {
    const k = TOY_CLASSES.includes(cls) ? TOY_CLASSES.indexOf(cls) : 3;
    mkdirSync(join(p.dir, cls), { recursive: true });
    const idx = t.labels.flatMap((y, i) => (y === k ? [i] : []));
    for (let i = 0; i < p.perClass; i++) {
      const px = t.data.subarray(idx[i] * per, (idx[i] + 1) * per);
      const file = `${cls}/s${p.seed}-${String(i).padStart(3, '0')}.png`;
      await writePngFile({ path: join(p.dir, file), pixels: px, size, channels: 1 });
      images.push({ file, class: cls, label: p.classes.indexOf(cls), seed: p.seed, index: i, mean: px.reduce((a, b) => a + b, 0) / px.length });
    }
  }
  const manifest = {
    format: 'fad-generated/1', checkpoint: 'toy', checkpointSha256: '0', classNames: p.classes, generatedClasses: p.classes, sampler: 'ddim', steps: 1, guidanceScale: 1, eta: 0,
    seeds: [p.seed], imagesPerClass: p.perClass, batchSize: p.perClass, imageSize: size, channels: 1, matchMean: null, expertGuidance: p.expertGuidance ?? null, backend: 'cpu', images,
  };
  writeFileSync(join(p.dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** The `fad` CLI's utility settings for the toy specs (the config section as the CLI passes it: its key is pinned). */
export function toySettings(over: Partial<UtilityStudySettings> = {}): UtilityStudySettings {
  return {
    fractions: [0.5, 1], ratios: [1], seeds: 2, arch: 'resnet', preset: null, architecture: { layers: [1, 1], baseWidth: 4 }, epochs: 1, batchSize: 8, learningRate: 1e-3,
    weightDecay: 0, augment: true, syntheticOnly: true, bootstrapSamples: 50, bootstrapOver: 'seeds-and-images', ...over,
  };
}

/** The two toy synthetic sets in `root`: synA (classes c, a, b and x, which the real data lacks; 4 each), synB (a, b, c; 3 each). */
export async function writeToySyntheticSets(root: string): Promise<Array<{ name: string; dir: string }>> {
  await writeToySyntheticSet({ dir: join(root, 'synA'), classes: ['c', 'a', 'b', 'x'], perClass: 4, seed: 5 });
  await writeToySyntheticSet({ dir: join(root, 'synB'), classes: ['a', 'b', 'c'], perClass: 3, seed: 6 });
  return [{ name: 'synA', dir: join(root, 'synA') }, { name: 'synB', dir: join(root, 'synB') }];
}

/** A utility.json or run file's text with its timing fields blanked (wall times differ between any two runs). */
export function withoutTiming(text: string): string {
  return text
    .replace(/"createdAt": "[^"]*"/g, '"createdAt": ""')
    .replace(/"(trainSeconds|evalSeconds|perClassifierMean|classifiersTotal|thisInvocation|elapsedSeconds)": [-0-9.e+]+/g, '"$1": 0')
    .replace(/"seconds": \{[^}]*\}/g, '"seconds": {}');
}
