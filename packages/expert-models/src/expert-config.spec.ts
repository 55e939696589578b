import { describe, expect, it } from 'vitest';
import { EXPERT_PRESETS, featureDimOf, presetConfig, resolveExpertConfig } from './expert-config';

describe('resolveExpertConfig', () => {
  it('fills defaults for a ResNet', () => {
    const c = resolveExpertConfig({ arch: 'resnet', block: 'basic', layers: [1, 1], numClasses: 3, input: { size: 32 } });
    expect(c).toEqual({
      arch: 'resnet', block: 'basic', layers: [1, 1], baseWidth: 64, numClasses: 3, head: { type: 'linear' },
      input: { size: 32, channels: 1, mean: [0], std: [1], range: [0, 1] },
    });
  });

  it('keeps widthPerGroup (torchvision width_per_group) only when it is not 64; bottlenecks only', () => {
    const base = { arch: 'resnet', block: 'bottleneck', layers: [1], numClasses: 2, input: { size: 8 } } as const;
    expect(resolveExpertConfig({ ...base, widthPerGroup: 128 })).toMatchObject({ widthPerGroup: 128 });
    expect('widthPerGroup' in resolveExpertConfig({ ...base, widthPerGroup: 64 })).toBe(false);
    expect(() => resolveExpertConfig({ ...base, block: 'basic', widthPerGroup: 32 })).toThrow(/config.widthPerGroup must be 64 \(or absent\) with block "basic"/);
    expect(() => resolveExpertConfig({ ...base, widthPerGroup: 0 })).toThrow(/config.widthPerGroup must be an integer >= 1, got 0/);
    expect(() => resolveExpertConfig({ ...base, baseWidth: 2, widthPerGroup: 16 })).toThrow(/inner bottleneck width of 0/);
  });

  it('fills defaults for a ViT', () => {
    const c = resolveExpertConfig({ arch: 'vit', patchSize: 4, depth: 1, numHeads: 2, width: 8, numClasses: 2, input: { size: 8, channels: 3 } });
    expect(c).toMatchObject({ mlpRatio: 4, pooling: 'cls', layerNormEps: 1e-6, head: { type: 'linear' }, input: { mean: [0, 0, 0], std: [1, 1, 1] } });
  });

  it('rejects bad configs naming the field, the value and what is accepted', () => {
    const base = { arch: 'resnet', block: 'basic', layers: [1], numClasses: 2, input: { size: 8 } } as const;
    expect(() => resolveExpertConfig({ ...base, arch: 'cnn' } as never)).toThrow(/config.arch must be one of "resnet", "vit", got "cnn"/);
    expect(() => resolveExpertConfig({ ...base, block: 'wide' } as never)).toThrow(/config.block must be one of "basic", "bottleneck", got "wide"/);
    expect(() => resolveExpertConfig({ ...base, layers: [] })).toThrow(/config.layers must be a non-empty array/);
    expect(() => resolveExpertConfig({ ...base, layers: [1, 0] })).toThrow(/config.layers\[1\] must be an integer >= 1, got 0/);
    expect(() => resolveExpertConfig({ ...base, numClasses: 1.5 })).toThrow(/config.numClasses must be an integer >= 1, got 1.5/);
    expect(() => resolveExpertConfig({ ...base, extra: 1 } as never)).toThrow(/unknown field config.extra; accepted: arch, block/);
    expect(() => resolveExpertConfig({ ...base, head: { type: 'mlp' } as never })).toThrow(/head.hiddenDim must be an integer >= 1, got undefined/);
    expect(() => resolveExpertConfig({ ...base, head: { type: 'conv' } as never })).toThrow(/head.type must be one of "linear", "mlp", got "conv"/);
    expect(() => resolveExpertConfig({ ...base, input: {} })).toThrow(/input.size is required/);
    expect(() => resolveExpertConfig({ ...base, input: { size: 8, channels: 3, mean: [0.5] } })).toThrow(/input.mean must be an array of 3 numbers/);
    expect(() => resolveExpertConfig({ ...base, input: { size: 8, std: [0] } })).toThrow(/input.std\[0\] must be a finite number > 0, got 0/);
    expect(() => resolveExpertConfig({ ...base, input: { size: 8, range: [1, 0] } })).toThrow(/input.range must be \[min, max\] with finite min < max, got \[1,0\]/);
    const vit = { arch: 'vit', patchSize: 4, depth: 1, numHeads: 3, width: 8, numClasses: 2, input: { size: 8 } } as const;
    expect(() => resolveExpertConfig(vit)).toThrow(/config.width \(8\) must be divisible by config.numHeads \(3\)/);
    expect(() => resolveExpertConfig({ ...vit, numHeads: 2, patchSize: 3 })).toThrow(/config.patchSize \(3\) must divide input.size \(8\)/);
    expect(() => resolveExpertConfig({ ...vit, numHeads: 2, mlpRatio: 0.3 })).toThrow(/width \* config.mlpRatio must be an integer/);
    expect(() => resolveExpertConfig({ ...vit, numHeads: 2, pooling: 'max' as never })).toThrow(/config.pooling must be one of "cls", "mean", got "max"/);
  });
});

describe('presetConfig', () => {
  it('returns presets unchanged and applies overrides', () => {
    expect(presetConfig({ name: 'resnet50' })).toEqual(EXPERT_PRESETS.resnet50);
    const c = presetConfig({ name: 'resnet50', overrides: { numClasses: 8, input: { size: 64, channels: 1 } } });
    // ImageNet mean/std are reduced to the first channel's when the channel count changes.
    expect(c.input).toEqual({ size: 64, channels: 1, mean: [0.485], std: [0.229], range: [0, 1] });
    expect(c.numClasses).toBe(8);
    expect(presetConfig({ name: 'vit-b16', overrides: { pooling: 'mean' } })).toMatchObject({ arch: 'vit', pooling: 'mean' });
  });

  it('rejects unknown presets and arch changes', () => {
    expect(() => presetConfig({ name: 'resnet101' as never })).toThrow(/name must be one of "resnet18", .*got "resnet101"/);
    expect(() => presetConfig({ name: 'resnet18', overrides: { arch: 'vit' } as never })).toThrow(/overrides.arch cannot be changed/);
  });
});

describe('featureDimOf', () => {
  it('is 2048 for ResNet50, 512 for ResNet18/34, width for ViT', () => {
    expect(featureDimOf(EXPERT_PRESETS.resnet50)).toBe(2048);
    expect(featureDimOf(EXPERT_PRESETS.resnet18)).toBe(512);
    expect(featureDimOf(EXPERT_PRESETS.resnet34)).toBe(512);
    expect(featureDimOf(EXPERT_PRESETS['vit-b16'])).toBe(768);
    expect(featureDimOf(resolveExpertConfig({ arch: 'resnet', block: 'bottleneck', layers: [1, 1], baseWidth: 8, numClasses: 2, input: { size: 16 } }))).toBe(64);
  });
});
