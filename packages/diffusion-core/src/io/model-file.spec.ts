import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AutoencoderKL } from '../autoencoder/autoencoder';
import { AUTOENCODER_PRESETS } from '../autoencoder/autoencoder-config';
import { useCpuBackend } from '../testing/setup-cpu';
import { UNet2DConditional } from '../unet/unet';
import { UNET_PRESETS } from '../unet/unet-config';
import { decodeSafetensors, encodeSafetensors } from './safetensors';
import { checkAutoencoderConfigLimits, checkClassNames, classNameProblem, MODEL_FILE_LIMITS, ModelFileError, readCheckedHeader } from './model-file-checks';
import { parseModelFile } from './model-file';
import { serializeUNet } from './unet-io';

beforeAll(useCpuBackend);

const tiny = { ...UNET_PRESETS.tiny, numClasses: 2 };

/** A model file with `meta` merged into its metadata (undefined values delete keys). */
function modelBytes(meta: Record<string, string | undefined> = {}, edit?: (t: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>) => void): Uint8Array {
  const m = new UNet2DConditional(tiny, { seed: 1 });
  const bytes = serializeUNet(m, { classes: JSON.stringify(['benign', 'tumor']), scheduler: JSON.stringify({ numTrainTimesteps: 100 }) });
  m.dispose();
  const file = decodeSafetensors(bytes);
  const metadata: Record<string, string> = { ...file.metadata };
  for (const [k, v] of Object.entries(meta)) {
    if (v === undefined) delete metadata[k];
    else metadata[k] = v;
  }
  const tensors = file.tensors as Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>;
  edit?.(tensors);
  return encodeSafetensors({ tensors, metadata });
}

/** The ModelFileError `fn` throws. */
function problem(fn: () => unknown): ModelFileError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelFileError);
    return e as ModelFileError;
  }
  throw new Error('expected a ModelFileError');
}

describe('parseModelFile', () => {
  it('reads a model file: the same weights, class names, schedule; no tensor left behind but the model', () => {
    const start = tf.memory().numTensors;
    const ref = new UNet2DConditional(tiny, { seed: 1 });
    const before = tf.memory().numTensors;
    const r = parseModelFile({ bytes: modelBytes(), name: 'm.safetensors' });
    expect(tf.memory().numTensors - before).toBe(r.model.namedParameters().length);
    expect(r.classNames).toEqual(['benign', 'tumor']);
    expect(r.schedulerConfig).toEqual({ numTrainTimesteps: 100 });
    expect(r.dreambooth).toBeNull();
    expect(r.autoencoder).toBeUndefined();
    expect(r.config).toEqual(ref.config);
    const x = tf.randomNormal([1, tiny.sampleSize, tiny.sampleSize, tiny.inChannels], 0, 1, 'float32', 3) as tf.Tensor4D;
    const a = ref.forward({ sample: x, timesteps: [7], classLabels: [1] }).sample;
    const b = r.model.forward({ sample: x, timesteps: [7], classLabels: [1] }).sample;
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([x, a, b]);
    ref.dispose();
    r.model.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('names class_<k> when the file lists no classes', () => {
    const r = parseModelFile({ bytes: modelBytes({ classes: undefined }), name: 'm' });
    expect(r.classNames).toEqual(['class_0', 'class_1']);
    r.model.dispose();
  });

  it('refuses bytes that are not a safetensors file, or not a fad model', () => {
    expect(problem(() => parseModelFile({ bytes: new Uint8Array(4), name: 'x.png' })).reason).toBe('not-safetensors');
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4]);
    const e = problem(() => parseModelFile({ bytes: png, name: 'x.png' }));
    expect(e.reason).toBe('not-safetensors');
    expect(e.message).toMatch(/^the model x\.png is not a usable safetensors file: its header claims/);
    const other = encodeSafetensors({ tensors: { w: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }, metadata: { format: 'something-else' } });
    const f = problem(() => parseModelFile({ bytes: other, name: 'o.safetensors' }));
    expect(f.reason).toBe('not-a-model');
    expect(f.message).toBe('o.safetensors is not a usable U-Net checkpoint: metadata.format is "something-else", expected "fad-unet/1"');
  });

  it('refuses unfinished files, with the resume hint', () => {
    const e = problem(() => parseModelFile({ bytes: modelBytes({ 'fad.status': 'partial' }), name: 'm', resumeHint: 'Resume it.' }));
    expect(e.reason).toBe('unfinished');
    expect(e.message).toMatch(/is unfinished .* Resume it\.$/);
    expect(problem(() => parseModelFile({ bytes: modelBytes({ 'fad.status': 'done' }), name: 'm' })).reason).toBe('metadata');
    const ok = parseModelFile({ bytes: modelBytes({ 'fad.status': 'complete' }), name: 'm' });
    ok.model.dispose();
  });

  it('refuses an unsupported config, sizes above the limits and a bad schedule, naming the field', () => {
    const e = problem(() => parseModelFile({ bytes: modelBytes({ config: JSON.stringify({ ...tiny, blockChannels: 'wide' }) }), name: 'm' }));
    expect(e.reason).toBe('unsupported-config');
    expect(e.message).toMatch(/^the model m: metadata\.config: .*blockChannels/);
    const big = problem(() => parseModelFile({ bytes: modelBytes({ config: JSON.stringify({ ...tiny, sampleSize: 4096 }) }), name: 'm' }));
    expect(big.reason).toBe('limits');
    expect(big.message).toBe(`the model m: metadata.config.sampleSize is 4096, above the limit ${MODEL_FILE_LIMITS.maxImageSize}; the file is damaged or hand-made`);
    const s = problem(() => parseModelFile({ bytes: modelBytes({ scheduler: JSON.stringify({ betaSchedule: 'nope' }) }), name: 'm' }));
    expect(s.reason).toBe('unsupported-config');
    expect(s.message).toMatch(/^the model m: metadata\.scheduler: .*betaSchedule/);
    expect(problem(() => parseModelFile({ bytes: modelBytes({ scheduler: '[1]' }), name: 'm' })).message).toMatch(/metadata\.scheduler must be a JSON object/);
    expect(problem(() => parseModelFile({ bytes: modelBytes({ config: '{' }), name: 'm' })).message).toMatch(/^the model m: metadata\.config is not valid JSON/);
  });

  it('refuses class names that are paths, repeated, or not one per class', () => {
    expect(problem(() => parseModelFile({ bytes: modelBytes({ classes: JSON.stringify(['a', '../b']) }), name: 'm' })).message)
      .toBe('the model m: metadata.classes[1] "../b" is not a usable class name: it must not contain "/" or "\\" (a path separator)');
    expect(problem(() => parseModelFile({ bytes: modelBytes({ classes: JSON.stringify(['a', 'A']) }), name: 'm' })).message).toMatch(/repeats .*metadata\.classes\[0\]/);
    expect(problem(() => parseModelFile({ bytes: modelBytes({ classes: JSON.stringify(['a']) }), name: 'm' })).message).toMatch(/lists 1 name\(s\), but the model has 2 classes/);
  });

  it('refuses weights that do not fit the config, and non-finite weights, leaving no tensor behind', () => {
    const before = tf.memory().numTensors;
    const w = problem(() => parseModelFile({ bytes: modelBytes({}, (t) => { delete t[Object.keys(t)[0]]; }), name: 'm' }));
    expect(w.reason).toBe('weights');
    const nan = problem(() => parseModelFile({ bytes: modelBytes({}, (t) => { t[Object.keys(t)[2]].data[0] = Number.NaN; }), name: 'm' }));
    expect(nan.reason).toBe('non-finite');
    expect(nan.message).toMatch(/^the model m cannot be used: its weights are not finite \(training diverged\): tensor ".*" has 1 of/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('reads a latent model with its embedded autoencoder', () => {
    const ae = new AutoencoderKL(AUTOENCODER_PRESETS.tiny);
    const m = new UNet2DConditional({ ...tiny, inChannels: ae.config.latentChannels, outChannels: ae.config.latentChannels }, { seed: 2 });
    const r = parseModelFile({ bytes: serializeUNet(m, {}, { autoencoder: ae }), name: 'latent' });
    expect(r.autoencoder?.config).toEqual(ae.config);
    r.model.dispose();
    r.autoencoder?.dispose();
    m.dispose();
    ae.dispose();
  });

  it('validates its params', () => {
    expect(() => parseModelFile({ bytes: [1, 2] as unknown as Uint8Array, name: 'm' })).toThrow(/bytes must be a Uint8Array/);
    expect(() => parseModelFile({ bytes: new Uint8Array(8), name: '' })).toThrow(/name must be a non-empty string/);
    expect(() => parseModelFile(null as never)).toThrow(/expected a params object/);
  });
});

describe('model file checks', () => {
  it('readCheckedHeader refuses huge claimed shapes before allocating them', () => {
    const json = new TextEncoder().encode(JSON.stringify({ w: { dtype: 'F32', shape: [65536, 65536], data_offsets: [0, 4] } }));
    const bytes = new Uint8Array(8 + json.length + 4);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    const e = problem(() => readCheckedHeader({ bytes, where: 'f' }));
    expect(e.reason).toBe('limits');
    expect(e.message).toBe(`f: the tensors hold more than ${MODEL_FILE_LIMITS.maxParameters} values (at "w"); refusing to load it`);
  });

  it('classNameProblem and checkClassNames', () => {
    expect(classNameProblem('tumor')).toBeNull();
    expect(classNameProblem('..')).toMatch(/a path/);
    expect(classNameProblem(' a')).toMatch(/white space/);
    expect(classNameProblem('a\nb')).toMatch(/control characters/);
    expect(checkClassNames({ names: ['a', 'b'], where: 'w', expectedCount: 2 })).toEqual(['a', 'b']);
    expect(problem(() => checkClassNames({ names: 'a', where: 'w' })).message).toBe('w must be a JSON list of names, got string');
  });

  it('checkAutoencoderConfigLimits names the field above the limit', () => {
    expect(() => checkAutoencoderConfigLimits({ config: { blockChannels: [8, 16] }, where: 'f', field: 'config' })).not.toThrow();
    expect(problem(() => checkAutoencoderConfigLimits({ config: { blockChannels: [8, 1e6] }, where: 'f', field: 'config' })).message)
      .toBe(`f: metadata.config.blockChannels[1] is 1000000, above the limit ${MODEL_FILE_LIMITS.maxWidth}; the file is damaged or hand-made`);
  });
});
