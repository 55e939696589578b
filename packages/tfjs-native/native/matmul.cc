// Batched matrix multiplication on oneDNN, with tfjs's transposeA/transposeB flags, batch
// broadcasting (one side's batch may be 1) and an optional fused bias + activation.
//
// matmul(a, b, bias | null, c, params, activation, alpha) with params (Int32Array, 7):
//   [batchA, batchB, M, N, K, transposeA, transposeB]
// a is [batchA, M, K] (or [batchA, K, M] when transposed), b is [batchB, K, N] (or
// [batchB, N, K]), c is [max(batchA, batchB), M, N], bias has N entries (broadcast over
// batch and rows). Transposes are expressed as memory strides: no data is moved. In bf16
// precision a and b are rounded to bf16 copies first (same strides); bias and c stay f32.
#include "common.h"

namespace tfn {
namespace {

using memory = dnnl::memory;
using dt = dnnl::memory::data_type;

struct MatmulEntry {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
  memory::desc a, b, bias, c;  // the f32 arrays as tfjs stores them
  bool bf16 = false;           // a and b are rounded to bf16 (asBf16 of a and b) before the call
};

Lru<MatmulEntry>& cache() {
  static Lru<MatmulEntry> c(kCacheCapacity);
  return c;
}

}  // namespace

void runMatmul(const MatmulArgs& m) {
  const int64_t BA = m.batchA, BB = m.batchB, M = m.M, N = m.N, K = m.K;
  const bool tA = m.transposeA, tB = m.transposeB, withBias = m.bias != nullptr;
  const int64_t B = std::max(BA, BB);
  const SmallWorkScope threads(2 * B * M * N * K);
  std::string key;
  for (int64_t v : {BA, BB, M, N, K, int64_t(tA), int64_t(tB), int64_t(withBias), int64_t(m.act)}) keyAppend(key, v);
  keyAppend(key, threads.threads());
  keyAppendFloat(key, m.alpha);
  keyAppend(key, precision());
  MatmulEntry* e = cache().get(key);
  if (!e) {
    // Plain 2-D descriptors when there is no batch, 3-D (batch-broadcasting) otherwise.
    const bool batched = B > 1;
    auto md = [&](int64_t batch, int64_t rows, int64_t cols, bool transposed) {
      // Logical [rows, cols]; stored row-major as [rows, cols], or as [cols, rows] when transposed.
      const memory::dims strides2 = transposed ? memory::dims{1, rows} : memory::dims{cols, 1};
      if (!batched) return memory::desc({rows, cols}, dt::f32, strides2);
      return memory::desc({batch, rows, cols}, dt::f32, {rows * cols, strides2[0], strides2[1]});
    };
    e = cache().put(key, makeForPrecision([&](bool bf16) {
      MatmulEntry entry;
      entry.bf16 = bf16;
      entry.a = md(BA, M, K, tA);
      entry.b = md(BB, K, N, tB);
      entry.c = md(B, M, N, false);
      if (withBias) {
        entry.bias = batched ? memory::desc({1, 1, N}, dt::f32, memory::dims{N, N, 1})
                             : memory::desc({1, N}, dt::f32, memory::dims{N, 1});
      }
      const memory::desc a = bf16 ? asBf16(entry.a) : entry.a, b = bf16 ? asBf16(entry.b) : entry.b;
      dnnl::matmul::desc d = withBias ? dnnl::matmul::desc(a, b, entry.bias, entry.c) : dnnl::matmul::desc(a, b, entry.c);
      entry.pd = dnnl::matmul::primitive_desc(d, makeAttr(m.act, m.alpha), cpuEngine());
      entry.prim = dnnl::matmul(entry.pd);
      return entry;
    }));
  }
  const auto input = [&](int slot, const memory::desc& md, const float* p) {
    if (!e->bf16) return memory(md, cpuEngine(), const_cast<float*>(p));
    return memory(asBf16(md), cpuEngine(), toBf16(slot, p, f32Span(md)));
  };
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, input(0, e->a, m.a)},
      {DNNL_ARG_WEIGHTS, input(1, e->b, m.b)},
      {DNNL_ARG_DST, memory(e->c, cpuEngine(), m.c)},
      {DNNL_ARG_SCRATCHPAD, scratchpadMemory(e->pd)},
  };
  if (withBias) args[DNNL_ARG_BIAS] = memory(e->bias, cpuEngine(), const_cast<float*>(m.bias));
  dnnl::stream& s = cpuStream();
  e->prim.execute(s, args);
  s.wait();
}

Napi::Value MatMul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 7) throw Napi::TypeError::New(env, "matmul: expected 7 arguments");
  const int32_t* p = intsArg(info[4], "params", 7);
  const int64_t BA = p[0], BB = p[1], M = p[2], N = p[3], K = p[4];
  const bool tA = p[5] != 0, tB = p[6] != 0;
  if (BA < 1 || BB < 1 || M < 1 || N < 1 || K < 1) throw Napi::RangeError::New(env, "matmul: sizes must be >= 1");
  if (BA != BB && BA != 1 && BB != 1) {
    throw Napi::RangeError::New(env, "matmul: batch sizes must be equal or one of them 1");
  }
  const int64_t B = std::max(BA, BB);
  const F32 a = f32Arg(info[0], "a", size_t(BA) * M * K);
  const F32 b = f32Arg(info[1], "b", size_t(BB) * K * N);
  const bool withBias = !info[2].IsNull() && !info[2].IsUndefined();
  const F32 bias = withBias ? f32Arg(info[2], "bias", size_t(N)) : F32{};
  const F32 c = f32Arg(info[3], "c", size_t(B) * M * N);
  const int32_t act = info[5].As<Napi::Number>().Int32Value();
  const float alpha = info[6].As<Napi::Number>().FloatValue();

  return guarded(info, "matmul", [&] {
    runMatmul({a.data, b.data, withBias ? bias.data : nullptr, c.data, BA, BB, M, N, K, tA, tB, act, alpha});
  });
}

void clearMatmulCache() { cache().clear(); }

Napi::Value matmulCacheInfo(Napi::Env env) { 
  return CacheInfoBuilder(env).add(cache(), [](Napi::Object& o, const auto& entry) { o.Set("bf16", entry.bf16); }).build();
}

}  // namespace tfn
