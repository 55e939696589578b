// Whole-model check for the expert's train step: @fad/expert-models' ResNet (bottleneck blocks,
// training-mode BatchNorm fused with ReLU and its running averages (FadBatchNorm), max pooling with the native MaxPoolGrad, the fused
// Adam update) on `native` against the reference `cpu` backend: the loss, every parameter
// gradient, the BatchNorm running statistics and the weights after one ExpertTrainer step.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { ExpertTrainer, createExpert, softmaxCrossEntropy } from '@fad/expert-models';
import { describe, expect, it } from 'vitest';

import { loadNativeAddon, NATIVE_BACKEND_NAME, registerNativeBackend } from './index';
import { randomFloats, relMaxError } from './test-utils';

const loaded = loadNativeAddon();
if (!loaded.ok) console.warn(`[@fad/tfjs-native] SKIPPING expert whole-model tests: ${loaded.reason}`);

const config = { arch: 'resnet', block: 'bottleneck', layers: [1, 1], baseWidth: 8, numClasses: 4, input: { size: 16 } } as const;
const B = 4;
const labels = [0, 1, 2, 3];

interface ExpertStep {
  loss: number;
  grads: Array<[string, Float32Array]>;
  stateAfter: Array<[string, Float32Array]>;
  kernels: Set<string>;
}

async function stepOn(backend: string): Promise<ExpertStep> {
  await tf.setBackend(backend);
  const expert = createExpert({ config, seed: 5 });
  const x = tf.tensor4d(randomFloats(B * 16 * 16, 31).map((v) => 0.5 + 0.4 * v), [B, 16, 16, 1]);
  const y = tf.tensor1d(labels, 'int32');
  const trainable = expert.namedParameters().filter(([, v]) => v.trainable);
  const kernels = new Set<string>();
  const profile = await tf.profile(() => {
    const { value, grads } = tf.variableGrads(
      () => softmaxCrossEntropy(expert.logits(x, { training: true }), y),
      trainable.map(([, v]) => v),
    );
    const out = { loss: value.dataSync()[0], grads: trainable.map(([n, v]) => [n, Float32Array.from(grads[v.name].dataSync())] as [string, Float32Array]) };
    tf.dispose([value, ...Object.values(grads)]);
    return out as unknown as tf.Tensor;
  });
  for (const k of profile.kernelNames) kernels.add(k);
  const { loss, grads } = profile.result as unknown as { loss: number; grads: Array<[string, Float32Array]> };
  const trainer = new ExpertTrainer({ expert, learningRate: 1e-3 });
  trainer.trainStep({ images: x, labels });
  const stateAfter = expert.namedParameters().map(([n, v]) => [n, Float32Array.from(v.dataSync())] as [string, Float32Array]);
  trainer.dispose();
  expert.dispose();
  tf.dispose([x, y]);
  return { loss, grads, stateAfter, kernels };
}

describe.skipIf(!loaded.ok)('ResNet expert train step: native vs cpu', () => {
  it('loss, gradients, running statistics and weights after a trainer step agree', async () => {
    expect(registerNativeBackend()).toBe(true);
    const ref = await stepOn('cpu');
    const got = await stepOn(NATIVE_BACKEND_NAME);
    expect(ref.kernels.has('FadBatchNorm'), 'cpu composes BatchNorm from tfjs ops').toBe(false);
    expect(got.kernels.has('FadBatchNorm'), 'native runs the fused BatchNorm kernel').toBe(true);
    expect(Math.abs(got.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
    expect(got.grads.map(([n]) => n)).toEqual(ref.grads.map(([n]) => n));
    const worst = got.grads.map(([n, g], i) => [n, relMaxError(g, ref.grads[i][1])] as const).sort((a, b) => b[1] - a[1]);
    expect(worst[0][1], `worst gradient: ${worst[0][0]} (${worst[0][1]})`).toBeLessThanOrEqual(1e-4);
    // Adam's first step moves each weight by lr * g / (|g| + eps). Where the true gradient is 0
    // (e.g. a BatchNorm bias feeding only the next BatchNorm), both backends return float noise
    // of ~1e-9 whose sign is arbitrary, so such entries may differ by up to 2 lr; elsewhere the
    // weights agree to lr / 10. Running statistics are plain averages: 1e-5.
    const refGrad = new Map(ref.grads);
    got.stateAfter.forEach(([n, w], i) => {
      const g = refGrad.get(n);
      const base = n.includes('running') ? 1e-5 : 1e-4;
      for (let j = 0; j < w.length; j++) {
        const tol = g && Math.abs(g[j]) < 1e-6 ? 2.01e-3 : base;
        expect(Math.abs(w[j] - ref.stateAfter[i][1][j]), `${n}[${j}] after one step`).toBeLessThan(tol);
      }
    });
  }, 120_000);
});
