import * as tf from '@tensorflow/tfjs-core';
import { DDIMScheduler, UNET_PRESETS, UNet2DConditional, sampleImages } from '@fad/diffusion-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createExpert } from './create-expert';
import { expertGuidance } from './expert-guidance';
import type { Expert } from './expert-model';
import { toExpertInput } from './expert-input';
import { leakedTensors, useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

const D = 8;
const K = 3;
const W = Array.from({ length: D * K }, (_, i) => Math.sin(0.9 * i + 0.4) * 1.5);
/** A linear "expert" on 2x2x2 images in [0, 1]: logits = flatten(x) W. */
const linearExpert = {
  inputSpec: { size: 2, channels: 2, mean: [0, 0], std: [1, 1], range: [0, 1] },
  numClasses: K,
  logits: (x: tf.Tensor4D) => tf.matMul(tf.reshape(x, [x.shape[0], D]), tf.tensor2d(W, [D, K])),
} as unknown as Expert;
const X = Array.from({ length: 2 * D }, (_, i) => Math.cos(1.3 * i) * 0.9);

/** d/dx of E(logits((x + 1) / 2)) = 0.5 W dE/dz, per image, float64. dEdz gets p and the image index. */
function handGrad(dEdz: (p: number[], b: number) => number[]): number[] {
  return [0, 1].flatMap((b) => {
    const xe = X.slice(b * D, (b + 1) * D).map((v) => (v + 1) / 2);
    const z = Array.from({ length: K }, (_, k) => xe.reduce((s, v, d) => s + v * W[d * K + k], 0));
    const e = z.map(Math.exp);
    const sum = e.reduce((u, v) => u + v, 0);
    const gz = dEdz(e.map((v) => v / sum), b);
    return xe.map((_, d) => 0.5 * W.slice(d * K, d * K + K).reduce((s, w, k) => s + w * gz[k], 0));
  });
}

describe('expertGuidance', () => {
  const x = () => tf.tensor4d(X, [2, 2, 2, 2]);

  it('classifier: g = s * grad_x log p(labelMap[y] | x), through the [-1,1] -> [0,1] map (hand-computed)', () => {
    const xt = x();
    const guide = expertGuidance({ expert: linearExpert, kind: 'classifier', scale: 2, labelMap: [2, 0, 1] });
    const g = guide({ x: xt, timestep: 100, alphaBar: 0.5, classLabels: [0, 2] })!;
    const targets = [2, 1];
    const want = handGrad((p, b) => p.map((v, k) => (k === targets[b] ? 1 : 0) - v)).map((v) => 2 * v);
    const got = g.dataSync();
    want.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
    tf.dispose([xt, g]);
  });

  it('entropy: g = s * grad_x H(softmax) (hand-computed), and scale 0 gives null', () => {
    const xt = x();
    const g = expertGuidance({ expert: linearExpert, kind: 'entropy', scale: 0.5 })({ x: xt, timestep: 3, alphaBar: 0.9 })!;
    const want = handGrad((p) => {
      const h = -p.reduce((s, v) => s + v * Math.log(v), 0);
      return p.map((v) => -v * (Math.log(v) + h));
    }).map((v) => 0.5 * v);
    const got = g.dataSync();
    want.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
    expect(expertGuidance({ expert: linearExpert, kind: 'margin', scale: 0 })({ x: xt, timestep: 3, alphaBar: 0.9 })).toBeNull();
    tf.dispose([xt, g]);
  });

  it('guides a real sampler with a tiny ResNet (batch 3, every kind): images change, the expert is untouched, no tensors leak', async () => {
    const expert = createExpert({ config: { arch: 'resnet', block: 'basic', layers: [1, 1], baseWidth: 4, numClasses: 3, input: { size: 16, channels: 1, range: [0, 1] } }, seed: 1 });
    expert.freeze();
    const unet = new UNet2DConditional({ ...UNET_PRESETS.tiny, sampleSize: 8, numClasses: 3, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' }, { seed: 2 });
    const weights = expert.namedParameters().map(([, v]) => v.dataSync().slice());
    const before = tf.memory().numTensors;
    const run = (kind?: 'classifier' | 'entropy' | 'margin' | 'least-confidence') =>
      sampleImages({ model: unet, scheduler: new DDIMScheduler(), classLabels: [0, 1, 2], numInferenceSteps: 2, seed: 3, guidance: kind ? expertGuidance({ expert, kind, scale: 50 }) : undefined });
    const base = await run();
    for (const kind of ['classifier', 'entropy', 'margin', 'least-confidence'] as const) {
      const guided = await run(kind);
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(guided, base))).dataSync()[0]);
      expect(diff, kind).toBeGreaterThan(1e-4);
      guided.dispose();
    }
    base.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expert.namedParameters().forEach(([n, v], i) => expect(Array.from(v.dataSync()), n).toEqual(Array.from(weights[i])));
    // Images are independent in inference mode: a batch gives what each image gives alone.
    const xt = tf.randomNormal([3, 8, 8, 1], 0, 1, 'float32', 4) as tf.Tensor4D;
    const guide = expertGuidance({ expert, kind: 'entropy', scale: 1 });
    const all = guide({ x: xt, timestep: 500, alphaBar: 0.3 })!;
    const one = guide({ x: tf.slice(xt, [2, 0, 0, 0], [1, 8, 8, 1]), timestep: 500, alphaBar: 0.3 })!;
    const last = tf.slice(all, [2, 0, 0, 0], [1, 8, 8, 1]);
    expect(tf.max(tf.abs(tf.sub(last, one))).dataSync()[0]).toBeLessThan(1e-6);
    expect(leakedTensors(() => guide({ x: xt, timestep: 500, alphaBar: 0.3 })!.dispose())).toBe(0);
    tf.dispose([xt, all, one, last]);
    expert.dispose();
    unet.dispose();
  });

  it('validates its arguments, naming the field', () => {
    expect(() => expertGuidance({ expert: {} as Expert, kind: 'entropy', scale: 1 })).toThrow(/expertGuidance: expert must be an expert model/);
    expect(() => expertGuidance({ expert: linearExpert, kind: 'confidence' as never, scale: 1 })).toThrow(/expertGuidance: kind must be one of "classifier", "entropy", "margin", "least-confidence", got "confidence"/);
    expect(() => expertGuidance({ expert: linearExpert, kind: 'entropy', scale: -2 })).toThrow(/expertGuidance: scale must be a finite number >= 0, got -2/);
    expect(() => expertGuidance({ expert: linearExpert, kind: 'entropy', scale: 1, dataRange: [1, -1] })).toThrow(/dataRange must be \[low, high\] with finite low < high, got \[1,-1\]/);
    expect(() => expertGuidance({ expert: linearExpert, kind: 'entropy', scale: 1, labelMap: [0] })).toThrow(/labelMap applies to kind "classifier" only/);
    expect(() => expertGuidance({ expert: linearExpert, kind: 'classifier', scale: 1, labelMap: [0, 3] })).toThrow(/labelMap must be an array of expert class indices in 0\.\.2, got \[0,3\]/);
    const xt = x();
    expect(() => expertGuidance({ expert: linearExpert, kind: 'classifier', scale: 1 })({ x: xt, timestep: 1, alphaBar: 0.5 })).toThrow(/kind "classifier" needs class labels/);
    xt.dispose();
  });
});

describe('toExpertInput', () => {
  it('maps the range linearly (unclipped), resizes and repeats channels', () => {
    const img = tf.tensor4d([-1, 0, 1, 3], [1, 2, 2, 1]);
    const out = toExpertInput({ images: img, inputSpec: { size: 2, channels: 3, range: [0, 1] } });
    expect(out.shape).toEqual([1, 2, 2, 3]);
    expect(Array.from(out.dataSync()).filter((_, i) => i % 3 === 0)).toEqual([0, 0.5, 1, 2]);
    const big = toExpertInput({ images: img, inputSpec: { size: 4, channels: 1, range: [0, 255] }, dataRange: [-1, 3] });
    expect(big.shape).toEqual([1, 4, 4, 1]);
    expect(big.dataSync()[0]).toBeCloseTo(0, 4);
    expect(() => toExpertInput({ images: tf.zeros([1, 2, 2, 2]) as tf.Tensor4D, inputSpec: { size: 2, channels: 3, range: [0, 1] } })).toThrow(/images have 2 channels; the expert expects 3/);
    tf.dispose([img, out, big]);
  });
});
