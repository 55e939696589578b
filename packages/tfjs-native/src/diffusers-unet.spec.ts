// The imported diffusers U-Nets (../shared/reference/diffusers-unet, made with diffusers v0.16.1) on
// `native` (oneDNN convs and matmuls, fused GroupNorm, LayerNorm and attention kernels): the output
// and a tapped activation match diffusers' float32 forward to 1e-4, as on the cpu backend.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { decodeSafetensors } from '@fad/diffusion-core';
import { loadDiffusersUNet } from '@fad/diffusion-core/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNativeAddon, NATIVE_BACKEND_NAME, registerNativeBackend } from './index';

const ref = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'shared', 'reference', 'diffusers-unet');
const loaded = loadNativeAddon();
const why = !loaded.ok ? `the addon is not loaded (${loaded.reason})` : !existsSync(ref) ? `${ref} not found` : '';
if (why) console.warn(`[@fad/tfjs-native] SKIPPING the diffusers reference tests: ${why}`);

beforeAll(async () => {
  if (why) return;
  registerNativeBackend({ threads: 2 });
  await tf.setBackend(NATIVE_BACKEND_NAME);
});
afterAll(async () => {
  await tf.setBackend('cpu');
});

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe.each(['sd-tiny', 'sd-tiny-linear-proj', 'sd-tiny-segmind-arch'])(`diffusers reference %s on native${why ? ` [SKIPPED: ${why}]` : ''}`, (name) => {
  it.skipIf(Boolean(why))('matches output.sample and down_blocks.1.resnets.0.conv_shortcut to 1e-4', async () => {
    const dir = join(ref, name);
    const { model } = await loadDiffusersUNet({ dir });
    const inp = decodeSafetensors(new Uint8Array(readFileSync(join(dir, 'inputs.safetensors')))).tensors;
    const out = decodeSafetensors(new Uint8Array(readFileSync(join(dir, 'outputs.f32.safetensors')))).tensors;
    const s = inp['input.sample'];
    const e = inp['input.encoder_hidden_states'];
    const tap = 'down_blocks.1.resnets.0.conv_shortcut';
    const [y, a] = tf.tidy(() => {
      const x = tf.transpose(tf.tensor4d(s.data as Float32Array, s.shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D;
      const ehs = tf.tensor3d(e.data as Float32Array, e.shape as [number, number, number]);
      const r = model.forward({ sample: x, timesteps: Array.from(inp['input.timestep'].data), encoderHiddenStates: ehs, returnActivations: [tap] });
      return [tf.transpose(r.sample, [0, 3, 1, 2]), tf.transpose(r.activations[tap], [0, 3, 1, 2])];
    });
    expect(maxAbsDiff(y.dataSync(), out['output.sample'].data)).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(a.dataSync(), out[`act.${tap}`].data)).toBeLessThanOrEqual(1e-4);
    tf.dispose([y, a]);
    model.dispose();
  });
});
