import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { featureExtractorFromLayersModel, tapLayersModel } from './tap-layers-model';
import { randomTensor, useCpuBackend } from './test-support/setup';

beforeAll(useCpuBackend);

const disposables: Array<{ dispose(): void }> = [];
afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));

function smallModel(): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 1], name: 'image' });
  const c1 = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv1' }).apply(input) as tfl.SymbolicTensor;
  const c2 = tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', name: 'conv2' }).apply(c1) as tfl.SymbolicTensor;
  const pooled = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(c2) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({ units: 3, name: 'logits' }).apply(pooled) as tfl.SymbolicTensor;
  const m = tfl.model({ inputs: input, outputs: logits, name: 'small' });
  disposables.push({ dispose: () => m.dispose() });
  return m;
}

describe('tapLayersModel', () => {
  it('returns the original outputs and the named activations in one pass, sharing the weights', () => {
    const model = smallModel();
    const tapped = tapLayersModel({ model, layers: ['conv2', 'pool'] });
    expect(tapped.model.outputs.length).toBe(3);
    const x = randomTensor([2, 8, 8, 1], 1) as tf.Tensor4D;
    const r = tapped.run(x);
    expect(r.outputs.length).toBe(1);
    expect(r.activations.conv2.shape).toEqual([2, 4, 4, 6]);
    expect(r.activations.pool.shape).toEqual([2, 6]);
    const direct = model.predict(x) as tf.Tensor;
    expect(Array.from(r.outputs[0].dataSync())).toEqual(Array.from(direct.dataSync()));
    const sub = tfl.model({ inputs: model.inputs, outputs: model.getLayer('pool').output as tfl.SymbolicTensor });
    expect(Array.from(r.activations.pool.dataSync())).toEqual(Array.from((sub.predict(x) as tf.Tensor).dataSync()));
    // Shared weights: changing the original changes the tapped model.
    const dense = model.getLayer('logits');
    dense.setWeights(dense.getWeights().map((w) => tf.zerosLike(w)));
    const again = tapped.run(x);
    expect(Array.from(again.outputs[0].dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
    tf.dispose([x, direct, ...r.outputs, ...Object.values(r.activations), ...again.outputs, ...Object.values(again.activations)]);
  });

  it('lists the available layer names when a name is unknown', () => {
    const model = smallModel();
    expect(() => tapLayersModel({ model, layers: ['conv3'] })).toThrow(
      'tapLayersModel: model "small" has no layer "conv3"; available layers: image, conv1, conv2, pool, logits',
    );
    expect(() => tapLayersModel({ model, layers: 'conv1' as never })).toThrow(/layers must be an array of layer names/);
    expect(() => tapLayersModel({ model: {} as never, layers: [] })).toThrow(/model must be a tfjs-layers LayersModel/);
  });
});

describe('featureExtractorFromLayersModel', () => {
  it("takes a named layer's output as the features, with featureDim and inputSpec from the model", () => {
    const model = smallModel();
    const expert = featureExtractorFromLayersModel({ model, layer: 'pool' });
    expect(expert.featureDim).toBe(6);
    expect(expert.inputSpec).toEqual({ size: [8, 8], channels: 1 });
    const x = randomTensor([2, 8, 8, 1], 2) as tf.Tensor4D;
    const f = expert.features(x);
    expect(f.shape).toEqual([2, 6]);
    const whole = featureExtractorFromLayersModel({ model, inputSpec: { size: 8, range: [0, 1] } });
    expect(whole.featureDim).toBe(3);
    expect(whole.inputSpec).toEqual({ size: 8, range: [0, 1] });
    tf.dispose([x, f]);
  });
});
