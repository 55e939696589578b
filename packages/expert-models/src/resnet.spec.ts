import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { presetConfig } from './expert-config';
import { ResNet } from './resnet';
import { useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

describe('ResNet parameter counts (torchvision)', () => {
  // Structure only: initialize:false skips the random draws (the counts do not depend on them).
  const count = (name: Parameters<typeof presetConfig>[0]['name']) => {
    const m = new ResNet({ config: presetConfig({ name }) as never, initialize: false });
    const n = m.numParameters();
    m.dispose();
    return n;
  };

  it('widthPerGroup is torchvision\'s width_per_group (counts from torchvision 0.14)', () => {
    // ResNet(Bottleneck, [1,1,1,1], width_per_group=16, num_classes=10): 3,532,298 parameters.
    const m = new ResNet({ config: { arch: 'resnet', block: 'bottleneck', layers: [1, 1, 1, 1], widthPerGroup: 16, numClasses: 10, input: { size: 64, channels: 3 } }, initialize: false });
    expect(m.numParameters()).toBe(3_532_298);
    expect(m.featureDim).toBe(2048);
    expect(m.convolutions().find((c) => c.name === 'layer2.0.conv2')).toMatchObject({ inChannels: 32, outChannels: 32, stride: 2 });
    m.dispose();
  });

  it('ResNet18 / 34 / 50 at 3x224x224 with 1000 classes', () => {
    expect(count('resnet18')).toBe(11_689_512);
    expect(count('resnet34')).toBe(21_797_672);
    expect(count('resnet50')).toBe(25_557_032);
  });

  it('the reference Kather expert: 1-channel stem, fc -> 8, 64x64', () => {
    // 25,557,032 - 9,408 (3-channel stem) + 3,136 (1-channel stem) - (2048*1000 + 1000) + (2048*8 + 8)
    expect(25_557_032 - 9_408 + 3_136 - (2048 * 1000 + 1000) + (2048 * 8 + 8)).toBe(23_518_152);
    expect(count('resnet50-kather')).toBe(23_518_152);
    // The paper's head 2048 -> 256 -> ReLU -> 8 instead of fc -> 8.
    expect(count('resnet50-kather-paper')).toBe(23_518_152 - (2048 * 8 + 8) + (2048 * 256 + 256) + (256 * 8 + 8));
    expect(count('resnet18-kather')).toBe(11_689_512 - 9_408 + 3_136 - (512 * 1000 + 1000) + (512 * 8 + 8));
    expect(count('resnet18-kather')).toBe(11_174_344);
  });

  it('uses torchvision names and shapes (HWIO convs, [in,out] linear), BN statistics as extra buffers', () => {
    const m = new ResNet({ config: presetConfig({ name: 'resnet50' }) as never, initialize: false });
    const shapes = Object.fromEntries(m.namedParameters().map(([n, v]) => [n, v.shape]));
    expect(shapes['conv1.weight']).toEqual([7, 7, 3, 64]);
    expect(shapes['bn1.running_mean']).toEqual([64]);
    expect(shapes['layer1.0.conv1.weight']).toEqual([1, 1, 64, 64]);
    expect(shapes['layer1.0.downsample.0.weight']).toEqual([1, 1, 64, 256]);
    expect(shapes['layer1.0.downsample.1.running_var']).toEqual([256]);
    expect(shapes['layer4.2.conv3.weight']).toEqual([1, 1, 512, 2048]);
    expect(shapes['fc.weight']).toEqual([2048, 1000]);
    expect(shapes['fc.bias']).toEqual([1000]);
    // torchvision's state_dict has 320 entries, 53 of them num_batches_tracked (not kept here).
    expect(Object.keys(shapes)).toHaveLength(320 - 53);
    expect(m.numBufferValues()).toBe(2 * 26_560);
    // v1.5: a downsampling bottleneck strides on its 3x3 (conv2), not on the first 1x1.
    const convs = Object.fromEntries(m.convolutions().map((c) => [c.name, c]));
    expect(convs.conv1).toEqual({ name: 'conv1', kernelSize: 7, stride: 2, padding: 3, inChannels: 3, outChannels: 64 });
    expect(convs['layer2.0.conv1'].stride).toBe(1);
    expect(convs['layer2.0.conv2']).toMatchObject({ kernelSize: 3, stride: 2, padding: 1 });
    expect(convs['layer2.0.downsample.0']).toMatchObject({ kernelSize: 1, stride: 2, padding: 0 });
    expect(convs['layer1.0.conv2'].stride).toBe(1);
    expect(m.convolutions()).toHaveLength(53);
    m.dispose();
  });
});

describe('ResNet forward', () => {
  it('gives [B, featureDim] features and [B, classes] logits for grayscale, RGB and 224x224 inputs', () => {
    const cases = [
      { block: 'basic', layers: [1, 1], baseWidth: 8, size: 16, channels: 1, dim: 16 },
      { block: 'bottleneck', layers: [1, 1], baseWidth: 4, size: 32, channels: 3, dim: 32 },
      { block: 'bottleneck', layers: [1, 1, 1, 1], baseWidth: 2, size: 64, channels: 1, dim: 64 },
      { block: 'basic', layers: [1], baseWidth: 4, size: 224, channels: 3, dim: 4 },
    ] as const;
    for (const c of cases) {
      const m = new ResNet({ config: { arch: 'resnet', block: c.block, layers: c.layers, baseWidth: c.baseWidth, numClasses: 5, input: { size: c.size, channels: c.channels } } });
      expect(m.featureDim).toBe(c.dim);
      const x = tf.randomUniform([2, c.size, c.size, c.channels]) as tf.Tensor4D;
      expect(m.features(x).shape).toEqual([2, c.dim]);
      expect(m.logits(x).shape).toEqual([2, 5]);
      tf.dispose(x);
      m.dispose();
    }
  });

  it('initialises like torchvision from the seed: Kaiming-normal (fan_out) convs, BN at identity', () => {
    const config = { arch: 'resnet', block: 'basic', layers: [1, 1], baseWidth: 32, numClasses: 2, input: { size: 16 } } as const;
    const a = new ResNet({ config, seed: 3 });
    const b = new ResNet({ config, seed: 3 });
    const c = new ResNet({ config, seed: 4 });
    const w = (m: ResNet) => Array.from(m.namedParameters().find(([n]) => n === 'layer2.0.conv2.weight')![1].dataSync());
    expect(w(a)).toEqual(w(b));
    expect(w(a)).not.toEqual(w(c));
    const v = w(a);
    const std = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
    expect(std).toBeGreaterThan(0.95 * Math.sqrt(2 / (9 * 64)));
    expect(std).toBeLessThan(1.05 * Math.sqrt(2 / (9 * 64)));
    const state = a.stateDict();
    expect(Array.from(state['layer1.0.bn1.weight'].data).every((x) => x === 1)).toBe(true);
    expect(Array.from(state['layer1.0.bn1.running_var'].data).every((x) => x === 1)).toBe(true);
    [a, b, c].forEach((m) => m.dispose());
    expect(() => new ResNet({ config, seed: -1 })).toThrow(/ResNet: seed must be an integer in \[0, 4294967295\], got -1/);
    expect(() => new ResNet({ config: { ...config, arch: 'vit' } as never })).toThrow(/ResNet: config.arch must be "resnet", got "vit"/);
  });
});
