import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeSafetensors } from '@fad/diffusion-core';
import { ResNet } from './resnet';
import { decodeTorchStateDict } from './torch-state-dict';
import { loadTorchvisionResNet, saveTorchvisionResNet } from './node';
import { describeTorchvisionResNet, exportTorchvisionResNet, loadTorchvisionResNet as loadTorchvisionResNetFromBytes, torchvisionStateDict } from './torchvision-resnet';
import { hasSharedReference, sharedReferencePath, skipReason } from '@fad/test-utils/shared-reference';
import { leakedTensors, maxAbsDiff, useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

const REF = 'torchvision-resnet';
const CASES = ['basic-1111-1ch-8cls', 'bottleneck-1111-w16-3ch-10cls'] as const;

interface Meta {
  block: string;
  layers: number[];
  width_per_group: number;
  conv1_in_channels: number;
  num_classes: number;
  parameters: number;
}

const weightsOf = (c: string) => sharedReferencePath(`${REF}/${c}/weights.safetensors`);
const metaOf = (c: string): Meta => JSON.parse(readFileSync(sharedReferencePath(`${REF}/${c}/meta.json`), 'utf8'));

/** The oracle's input as NHWC and its outputs. */
function io(c: string): { x: tf.Tensor4D; logits: Float32Array; features: Float32Array } {
  const { tensors } = decodeTorchStateDict({ bytes: new Uint8Array(readFileSync(sharedReferencePath(`${REF}/${c}/io.safetensors`))) });
  const xi = tensors['input.x'];
  const x = tf.tidy(() => tf.transpose(tf.tensor4d(xi.data!, xi.shape as [number, number, number, number]), [0, 2, 3, 1])) as tf.Tensor4D;
  return { x, logits: tensors['output.logits'].data!, features: tensors['output.features'].data! };
}

/** The oracle feeds torchvision unnormalised tensors: mean 0, std 1 per channel. */
const identityInput = (channels: number) => ({ size: 64, mean: new Array<number>(channels).fill(0), std: new Array<number>(channels).fill(1) });

describe.skipIf(!hasSharedReference(REF))(`loadTorchvisionResNet vs torchvision (../shared/reference/${REF})${skipReason(REF, '@fad/expert-models tests')}`, () => {
  for (const c of CASES) {
    it(`${c}: eval-mode logits and pooled features match torchvision to 1e-4`, async () => {
      const meta = metaOf(c);
      const { expert, layout, replaced, ignored } = await loadTorchvisionResNet({ file: weightsOf(c), input: identityInput(meta.conv1_in_channels) });
      try {
        expect(layout).toEqual({
          block: meta.block, layers: meta.layers, widthPerGroup: meta.width_per_group, baseWidth: 64,
          inChannels: meta.conv1_in_channels, head: { type: 'linear' }, numClasses: meta.num_classes, arch: null,
        });
        expect(replaced).toEqual([]);
        expect(ignored).toEqual([]);
        expect(expert.numParameters() + expert.numBufferValues()).toBe(meta.parameters); // the oracle counts the BatchNorm statistics too
        const { x, logits, features } = io(c);
        const out = expert.forward(x);
        const f = out.features.dataSync();
        const l = out.logits.dataSync();
        expect(f.length).toBe(features.length);
        expect(maxAbsDiff(f, features)).toBeLessThan(1e-4);
        expect(maxAbsDiff(l, logits)).toBeLessThan(1e-4);
        // The check can fail: training-mode BatchNorm (batch statistics) is far off.
        const train = expert.logits(x, { training: true });
        expect(maxAbsDiff(train.dataSync(), logits)).toBeGreaterThan(1e-2);
        tf.dispose([x, out.features, out.logits, train]);
      } finally {
        expert.dispose();
      }
    }, 60_000);
  }

  it('the stored F16 values arrive unchanged (HWIO / [in,out] in fad, bit-exact back in PyTorch layout)', async () => {
    const c = CASES[1];
    const file = decodeTorchStateDict({ bytes: new Uint8Array(readFileSync(weightsOf(c))) });
    expect(file.tensors['conv1.weight'].dtype).toBe('F16');
    const { expert } = await loadTorchvisionResNet({ file: weightsOf(c) });
    try {
      // By hand: OIHW [o,i,h,w] is HWIO [h,w,i,o]; fc [k,d] is [d,k].
      const sd = expert.stateDict();
      const w = file.tensors['conv1.weight'];
      const [O, I, H, W] = w.shape;
      const at = (o: number, i: number, h: number, x: number) => w.data![((o * I + i) * H + h) * W + x];
      expect(sd['conv1.weight'].shape).toEqual([H, W, I, O]);
      expect(sd['conv1.weight'].data[((2 * W + 5) * I + 1) * O + 7]).toBe(at(7, 1, 2, 5));
      const fc = file.tensors['fc.weight'];
      expect(sd['fc.weight'].data[17 * fc.shape[0] + 3]).toBe(fc.data![3 * fc.shape[1] + 17]);
      expect(sd['layer3.0.bn2.running_var'].data).toEqual(file.tensors['layer3.0.bn2.running_var'].data);
      const back = torchvisionStateDict({ expert });
      expect(Object.keys(back).sort()).toEqual(Object.keys(file.tensors).sort());
      for (const [n, t] of Object.entries(file.tensors)) {
        expect(back[n].shape, n).toEqual(t.shape);
        expect(Buffer.from(back[n].data.buffer).equals(Buffer.from(t.data!.buffer)), n).toBe(true);
      }
    } finally {
      expert.dispose();
    }
  }, 60_000);

  it('export -> import round trip is bit-exact (weights, BatchNorm statistics, bytes)', async () => {
    const { expert } = await loadTorchvisionResNet({ file: weightsOf(CASES[0]), head: { numClasses: 3, hidden: 16 }, seed: 4 });
    const dir = mkdtempSync(join(tmpdir(), 'fad-tv-'));
    try {
      await saveTorchvisionResNet({ expert, path: join(dir, 'out.safetensors') });
      const bytes = new Uint8Array(readFileSync(join(dir, 'out.safetensors')));
      expect(Buffer.from(bytes).equals(Buffer.from(exportTorchvisionResNet({ expert })))).toBe(true);
      const again = await loadTorchvisionResNet({ bytes });
      try {
        expect(again.layout.head).toEqual({ type: 'mlp', hiddenDim: 16 });
        const a = expert.stateDict();
        const b = again.expert.stateDict();
        expect(Object.keys(b)).toEqual(Object.keys(a));
        for (const n of Object.keys(a)) expect(Buffer.from(b[n].data.buffer).equals(Buffer.from(a[n].data.buffer)), n).toBe(true);
        expect(Buffer.from(exportTorchvisionResNet({ expert: again.expert })).equals(Buffer.from(bytes))).toBe(true);
      } finally {
        again.expert.dispose();
      }
    } finally {
      expert.dispose();
    }
  }, 60_000);

  it('sum-rgb conv1: the 1-channel model on a gray image = the RGB model on it replicated to 3 channels', async () => {
    const c = CASES[1];
    const m = 0.45;
    const s = 0.25;
    const rgb = await loadTorchvisionResNet({ file: weightsOf(c), input: { size: 32, mean: [m, m, m], std: [s, s, s] } });
    const gray = await loadTorchvisionResNet({ file: weightsOf(c), inChannels: 1, input: { size: 32, mean: [m], std: [s] } });
    const rgbNew = await loadTorchvisionResNet({ file: weightsOf(c), inChannels: 1, conv1: 'new', input: { size: 32, mean: [m], std: [s] } });
    try {
      expect(gray.replaced).toEqual(['conv1.weight']);
      // By hand: conv1[o, 0, h, w] = sum_i conv1_rgb[o, i, h, w].
      const file = decodeTorchStateDict({ bytes: new Uint8Array(readFileSync(weightsOf(c))) }).tensors['conv1.weight'];
      const [, I, H, W] = file.shape;
      const o = 11, h = 3, w = 6;
      const expected = [0, 1, 2].reduce((acc, i) => acc + file.data![((o * I + i) * H + h) * W + w], 0);
      const got = gray.expert.stateDict()['conv1.weight'];
      expect(got.shape).toEqual([7, 7, 1, 64]);
      expect(got.data[(h * W + w) * 64 + o]).toBeCloseTo(expected, 6);
      const g = tf.randomUniform([2, 32, 32, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
      const g3 = tf.tile(g, [1, 1, 1, 3]) as tf.Tensor4D;
      const a = rgb.expert.forward(g3);
      const b = gray.expert.forward(g);
      expect(maxAbsDiff(b.features.dataSync(), a.features.dataSync())).toBeLessThan(1e-4);
      expect(maxAbsDiff(b.logits.dataSync(), a.logits.dataSync())).toBeLessThan(1e-4);
      // A new conv1 does not reproduce the RGB model.
      const n = rgbNew.expert.logits(g);
      expect(maxAbsDiff(n.dataSync(), a.logits.dataSync())).toBeGreaterThan(1e-2);
      tf.dispose([g, g3, a.features, a.logits, b.features, b.logits, n]);
    } finally {
      rgb.expert.dispose();
      gray.expert.dispose();
      rgbNew.expert.dispose();
    }
  }, 60_000);

  it('new conv1 and new head are seeded; the backbone stays the file\'s', async () => {
    const f = weightsOf(CASES[0]);
    const load = (seed: number) => loadTorchvisionResNet({ file: f, conv1: 'new', head: { numClasses: 3 }, seed, classNames: ['a', 'b', 'c'], input: identityInput(1) });
    const [a, b, c, kept] = await Promise.all([load(1), load(1), load(2), loadTorchvisionResNet({ file: f, input: identityInput(1) })]);
    try {
      expect(a.replaced).toEqual(['conv1.weight', 'fc.weight', 'fc.bias']);
      expect(a.ignored).toEqual(['fc.weight', 'fc.bias']);
      expect(a.expert.numClasses).toBe(3);
      expect(a.expert.classNames).toEqual(['a', 'b', 'c']);
      const sa = a.expert.stateDict();
      const sb = b.expert.stateDict();
      const sc = c.expert.stateDict();
      const sk = kept.expert.stateDict();
      for (const n of Object.keys(sa)) expect(Buffer.from(sb[n].data.buffer).equals(Buffer.from(sa[n].data.buffer)), n).toBe(true);
      expect(maxAbsDiff(sc['conv1.weight'].data, sa['conv1.weight'].data)).toBeGreaterThan(0.01);
      expect(maxAbsDiff(sc['fc.weight'].data, sa['fc.weight'].data)).toBeGreaterThan(0.01);
      expect(maxAbsDiff(sa['layer2.0.conv1.weight'].data, sk['layer2.0.conv1.weight'].data)).toBe(0);
      expect(maxAbsDiff(sa['bn1.running_mean'].data, sk['bn1.running_mean'].data)).toBe(0);
      // Kaiming-normal fan_out: std sqrt(2 / (7 * 7 * 64)); PyTorch's Linear init: |w| <= 1/sqrt(512).
      const w = sa['conv1.weight'].data;
      const std = Math.sqrt(w.reduce((acc, v) => acc + v * v, 0) / w.length);
      expect(std).toBeGreaterThan(0.8 * Math.sqrt(2 / (49 * 64)));
      expect(std).toBeLessThan(1.2 * Math.sqrt(2 / (49 * 64)));
      expect(Math.max(...sa['fc.weight'].data.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(512));
    } finally {
      for (const r of [a, b, c, kept]) r.expert.dispose();
    }
  }, 60_000);

  it('tells what is wrong: wrong shapes, missing and extra tensors, another architecture', async () => {
    const file = decodeTorchStateDict({ bytes: new Uint8Array(readFileSync(weightsOf(CASES[0]))) }).tensors;
    const base: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [n, t] of Object.entries(file)) base[n] = { shape: t.shape, data: t.data! };
    const { 'bn1.running_var': _drop, ...missing } = base;
    await expect(loadTorchvisionResNet({ tensors: missing })).rejects.toThrow('missing: bn1.running_var (expected [64])');
    await expect(loadTorchvisionResNet({ tensors: { ...base, 'layer9.weight': { shape: [2], data: new Float32Array(2) } } })).rejects.toThrow(/unexpected: layer9\.weight \[2\]/);
    const wrong = { ...base, 'layer2.0.bn1.weight': { shape: [64], data: new Float32Array(64) } };
    await expect(loadTorchvisionResNet({ tensors: wrong })).rejects.toThrow('wrong shape (PyTorch layout): layer2.0.bn1.weight is [64] in the file, expected [128]');
    await expect(loadTorchvisionResNet({ tensors: base, arch: 'resnet18' })).rejects.toThrow(
      /does not match resnet18 \(basic \[2,2,2,2\]\): missing: layer1\.1\.conv1\.weight \(expected \[64,64,3,3\]\).*the file looks like a ResNet \(basic \[1,1,1,1\]\)/,
    );
    await expect(loadTorchvisionResNet({ tensors: base, arch: 'resnet50' })).rejects.toThrow(/layer1\.0\.conv1\.weight is \[64,64,3,3\] in the file, expected \[64,64,1,1\]/);
    await expect(loadTorchvisionResNet({ tensors: base, arch: 'resnet200' as never })).rejects.toThrow(
      'arch must be one of resnet18, resnet34, resnet50, resnet101, resnet152, wide_resnet50_2, wide_resnet101_2',
    );
    await expect(loadTorchvisionResNet({ tensors: base, conv1: 'sum-rgb', inChannels: 1 })).rejects.toThrow(/"sum-rgb" turns a 3-channel conv1 into a 1-channel one, but the state dict has a 1-channel conv1/);
    await expect(loadTorchvisionResNet({ tensors: base, head: { numClasses: 0 } })).rejects.toThrow(/head\.numClasses/);
    await expect(loadTorchvisionResNet({ tensors: base, file: 'x' })).rejects.toThrow('give exactly one of file, bytes, tensors, got file and tensors');
    await expect(loadTorchvisionResNet({ file: '/nonexistent/r.safetensors' })).rejects.toThrow('cannot read /nonexistent/r.safetensors');
    const prefixed = Object.fromEntries(Object.entries(base).map(([n, t]) => [`module.${n}`, t]));
    await expect(loadTorchvisionResNet({ tensors: prefixed })).rejects.toThrow(/no tensor "conv1\.weight" \(there is "module\.conv1\.weight": strip the prefix "module\."/);
    const { 'fc.weight': _w, 'fc.bias': _b, ...headless } = base;
    await expect(loadTorchvisionResNet({ tensors: headless })).rejects.toThrow('has no head (fc.*) to keep; pass head: {numClasses} for a new one');
    const r = await loadTorchvisionResNet({ tensors: headless, head: { numClasses: 2 } });
    r.expert.dispose();
    // num_batches_tracked (I64 in PyTorch's files) is skipped; other integer tensors are refused.
    const withCounters = { ...base, 'bn1.num_batches_tracked': tf.scalar(5, 'int32') };
    const k = await loadTorchvisionResNet({ tensors: withCounters });
    expect(k.ignored).toEqual(['bn1.num_batches_tracked']);
    k.expert.dispose();
    const ints = { ...base, 'bn1.weight': tf.zeros([64], 'int32') };
    await expect(loadTorchvisionResNet({ tensors: ints })).rejects.toThrow('tensor "bn1.weight" has dtype I32; weights must be floating point');
    tf.dispose([withCounters['bn1.num_batches_tracked'], ints['bn1.weight']]);
  }, 60_000);

  it('leaves no tensors behind (load, forward, export, dispose; failed loads too)', async () => {
    const x = tf.zeros([1, 64, 64, 1]) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const r = await loadTorchvisionResNet({ file: weightsOf(CASES[0]), inChannels: 1, conv1: 'new', head: { numClasses: 2, hidden: 4 }, input: identityInput(1) });
    expect(leakedTensors(() => tf.dispose(Object.values(r.expert.forward(x))))).toBe(0);
    expect(leakedTensors(() => exportTorchvisionResNet({ expert: r.expert }))).toBe(0);
    r.expert.dispose();
    await expect(loadTorchvisionResNet({ file: weightsOf(CASES[0]), arch: 'resnet34' })).rejects.toThrow();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  }, 60_000);
});

describe('describeTorchvisionResNet', () => {
  const shapes = (m: ResNet) => Object.fromEntries(Object.entries(torchvisionStateDict({ expert: m })).map(([n, t]) => [n, { shape: t.shape }]));
  it('reads block, layers, width_per_group, stem, channels and head from names and shapes', () => {
    const m = new ResNet({ config: { arch: 'resnet', block: 'bottleneck', layers: [1, 2], baseWidth: 8, widthPerGroup: 128, numClasses: 5, head: { type: 'mlp', hiddenDim: 7 }, input: { size: 16, channels: 2 } }, initialize: false });
    expect(describeTorchvisionResNet({ tensors: shapes(m) })).toEqual({
      block: 'bottleneck', layers: [1, 2], widthPerGroup: 128, baseWidth: 8, inChannels: 2, head: { type: 'mlp', hiddenDim: 7 }, numClasses: 5, arch: null,
    });
    m.dispose();
  });
  it('names torchvision architectures', () => {
    const m = new ResNet({ config: { arch: 'resnet', block: 'basic', layers: [2, 2, 2, 2], numClasses: 1000, input: { size: 224, channels: 3 } }, initialize: false });
    expect(describeTorchvisionResNet({ tensors: shapes(m) }).arch).toBe('resnet18');
    m.dispose();
  });
  it('refuses ResNeXt (grouped convolutions)', () => {
    expect(() => describeTorchvisionResNet({ tensors: { 'conv1.weight': { shape: [64, 3, 7, 7] }, 'layer1.0.conv1.weight': { shape: [128, 64, 1, 1] }, 'layer1.0.conv2.weight': { shape: [128, 4, 3, 3] }, 'layer1.0.conv3.weight': { shape: [256, 128, 1, 1] } } })).toThrow(
      /grouped convolution \(ResNeXt\)/,
    );
  });
});

// Full-size torchvision ResNet18/50 (random weights, made here with the local PyTorch if there is one):
// import matches torchvision, and PyTorch's load_state_dict(strict=True) accepts fad's export.
const PYTHON = process.env.FAD_PYTHON ?? '/usr/bin/python3';
const torchAvailable = (() => {
  try {
    execFileSync(PYTHON, ['-c', 'import torch, torchvision, numpy'], { stdio: 'ignore', timeout: 60_000 });
    return true;
  } catch {
    return false;
  }
})();
if (!torchAvailable) console.warn(`torchvision-resnet.spec: ${PYTHON} with torch + torchvision not found; skipping the full-size torchvision checks`);

const PY_COMMON = `
import json, struct, sys, numpy as np, torch, torchvision
def save(path, tensors):
    header, blobs, off = {}, [], 0
    for n in sorted(tensors):
        a = tensors[n]
        b = a.tobytes()
        header[n] = {"dtype": {"float32": "F32", "int64": "I64"}[str(a.dtype)], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h); f.write(b"".join(blobs))
def load(path):
    raw = open(path, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; header = json.loads(raw[8:8 + n]); out = {}
    for k, v in header.items():
        if k == "__metadata__": continue
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], dtype={"F32": np.float32}[v["dtype"]]).reshape(v["shape"]).copy())
    return out
def build(arch):
    return getattr(torchvision.models, arch)(weights=None)
`;

describe.skipIf(!torchAvailable)('full-size torchvision ResNets (local PyTorch, random weights)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fad-tv-torch-'));
  const archs = ['resnet18', 'resnet50'] as const;
  beforeAll(() => {
    const script = `${PY_COMMON}
torch.manual_seed(0)
for arch in ${JSON.stringify(archs)}:
    m = build(arch)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5); mod.bias.uniform_(-0.2, 0.2)
        # Small last-BN scales keep the residual sum O(1) (as zero_init_residual would), so float32 stays within 1e-4 of float64.
        for name, mod in m.named_modules():
            if name.startswith("layer") and name.count(".") == 1:
                (mod.bn3 if hasattr(mod, "bn3") else mod.bn2).weight.uniform_(0.1, 0.3)
    m.eval()
    save(sys.argv[1] + "/" + arch + ".safetensors", {k: v.numpy() for k, v in m.state_dict().items()})
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        # The reference in float64 from the float32 weights.
        d = m.double(); xd = x.double()
        f = torch.flatten(d.avgpool(d.layer4(d.layer3(d.layer2(d.layer1(d.maxpool(d.relu(d.bn1(d.conv1(xd))))))))), 1)
        save(sys.argv[1] + "/" + arch + "-io.safetensors", {"x": x.permute(0, 2, 3, 1).contiguous().numpy(), "features": f.float().numpy(), "logits": d.fc(f).float().numpy()})
`;
    execFileSync(PYTHON, ['-c', script, dir], { timeout: 240_000 });
  }, 300_000);

  for (const arch of archs) {
    it(`${arch}: torchvision's names (num_batches_tracked included) load; logits and features match to 1e-4; PyTorch loads the export`, async () => {
      const { expert, layout, ignored } = await loadTorchvisionResNet({ file: join(dir, `${arch}.safetensors`), arch, input: identityInput(3) });
      try {
        expect(layout.arch).toBe(arch);
        expect(ignored.length).toBeGreaterThan(0);
        expect(ignored.every((n) => n.endsWith('.num_batches_tracked'))).toBe(true);
        const t = decodeTorchStateDict({ bytes: new Uint8Array(readFileSync(join(dir, `${arch}-io.safetensors`))) }).tensors;
        const x = tf.tensor4d(t.x.data!, t.x.shape as [number, number, number, number]);
        const out = expert.forward(x);
        expect(maxAbsDiff(out.features.dataSync(), t.features.data!)).toBeLessThan(1e-4);
        expect(maxAbsDiff(out.logits.dataSync(), t.logits.data!)).toBeLessThan(1e-4);
        tf.dispose([x, out.features, out.logits]);
        // fad -> PyTorch: a 1-channel, 4-class expert made from it, exported and loaded strictly by torchvision.
        const gray = await loadTorchvisionResNet({ file: join(dir, `${arch}.safetensors`), inChannels: 1, head: { numClasses: 4 }, seed: 1, input: identityInput(1) });
        try {
          writeFileSync(join(dir, `${arch}-fad.safetensors`), exportTorchvisionResNet({ expert: gray.expert }));
          const g = tf.randomUniform([2, 64, 64, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
          writeFileSync(join(dir, `${arch}-gray.safetensors`), encodeSafetensors({ tensors: { x: { dtype: 'F32', shape: [2, 1, 64, 64], data: tf.tidy(() => tf.transpose(g, [0, 3, 1, 2])).dataSync() as Float32Array } }, metadata: {} }));
          const script = `${PY_COMMON}
m = getattr(torchvision.models, "${arch}")(weights=None, num_classes=4)
m.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
m.load_state_dict(load(sys.argv[1] + "/${arch}-fad.safetensors"), strict=True)
m.eval()
with torch.no_grad():
    y = m(load(sys.argv[1] + "/${arch}-gray.safetensors")["x"])
print(json.dumps(y.flatten().tolist()))
`;
          const theirs = JSON.parse(execFileSync(PYTHON, ['-c', script, dir], { timeout: 120_000 }).toString()) as number[];
          const ours = gray.expert.logits(g);
          expect(maxAbsDiff(ours.dataSync(), theirs)).toBeLessThan(1e-4);
          tf.dispose([g, ours]);
        } finally {
          gray.expert.dispose();
        }
      } finally {
        expert.dispose();
      }
    }, 300_000);
  }
});

describe('loadTorchvisionResNet from the main entry point', () => {
  it('takes bytes, and sends file paths to @fad/expert-models/node', async () => {
    await expect(loadTorchvisionResNetFromBytes({ file: 'resnet18.safetensors' })).rejects.toThrow(
      /loadTorchvisionResNet: file needs file access: import loadTorchvisionResNet from '@fad\/expert-models\/node'/,
    );
    await expect(loadTorchvisionResNetFromBytes({ bytes: new Uint8Array(4), source: 'x.safetensors' })).rejects.toThrow(/x\.safetensors/);
  });
});
