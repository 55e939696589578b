import { Module, UNET_PRESETS, UNet2DConditional } from '@fad/diffusion-core';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { extractExpertFeatures } from './expert-features';
import { FeatureAlignmentLoss, type FeatureAlignmentLossParams } from './feature-alignment-loss';
import { featureExtractorFromLayersModel } from './tap-layers-model';
import { cosine64, randomTensor, randomValues, useCpuBackend } from './test-support/setup';

beforeAll(useCpuBackend);

const disposables: Array<{ dispose(): void }> = [];
afterEach(() => disposables.splice(0).forEach((d) => d.dispose()));

function makeLoss(p: FeatureAlignmentLossParams): FeatureAlignmentLoss {
  const l = new FeatureAlignmentLoss(p);
  disposables.push(l);
  return l;
}

/** Sets a linear projection to W (row-major [in,out]) and b. */
function setLinear(loss: FeatureAlignmentLoss, w: number[], b: number[]): void {
  const [[, wv], [, bv]] = loss.namedParameters();
  loss.loadStateDict({
    'projection.weight': { shape: wv.shape, data: Float32Array.from(w) },
    'projection.bias': { shape: bv.shape, data: Float32Array.from(b) },
  });
}

const identity3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

/** Float64 reference of mean(1 - cos(a_b, c_b)) over rows. */
function refLoss(a: number[][], c: number[][]): number {
  return a.reduce((s, row, i) => s + 1 - cosine64(row, c[i]), 0) / a.length;
}

/** Float64 reference pieces. */
const pool = (x: number[], B: number, HW: number, C: number) =>
  Array.from({ length: B }, (_, b) => Array.from({ length: C }, (_, c) => {
    let s = 0;
    for (let p = 0; p < HW; p++) s += x[(b * HW + p) * C + c];
    return s / HW;
  }));
const dense = (rows: number[][], w: ArrayLike<number>, bias: ArrayLike<number>, fout: number) =>
  rows.map((r) => Array.from({ length: fout }, (_, o) => r.reduce((s, v, i) => s + v * w[i * fout + o], bias[o])));
const silu = (rows: number[][]) => rows.map((r) => r.map((v) => v / (1 + Math.exp(-v))));

describe('FeatureAlignmentLoss values', () => {
  it('is 0 for identical directions, 2 for opposite, 1 for orthogonal', () => {
    const loss = makeLoss({ diffusionDim: 3, expertDim: 3 });
    setLinear(loss, identity3, [0, 0, 0]);
    const cases: Array<[number[], number[], number]> = [
      [[1, 2, 3], [2, 4, 6], 0],
      [[1, 2, 3], [-0.5, -1, -1.5], 2],
      [[1, 0, 0], [0, 3, 0], 1],
      [[1, 1, 0], [0, 0, -2], 1],
    ];
    for (const [e, h, want] of cases) {
      const v = tf.tidy(() => loss.forward({ expertFeatures: tf.tensor2d([e]), diffusionFeatures: tf.tensor2d([h]) }).dataSync()[0]);
      expect(v).toBeCloseTo(want, 6);
    }
    // A batch of all four: the mean, and the per-sample cosines.
    const r = tf.tidy(() => {
      const e = tf.tensor2d(cases.map((c) => c[0]));
      const h = tf.tensor2d(cases.map((c) => c[1]));
      return [loss.forward({ expertFeatures: e, diffusionFeatures: h }).dataSync()[0], Array.from(loss.cosineSimilarity({ expertFeatures: e, diffusionFeatures: h }).dataSync())] as const;
    });
    expect(r[0]).toBeCloseTo(1, 6);
    r[1].forEach((c, i) => expect(c).toBeCloseTo(1 - cases[i][2], 6));
  });

  it('pools feature maps h [B,H,W,C] (and e [B,H,W,D]) by their spatial mean', () => {
    const loss = makeLoss({ diffusionDim: 3, expertDim: 3 });
    setLinear(loss, identity3, [0, 0, 0]);
    // h's two pixels average to (1, 0, 0); e's to (0, 2, 0) -> orthogonal; then equal to e -> 0.
    const v = tf.tidy(() => {
      const h = tf.tensor4d([[[[2, 1, 0], [0, -1, 0]]]]);
      const e = tf.tensor4d([[[[0, 4, 1]], [[0, 0, -1]]]]);
      const d = loss.forward({ diffusionFeatures: h, expertFeatures: e }).dataSync()[0];
      const s = loss.forward({ diffusionFeatures: h, expertFeatures: tf.tensor2d([[5, 0, 0]]) }).dataSync()[0];
      return [d, s];
    });
    expect(v[0]).toBeCloseTo(1, 6);
    expect(v[1]).toBeCloseTo(0, 6);
  });

  it("centering 'batch' compares the rows' differences from the batch mean (hand-computed)", () => {
    const plain = makeLoss({ diffusionDim: 3, expertDim: 3 });
    const centred = makeLoss({ diffusionDim: 3, expertDim: 3, centering: 'batch' });
    setLinear(plain, identity3, [0, 0, 0]);
    setLinear(centred, identity3, [0, 0, 0]);
    // h rows share (1, 0, 0); centred they are (0, 1, 0) and (0, -1, 0). e rows share (5, 0, 0);
    // centred (0, 2, 0) and (0, -2, 0): the same directions, loss 0. Uncentred, each pair has
    // cos = 7 / (sqrt(29) sqrt(2)).
    const v = tf.tidy(() => {
      const h = tf.tensor2d([[1, 1, 0], [1, -1, 0]]);
      const e = tf.tensor2d([[5, 2, 0], [5, -2, 0]]);
      return [plain.forward({ diffusionFeatures: h, expertFeatures: e }).dataSync()[0], centred.forward({ diffusionFeatures: h, expertFeatures: e }).dataSync()[0], ...centred.cosineSimilarity({ diffusionFeatures: h, expertFeatures: e }).dataSync()];
    });
    expect(v[0]).toBeCloseTo(1 - 7 / (Math.sqrt(29) * Math.sqrt(2)), 6);
    expect(v[1]).toBeCloseTo(0, 6);
    expect(v[2]).toBeCloseTo(1, 6);
    expect(v[3]).toBeCloseTo(1, 6);
    // Swap e's rows: centred, each pair is now opposite (loss 2); uncentred the shared (5, 0, 0)
    // still keeps each pair close (cos = 3 / (sqrt(29) sqrt(2))).
    const w = tf.tidy(() => {
      const h = tf.tensor2d([[1, 1, 0], [1, -1, 0]]);
      const e = tf.tensor2d([[5, -2, 0], [5, 2, 0]]);
      return [plain.forward({ diffusionFeatures: h, expertFeatures: e }).dataSync()[0], centred.forward({ diffusionFeatures: h, expertFeatures: e }).dataSync()[0]];
    });
    expect(w[0]).toBeCloseTo(1 - 3 / (Math.sqrt(29) * Math.sqrt(2)), 6);
    expect(w[1]).toBeCloseTo(2, 6);
  });

  it("centering 'batch' ignores a component every image shares (the paper's loss does not)", () => {
    const B = 6;
    const C = 5;
    const D = 9;
    const hv = randomValues(B * C, 21);
    const ev = randomValues(B * D, 22);
    const shift = randomValues(C, 23).map((x) => 10 * x);
    const shifted = hv.map((x, i) => x + shift[i % C]);
    const value = (l: FeatureAlignmentLoss, h: number[]) =>
      tf.tidy(() => l.forward({ diffusionFeatures: tf.tensor2d(h, [B, C]), expertFeatures: tf.tensor2d(ev, [B, D]) }).dataSync()[0]);
    const centred = makeLoss({ diffusionDim: C, expertDim: D, seed: 4, centering: 'batch' });
    const plain = makeLoss({ diffusionDim: C, expertDim: D, seed: 4 });
    expect(Math.abs(value(centred, shifted) - value(centred, hv))).toBeLessThan(1e-5);
    expect(Math.abs(value(plain, shifted) - value(plain, hv))).toBeGreaterThan(1e-2);
  });

  for (const variant of [
    { projectionSide: 'expert', projection: 'linear' },
    { projectionSide: 'diffusion', projection: 'linear' },
    { projectionSide: 'expert', projection: 'mlp', hiddenDim: 7 },
    { projectionSide: 'diffusion', projection: 'mlp' },
    { projectionSide: 'expert', projection: 'linear', centering: 'batch' },
    { projectionSide: 'diffusion', projection: 'mlp', centering: 'batch' },
  ] as const) {
    it(`matches a float64 reference on random inputs to 1e-5 (${JSON.stringify(variant)})`, () => {
      const B = 5;
      const C = 6;
      const D = 10;
      const HW = 9;
      const loss = makeLoss({ diffusionDim: C, expertDim: D, seed: 3, ...variant });
      const hv = randomValues(B * HW * C, 11);
      const ev = randomValues(B * D, 12).map((x) => x * 3);
      const got = tf.tidy(() => loss.forward({ diffusionFeatures: tf.tensor4d(hv, [B, 3, 3, C]), expertFeatures: tf.tensor2d(ev, [B, D]) }).dataSync()[0]);
      const hp = pool(hv, B, HW, C);
      const e = Array.from({ length: B }, (_, b) => ev.slice(b * D, (b + 1) * D));
      const p = loss.namedParameters().map(([, v]) => v.dataSync());
      const project = (rows: number[][], outDim: number) =>
        variant.projection === 'linear'
          ? dense(rows, p[0], p[1], outDim)
          : dense(silu(dense(rows, p[0], p[1], loss.config.hiddenDim as number)), p[2], p[3], outDim);
      const centre = (rows: number[][]) =>
        'centering' in variant ? rows.map((r) => r.map((x, j) => x - rows.reduce((acc, q) => acc + q[j], 0) / rows.length)) : rows;
      const want = variant.projectionSide === 'expert' ? refLoss(centre(project(e, C)), centre(hp)) : refLoss(centre(project(hp, D)), centre(e));
      expect(Math.abs(got - want)).toBeLessThan(1e-5);
    });
  }
});

describe('FeatureAlignmentLoss gradients', () => {
  it('reach the projection and the diffusion weights upstream of h, and not the expert (tf.variableGrads over every variable)', () => {
    const D = 6;
    const C = 5;
    const loss = makeLoss({ diffusionDim: C, expertDim: D, seed: 1 });
    // A frozen tfjs-layers expert with BatchNorm, and a one-conv "diffusion model".
    const expertModel = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: D, kernelSize: 3, padding: 'same' }),
        tfl.layers.batchNormalization(),
        tfl.layers.globalAveragePooling2d({}),
      ],
    });
    disposables.push({ dispose: () => expertModel.dispose() });
    const expert = featureExtractorFromLayersModel({ model: expertModel });
    const wd = tf.variable(randomTensor([3, 3, 1, C], 4));
    disposables.push(wd);
    const x = randomTensor([3, 8, 8, 1], 5) as tf.Tensor4D;
    const { value, grads } = tf.variableGrads(() => {
      const h = tf.conv2d(x, wd as tf.Tensor4D, 1, 'same');
      const e = extractExpertFeatures({ expert, images: x });
      return loss.forward({ diffusionFeatures: h, expertFeatures: e });
    });
    const expertNames = expertModel.weights.map((w) => (w.read() as tf.Variable).name);
    for (const n of expertNames) expect(grads[n]).toBeUndefined();
    for (const v of [wd, ...loss.trainableVariables()]) {
      expect(grads[v.name]).toBeDefined();
      expect(tf.tidy(() => tf.max(tf.abs(grads[v.name])).dataSync()[0])).toBeGreaterThan(1e-6);
    }
    // Even expert features computed on the tape are cut by the loss.
    const direct = tf.variableGrads(() => {
      const h = tf.conv2d(x, wd as tf.Tensor4D, 1, 'same');
      const e = expertModel.apply(x, { training: false }) as tf.Tensor2D;
      return loss.forward({ diffusionFeatures: h, expertFeatures: e });
    });
    for (const n of expertNames) expect(direct.grads[n]).toBeUndefined();
    tf.dispose([x, value, direct.value, ...Object.values(grads), ...Object.values(direct.grads)]);
  });

  it("reach a diffusion-core U-Net's weights upstream of the tapped down_out, not those downstream", () => {
    const cfg = { ...UNET_PRESETS.tiny, sampleSize: 8, attentionLevels: [], midAttention: false, classConditioning: 'time-embedding' as const };
    const unet = new UNet2DConditional(cfg, { seed: 1 });
    disposables.push(unet);
    const C = cfg.blockChannels[cfg.blockChannels.length - 1];
    const loss = makeLoss({ diffusionDim: C, expertDim: 4 });
    const x = randomTensor([2, 8, 8, 1], 6) as tf.Tensor4D;
    const e = randomTensor([2, 4], 7) as tf.Tensor2D;
    const named = unet.namedParameters();
    const vars = [...named.map(([, v]) => v), ...loss.trainableVariables()];
    const { value, grads } = tf.variableGrads(() => {
      const out = unet.forward({ sample: x, timesteps: [10, 500], classLabels: [0, 1], returnActivations: ['down_out'] });
      return loss.forward({ diffusionFeatures: out.activations.down_out, expertFeatures: e });
    }, vars);
    const maxAbs = (name: string) => {
      const v = named.find(([n]) => n === name)?.[1] as tf.Variable;
      const g = grads[v.name];
      return g ? tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]) : 0;
    };
    expect(maxAbs('conv_in.weight')).toBeGreaterThan(1e-7);
    expect(maxAbs('down_res.0.conv1.weight')).toBeGreaterThan(1e-7);
    expect(maxAbs('conv_out.weight')).toBe(0);
    for (const v of loss.trainableVariables()) expect(grads[v.name]).toBeDefined();
    tf.dispose([x, e, value, ...Object.values(grads)]);
  });

  for (const [projection, centering] of [['linear', 'none'], ['mlp', 'none'], ['linear', 'batch']] as const) {
    it(`of the ${projection} projection${centering === 'batch' ? ' with batch centering' : ''} match central finite differences (1e-2 relative)`, () => {
      const loss = makeLoss({ diffusionDim: 4, expertDim: 5, projection, centering, seed: 2 });
      const h = randomTensor([3, 2, 2, 4], 8) as tf.Tensor4D;
      const e = randomTensor([3, 5], 9) as tf.Tensor2D;
      const f = () => loss.forward({ diffusionFeatures: h, expertFeatures: e });
      const vars = loss.trainableVariables();
      const { value, grads } = tf.variableGrads(f, vars);
      const step = 1e-2;
      let checked = 0;
      for (const v of vars) {
        const g = grads[v.name].dataSync();
        const base = v.dataSync().slice();
        const at = (i: number, delta: number) => {
          const d = base.slice();
          d[i] += delta;
          v.assign(tf.tensor(d, v.shape));
          return tf.tidy(() => f().dataSync()[0]);
        };
        for (let i = 0; i < base.length; i++) {
          const fd = (at(i, step) - at(i, -step)) / (2 * step);
          expect(Math.abs(fd - g[i])).toBeLessThanOrEqual(1e-2 * Math.max(Math.abs(g[i]), 1e-2));
          checked++;
        }
        v.assign(tf.tensor(base, v.shape));
      }
      expect(checked).toBe(loss.numParameters());
      tf.dispose([h, e, value, ...Object.values(grads)]);
    });
  }
});

describe('FeatureAlignmentLoss memory and validation', () => {
  for (const centering of ['none', 'batch'] as const) {
    it(`leaves the tensor count unchanged after 100 loss computations (centering ${centering})`, () => {
      const loss = makeLoss({ diffusionDim: 4, expertDim: 6, projection: 'mlp', centering });
      const h = randomTensor([2, 3, 3, 4], 1) as tf.Tensor4D;
      const e = randomTensor([2, 6], 2) as tf.Tensor2D;
      loss.forward({ diffusionFeatures: h, expertFeatures: e }).dispose();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 100; i++) {
        loss.forward({ diffusionFeatures: h, expertFeatures: e }).dispose();
        loss.cosineSimilarity({ diffusionFeatures: h, expertFeatures: e }).dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([h, e]);
    });
  }

  it('names both shapes when D, C or the batch size disagree', () => {
    const loss = makeLoss({ diffusionDim: 4, expertDim: 2048 });
    const h = tf.zeros([2, 3, 3, 4]) as tf.Tensor4D;
    const e512 = tf.zeros([2, 512]) as tf.Tensor2D;
    const e2048b3 = tf.zeros([3, 2048]) as tf.Tensor2D;
    const h8 = tf.zeros([2, 8]) as tf.Tensor2D;
    expect(() => loss.forward({ diffusionFeatures: h, expertFeatures: e512 })).toThrow(
      'FeatureAlignmentLoss.forward: expertFeatures has D = 512 (shape [2,512]), but the projection was built with expertDim = 2048: expected [2,2048] or [2,H\',W\',2048]',
    );
    expect(() => loss.forward({ diffusionFeatures: h, expertFeatures: e2048b3 })).toThrow(
      'FeatureAlignmentLoss.forward: batch sizes disagree: diffusionFeatures has 2 (shape [2,3,3,4]), expertFeatures has 3 (shape [3,2048])',
    );
    expect(() => loss.forward({ diffusionFeatures: h8, expertFeatures: e512 })).toThrow(/diffusionFeatures has 8 channels \(shape \[2,8\]\), but the loss was built with diffusionDim = 4/);
    expect(() => loss.forward({ diffusionFeatures: tf.zeros([2, 3, 4]) as unknown as tf.Tensor2D, expertFeatures: e512 })).toThrow(
      /diffusionFeatures must be \[B,H,W,4\] or \[B,4\], got shape \[2,3,4\] \(rank 3\)/,
    );
    expect(() => loss.forward({ diffusionFeatures: h } as never)).toThrow(/expertFeatures must be a tf.Tensor \[B,2048\] or \[B,H',W',2048\], got undefined/);
    tf.dispose([h, e512, e2048b3, h8]);
  });

  it('validates its parameters, naming them', () => {
    expect(() => new FeatureAlignmentLoss({ diffusionDim: 4 } as FeatureAlignmentLossParams)).toThrow('FeatureAlignmentLoss: expertDim must be a positive integer, got undefined');
    expect(() => new FeatureAlignmentLoss({ diffusionDim: 4, expertDim: 8, projectionSide: 'both' as 'expert' })).toThrow(/projectionSide must be one of 'expert', 'diffusion', got "both"/);
    expect(() => new FeatureAlignmentLoss({ diffusionDim: 4, expertDim: 8, hiddenDim: 16 })).toThrow(/hiddenDim \(16\) only applies to projection 'mlp'/);
    expect(() => new FeatureAlignmentLoss({ diffusionDim: 4, expertDim: 8, lambda: 1 } as FeatureAlignmentLossParams)).toThrow(/unknown parameter "lambda"/);
    const l = makeLoss({ diffusionDim: 4, expertDim: 8, projectionSide: 'diffusion', projection: 'mlp' });
    expect(l.config).toEqual({ diffusionDim: 4, expertDim: 8, projectionSide: 'diffusion', projection: 'mlp', hiddenDim: 8, epsilon: 1e-8, centering: 'none' });
    expect(() => new FeatureAlignmentLoss({ diffusionDim: 4, expertDim: 8, centering: 'mean' as 'batch' })).toThrow(/centering must be one of 'none', 'batch', got "mean"/);
    const c = makeLoss({ diffusionDim: 4, expertDim: 8, centering: 'batch' });
    expect(() => tf.tidy(() => c.forward({ diffusionFeatures: tf.ones([1, 4]) as tf.Tensor2D, expertFeatures: tf.ones([1, 8]) as tf.Tensor2D }))).toThrow(
      /FeatureAlignmentLoss.forward: centering 'batch' needs a batch of at least 2, got diffusionFeatures \[1,4\]/,
    );
    expect(l.namedParameters().map(([n, v]) => `${n}:${v.shape}`)).toEqual([
      'projection.0.weight:4,8', 'projection.0.bias:8', 'projection.2.weight:8,8', 'projection.2.bias:8',
    ]);
    expect(() => l.loadStateDict({})).toThrow(/missing "projection.0.weight" \(expected shape \[4,8\]\)/);
    expect(l.trainableVariables().length).toBe(4);
    expect(l.numParameters()).toBe(4 * 8 + 8 + 8 * 8 + 8);
    l.setTrainable(false);
    expect(l.trainableVariables()).toEqual([]);
    l.setTrainable(true);
    expect(l.trainableVariables().length).toBe(4);
    expect(() => l.setTrainable('no' as never)).toThrow('FeatureAlignmentLoss.setTrainable: trainable must be true or false, got no');
    expect(() => l.loadStateDict(null as never)).toThrow(/FeatureAlignmentLoss.loadStateDict: state must be an object/);
    expect(l).toBeInstanceOf(Module);
    expect(l.projection.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
  });
});
