import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createExpert } from './create-expert';
import type { ExpertConfigInput } from './expert-config';
import { leakedTensors, maxAbsDiff, useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

const configs: Record<string, ExpertConfigInput> = {
  resnet: { arch: 'resnet', block: 'basic', layers: [1, 1], baseWidth: 8, numClasses: 4, input: { size: 16, channels: 1, mean: [0.5], std: [0.25] } },
  vit: { arch: 'vit', patchSize: 4, depth: 1, numHeads: 2, width: 8, numClasses: 4, input: { size: 16, channels: 1 } },
};

const running = (e: ReturnType<typeof createExpert>) =>
  Float32Array.from(e.namedParameters().filter(([n]) => n.includes('running_')).flatMap(([, v]) => Array.from(v.dataSync())));

for (const [arch, config] of Object.entries(configs)) {
  describe(`Expert interface: ${arch}`, () => {
    it('features [B,D], logits [B,K], forward = both, predict classes / probabilities', () => {
      const e = createExpert({ config, classNames: ['a', 'b', 'c', 'd'] });
      const x = tf.randomUniform([3, 16, 16, 1], 0, 1, 'float32', 2) as tf.Tensor4D;
      const f = e.features(x);
      const l = e.logits(x);
      expect(f.shape).toEqual([3, e.featureDim]);
      expect(l.shape).toEqual([3, 4]);
      const both = e.forward(x);
      expect(maxAbsDiff(both.features.dataSync(), f.dataSync())).toBe(0);
      expect(maxAbsDiff(both.logits.dataSync(), l.dataSync())).toBe(0);
      const cls = e.predict(x);
      expect(cls.dtype).toBe('int32');
      expect(Array.from(cls.dataSync())).toEqual(Array.from(tf.argMax(l, 1).dataSync()));
      const p = e.predict(x, { output: 'probabilities' });
      expect(p.shape).toEqual([3, 4]);
      expect(Array.from(tf.sum(p, 1).dataSync()).every((s) => Math.abs(s - 1) < 1e-5)).toBe(true);
      expect(e.classNames).toEqual(['a', 'b', 'c', 'd']);
      expect(e.inputSpec).toMatchObject({ size: 16, channels: 1, range: [0, 1] });
      expect(e.config.arch).toBe(arch);
      expect(() => e.predict(x, { output: 'labels' as never })).toThrow(/options.output must be "classes" or "probabilities", got "labels"/);
      e.dispose();
    });

    it('rejects a wrong input size, channel count, rank or dtype naming got and expected', () => {
      const e = createExpert({ config });
      const name = arch === 'resnet' ? 'ResNet' : 'VisionTransformer';
      expect(() => e.features(tf.zeros([2, 32, 32, 1]) as tf.Tensor4D)).toThrow(
        new RegExp(`${name}.features: input size 32x32 \\(shape \\[2,32,32,1\\]\\) does not match the expert's 16x16; expected \\[B,16,16,1\\]`),
      );
      expect(() => e.logits(tf.zeros([2, 16, 16, 3]) as tf.Tensor4D)).toThrow(/logits: input has 3 channel\(s\) \(shape \[2,16,16,3\]\), the expert expects 1; expected \[B,16,16,1\]/);
      expect(() => e.features(tf.zeros([16, 16, 1]) as unknown as tf.Tensor4D)).toThrow(/x must be a batch of images \[B,16,16,1\] \(NHWC\), got shape \[16,16,1\]/);
      expect(() => e.features(tf.zeros([1, 16, 16, 1], 'int32') as tf.Tensor4D)).toThrow(/x must be float32, got int32/);
      expect(() => e.features(tf.zeros([1, 16, 16, 1]) as tf.Tensor4D, { training: 'yes' } as never)).toThrow(/options.training must be true or false, got "yes"/);
      expect(() => createExpert({ config, classNames: ['a'] })).toThrow(/classNames must be an array of 4 strings \(config.numClasses\), got \["a"\]/);
      e.dispose();
    });

    it('leaves no tensors behind (features, logits, forward, predict, training mode, gradients)', () => {
      const e = createExpert({ config });
      const x = tf.randomUniform([2, 16, 16, 1]) as tf.Tensor4D;
      expect(leakedTensors(() => e.features(x).dispose())).toBe(0);
      expect(leakedTensors(() => e.features(x, { training: true }).dispose())).toBe(0);
      expect(leakedTensors(() => e.logits(x).dispose())).toBe(0);
      expect(leakedTensors(() => {
        const r = e.forward(x);
        tf.dispose([r.features, r.logits]);
      })).toBe(0);
      expect(leakedTensors(() => e.predict(x, { output: 'probabilities' }).dispose())).toBe(0);
      expect(leakedTensors(() => tf.grad((a: tf.Tensor) => tf.sum(e.features(a as tf.Tensor4D)))(x).dispose())).toBe(0);
      x.dispose();
      e.dispose();
    });

    it('freeze(): no variable trainable, no variable gradient, input gradient still flows, inference forced', () => {
      const e = createExpert({ config });
      const nParams = e.numParameters();
      const x = tf.randomUniform([2, 16, 16, 1], 0, 1, 'float32', 9) as tf.Tensor4D;
      e.freeze();
      expect(e.frozen).toBe(true);
      expect(e.trainableVariables()).toEqual([]);
      expect(e.numParameters()).toBe(nParams);
      // Feature alignment: gradient w.r.t. the (generated) images, none for the expert.
      const xv = tf.variable(x.clone());
      const { grads } = tf.variableGrads(() => tf.sum(tf.square(e.features(xv))) as tf.Scalar);
      expect(Object.keys(grads)).toEqual([xv.name]);
      expect(tf.max(tf.abs(grads[xv.name])).dataSync()[0]).toBeGreaterThan(0);
      // {training: true} is ignored while frozen: identical to inference, statistics unchanged.
      const stats = running(e);
      const inf = e.features(x).dataSync();
      expect(maxAbsDiff(e.features(x, { training: true }).dataSync(), inf)).toBe(0);
      expect(maxAbsDiff(running(e), stats)).toBe(0);
      e.unfreeze();
      expect(e.frozen).toBe(false);
      expect(e.trainableVariables().length).toBe(e.namedParameters().filter(([n]) => !n.includes('running_')).length);
      tf.dispose([xv, grads]);
      e.dispose();
    });

    it('inference mode is deterministic and per-image; training mode (ResNet) moves the BN statistics', () => {
      const e = createExpert({ config });
      const x = tf.randomUniform([3, 16, 16, 1], 0, 1, 'float32', 4) as tf.Tensor4D;
      const stats = running(e);
      const all = e.features(x).dataSync();
      const one = e.features(tf.slice(x, [2, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D).dataSync();
      expect(maxAbsDiff(all.slice(2 * e.featureDim), one)).toBeLessThan(1e-5);
      expect(maxAbsDiff(running(e), stats)).toBe(0);
      e.features(x, { training: true }).dispose();
      if (arch === 'resnet') expect(maxAbsDiff(running(e), stats)).toBeGreaterThan(0);
      e.dispose();
    });
  });
}
