import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createExpert } from '../create-expert';
import { presetConfig } from '../expert-config';
import { useCpuBackend } from '../testing/setup-cpu';
import { saveExpert } from './expert-files';
import { checkDiffersFromExpert, checkpointExpertConfig } from './utility-classifier-check';
import { UtilityRunError } from './utility-run-error';

beforeAll(useCpuBackend);

const config = (baseWidth: number) => presetConfig({ name: 'resnet18-kather', overrides: { baseWidth, layers: [1, 1], numClasses: 2, input: { size: 8, channels: 1, range: [0, 1] } } });

describe('checkpointExpertConfig', () => {
  it('reads the architecture from a saved expert\'s metadata; null for a file that is not one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fad-classifier-check-'));
    const expert = createExpert({ config: config(4), classNames: ['a', 'b'], seed: 0 });
    await saveExpert({ expert, path: join(dir, 'e.safetensors') });
    expert.dispose();
    expect(checkpointExpertConfig({ path: join(dir, 'e.safetensors') })).toEqual(config(4));
    writeFileSync(join(dir, 'x.safetensors'), 'not a checkpoint');
    expect(checkpointExpertConfig({ path: join(dir, 'x.safetensors') })).toBeNull();
    expect(checkpointExpertConfig({ path: join(dir, 'missing.safetensors') })).toBeNull();
    expect(() => checkpointExpertConfig({ path: '' })).toThrow(TypeError);
  });
});

describe('checkDiffersFromExpert', () => {
  it('refuses the expert\'s architecture (field for field, in any key order) and accepts another or none', () => {
    const reordered = Object.fromEntries(Object.entries(config(4)).reverse()) as ReturnType<typeof config>;
    let e: unknown = null;
    try {
      checkDiffersFromExpert({ classifier: config(4), expert: { config: reordered, path: '/e.safetensors' }, what: 'the generator\'s expert' });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(UtilityRunError);
    expect(e).toMatchObject({ code: 'same-architecture', details: { what: 'the generator\'s expert', path: '/e.safetensors' } });
    expect((e as Error).message).toBe('the downstream classifier is the same architecture as the generator\'s expert /e.safetensors: the utility test would measure how well the generator learned to please that expert; choose another classifier');
    expect(() => checkDiffersFromExpert({ classifier: config(4), expert: { config: config(8), path: '/e' }, what: 'x' })).not.toThrow();
    expect(() => checkDiffersFromExpert({ classifier: config(4), expert: null, what: 'x' })).not.toThrow();
  });
});
