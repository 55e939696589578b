// Timings of the full-size experts. Slow, so skipped unless FAD_EXPERT_TIMING=1:
//   FAD_EXPERT_TIMING=1 npx vitest run src/expert-timing.spec.ts
// on the pure-JS cpu backend, or with FAD_EXPERT_BACKEND=native on @fad/tfjs-native's oneDNN
// backend (loaded dynamically; not a dependency of this package).
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createExpert } from './create-expert';
import { type ExpertPresetName, presetConfig } from './expert-config';
import { ExpertTrainer } from './expert-trainer';
import { useCpuBackend } from './testing/setup-cpu';

const enabled = process.env.FAD_EXPERT_TIMING === '1';
const backend = process.env.FAD_EXPERT_BACKEND ?? 'cpu';

beforeAll(async () => {
  await useCpuBackend();
  if (enabled && backend === 'native') {
    const moduleName = '@fad/tfjs-native';
    const native = (await import(/* @vite-ignore */ moduleName)) as { registerNativeBackend: (o: object) => boolean };
    if (!native.registerNativeBackend({})) throw new Error('the native backend is not available (addon not built)');
    await tf.setBackend('native');
  }
});

function time(f: () => void, repeats: number): number {
  f(); // warm-up
  const t = performance.now();
  for (let i = 0; i < repeats; i++) f();
  return (performance.now() - t) / repeats;
}

describe.skipIf(!enabled)(`expert timings (${backend} backend)`, () => {
  for (const name of ['resnet50-kather', 'resnet18-kather', 'vit-small-kather'] as ExpertPresetName[]) {
    it(name, () => {
      let t = performance.now();
      const expert = createExpert({ config: presetConfig({ name }) });
      const build = performance.now() - t;
      const rows: string[] = [`${name} on ${tf.getBackend()}: ${expert.numParameters().toLocaleString('en')} parameters, built in ${build.toFixed(0)} ms`];
      for (const b of [1, 8]) {
        const x = tf.randomUniform([b, 64, 64, 1]) as tf.Tensor4D;
        const ms = time(() => expert.features(x).dataSync(), 2);
        rows.push(`  features, batch ${b}: ${ms.toFixed(0)} ms (${(ms / b).toFixed(0)} ms/image)`);
        x.dispose();
      }
      const trainer = new ExpertTrainer({ expert });
      const x = tf.randomUniform([8, 64, 64, 1]) as tf.Tensor4D;
      const labels = [0, 1, 2, 3, 4, 5, 6, 7];
      t = time(() => trainer.trainStep({ images: x, labels }), 1);
      rows.push(`  train step, batch 8: ${t.toFixed(0)} ms (${(t / 8).toFixed(0)} ms/image)`);
      console.log(rows.join('\n'));
      trainer.dispose();
      x.dispose();
      expert.dispose();
      expect(build).toBeGreaterThan(0);
    }, 1_800_000);
  }
});
