// The layers on the wasm backend, where tfjs 4.22 has kernel gaps and bugs the library works
// around (OneHot's dtype, missing Conv2DBackpropFilter and UnsortedSegmentSum).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import '../register-gradients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../random';
import { relMaxError } from '../testing/setup-cpu';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { Conv2d, Embedding } from './layers';

let wasmOk = false;
beforeAll(async () => {
  try {
    wasmOk = await tf.setBackend('wasm');
  } catch {
    wasmOk = false;
  }
});
afterAll(async () => {
  await tf.setBackend('cpu');
});

describe('layers on the wasm backend', () => {
  it('Embedding returns the table rows (not int32 bit patterns)', () => {
    if (!wasmOk) return console.warn('skipped: the wasm backend did not initialise');
    const e = new Embedding({ numEmbeddings: 3, dim: 2, generator: new Generator(0) });
    e.weight.assign(tf.tensor2d([[1, 2], [3, 4], [5, 6]]));
    expect(Array.from(e.forward(tf.tensor1d([2, 0], 'int32')).dataSync())).toEqual([5, 6, 1, 2]);
    e.dispose();
  });

  it('a class-conditional U-Net sees the label, and its gradients match the cpu backend', async () => {
    if (!wasmOk) return console.warn('skipped: the wasm backend did not initialise');
    const cfg = { ...UNET_PRESETS.tiny, sampleSize: 8 };
    const run = () => {
      const m = new UNet2DConditional(cfg, { seed: 1 });
      const x = new Generator(2).normal([2, 8, 8, 1]) as tf.Tensor4D;
      const a = m.forward({ sample: x, timesteps: [5, 5], classLabels: [0, 0] }).sample.dataSync();
      const b = m.forward({ sample: x, timesteps: [5, 5], classLabels: [1, 1] }).sample.dataSync();
      const conv = m.namedParameters().find(([n]) => n === 'down_res.0.conv1.weight')![1];
      const emb = m.namedParameters().find(([n]) => n === 'class_emb.weight')![1];
      const { grads } = tf.variableGrads(() => tf.mean(tf.square(m.forward({ sample: x, timesteps: [5, 500], classLabels: [0, 3] }).sample)) as tf.Scalar, [conv, emb]);
      const out = { a, b, gConv: grads[conv.name].dataSync(), gEmb: grads[emb.name].dataSync() };
      m.dispose();
      return out;
    };
    const w = run();
    expect(relMaxError(w.a, w.b)).toBeGreaterThan(1e-4);
    await tf.setBackend('cpu');
    const c = run();
    await tf.setBackend('wasm');
    expect(relMaxError(w.a, c.a)).toBeLessThan(1e-4);
    expect(relMaxError(w.gConv, c.gConv)).toBeLessThan(1e-3);
    expect(relMaxError(w.gEmb, c.gEmb)).toBeLessThan(1e-3);
  });

  it('Conv2d trains on wasm (no Conv2DBackpropFilter kernel there)', () => {
    if (!wasmOk) return console.warn('skipped: the wasm backend did not initialise');
    const conv = new Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2, generator: new Generator(3) });
    const x = new Generator(4).normal([2, 6, 6, 2]) as tf.Tensor4D;
    const g = tf.variableGrads(() => tf.sum(conv.forward(x)) as tf.Scalar, [conv.weight]).grads[conv.weight.name];
    expect(g.shape).toEqual([3, 3, 2, 3]);
    expect(Math.max(...Array.from(g.dataSync()).map(Math.abs))).toBeGreaterThan(0);
    conv.dispose();
  });
});
