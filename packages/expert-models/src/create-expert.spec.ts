import { beforeAll, describe, expect, it } from 'vitest';
import { createExpert } from './create-expert';
import { ResNet } from './resnet';
import { useCpuBackend } from './testing/setup-cpu';
import { VisionTransformer } from './vision-transformer';

beforeAll(useCpuBackend);

describe('createExpert', () => {
  it('builds the architecture the config names', () => {
    const r = createExpert({ config: { arch: 'resnet', block: 'basic', layers: [1], baseWidth: 4, numClasses: 2, input: { size: 8 } } });
    const v = createExpert({ config: { arch: 'vit', patchSize: 4, depth: 1, numHeads: 1, width: 4, numClasses: 2, input: { size: 8 } }, seed: 3 });
    expect(r).toBeInstanceOf(ResNet);
    expect(v).toBeInstanceOf(VisionTransformer);
    r.dispose();
    v.dispose();
  });

  it('rejects an unknown architecture', () => {
    expect(() => createExpert({ config: { arch: 'mlp' } as never })).toThrow(/createExpert: config.arch must be one of "resnet", "vit", got "mlp"/);
    expect(() => createExpert(undefined as never)).toThrow(/createExpert: params must be an object, got undefined/);
  });
});
