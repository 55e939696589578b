// Fused multi-head attention (softmax(scale * Q K^T) V) forward and backward, on oneDNN
// matmuls with strided memory descriptors, so the heads are read from and written to the
// [batch, tokens, heads * headDim] layout of the projections directly: no transposes, no
// separate scale / softmax kernels, one tfjs kernel each way.
//
//   attention(q, k, v, out, probs, params[B, L, S, D, H], scale)
//     q [B, L, D], k and v [B, S, D], out [B, L, D], probs [B, H, L, S] (softmax output,
//     kept for the backward pass); D = H * d.
//   attentionGrad(dy, q, k, v, probs, dq, dk, dv, params, scale)
//
// Backward: dV = P^T dY, dP = dY V^T, dS = P * (dP - rowsum(dP * P)), dQ = scale dS K,
// dK = scale dS^T Q (per batch and head).
#include <memory>
#include <vector>

#include "common.h"
#include "simd.h"

namespace tfn {
namespace {

using memory = dnnl::memory;
using dims = dnnl::memory::dims;
using dt = dnnl::memory::data_type;

struct AttnGeom {
  int64_t B, L, S, D, H, d;
};

AttnGeom parseAttn(const Napi::Value& v) {
  const int32_t* p = intsArg(v, "params", 5);
  AttnGeom g{p[0], p[1], p[2], p[3], p[4], 0};
  if (g.B < 1 || g.L < 1 || g.S < 1 || g.D < 1 || g.H < 1 || g.D % g.H != 0) {
    throw Napi::RangeError::New(v.Env(), "attention: params must be [B, L, S, D, H] >= 1 with D divisible by H");
  }
  g.d = g.D / g.H;
  return g;
}

// A [B, H, rows, cols] view of a tensor stored as [B, rows, H, cols] (heads interleaved in
// the last axis of a [B, rows, D] array), optionally transposed to [B, H, cols, rows].
memory::desc headView(const AttnGeom& g, int64_t rows, bool transposed) {
  const int64_t D = g.D, d = g.d;
  if (!transposed) return memory::desc({g.B, g.H, rows, d}, dt::f32, dims{rows * D, d, D, 1});
  return memory::desc({g.B, g.H, d, rows}, dt::f32, dims{rows * D, d, 1, D});
}

// A dense [B, H, rows, cols] array, optionally viewed transposed as [B, H, cols, rows].
memory::desc dense(const AttnGeom& g, int64_t rows, int64_t cols, bool transposed) {
  if (!transposed) return memory::desc({g.B, g.H, rows, cols}, dt::f32, dims{g.H * rows * cols, rows * cols, cols, 1});
  return memory::desc({g.B, g.H, cols, rows}, dt::f32, dims{g.H * rows * cols, rows * cols, 1, cols});
}

struct MatmulPrim {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
  bool bf16 = false;  // src and weights are rounded to bf16 copies before the call
};

Lru<MatmulPrim>& cache() {
  static Lru<MatmulPrim> c(kCacheCapacity);
  return c;
}

// dst = scale * src x weights with the given descriptors (cached by key). In bf16 precision src
// and weights are rounded to bf16 (the softmax and its gradient stay fp32 between the matmuls).
void run(const std::string& key, const memory::desc& src, const memory::desc& wei, const memory::desc& dst, float scale,
         const float* a, const float* b, float* c) {
  MatmulPrim* e = cache().get(key);
  if (!e) {
    e = cache().put(key, makeForPrecision([&](bool bf16) {
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      if (scale != 1.f) attr.set_output_scales(0, {scale});
      MatmulPrim m;
      m.bf16 = bf16;
      m.pd = dnnl::matmul::primitive_desc(
          dnnl::matmul::desc(bf16 ? asBf16(src) : src, bf16 ? asBf16(wei) : wei, dst), attr, cpuEngine());
      m.prim = dnnl::matmul(m.pd);
      return m;
    }));
  }
  const auto input = [&](int slot, const memory::desc& md, const float* p) {
    if (!e->bf16) return memory(md, cpuEngine(), const_cast<float*>(p));
    return memory(asBf16(md), cpuEngine(), toBf16(slot, p, f32Span(md)));
  };
  dnnl::stream& s = cpuStream();
  e->prim.execute(s, {{DNNL_ARG_SRC, input(0, src, a)},
                      {DNNL_ARG_WEIGHTS, input(1, wei, b)},
                      {DNNL_ARG_DST, memory(dst, cpuEngine(), c)},
                      {DNNL_ARG_SCRATCHPAD, scratchpadMemory(e->pd)}});
  s.wait();
}

std::string keyOf(char which, const AttnGeom& g, float scale) {
  std::string k(1, which);
  k += '|';
  for (int64_t v : {g.B, g.L, g.S, g.D, g.H}) keyAppend(k, v);
  keyAppendFloat(k, scale);
  keyAppend(k, omp_get_max_threads());  // inside a SmallWorkScope: 1 for small problems
  keyAppend(k, precision());
  return k;
}

FAD_CLONES void softmaxRowInPlace(float* __restrict x, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
  for (int64_t i = 0; i < n; ++i) x[i] = fexp(x[i] - m);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  const float inv = float(1.0 / s);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

// dS = P * (dP - sum(dP * P)) in place in dp, row by row.
FAD_CLONES void softmaxGradRow(const float* __restrict p, float* __restrict dp, int64_t n) {
  double dot = 0;
  for (int64_t i = 0; i < n; ++i) dot += double(dp[i]) * p[i];
  const float fd = float(dot);
  for (int64_t i = 0; i < n; ++i) dp[i] = p[i] * (dp[i] - fd);
}

}  // namespace

Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 7) throw Napi::TypeError::New(env, "attention: expected 7 arguments");
  const AttnGeom g = parseAttn(info[5]);
  const F32 q = f32Arg(info[0], "q", size_t(g.B * g.L * g.D));
  const F32 k = f32Arg(info[1], "k", size_t(g.B * g.S * g.D));
  const F32 v = f32Arg(info[2], "v", size_t(g.B * g.S * g.D));
  const F32 out = f32Arg(info[3], "out", size_t(g.B * g.L * g.D));
  const F32 probs = f32Arg(info[4], "probs", size_t(g.B * g.H * g.L * g.S));
  const float scale = info[6].As<Napi::Number>().FloatValue();
  return guarded(info, "attention", [&] {
    const SmallWorkScope threads(4 * g.B * g.L * g.S * g.D);  // the two matmuls
    // scores = scale * Q K^T, into probs.
    run(keyOf('s', g, scale), headView(g, g.L, false), headView(g, g.S, true), dense(g, g.L, g.S, false), scale, q.data,
        k.data, probs.data);
    const int64_t rows = g.B * g.H * g.L;
    parallelRange(rows, rows * g.S * 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) softmaxRowInPlace(probs.data + r * g.S, g.S);
    });
    // out = P V, written straight into the [B, L, H*d] layout.
    run(keyOf('o', g, 1.f), dense(g, g.L, g.S, false), headView(g, g.S, false), headView(g, g.L, false), 1.f, probs.data,
        v.data, out.data);
  });
}

Napi::Value AttentionGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 10) throw Napi::TypeError::New(env, "attentionGrad: expected 10 arguments");
  const AttnGeom g = parseAttn(info[8]);
  const size_t nq = size_t(g.B * g.L * g.D), nk = size_t(g.B * g.S * g.D), np = size_t(g.B * g.H * g.L * g.S);
  const F32 dy = f32Arg(info[0], "dy", nq);
  const F32 q = f32Arg(info[1], "q", nq);
  const F32 k = f32Arg(info[2], "k", nk);
  const F32 v = f32Arg(info[3], "v", nk);
  const F32 probs = f32Arg(info[4], "probs", np);
  const F32 dq = f32Arg(info[5], "dq", nq);
  const F32 dk = f32Arg(info[6], "dk", nk);
  const F32 dv = f32Arg(info[7], "dv", nk);
  const float scale = info[9].As<Napi::Number>().FloatValue();
  return guarded(info, "attentionGrad", [&] {
    const SmallWorkScope threads(8 * g.B * g.L * g.S * g.D);  // the four matmuls
    // dP / dS scratch, kept across calls: a fresh 16 MB allocation per call costs ~4k page faults.
    static std::unique_ptr<float[]> scratch;
    static size_t scratchSize = 0;
    if (scratchSize < np) {
      scratch.reset();
      scratch.reset(new float[np]);
      scratchSize = np;
    }
    float* const dpData = scratch.get();
    struct {
      float* p;
      float* get() const { return p; }
    } dp{dpData};
    // dV = P^T dY
    run(keyOf('v', g, 1.f), dense(g, g.L, g.S, true), headView(g, g.L, false), headView(g, g.S, false), 1.f, probs.data,
        dy.data, dv.data);
    // dP = dY V^T
    run(keyOf('p', g, 1.f), headView(g, g.L, false), headView(g, g.S, true), dense(g, g.L, g.S, false), 1.f, dy.data,
        v.data, dp.get());
    const int64_t rows = g.B * g.H * g.L;
    parallelRange(rows, rows * g.S * 3, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) softmaxGradRow(probs.data + r * g.S, dp.get() + r * g.S, g.S);
    });
    // dQ = scale dS K ; dK = scale dS^T Q
    run(keyOf('q', g, scale), dense(g, g.L, g.S, false), headView(g, g.S, false), headView(g, g.L, false), scale, dp.get(),
        k.data, dq.data);
    run(keyOf('k', g, scale), dense(g, g.L, g.S, true), headView(g, g.L, false), headView(g, g.S, false), scale, dp.get(),
        q.data, dk.data);
  });
}

void clearAttentionCache() { cache().clear(); }

Napi::Value attentionCacheInfo(Napi::Env env) { 
  return CacheInfoBuilder(env).add(cache(), [](Napi::Object& o, const auto& entry) { o.Set("bf16", entry.bf16); }).build();
}

}  // namespace tfn
