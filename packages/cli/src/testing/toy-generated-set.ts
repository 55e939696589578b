/** A folder shaped like `fad generate`'s output (PNGs + manifest.json) from the demo textures: synthetic sets for the utility specs without training a U-Net. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Generator } from '@fad/diffusion-core';
import { textureImage } from '@fad/diffusion-core/node';
import { DEMO_CLASSES } from '../demo';
import { mapClassName } from '../data';
import { writeJsonAtomic } from '../fsutil';
import { type GenerateManifest, type GeneratedImage, writePng } from '../generate';

export interface WriteToyGeneratedSetParams {
  dir: string;
  size: number;
  perClass: number;
  seed: number;
  /** Demo classes to write (names as the data loader maps them: stripes_h, ...); default all. */
  classes?: string[];
}

/** Writes `perClass` textures per class into `dir/<class>/` with a fad-generated/1 manifest. */
export async function writeToyGeneratedSet(params: WriteToyGeneratedSetParams): Promise<GenerateManifest> {
  const { dir, size, perClass, seed } = params;
  const classNames = DEMO_CLASSES.map(mapClassName);
  const classes = params.classes ?? classNames;
  const g = new Generator(seed);
  const images: GeneratedImage[] = [];
  for (const cls of classes) {
    const k = classNames.indexOf(cls);
    mkdirSync(join(dir, cls), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const px = textureImage({ classIndex: k, size, generator: g });
      const file = `${cls}/s${seed}-${i}.png`;
      await writePng(join(dir, file), px, size, 1);
      images.push({ file, class: cls, label: k, seed, index: i, mean: px.reduce((a, b) => a + b, 0) / px.length });
    }
  }
  const manifest: GenerateManifest = {
    format: 'fad-generated/1', checkpoint: 'toy', checkpointSha256: '0', classNames, generatedClasses: classes, sampler: 'ddim', steps: 1, guidanceScale: 1, eta: 0,
    seeds: [seed], imagesPerClass: perClass, batchSize: perClass, imageSize: size, channels: 1, matchMean: null, expertGuidance: null, backend: 'cpu',
    createdAt: new Date(0).toISOString(), elapsedSeconds: 0, images,
  };
  writeJsonAtomic(join(dir, 'manifest.json'), manifest);
  return manifest;
}
