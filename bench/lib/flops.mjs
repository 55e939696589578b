// Analytic FLOP and parameter counts of the benchmark models, from their configs.
//
// FLOPs are counted as the reference workload does (shared/bench/reference_workload.py):
// 2 x multiply-adds of every convolution, linear layer and attention matmul (QK^T and AV),
// nothing else (norms, activations, softmax, adds and the embedding lookup are not counted).
// The U-Net walk mirrors UNet2DConditional's constructor and forward in @fad/diffusion-core.

/** Per-image forward FLOPs and parameter count of a UNet2DConditional config. */
export function unetCounts(config) {
  const c = config;
  const size = c.sampleSize;
  const td = c.timeEmbeddingHiddenDim;
  const ctxTokens = 1; // one class token (cross-attention conditioning)
  let flops = 0;
  let params = 0;
  const linear = (inF, outF, rows = 1, bias = true) => {
    flops += 2 * rows * inF * outF;
    params += inF * outF + (bias ? outF : 0);
  };
  const conv = (cin, cout, k, outH, bias = true) => {
    flops += 2 * outH * outH * cout * k * k * cin;
    params += k * k * cin * cout + (bias ? cout : 0);
  };
  const norm = (ch) => {
    params += 2 * ch;
  };
  const resBlock = (cin, cout, h) => {
    norm(cin);
    conv(cin, cout, 3, h);
    linear(td, cout);
    norm(cout);
    conv(cout, cout, 3, h);
    if (cin !== cout) conv(cin, cout, 1, h);
  };
  const attention = (dim, ctxDim, L, S) => {
    linear(dim, dim, L, false); // q
    linear(ctxDim, dim, S, false); // k
    linear(ctxDim, dim, S, false); // v
    flops += 2 * 2 * L * S * dim; // QK^T and AV over all heads
    linear(dim, dim, L); // o
  };
  const transformer = (ch, h) => {
    const L = h * h;
    norm(ch);
    linear(ch, ch, L); // proj_in
    norm(ch); // ln1
    attention(ch, ch, L, L);
    norm(ch); // ln2
    attention(ch, c.crossAttentionDim, L, ctxTokens);
    norm(ch); // ln3
    linear(ch, 4 * ch, L);
    linear(4 * ch, ch, L);
    linear(ch, ch, L); // proj_out
  };

  linear(c.timeEmbeddingDim, td);
  linear(td, td);
  const rows = c.numClasses + (c.nullClass ? 1 : 0);
  if (rows > 0) params += rows * c.crossAttentionDim; // class embedding (a lookup: no FLOPs)
  if (c.classConditioning !== 'cross-attention') linear(c.crossAttentionDim, td);
  const ch = c.blockChannels;
  const attn = new Set(c.attentionLevels);
  conv(c.inChannels, ch[0], 3, size);
  const skips = [ch[0]];
  let cin = ch[0];
  let h = size;
  ch.forEach((cl, lvl) => {
    for (let j = 0; j < c.layersPerBlock; j++) {
      resBlock(cin, cl, h);
      if (attn.has(lvl)) transformer(cl, h);
      cin = cl;
      skips.push(cl);
    }
    if (lvl !== ch.length - 1) {
      h /= 2;
      conv(cl, cl, 3, h); // stride 2: output h x h
      skips.push(cl);
    }
  });
  if (c.midBlock) {
    const cm = ch[ch.length - 1];
    resBlock(cm, cm, h);
    if (c.midAttention) transformer(cm, h);
    resBlock(cm, cm, h);
  }
  for (let lvl = ch.length - 1; lvl >= 0; lvl--) {
    const cl = ch[lvl];
    for (let j = 0; j < c.layersPerBlock + 1; j++) {
      resBlock(cin + skips.pop(), cl, h);
      if (attn.has(lvl)) transformer(cl, h);
      cin = cl;
    }
    if (lvl !== 0) {
      h *= 2;
      conv(cl, cl, 3, h);
    }
  }
  norm(ch[0]);
  conv(ch[0], c.outChannels, 3, size);
  return { flops, params };
}

/**
 * Per-image forward FLOPs and parameters of torchvision's ResNet50 layout (v1.5: stride on the
 * 3x3) with a `inChannels` stem and an fc head to `numClasses`, at `size` x `size` input.
 * Batch-norm parameters (weight and bias) are counted; running statistics are not.
 */
export function resnet50Counts({ size = 64, inChannels = 1, numClasses = 8 } = {}) {
  let flops = 0;
  let params = 0;
  const out = (h, k, s, p) => Math.floor((h + 2 * p - k) / s) + 1;
  const conv = (cin, cout, k, oh) => {
    flops += 2 * oh * oh * cout * k * k * cin;
    params += k * k * cin * cout;
  };
  const bn = (ch) => {
    params += 2 * ch;
  };
  let h = out(size, 7, 2, 3);
  conv(inChannels, 64, 7, h);
  bn(64);
  h = out(h, 3, 2, 1); // max pool
  let cin = 64;
  for (const [width, n, stride] of [[64, 3, 1], [128, 4, 2], [256, 6, 2], [512, 3, 2]]) {
    for (let j = 0; j < n; j++) {
      const s = j === 0 ? stride : 1;
      const cout = width * 4;
      conv(cin, width, 1, h);
      bn(width);
      const h2 = out(h, 3, s, 1);
      conv(width, width, 3, h2);
      bn(width);
      conv(width, cout, 1, h2);
      bn(cout);
      if (s !== 1 || cin !== cout) {
        conv(cin, cout, 1, h2);
        bn(cout);
      }
      h = h2;
      cin = cout;
    }
  }
  flops += 2 * cin * numClasses;
  params += cin * numClasses + numClasses;
  return { flops, params };
}
