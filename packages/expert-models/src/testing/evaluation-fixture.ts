// A tiny generated set, real set and stub expert whose outputs are known by hand, for the
// evaluation specs (not exported).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writePngFile } from '@fad/diffusion-core/node';
import * as tf from '@tensorflow/tfjs-core';
import type { Expert } from '../expert-model';

export const FIXTURE_SIZE = 8;
export const FIXTURE_CLASSES = ['a', 'b', 'empty'];
/** The stub's class centres: it predicts the class whose centre is nearest to an image's mean pixel value. */
export const FIXTURE_CENTRES = [0.2, 0.8, 0.5];

/**
 * A stub expert over 8x8 grayscale images: feature = [mean pixel value] (D = 1), logits =
 * -(mean - centre_k)^2 for the centres {@link FIXTURE_CENTRES}; so the top class is the nearest centre.
 */
export function stubExpert(): Expert {
  const stub = {
    classNames: FIXTURE_CLASSES,
    numClasses: FIXTURE_CLASSES.length,
    featureDim: 1,
    inputSpec: { size: FIXTURE_SIZE, channels: 1, mean: [0], std: [1], range: [0, 1] as [number, number], normalization: 'none' },
    forward: (x: tf.Tensor4D) =>
      tf.tidy(() => {
        const m = tf.mean(x, [1, 2, 3]);
        return { features: tf.reshape(m, [-1, 1]) as tf.Tensor2D, logits: tf.stack(FIXTURE_CENTRES.map((c) => tf.neg(tf.square(tf.sub(m, c)))), 1) as tf.Tensor2D };
      }),
  };
  return stub as unknown as Expert;
}

/**
 * Generated images, one per class and seed (seeds 0, 1, 2), each a uniform tile of the value below
 * (multiples of 1/255, so that the PNG holds them exactly); the stub's prediction beside it.
 */
export const FIXTURE_GENERATED: ReadonlyArray<{ seed: number; class: string; value: number; predicted: string }> = [
  { seed: 0, class: 'a', value: 51 / 255, predicted: 'a' },
  { seed: 0, class: 'b', value: 204 / 255, predicted: 'b' },
  { seed: 0, class: 'empty', value: 128 / 255, predicted: 'empty' },
  { seed: 1, class: 'a', value: 204 / 255, predicted: 'b' },
  { seed: 1, class: 'b', value: 191 / 255, predicted: 'b' },
  { seed: 1, class: 'empty', value: 51 / 255, predicted: 'a' },
  { seed: 2, class: 'a', value: 128 / 255, predicted: 'empty' },
  { seed: 2, class: 'b', value: 64 / 255, predicted: 'a' },
  { seed: 2, class: 'empty', value: 120 / 255, predicted: 'empty' },
];

/** Real images: uniform tiles; 3 of "a", 3 of "b", 2 of "empty" (interleaved). */
export const FIXTURE_REAL: ReadonlyArray<{ class: string; value: number }> = [
  { class: 'a', value: 0.2 },
  { class: 'b', value: 0.7 },
  { class: 'empty', value: 0.5 },
  { class: 'a', value: 0.3 },
  { class: 'b', value: 0.8 },
  { class: 'a', value: 0.25 },
  { class: 'empty', value: 0.45 },
  { class: 'b', value: 0.75 },
];

/** Evaluation settings of the fixture (the CLI config's key order). */
export const FIXTURE_SETTINGS = {
  classes: null,
  excludeClasses: ['empty'],
  realSet: 'validation' as const,
  ssimMaxPairs: 20,
  ssimWindow: 'uniform' as const,
  ssimWinSize: 3,
  kidSubsets: 3,
  kidSubsetSize: 6,
  batchSize: 4,
};

/** Writes the generated set (manifest.json and PNGs) into `dir`. */
export async function writeFixtureSet(dir: string): Promise<void> {
  const S = FIXTURE_SIZE;
  const images = [];
  for (const [i, g] of FIXTURE_GENERATED.entries()) {
    const file = `${g.class}/s${g.seed}-${String(i).padStart(3, '0')}.png`;
    mkdirSync(join(dir, g.class), { recursive: true });
    await writePngFile({ path: join(dir, file), pixels: new Float32Array(S * S).fill(g.value), size: S, channels: 1 });
    images.push({ file, class: g.class, label: FIXTURE_CLASSES.indexOf(g.class), seed: g.seed, index: i, mean: g.value });
  }
  const manifest = { format: 'fad-generated/1', classNames: FIXTURE_CLASSES, generatedClasses: FIXTURE_CLASSES, seeds: [0, 1, 2], imageSize: S, channels: 1, images };
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** The real set of the fixture. */
export function fixtureReal(): { images: Float32Array; labels: Int32Array; classNames: string[]; imageSize: number; channels: number } {
  const per = FIXTURE_SIZE * FIXTURE_SIZE;
  const images = new Float32Array(FIXTURE_REAL.length * per);
  FIXTURE_REAL.forEach((r, i) => images.fill(r.value, i * per, (i + 1) * per));
  return { images, labels: Int32Array.from(FIXTURE_REAL.map((r) => FIXTURE_CLASSES.indexOf(r.class))), classNames: [...FIXTURE_CLASSES], imageSize: FIXTURE_SIZE, channels: 1 };
}
